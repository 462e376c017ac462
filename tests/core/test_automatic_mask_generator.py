"""Segment everything: valid SA-1B-style records, one embedding per image, chunked decoding, and peak memory
that does not grow with the grid at a fixed chunk size."""
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import TINY, randomize_

from efficientsam_zoo import EfficientSamSpec, build_efficient_sam
from efficientsam_zoo.automatic_mask_generator import (AutomaticMaskGenerator, crop_boxes, point_grid,
                                                       remove_small_regions, stability_score)
from efficientsam_zoo.data.synthetic import make_scene
from efficientsam_zoo.utils.masks import decode_rle

KEEP_ALL = dict(pred_iou_thresh=-1e9, stability_score_thresh=0.0)


@pytest.fixture
def model():
    return randomize_(build_efficient_sam(EfficientSamSpec(**TINY)), seed=2, scale=0.3)


def test_records_are_valid_and_decoding_is_chunked(model, monkeypatch):
    image, _ = make_scene(0, 96, 128)
    calls = []
    original = model.image_encoder.forward
    monkeypatch.setattr(model.image_encoder, "forward", lambda x: calls.append(1) or original(x))
    amg = AutomaticMaskGenerator(model, points_per_side=6, points_per_batch=8, box_nms_thresh=0.9, **KEEP_ALL)
    records = amg.generate(image)
    assert len(calls) == 1  # one embedding for the whole grid
    assert amg.stats["decoder_calls"] == math.ceil(36 / 8) and amg.stats["max_queries_per_call"] <= 8
    assert amg.stats["candidates"] == 36 * 3 and 0 < len(records) <= 36 * 3
    for r in records:
        m = decode_rle(r["segmentation"])
        assert m.shape == (96, 128) and m.sum() == r["area"] > 0
        ys, xs = np.nonzero(m)
        assert r["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
        x, y = r["point_coords"][0]
        assert 0 <= x < 128 and 0 <= y < 96 and r["crop_box"] == [0, 0, 128, 96]
        assert 0.0 <= r["stability_score"] <= 1.0
    # NMS: no two kept boxes overlap more than the threshold
    from torchvision.ops import box_iou

    boxes = torch.tensor([[b[0], b[1], b[0] + b[2], b[1] + b[3]] for b in (r["bbox"] for r in records)], dtype=torch.float)
    iou = box_iou(boxes, boxes) - torch.eye(len(boxes))
    assert iou.max() <= 0.9 + 1e-6


def test_filtering_before_upsampling_keeps_exactly_the_full_resolution_result(model):
    """Reference: every candidate upsampled to full resolution (the predictor's own output), then SAM's two
    filters. The generator filters by predicted IoU on the low-res output and upsamples only the survivors."""
    from efficientsam_zoo import EfficientSamPredictor
    from efficientsam_zoo.utils.masks import encode_rle

    image, _ = make_scene(3, 72, 100)
    points = point_grid(5) * np.array([100, 72])
    p = EfficientSamPredictor(model)
    p.set_image(image)
    logits, iou, _ = p.predict_torch(torch.as_tensor(points, dtype=torch.float32)[:, None],
                                     torch.ones(len(points), 1, dtype=torch.long), return_logits=True)
    logits, iou = logits.flatten(0, 1), iou.flatten(0, 1)
    stab = torch.from_numpy(stability_score(logits.numpy(), 0.0, 1.0))
    def between(values):  # a threshold halfway between two neighbouring values near the median (no ties)
        v = values.sort().values
        k = len(v) // 2
        return float(v[k - 1] + v[k]) / 2

    iou_t = between(iou.reshape(25, 3).max(1).values)  # about half the queries have no mask above it
    stab_t = between(stab[iou > iou_t])
    keep = (iou > iou_t) & (stab >= stab_t)
    assert 0 < int(keep.sum()) < int((iou > iou_t).sum()) < len(iou)  # each filter removes something
    expected = sorted((round(float(s), 4), encode_rle((m > 0).numpy())["counts"])
                      for m, s in zip(logits[keep], iou[keep]) if (m > 0).any())

    amg = AutomaticMaskGenerator(model, points_per_side=5, points_per_batch=7, pred_iou_thresh=iou_t,
                                 stability_score_thresh=stab_t, box_nms_thresh=1.0)
    got = sorted((round(r["predicted_iou"], 4), r["segmentation"]["counts"]) for r in amg.generate(image))
    assert got == expected
    assert amg.stats["upsampled"] == int((iou > iou_t).sum()) < amg.stats["candidates"] == 75
    # the decoder upscaled only the queries with a mask above the IoU threshold
    per_query = (iou.reshape(25, 3) > iou_t).any(1)
    assert amg.stats["upscaled_queries"] == int(per_query.sum()) < 25


def test_decoder_skips_the_upscaling_of_queries_the_iou_filter_drops(model):
    """``predict_masks_above``: the IoU predictions of every query and, for the queries with one above the
    threshold (and only those), the very logits ``predict_masks`` computes."""
    g = torch.Generator().manual_seed(0)
    emb = model.get_image_embeddings(torch.rand(1, 3, 48, 80, generator=g))
    pts, lbl = torch.rand(1, 20, 1, 2, generator=g) * torch.tensor([80.0, 48.0]), torch.ones(1, 20, 1, dtype=torch.long)
    with torch.no_grad():
        low_res, iou = model.predict_masks(emb, pts, lbl, True, 48, 80)
        t = float(iou[0].max(1).values.median())  # about half the queries have a mask above it
        kept, iou_all, index = model.predict_masks_above(emb, pts, lbl, 48, 80, min_iou=t)
    assert torch.equal(iou_all, iou)
    expected = torch.nonzero((iou[0] > t).any(1)).flatten()
    assert torch.equal(index, expected) and 0 < len(index) < 20
    assert torch.equal(kept, low_res[0][index])


# segment-anything's SamAutomaticMaskGenerator.__init__ keywords and defaults (segment_anything 1.0)
SAM_KWARGS = dict(points_per_side=32, points_per_batch=64, pred_iou_thresh=0.88, stability_score_thresh=0.95,
                  stability_score_offset=1.0, box_nms_thresh=0.7, crop_n_layers=0, crop_nms_thresh=0.7,
                  crop_overlap_ratio=512 / 1500, crop_n_points_downscale_factor=1, point_grids=None,
                  min_mask_region_area=0, output_mode="binary_mask")
SAM_RECORD_KEYS = {"segmentation", "area", "bbox", "predicted_iou", "point_coords", "stability_score", "crop_box"}


def test_segment_anything_keywords_and_output_formats(model):
    import inspect

    from efficientsam_zoo import SamAutomaticMaskGenerator

    params = inspect.signature(AutomaticMaskGenerator).parameters
    assert list(params)[1:len(SAM_KWARGS) + 1] == list(SAM_KWARGS)  # same order: positional calls work too
    for name, default in SAM_KWARGS.items():
        assert name == "output_mode" or params[name].default == default, name
    assert SamAutomaticMaskGenerator(model).output_mode == "binary_mask"
    positional = SamAutomaticMaskGenerator(model, *[v for k, v in SAM_KWARGS.items() if k != "output_mode"], "coco_rle")
    assert positional.output_mode == "coco_rle" and positional.points_per_side == 32

    image, _ = make_scene(2, 64, 80)
    grids = [point_grid(3), point_grid(2)]  # explicit grids, one per crop layer, as SAM takes them
    user_code = dict(SAM_KWARGS, points_per_side=None, point_grids=grids, points_per_batch=5, pred_iou_thresh=-1e9,
                     stability_score_thresh=0.0, crop_n_layers=1, min_mask_region_area=4)
    generators = {mode: SamAutomaticMaskGenerator(model, **dict(user_code, output_mode=mode))
                  for mode in ("binary_mask", "uncompressed_rle", "coco_rle")}
    out = {mode: g.generate(image) for mode, g in generators.items()}
    assert out["binary_mask"] and all(set(r) == SAM_RECORD_KEYS for r in out["binary_mask"])
    for a, u, c in zip(out["binary_mask"], out["uncompressed_rle"], out["coco_rle"]):
        assert a["segmentation"].dtype == bool and a["segmentation"].shape == (64, 80)
        assert u["segmentation"]["size"] == [64, 80] and sum(u["segmentation"]["counts"]) == 64 * 80
        np.testing.assert_array_equal(decode_rle(u["segmentation"]), a["segmentation"])  # pycocotools agrees
        np.testing.assert_array_equal(decode_rle(c["segmentation"]), a["segmentation"])
    assert (0, 0, 80, 64) in {tuple(r["crop_box"]) for r in out["coco_rle"]}
    # the layer-0 grid on the image and the layer-1 grid on each of its 4 crops were decoded (the crops' masks may
    # all fall within SAM's 20-px margin of an inner crop edge at this size, and be dropped)
    assert generators["coco_rle"].stats["candidates"] == 3 * (len(grids[0]) + 4 * len(grids[1]))
    with pytest.raises(ValueError, match="exactly one of points_per_side and point_grids"):
        SamAutomaticMaskGenerator(model, point_grids=grids)
    with pytest.raises(ValueError, match="one \\[N, 2\\] grid .* per crop layer"):
        SamAutomaticMaskGenerator(model, points_per_side=None, point_grids=grids[:1], crop_n_layers=1)


def test_thresholds_filter(model):
    image, _ = make_scene(1, 64, 64)
    everything = AutomaticMaskGenerator(model, points_per_side=4, box_nms_thresh=1.0, **KEEP_ALL).generate(image)
    strict = AutomaticMaskGenerator(model, points_per_side=4, box_nms_thresh=1.0, pred_iou_thresh=1e9).generate(image)
    assert strict == [] and len(everything) > 0
    binary = AutomaticMaskGenerator(model, points_per_side=2, output_mode="binary_mask", **KEEP_ALL).generate(image)
    assert binary and binary[0]["segmentation"].dtype == bool


def test_missing_packages_are_named_before_any_decoding(model, monkeypatch):
    """The torch-free install has neither pycocotools nor OpenCV: the options that need them are refused up front,
    naming the package and the way around it; the other output modes need neither."""
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in ("pycocotools", "cv2")
                        else real(name, *a))
    with pytest.raises(ImportError, match=r"output_mode='coco_rle' .* needs pycocotools.*'binary_mask'"):
        AutomaticMaskGenerator(model, points_per_side=2)
    with pytest.raises(ImportError, match=r"min_mask_region_area > 0 .* needs cv2"):
        AutomaticMaskGenerator(model, points_per_side=2, output_mode="binary_mask", min_mask_region_area=4)
    AutomaticMaskGenerator(model, points_per_side=2, output_mode="uncompressed_rle")


