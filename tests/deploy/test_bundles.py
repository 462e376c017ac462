"""Labelling-tool bundles (``export-onnx --bundle``), on the main job's finetuned model and held-out generated scenes:

* samexporter: loaded and run by samexporter's own ``EfficientSAMONNX`` (installed from PyPI by the set-up script);
* X-AnyLabeling: its loader needs PyQt6 and a display, so the test makes the calls its ``efficientvit_sam`` loader
  makes (``anylabeling/services/auto_labeling/efficientvit_sam.py``: the raw uint8 RGB image into the encoder, SAM's
  decoder inputs with points scaled to the longest-side-1024 frame, the first mask kept) -- its documented contract.

Either way the mask equals the torch predictor's best mask for the same click or box."""
import cv2
import numpy as np
import onnxruntime as ort
import pytest

from efficientsam_zoo import EfficientSamPredictor
from efficientsam_zoo.cli import main
from efficientsam_zoo.cli.common import load_model_from_args
from efficientsam_zoo.data.synthetic import make_scene
from efficientsam_zoo.export_bundles import export_bundle
from efficientsam_zoo.utils.masks import mask_to_box


@pytest.fixture(scope="module")
def setup(quickstart, tmp_path_factory):
    model_dir = str(quickstart[0] / "model")
    model = load_model_from_args(None, model_dir, "cpu")
    scenes = [make_scene(6_200_000 + i, *size) for i, size in enumerate([(96, 150), (128, 128)])]
    return model_dir, EfficientSamPredictor(model), scenes, tmp_path_factory.mktemp("bundles")


def _prompts(masks):
    for m in masks:
        ys, xs = np.nonzero(m)
        yield dict(point=(int(xs[len(xs) // 2]), int(ys[len(ys) // 2]))), m
        yield dict(box=[float(v) for v in mask_to_box(m)]), m


def _reference(predictor, prompt):
    if "point" in prompt:
        masks, scores, _ = predictor.predict(point_coords=[prompt["point"]], point_labels=[1])
    else:
        masks, scores, _ = predictor.predict(box=prompt["box"])
    return masks[np.argmax(scores)]


def _iou(a, b):
    return (a & b).sum() / max((a | b).sum(), 1)


def test_samexporter_loads_and_runs_the_bundle(setup):
    efficient_sam_onnx = pytest.importorskip("samexporter.efficient_sam_onnx",
                                             reason="samexporter is not installed (scripts/setup_env.sh installs it)")
    model_dir, predictor, scenes, out = setup
    assert main(["export-onnx", "--checkpoint", model_dir, "--out-dir", str(out / "sx"), "--bundle",
                 "samexporter"]) == 0
    tool = efficient_sam_onnx.EfficientSAMONNX(str(out / "sx" / "encoder.onnx"), str(out / "sx" / "decoder.onnx"))
    ious = []
    for image, masks in scenes:
        embedding = tool.encode(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))  # the tool reads BGR, as OpenCV does
        predictor.set_image(image)
        for prompt, _ in _prompts(masks):
            mark = ({"type": "point", "data": list(prompt["point"]), "label": 1} if "point" in prompt else
                    {"type": "rectangle", "data": prompt["box"]})
            mask = tool.predict_masks(embedding, [mark])[0, 0] > 0
            ious.append(_iou(mask, _reference(predictor, prompt)))
    print(f"samexporter: {len(ious)} prompts, worst IoU with the torch predictor {min(ious):.4f}")
    assert min(ious) >= 0.99


def test_x_anylabeling_contract(setup, capsys):
    """On the main job's 128-px model, written with ``any_size`` (the command refuses it: the tool's loader takes a
    1024-px model's 64x64 embeddings only, and a real-size export is too slow for CI)."""
    model_dir, predictor, scenes, out = setup
    assert main(["export-onnx", "--checkpoint", model_dir, "--out-dir", str(out / "refused"), "--bundle",
                 "x-anylabeling"]) == 2
    assert "takes 64x64 image embeddings only, i.e. a 1024-px model" in capsys.readouterr().err
    export_bundle(predictor.model, str(out / "xa"), "x-anylabeling", any_size=True)
    config = dict(line.split(": ", 1) for line in (out / "xa" / "efficientsam.yaml").read_text().splitlines())
    assert config["type"] == "efficientvit_sam" and config["target_size"] == "1024"
    encoder = ort.InferenceSession(str(out / "xa" / config["encoder_model_path"]))
    decoder = ort.InferenceSession(str(out / "xa" / config["decoder_model_path"]))
    assert [i.name for i in decoder.get_inputs()] == ["image_embeddings", "point_coords", "point_labels", "mask_input",
                                                       "has_mask_input", "orig_im_size"]
    ious = []
    for image, masks in scenes:
        h, w = image.shape[:2]
        embedding = encoder.run(None, {encoder.get_inputs()[0].name: image})[0]  # raw uint8 RGB, any size
        scale = 1024 / max(h, w)
        frame = np.array([int(w * scale + 0.5) / w, int(h * scale + 0.5) / h], np.float32)  # apply_coords
        predictor.set_image(image)
        for prompt, _ in _prompts(masks):
            points, labels = (([prompt["point"]], [1.0]) if "point" in prompt else
                              ([prompt["box"][:2], prompt["box"][2:]], [2.0, 3.0]))
            feeds = {"image_embeddings": embedding,
                     "point_coords": (np.array(points, np.float32) * frame)[None],
                     "point_labels": np.array(labels, np.float32)[None],
                     "mask_input": np.zeros([1, 1, *decoder.get_inputs()[3].shape[2:]], np.float32),
                     "has_mask_input": np.zeros(1, np.float32), "orig_im_size": np.array([h, w], np.float32)}
            masks_out, scores, _ = decoder.run(None, feeds)
            assert masks_out.shape == (1, 3, h, w) and scores[0, 0] == scores.max()  # best first
            ious.append(_iou(masks_out[0, 0] > 0, _reference(predictor, prompt)))
    print(f"x-anylabeling contract: {len(ious)} prompts, worst IoU with the torch predictor {min(ious):.4f}")
    assert min(ious) >= 0.99
