"""transformers' own ``pipeline("mask-generation")`` on an EfficientSAM model directory returns the masks of our
``AutomaticMaskGenerator`` with the same settings: every mask equal pixel for pixel, the same scores, in order.

The generator runs on the very module the pipeline loaded (``generator.model.efficientsam``): the same weights
loaded into other memory can differ in the last bit of a score (alignment-dependent vector kernels)."""
import json

import numpy as np
import pytest
import torch
from conftest import TINY, randomize_
from PIL import Image
from transformers import AutoImageProcessor, pipeline
from transformers.pipelines import MaskGenerationPipeline

from efficientsam_zoo import EfficientSamSpec, build_efficient_sam
from efficientsam_zoo.automatic_mask_generator import AutomaticMaskGenerator
from efficientsam_zoo.data.synthetic import make_scene
from efficientsam_zoo.integrations.hf import EfficientSamImageProcessor, EfficientSamModel
from efficientsam_zoo.utils.masks import decode_rle

KEEP_ALL = dict(pred_iou_thresh=-1e9, stability_score_thresh=0.0)


@pytest.fixture(scope="module")
def native():
    return randomize_(build_efficient_sam(EfficientSamSpec(**TINY)), seed=2, scale=0.3).eval()


@pytest.fixture(scope="module")
def generator(native, tmp_path_factory):
    directory = tmp_path_factory.mktemp("efficientsam_dir")
    EfficientSamModel.from_native(native).save_pretrained(directory)
    EfficientSamImageProcessor(size=native.img_size).save_pretrained(directory)
    return pipeline("mask-generation", model=str(directory), device="cpu")


@pytest.fixture(scope="module")
def image():
    return make_scene(0, 120, 160)[0]  # large enough that masks of the crops survive the crop-edge filter


def _ours(generator, image, side, batch, layers, nms, **thresholds):
    amg = AutomaticMaskGenerator(generator.model.efficientsam, points_per_side=side, points_per_batch=batch, crop_n_layers=layers,
                                 box_nms_thresh=nms, crop_nms_thresh=nms, output_mode="binary_mask", **thresholds)
    return amg.generate(image)


def _assert_same(out, records):
    assert len(out["masks"]) == len(records)
    for mask, r in zip(out["masks"], records):
        assert mask.dtype == torch.bool and np.array_equal(mask.numpy(), r["segmentation"])
    np.testing.assert_array_equal(out["scores"].numpy(), np.float32([r["predicted_iou"] for r in records]))


def test_the_real_pipeline_is_built_from_a_model_directory_or_objects(generator, image):
    assert type(generator) is MaskGenerationPipeline
    assert type(generator.model) is EfficientSamModel and type(generator.image_processor) is EfficientSamImageProcessor
    # the model cards' form: a loaded model and a processor (from_pretrained("efficientsam-ti") converts the release)
    objects = pipeline("mask-generation", model=generator.model, image_processor=EfficientSamImageProcessor(size=64))
    a, b = (g(Image.fromarray(image), points_per_crop=3, **KEEP_ALL) for g in (generator, objects))
    assert len(a["masks"]) == len(b["masks"]) > 0 and all(torch.equal(x, y) for x, y in zip(a["masks"], b["masks"]))


@pytest.mark.parametrize("side,batch,layers,nms", [(6, 7, 0, 1.0), (4, 5, 1, 0.9)])
def test_every_mask_equals_the_generators(generator, image, side, batch, layers, nms):
    """No filter (NMS at 1.0 keeps every candidate: 108 masks compared one by one), then crops with NMS."""
    out = generator(Image.fromarray(image), points_per_crop=side, points_per_batch=batch, crops_n_layers=layers,
                    crops_nms_thresh=nms, **KEEP_ALL)
    records = _ours(generator, image, side, batch, layers, nms, **KEEP_ALL)
    _assert_same(out, records)
    if layers == 0:
        assert len(records) == side * side * 3  # every candidate of the grid
    else:
        assert len({tuple(r["crop_box"]) for r in records}) > 1  # masks of the crops took part


def test_the_pipelines_filters_are_the_generators(generator, image):
    """Thresholds at the medians of the candidates' predicted IoU and stability: each filter removes some."""
    everything = _ours(generator, image, 5, 64, 0, 1.0, **KEEP_ALL)
    iou_t = float(np.median([r["predicted_iou"] for r in everything]))
    stab_t = float(np.median([r["stability_score"] for r in everything if r["predicted_iou"] > iou_t]))
    thresholds = dict(pred_iou_thresh=iou_t, stability_score_thresh=stab_t)
    out = generator(Image.fromarray(image), points_per_crop=5, points_per_batch=64, crops_nms_thresh=0.7, output_rle_mask=True,
                    output_bboxes_mask=True, **thresholds)
    records = _ours(generator, image, 5, 64, 0, 0.7, **thresholds)
    assert 0 < len(records) < sum(r["predicted_iou"] > iou_t for r in everything) < len(everything)
    _assert_same(out, records)
    for rle, mask, box, r in zip(out["rle_mask"], out["masks"], out["bounding_boxes"], records):
        assert np.array_equal(decode_rle(rle), mask.numpy())  # segment-anything's uncompressed RLE
        x, y, w, h = r["bbox"]
        assert box.tolist() == [x, y, x + w - 1, y + h - 1]  # xyxy, inclusive max (transformers' SAM)


def test_unsupported_pipeline_options_fail_with_the_fix(generator, image):
    with pytest.raises(ValueError, match="crop_n_points_downscale_factor=1"):
        generator(Image.fromarray(image), points_per_crop=4, crops_n_layers=1, crop_n_points_downscale_factor=2)
    with pytest.raises(ValueError, match="max_hole_area"):
        generator(Image.fromarray(image), points_per_crop=2, max_hole_area=10)


def test_processor_size_follows_transformers_and_reads_an_int(tmp_path):
    """``size`` is transformers' ``{"height", "width"}`` (the pipeline reads it); a saved int still loads."""
    assert EfficientSamImageProcessor(size=64).size == {"height": 64, "width": 64}
    EfficientSamImageProcessor(size=64).save_pretrained(tmp_path)
    config = json.loads((tmp_path / "preprocessor_config.json").read_text())
    config["size"] = 64
    (tmp_path / "preprocessor_config.json").write_text(json.dumps(config))
    assert AutoImageProcessor.from_pretrained(tmp_path).size == {"height": 64, "width": 64}
    with pytest.raises(ValueError, match="square"):
        EfficientSamImageProcessor(size={"height": 64, "width": 32})
