"""EfficientTAM on images: ``EfficientTamImagePredictor`` against the reference's ``SAM2ImagePredictor`` (Meta's sam2
with EfficientTAM's encoder, see ``etam_reference``) on the same weights; the builders; segment everything on it;
bad input."""
import etam_reference  # Meta's sam2 inside; both set-up scripts install it, so missing it fails here, never skips
import numpy as np
import pytest
import torch

import efficientsam_zoo
from efficientsam_zoo import AutomaticMaskGenerator
from efficientsam_zoo.checkpoints import official_to_efficienttam
from efficientsam_zoo.integrations.hf import (EfficientTamImagePredictor, EfficientTamModel, EfficientTamVideoModel,
                                              build_efficienttam, efficienttam_config_for)

SIZE, TOL = 256, 1e-4
POINT, BOX = np.array([[120.0, 100.0]]), np.array([70.0, 40.0, 210.0, 160.0])


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    """A random-weight release file (official layout) and its state dict."""
    sd = etam_reference.random_release_weights("ti", SIZE)
    path = tmp_path_factory.mktemp("release") / "efficienttam_ti.pt"
    torch.save({"model": sd}, path)
    return str(path), sd


@pytest.fixture(scope="module")
def images():
    """Two scenes of other sizes than the model's input (so both sides resize): shaded noise with a red and a blue
    block."""
    rng = np.random.RandomState(0)
    out = []
    for h, w in ((200, 300), (180, 140)):
        yy, xx = np.mgrid[0:h, 0:w]
        img = np.stack([100 + 40 * np.sin(xx / 9.0), 90 + 30 * np.cos(yy / 7.0), 110 + 0 * xx], -1)
        img = img + rng.randn(h, w, 3) * 8
        img[50:150, 80:130] = (220, 40, 40)
        img[20:90, 10:60] = (40, 60, 220)
        out.append(np.clip(img, 0, 255).astype(np.uint8))
    return out


def _ours(release, **kwargs) -> EfficientTamImagePredictor:
    model = build_efficienttam(efficienttam_config_for("efficienttam-ti", image_size=SIZE), release[0])
    return EfficientTamImagePredictor(model, **kwargs)


PROMPTS = [
    dict(point_coords=POINT, point_labels=np.array([1])),
    dict(box=BOX),
    dict(point_coords=np.array([[120.0, 100.0], [30.0, 30.0]]), point_labels=np.array([1, 0]), box=BOX,
         multimask_output=False),
    dict(point_coords=np.array([[[120.0, 100.0]], [[20.0, 20.0]]]), point_labels=np.array([[1], [1]])),  # batched
    dict(point_coords=np.array([[0.4, 0.5]]), point_labels=np.array([1]), normalize_coords=False),
]


@torch.inference_mode()
def test_predictions_match_sam2s_image_predictor(release, images, monkeypatch):
    """Masks (logits at the image's size), scores and low-res logits for points, a box, points + box + a negative
    click, batched queries, relative coordinates, a mask prompt, SAM 2's hole / sprinkle clean-up, and two images
    through ``set_image_batch`` / ``predict_batch`` (measured: <= 1.5e-5 on logits of std ~1.8)."""
    import sam2.utils.misc

    monkeypatch.setattr(sam2.utils.misc, "get_connected_components", etam_reference.scipy_connected_components)
    path, sd = release
    worst, first = 0.0, []
    for cleanup in ({}, dict(max_hole_area=30, max_sprinkle_area=30)):
        ref = etam_reference.build_reference_image("ti", SIZE, state_dict=sd, **cleanup)
        ours = _ours(release, **cleanup)
        ref.set_image(images[0])
        ours.set_image(images[0])
        for prompt in PROMPTS:
            a, b = ref.predict(**prompt, return_logits=True), ours.predict(**prompt, return_logits=True)
            assert [x.shape for x in a] == [y.shape for y in b], prompt
            worst = max(worst, *(float(np.abs(x - y).max()) for x, y in zip(a, b)))
            assert a[0].std() > 0.5
        first.append(ours.predict(**PROMPTS[0], return_logits=True)[0])
        low = ref.predict(point_coords=POINT, point_labels=np.array([1]))[2]
        a = ref.predict(point_coords=POINT, point_labels=np.array([1]), mask_input=low[:1], return_logits=True)
        b = ours.predict(point_coords=POINT, point_labels=np.array([1]), mask_input=low[:1], return_logits=True)
        worst = max(worst, *(float(np.abs(x - y).max()) for x, y in zip(a, b)))
        ref.set_image_batch(images)
        ours.set_image_batch(images)
        args = dict(point_coords_batch=[POINT, np.array([[50.0, 60.0]])], point_labels_batch=[[1], [1]],
                    box_batch=[None, np.array([10.0, 20.0, 60.0, 90.0])])
        for x, y in zip(ref.predict_batch(**args, return_logits=True), ours.predict_batch(**args, return_logits=True)):
            worst = max(worst, *(float(np.abs(p - q).max()) for p, q in zip(x, y)))
    assert worst <= TOL
    assert float(np.abs(first[0] - first[1]).max()) > 1.0  # the clean-up changed the masks
    # control: the same weights with the no-memory embedding (added to every image embedding) left out
    ours = _ours(release)
    ours.model.no_memory_embedding.data.zero_()
    ours.set_image(images[0])
    ref = etam_reference.build_reference_image("ti", SIZE, state_dict=sd)
    ref.set_image(images[0])
    a, b = ref.predict(**PROMPTS[0], return_logits=True), ours.predict(**PROMPTS[0], return_logits=True)
    assert float(np.abs(a[0] - b[0]).max()) > 50 * TOL


