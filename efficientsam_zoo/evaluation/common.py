"""Prompt sampling, mask / box helpers, RLE, and the segment-function interface shared by the evaluations.

A *segment function* answers all queries of one image at once:
``segment_fn(image HxWx3 uint8, points [Q,N,2] float (x, y) pixels, labels [Q,N] int) -> (masks [Q,M,H,W] bool,
scores [Q,M] float)``; :func:`predictor_segment_fn` makes one from an :class:`EfficientSamPredictor`
(one image embedding per image, all queries in one decoder batch).
"""
from __future__ import annotations

from typing import Callable, Tuple

import numpy as np
import torch

from ..data.coco import ann_to_mask, anns_of, image_infos, image_path, load_coco_like, lvis_numpy_compat  # noqa: F401
from ..utils.masks import sample_points_in_mask

__all__ = ["SegmentFn", "predictor_segment_fn", "sample_points_in_mask", "area_range", "AREA_RANGES", "image_path",
           "load_coco_like", "ann_to_mask", "image_infos", "anns_of"]

SegmentFn = Callable[[np.ndarray, np.ndarray, np.ndarray], Tuple[np.ndarray, np.ndarray]]
#: COCO's size buckets (pixels of the ground-truth mask area).
AREA_RANGES = {"small": (0, 32 ** 2), "medium": (32 ** 2, 96 ** 2), "large": (96 ** 2, float("inf"))}


def predictor_segment_fn(predictor, multimask_output: bool = True, chunk: int = 64) -> SegmentFn:
    """A segment function backed by an ``EfficientSamPredictor`` (queries in chunks of ``chunk``). Consecutive calls
    with the same image array (one per prompt type) reuse its embedding."""
    last = []

    def segment(image: np.ndarray, points: np.ndarray, labels: np.ndarray):
        if not last or last[0] is not image:
            predictor.set_image(image)
            last[:] = [image]
        masks, scores = [], []
        for i in range(0, len(points), chunk):
            m, s, _ = predictor.predict_torch(torch.as_tensor(points[i:i + chunk], dtype=torch.float32),
                                              torch.as_tensor(labels[i:i + chunk]), multimask_output=multimask_output)
            masks.append(m.cpu().numpy())
            scores.append(s.float().cpu().numpy())
        return np.concatenate(masks), np.concatenate(scores)

    return segment


def area_range(area: float) -> str:
    for name, (lo, hi) in AREA_RANGES.items():
        if lo <= area < hi:
            return name
    return "large"
