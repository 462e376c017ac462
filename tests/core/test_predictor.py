import numpy as np
import pytest
import torch
from PIL import Image

from efficientsam_zoo import EfficientSamPredictor
from efficientsam_zoo.utils.image import image_to_tensor


@pytest.fixture
def image():
    return np.random.default_rng(0).integers(0, 256, size=(40, 56, 3), dtype=np.uint8)


@pytest.fixture
def predictor(tiny_model, image):
    p = EfficientSamPredictor(tiny_model)
    p.set_image(image)
    return p


def test_predict_equals_raw_forward(tiny_model, image, predictor):
    pts = np.array([[10.0, 12.0], [30.0, 20.0]])
    box = np.array([5.0, 6.0, 40.0, 33.0])
    masks, scores, low = predictor.predict(pts, np.array([1, 1]), box)
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    raw_pts = torch.tensor([[[[10.0, 12.0], [30.0, 20.0], [5.0, 6.0], [40.0, 33.0]]]])
    raw_lbl = torch.tensor([[[1, 1, 2, 3]]])
    with torch.no_grad():
        logits, iou = tiny_model(x, raw_pts, raw_lbl)
        low_raw, _ = tiny_model(x, raw_pts, raw_lbl, scale_to_original_image_size=False)
    assert masks.shape == (3, 40, 56) and masks.dtype == bool
    np.testing.assert_allclose(scores, iou[0, 0].numpy(), atol=1e-6)
    np.testing.assert_array_equal(masks, (logits[0, 0] > 0).numpy())
    np.testing.assert_allclose(low, low_raw[0, 0].numpy(), atol=1e-5)
    logit_out, _, _ = predictor.predict(pts, np.array([1, 1]), box, return_logits=True)
    np.testing.assert_allclose(logit_out, logits[0, 0].numpy(), atol=1e-4)


def test_embedding_is_computed_once(tiny_model, image, monkeypatch):
    p = EfficientSamPredictor(tiny_model)
    calls = []
    original = tiny_model.image_encoder.forward
    monkeypatch.setattr(tiny_model.image_encoder, "forward", lambda x: calls.append(1) or original(x))
    p.set_image(image)
    for _ in range(3):
        p.predict(np.array([[3.0, 4.0]]), np.array([1]))
    p.predict_torch(boxes=torch.tensor([[1.0, 2.0, 20.0, 30.0]] * 4))
    assert len(calls) == 1


def test_predict_torch_batch_equals_single_queries(predictor):
    boxes = torch.tensor([[1.0, 2.0, 20.0, 30.0], [10.0, 5.0, 50.0, 39.0], [0.0, 0.0, 56.0, 40.0]])
    masks, scores, low = predictor.predict_torch(boxes=boxes, return_logits=True)
    assert masks.shape == (3, 3, 40, 56) and scores.shape == (3, 3) and low.shape == (3, 3, 16, 16)
    for i in range(3):
        m, s, _ = predictor.predict(box=boxes[i].numpy(), return_logits=True)
        np.testing.assert_allclose(masks[i].numpy(), m, atol=1e-4)
        np.testing.assert_allclose(scores[i].numpy(), s, atol=1e-5)


def test_multimask_false_gives_one_mask(predictor):
    masks, scores, low = predictor.predict(np.array([[3.0, 4.0]]), np.array([1]), multimask_output=False)
    assert masks.shape == (1, 40, 56) and scores.shape == (1,) and low.shape == (1, 16, 16)


def test_image_formats_agree(image):
    ref = image_to_tensor(image)
    assert ref.shape == (3, 40, 56) and ref.max() <= 1.0
    torch.testing.assert_close(image_to_tensor(Image.fromarray(image)), ref)
    rgba = np.concatenate([image, np.full((40, 56, 1), 7, np.uint8)], axis=2)
    torch.testing.assert_close(image_to_tensor(rgba), ref)
    torch.testing.assert_close(image_to_tensor(image[:, :, ::-1].copy(), image_format="BGR"), ref)
    torch.testing.assert_close(image_to_tensor(ref), ref)
    torch.testing.assert_close(image_to_tensor(ref[None]), ref)
    gray = image[:, :, 0]
    g = image_to_tensor(gray)
    torch.testing.assert_close(g, image_to_tensor(np.stack([gray] * 3, -1)))
    torch.testing.assert_close(image_to_tensor(Image.fromarray(gray)), g)


def test_bad_images_raise(tiny_model):
    p = EfficientSamPredictor(tiny_model)
    with pytest.raises(ValueError, match="2-channel"):
        p.set_image(np.zeros((10, 10, 2), np.uint8))
    with pytest.raises(ValueError, match="0..1 scale"):
        p.set_image(np.full((10, 10, 3), 200.0, np.float32))
    with pytest.raises(ValueError, match="tensor image"):
        p.set_image(torch.rand(2, 10, 10))
    with pytest.raises(ValueError, match="empty image"):
        p.set_image(np.zeros((0, 10, 3), np.uint8))
    with pytest.raises(RuntimeError, match="set_image"):
        p.predict(np.array([[1.0, 1.0]]), np.array([1]))


def test_bad_prompts_raise(predictor):
    with pytest.raises(ValueError, match="empty prompt"):
        predictor.predict()
    with pytest.raises(ValueError, match="outside the 56x40"):
        predictor.predict(np.array([[60.0, 10.0]]), np.array([1]))
    with pytest.raises(ValueError, match="outside"):
        predictor.predict(box=np.array([-5.0, 0.0, 10.0, 10.0]))
    with pytest.raises(ValueError, match="at most 6"):
        predictor.predict(np.ones((5, 2)), np.ones(5), box=np.array([0.0, 0.0, 5.0, 5.0]))
    with pytest.raises(ValueError, match="point_labels must be given"):
        predictor.predict(np.ones((1, 2)))
    with pytest.raises(ValueError, match="labels must be"):
        predictor.predict(np.ones((1, 2)), np.array([-1]))
    with pytest.raises(ValueError, match="x1 >= x0"):
        predictor.predict(box=np.array([10.0, 0.0, 5.0, 5.0]))
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        predictor.predict(np.ones(2), np.ones(1))