def test_builders_load_the_image_side_of_a_release(release, tmp_path):
    """``build_efficienttam`` takes the release's image-side tensors (strictly read as the video model); the model
    round-trips through ``save_pretrained`` and transformers' ``AutoModel``; overrides and modes are checked."""
    from transformers import AutoModel

    path, sd = release
    model = build_efficienttam(efficienttam_config_for("efficienttam-ti", image_size=SIZE), path)
    video = EfficientTamVideoModel(efficienttam_config_for("efficienttam-ti", image_size=SIZE))
    expected = official_to_efficienttam(sd, {k: v.shape for k, v in video.state_dict().items()})
    assert set(model.state_dict()) < set(expected) and not model.training
    assert all(torch.equal(v, expected[k]) for k, v in model.state_dict().items())
    model.save_pretrained(tmp_path / "hf")
    again = AutoModel.from_pretrained(tmp_path / "hf")
    assert type(again) is EfficientTamModel
    assert all(torch.equal(again.state_dict()[k], v) for k, v in model.state_dict().items())
    assert efficientsam_zoo.build_efficienttam is build_efficienttam
    with pytest.raises(ValueError, match=r"unknown EfficientTAM setting\(s\) \['fill_hole_aera'\]"):
        efficientsam_zoo.build_efficienttam_video_predictor("efficienttam-ti", fill_hole_aera=8)
    with pytest.raises(ValueError, match="mode must be 'eval' or 'train'"):
        build_efficienttam("efficienttam-ti", mode="test")
    with pytest.raises(ValueError, match="unknown EfficientTAM model 'efficienttam-xl'"):
        build_efficienttam("efficienttam_xl")
    config = efficienttam_config_for("efficienttam-ti", image_size=SIZE)
    predictor = efficientsam_zoo.build_efficienttam_video_predictor(config, path)
    assert predictor.model.config.fill_hole_area == 8  # SAM 2's apply_postprocessing, as the release builds it
    assert all(torch.equal(predictor.model.state_dict()[k], v) for k, v in expected.items())
    plain = efficientsam_zoo.build_efficienttam_video_predictor(config, path, apply_postprocessing=False)
    assert plain.model.config.fill_hole_area == 0


@torch.inference_mode()
def test_segment_everything_runs_on_the_image_model(release, images):
    """``AutomaticMaskGenerator(efficienttam_model)``: every record is what the image predictor gives for that
    record's point (its best-matching mask of three and that mask's score), recomputed one point at a time."""
    model = _ours(release).model
    generator = AutomaticMaskGenerator(model, points_per_side=4, pred_iou_thresh=0.0, stability_score_thresh=0.0,
                                       box_nms_thresh=1.0, output_mode="binary_mask")  # keep every candidate
    records = generator.generate(images[0])
    assert len(records) >= 3
    predictor = EfficientTamImagePredictor(model)
    predictor.set_image(images[0])
    for r in records:
        masks, scores, _ = predictor.predict(point_coords=np.array(r["point_coords"]), point_labels=np.array([1]))
        ious = [(m & r["segmentation"]).sum() / max((m | r["segmentation"]).sum(), 1) for m in masks]
        best = int(np.argmax(ious))
        assert ious[best] > 0.99 and abs(scores[best] - r["predicted_iou"]) < 1e-4