def test_crops_and_small_regions(model):
    boxes = crop_boxes(100, 200, 1, 0.2)
    assert boxes[0] == ((0, 0, 200, 100), 0) and len(boxes) == 5 and all(layer == 1 for _, layer in boxes[1:])
    assert boxes[-1][0][2] == 200 and boxes[-1][0][3] == 100  # the last crop reaches the far corner
    image, _ = make_scene(2, 64, 96)
    records = AutomaticMaskGenerator(model, points_per_side=2, crop_n_layers=1, **KEEP_ALL).generate(image)
    assert {tuple(r["crop_box"]) for r in records} <= {(0, 0, 96, 64)} | {
        (b[0], b[1], b[2] - b[0], b[3] - b[1]) for b, _ in crop_boxes(64, 96, 1, 512 / 1500)}
    m = np.zeros((20, 20), bool)
    m[2:15, 2:15] = True
    m[6:8, 6:8] = False  # a 4-px hole
    m[18, 18] = True  # a 1-px island
    cleaned = remove_small_regions(m, 5)
    assert cleaned[6:8, 6:8].all() and not cleaned[18, 18] and cleaned[2:15, 2:15].all()
    np.testing.assert_allclose(point_grid(2), [[0.25, 0.25], [0.75, 0.25], [0.25, 0.75], [0.75, 0.75]])
    logits = np.array([[[2.0, 0.5], [-0.5, -2.0]]], np.float32)
    assert float(stability_score(logits, 0.0, 1.0)) == pytest.approx(1 / 3)


