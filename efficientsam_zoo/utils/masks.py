"""Masks, boxes and COCO run-length encoding, shared by the evaluations, segment-everything and the datasets.

Boxes are (x0, y0, x1, y1) in pixel indices with x1, y1 inclusive unless said otherwise; masks are boolean
``HxW`` arrays; RLE is pycocotools' compressed form with ``counts`` as a string (JSON-ready).
"""
from __future__ import annotations

from typing import Dict, List

import numpy as np

from .image import as_numpy

__all__ = ["sample_points_in_mask", "mask_to_box", "mask_to_xywh", "box_to_mask", "mask_iou", "encode_rle", "uncompressed_rle", "decode_rle", "rle_area",
           "compress_rle", "masks_to_boxes", "small_regions", "instance_ids"]


def sample_points_in_mask(mask: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` pixels drawn uniformly (without replacement where possible) from a boolean mask, as (x, y)."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        raise ValueError("cannot sample points from an empty mask")
    idx = rng.choice(len(xs), size=n, replace=len(xs) < n)
    return np.stack([xs[idx], ys[idx]], axis=1).astype(np.float32)


def mask_to_box(mask: np.ndarray) -> np.ndarray:
    """Tightest box (x0, y0, x1, y1) of a mask, in pixel indices (x1, y1 inclusive, as SAM's evaluation)."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        raise ValueError("empty mask has no box")
    return np.array([xs.min(), ys.min(), xs.max(), ys.max()], dtype=np.float32)


def mask_to_xywh(mask: np.ndarray) -> List[int]:
    """COCO's box ``[x, y, w, h]`` of a mask, ``w`` / ``h`` counting pixels; ``[0, 0, 0, 0]`` for an empty mask."""
    if not np.any(mask):
        return [0, 0, 0, 0]
    x0, y0, x1, y1 = (int(v) for v in mask_to_box(mask))
    return [x0, y0, x1 - x0 + 1, y1 - y0 + 1]


def box_to_mask(box, height: int, width: int) -> np.ndarray:
    """The filled box as a mask (pixels whose index lies in [x0, x1] x [y0, y1])."""
    x0, y0, x1, y1 = box
    mask = np.zeros((height, width), dtype=bool)
    mask[max(0, int(np.floor(y0))):int(np.floor(y1)) + 1, max(0, int(np.floor(x0))):int(np.floor(x1)) + 1] = True
    return mask


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def instance_ids(obj_ids, masks) -> np.ndarray:
    """Per-object boolean masks (``[N, H, W]``, object ``obj_ids[i]`` in ``masks[i]``) -> one ``uint16`` map of
    object ids (0 = background); where masks overlap, the earlier object keeps the pixel."""
    masks = np.asarray(masks, dtype=bool)
    ids = np.zeros(masks.shape[1:], np.uint16)
    for obj, mask in zip(obj_ids, masks):
        ids[mask & (ids == 0)] = int(obj)
    return ids


def encode_rle(mask: np.ndarray) -> Dict:
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle["counts"] = rle["counts"].decode("ascii")
    return rle


def uncompressed_rle(mask: np.ndarray, compact: bool = False) -> Dict:
    """segment-anything's uncompressed RLE: ``{"size": [h, w], "counts": [run lengths]}`` over the column-major
    (Fortran-order) pixels, starting with a run of zeros (possibly empty). ``compact``: ``counts`` as a numpy array
    instead of a list, uint16 where every run fits (2 bytes a run against a list's 36, for masks kept by the
    thousand); every function here reads both."""
    flat = np.asarray(mask, dtype=bool).ravel(order="F")
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    counts = np.diff(bounds).astype(np.int32)
    if flat.size and flat[0]:
        counts = np.concatenate([np.zeros(1, np.int32), counts])
    if compact and counts.size and counts.max() < 2**16:
        counts = counts.astype(np.uint16)
    return {"size": list(mask.shape), "counts": counts if compact else counts.tolist()}


def _pycocotools_rle(rle: Dict) -> Dict:
    """A JSON RLE (compressed ``counts`` as str, or uncompressed as a list) in the form pycocotools takes."""
    from pycocotools import mask as mask_utils

    rle = dict(rle)
    if isinstance(rle["counts"], np.ndarray):
        rle["counts"] = rle["counts"].tolist()
    if isinstance(rle["counts"], list):  # uncompressed RLE
        rle = mask_utils.frPyObjects(rle, *rle["size"])
    elif isinstance(rle["counts"], str):
        rle["counts"] = rle["counts"].encode("ascii")
    return rle


def decode_rle(rle: Dict) -> np.ndarray:
    """An RLE -> its boolean mask: compressed (``counts`` a string) through pycocotools, uncompressed (``counts`` a
    list or array, segment-anything's) with numpy alone."""
    if isinstance(rle["counts"], (list, np.ndarray)):
        values = np.arange(len(rle["counts"])) % 2 == 1  # runs alternate, zeros first
        return np.repeat(values, rle["counts"]).reshape(rle["size"], order="F")
    from pycocotools import mask as mask_utils

    return mask_utils.decode(_pycocotools_rle(rle)).astype(bool)


def compress_rle(rle: Dict) -> Dict:
    """An uncompressed RLE -> pycocotools' compressed form, ``counts`` as a string (segment-anything's
    ``coco_encode_rle``), without decoding the mask."""
    out = _pycocotools_rle(rle)
    return {"size": list(out["size"]), "counts": out["counts"].decode("ascii")}


def rle_area(rle: Dict) -> int:
    """The pixel count of an RLE mask, without decoding it."""
    if isinstance(rle["counts"], (list, np.ndarray)):
        return int(np.sum(rle["counts"][1::2], dtype=np.int64))
    from pycocotools import mask as mask_utils

    return int(mask_utils.area(_pycocotools_rle(rle)))


def masks_to_boxes(masks: np.ndarray) -> np.ndarray:
    """float32 xyxy boxes ``[N, 4]`` of boolean masks ``[N, H, W]`` (inclusive max; zeros for an empty mask), as
    segment-anything's ``batched_mask_to_box``."""
    masks = np.asarray(as_numpy(masks), dtype=bool)
    n, h, w = masks.shape
    cols, rows = masks.any(1), masks.any(2)
    x0 = np.where(cols, np.arange(w), w).min(1, initial=w)
    x1 = np.where(cols, np.arange(w), -1).max(1, initial=-1)
    y0 = np.where(rows, np.arange(h), h).min(1, initial=h)
    y1 = np.where(rows, np.arange(h), -1).max(1, initial=-1)
    box = np.stack([x0, y0, x1, y1], 1).astype(np.float32).reshape(n, 4)
    return np.where(cols.any(1, keepdims=True), box, np.float32(0))


def small_regions(scores: "torch.Tensor", max_area: float, threshold: float = 0.0,  # noqa: F821
                  foreground: bool = False) -> "torch.Tensor":  # noqa: F821
    """Bool ``[..., H, W]`` on ``scores``' device: the pixels of the 8-connected regions of at most ``max_area`` pixels
    in the background (``scores <= threshold``; SAM 2's holes) or, with ``foreground``, in the mask (its sprinkles).
    SAM 2 finds them with a CUDA kernel; this runs OpenCV's labelling on the CPU, so it works on every device."""
    import cv2
    import torch

    side = (scores > threshold) if foreground else (scores <= threshold)
    planes = side.detach().cpu().numpy().astype(np.uint8).reshape(-1, *scores.shape[-2:])
    out = np.zeros(planes.shape, bool)
    for i, plane in enumerate(planes):
        _, labels, stats, _ = cv2.connectedComponentsWithStats(plane, connectivity=8)
        small = stats[:, cv2.CC_STAT_AREA] <= max_area
        small[0] = False  # label 0 is the other side
        out[i] = small[labels]
    return torch.from_numpy(out.reshape(scores.shape)).to(scores.device)