def test_bad_input_is_named(release, images):
    ours = _ours(release)
    with pytest.raises(RuntimeError, match=r"no image set: call predictor\.set_image"):
        ours.predict(point_coords=POINT, point_labels=[1])
    ours.set_image(images[0])
    cases = [
        (dict(point_coords=[[500.0, 5.0]], point_labels=[1]), "outside"),
        (dict(point_coords=[[np.nan, 5.0]], point_labels=[1]), "non-finite"),
        (dict(point_coords=POINT), "point_labels must be given"),
        (dict(box=[50.0, 50.0, 10.0, 10.0]), "x1 >= x0|reversed|x0 <= x1"),
        (dict(point_coords=POINT, point_labels=[1], mask_input=np.zeros((1, 10, 10))),
         r"mask_input must be low-res logits \(1, 64, 64\)"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            ours.predict(**kwargs)
    assert ours.predict(point_coords=POINT, point_labels=[1])[0].shape == (3, 200, 300)  # still usable
    ours.set_image_batch(images)
    with pytest.raises(RuntimeError, match="use predict_batch"):
        ours.predict(point_coords=POINT, point_labels=[1])
    with pytest.raises(ValueError, match="point_coords_batch holds 1 entries for 2 images"):
        ours.predict_batch(point_coords_batch=[POINT], point_labels_batch=[[1]])


@torch.inference_mode()
def test_transformers_sam2_processor_drives_the_model(release, images):
    """transformers' own ``Sam2Processor`` (SAM 2's preprocessing and ``post_process_masks``) with
    ``EfficientTamModel(**inputs)`` gives the predictor's masks and scores."""
    from transformers.models.sam2.image_processing_sam2 import Sam2ImageProcessor
    from transformers.models.sam2.processing_sam2 import Sam2Processor

    predictor = _ours(release)
    image = np.concatenate([images[0], images[0][:SIZE - 200]])[:, :SIZE]  # the model's size: no resizing on
    # either side (transformers resizes with PIL, SAM 2 and the predictor with torch)
    processor = Sam2Processor(Sam2ImageProcessor(size={"height": SIZE, "width": SIZE}), target_size=SIZE)
    inputs = processor(images=image, input_points=[[[POINT[0].tolist()]]], input_labels=[[[1]]], return_tensors="pt")
    out = predictor.model(**{k: v for k, v in inputs.items() if k != "original_sizes"})
    masks = processor.post_process_masks(out.pred_masks, inputs["original_sizes"], binarize=False)[0][0]
    predictor.set_image(image)
    expected, scores, _ = predictor.predict(point_coords=POINT, point_labels=[1], return_logits=True)
    assert float((masks - torch.from_numpy(expected)).abs().max()) < 1e-4 and expected.std() > 0.5
    assert torch.allclose(out.iou_scores[0, 0], torch.from_numpy(scores), atol=1e-5)


def test_variant_names_load_the_release_through_the_hub_sources(fake_hf_cache, tmp_path):
    """``from_pretrained("efficienttam-ti")`` (image and video model) finds ``efficienttam_ti.pt`` where the variant
    table says it is published (here an offline Hugging Face cache) and loads it strictly."""
    from efficientsam_zoo.registry import get_variant

    source = get_variant("efficienttam-ti").weights[0]
    sd = etam_reference.random_release_weights("ti", 1024)
    torch.save({"model": sd}, tmp_path / source.filename)
    fake_hf_cache(source.repo_id, source.filename, str(tmp_path / source.filename))
    image, video = EfficientTamModel.from_pretrained("efficienttam-ti"), EfficientTamVideoModel.from_pretrained(
        "efficienttam-ti")
    expected = official_to_efficienttam(sd, {k: v.shape for k, v in video.state_dict().items()})
    assert all(torch.equal(v, expected[k]) for k, v in video.state_dict().items())
    assert all(torch.equal(v, expected[k]) for k, v in image.state_dict().items())