_MEMORY_SCRIPT = r"""
import resource, sys, tracemalloc, torch
sys.path.insert(0, {tests!r})
from conftest import TINY, randomize_
from efficientsam_zoo import EfficientSamSpec, build_efficient_sam
from efficientsam_zoo.automatic_mask_generator import AutomaticMaskGenerator
from efficientsam_zoo.data.synthetic import make_scene
torch.set_num_threads(1)
model = randomize_(build_efficient_sam(EfficientSamSpec(**{{**TINY, "img_size": 256}})), seed=2, scale=0.3)
image, _ = make_scene(0, 256, 256)
amg = AutomaticMaskGenerator(model, points_per_side=int(sys.argv[1]), points_per_batch=16, box_nms_thresh=1.0,
                             pred_iou_thresh=-1e9, stability_score_thresh=0.0)
tracemalloc.start()
records = amg.generate(image)
print(len(records), tracemalloc.get_traced_memory()[1], resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def test_peak_memory_does_not_grow_with_the_grid():
    tests = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # where conftest.py lives
    out = {}
    for side in (8, 32):
        r = subprocess.run([sys.executable, "-c", _MEMORY_SCRIPT.format(tests=tests), str(side)], capture_output=True,
                           text=True)
        assert r.returncode == 0, r.stderr[-2000:]
        n, py_peak, rss_kb = (int(v) for v in r.stdout.split()[-3:])
        out[side] = (n, py_peak, rss_kb)
    # 16x more points (and masks kept): a chunk of 16 full-resolution 256x256 masks is ~12 MB of logits,
    # the whole 32x32 grid would be ~800 MB; the peak must stay near the 8x8 run's
    assert out[32][0] > 4 * out[8][0]
    assert out[32][2] - out[8][2] < 120 * 1024, out
    assert out[32][1] < out[8][1] + 40 * 2**20, out  # Python-side peak (tracemalloc): RLE records only
