"""Segment everything's geometry and records against an independent implementation: segment-anything 1.0's own
``utils.amg`` (installed from PyPI as a test dependency), function by function, on generated masks and logits.

The HF mask-generation pipeline and ``AutomaticMaskGenerator`` share these functions, so a bug in one of them would
pass their equality test; here each is compared with SAM's code instead."""
import numpy as np
import pytest
import torch

amg_ref = pytest.importorskip("segment_anything.utils.amg", reason="segment-anything 1.0 (PyPI) is the reference")

from efficientsam_zoo.automatic_mask_generator import (box_nms, crop_boxes, masks_to_records,  # noqa: E402
                                                       point_grid, remove_small_regions, stability_score)
from efficientsam_zoo.data.synthetic import make_scene  # noqa: E402
from efficientsam_zoo.utils.masks import (compress_rle, decode_rle, encode_rle, masks_to_boxes,  # noqa: E402
                                          rle_area, uncompressed_rle)


def _masks(seed: int, n: int = 12, h: int = 37, w: int = 53) -> torch.Tensor:
    """Generated object masks, plus an empty and a full one, and masks touching each border."""
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < n - 2:
        _, masks = make_scene(int(rng.integers(1 << 30)), h, w, n_objects=3)
        out += masks
    out = out[:n - 2] + [np.zeros((h, w), bool), np.ones((h, w), bool)]
    out[0] = out[0].copy()
    out[0][0, :] = True  # the first row and the last column: runs that start / end the RLE
    out[1] = out[1].copy()
    out[1][:, -1] = True
    return torch.from_numpy(np.stack(out))


@pytest.mark.parametrize("n", [1, 2, 5, 16, 32])
def test_point_grid(n):
    np.testing.assert_array_equal(point_grid(n), amg_ref.build_point_grid(n))


@pytest.mark.parametrize("size,layers,overlap", [((480, 640), 1, 512 / 1500), ((640, 480), 2, 512 / 1500),
                                                 ((37, 53), 2, 0.25), ((1024, 1024), 3, 0.1)])
def test_crop_boxes(size, layers, overlap):
    ours = crop_boxes(size[0], size[1], layers, overlap)
    boxes, layer_idxs = amg_ref.generate_crop_boxes(size, layers, overlap)
    assert [list(b) for b, _ in ours] == boxes and [lay for _, lay in ours] == layer_idxs


@pytest.mark.parametrize("seed", [0, 1])
def test_uncompressed_rle_and_coco_rle(seed):
    masks = _masks(seed)
    ref = amg_ref.mask_to_rle_pytorch(masks)
    for m, r in zip(masks.numpy(), ref):
        assert uncompressed_rle(m) == r
        assert encode_rle(m) == {**amg_ref.coco_encode_rle(r), "counts": amg_ref.coco_encode_rle(r)["counts"]}
        np.testing.assert_array_equal(decode_rle(r), amg_ref.rle_to_mask(r))  # numpy, without pycocotools
        assert compress_rle(r) == encode_rle(m)  # SAM's coco_encode_rle, from the runs alone
        assert int(m.sum()) == amg_ref.area_from_rle(r) == rle_area(r)


@pytest.mark.parametrize("seed", [0, 1])
def test_boxes_of_masks(seed):
    masks = _masks(seed)
    np.testing.assert_array_equal(masks_to_boxes(masks.numpy()), amg_ref.batched_mask_to_box(masks).float().numpy())
    assert masks_to_boxes(np.zeros((0, 5, 7), bool)).shape == (0, 4)


@pytest.mark.parametrize("threshold,offset", [(0.0, 1.0), (0.5, 0.25)])
def test_stability_score(threshold, offset):
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 3, 40, 40, generator=g) * 3
    np.testing.assert_array_equal(stability_score(logits.numpy(), threshold, offset),
                                  amg_ref.calculate_stability_score(logits, threshold, offset).numpy())


@pytest.mark.parametrize("min_area", [1, 20, 200, 5000])
def test_remove_small_regions(min_area):
    """SAM fills small holes, then drops small islands, keeping the largest island if every one is small."""
    rng = np.random.default_rng(min_area)
    for m in _masks(3).numpy():
        noisy = m ^ (rng.random(m.shape) < 0.02)  # speckles: small holes and islands
        expected, _ = amg_ref.remove_small_regions(noisy, min_area, "holes")
        expected, _ = amg_ref.remove_small_regions(expected, min_area, "islands")
        np.testing.assert_array_equal(remove_small_regions(noisy, min_area), expected)


def test_records_drop_masks_cut_by_a_crops_inner_edge():
    """masks_to_records keeps SAM's rule: a mask whose box touches an inner crop edge (within SAM's 20 px) is
    dropped; one at the image's own border is kept."""
    full = (120, 160)
    crop = (40, 0, 120, 90)  # inner edges: left (x=40), right (x=120), bottom (y=90)
    masks = torch.zeros(6, 90, 80, dtype=torch.bool)
    masks[0, 30:50, 30:50] = True  # well inside
    masks[1, 30:50, 0:10] = True  # at the inner left edge
    masks[2, 30:50, 10:25] = True  # 10 px from it: SAM's 20 px tolerance drops it too
    masks[3, 0:15, 30:50] = True  # at the image's top border: kept
    masks[4, 70:90, 30:50] = True  # at the inner bottom edge
    masks[5, 30:50, 55:79] = True  # 1 px from the inner right edge
    logits = masks.float() * 20 - 10
    records = masks_to_records(logits.numpy(), np.full(6, 0.9), crop, full, 0.0, 0.0, 1.0)
    kept = {tuple(r["bbox"]) for r in records}
    local = amg_ref.batched_mask_to_box(masks)  # SAM takes boxes in crop pixels and uncrops them itself
    near = amg_ref.is_box_near_crop_edge(local, list(crop), [0, 0, full[1], full[0]])
    boxes = amg_ref.uncrop_boxes_xyxy(local, list(crop))
    expected = {(int(b[0]), int(b[1]), int(b[2] - b[0] + 1), int(b[3] - b[1] + 1)) for b, n in zip(boxes, near) if not n}
    assert kept == expected and len(expected) == 2


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_box_nms_equals_torchvision(seed):
    """The numpy box NMS keeps what torchvision's ``nms`` keeps (SAM's ``batched_nms`` with one category), in the
    same order: random overlapping boxes with distinct scores, and tied scores (1 / crop area, as across crops)."""
    from torchvision.ops import nms

    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(200, 2, generator=g) * 80
    boxes = torch.cat([xy, xy + 5 + torch.rand(200, 2, generator=g) * 30], 1).round()  # integer corners, as masks'
    for scores in (torch.rand(200, generator=g), 1.0 / torch.randint(1, 4, (200,), generator=g).float() ** 2):
        for thresh in (0.3, 0.7):
            expected = nms(boxes, scores, thresh).numpy()
            ours = box_nms(boxes.numpy(), scores.numpy(), thresh)
            assert 0 < len(ours) < len(boxes)
            np.testing.assert_array_equal(ours, expected)
