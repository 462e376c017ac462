"""Prompt sampling, mask / box helpers, RLE, and the segment-function interface shared by the evaluations.

A *segment function* answers all queries of one image at once:
``segment_fn(image HxWx3 uint8, points [Q,N,2] float (x, y) pixels, labels [Q,N] int) -> (masks [Q,M,H,W] bool,
scores [Q,M] float)``; :func:`predictor_segment_fn` makes one from an :class:`EfficientSamPredictor`
(one image embedding per image, all queries in one decoder batch).
"""
from __future__ import annotations

import json
import os
from typing import Callable, Dict, List, Tuple

import numpy as np
import torch

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


def lvis_numpy_compat() -> None:
    """lvis 0.5.3 (the latest release) still uses ``np.float``, removed in NumPy 1.24; give it back the alias."""
    if "float" not in np.__dict__:
        np.float = float  # type: ignore[attr-defined]


def load_coco_like(ann_file: str):
    """``(api, kind)`` for a COCO or LVIS annotation file (LVIS through the ``lvis`` package)."""
    if not os.path.isfile(ann_file):
        raise FileNotFoundError(f"annotation file {ann_file!r} does not exist (a COCO / LVIS instances JSON)")
    try:
        with open(ann_file) as f:
            head = json.load(f)
    except ValueError as exc:
        raise ValueError(f"annotation file {ann_file!r} is not valid JSON ({exc})") from exc
    is_lvis = any("frequency" in c for c in head.get("categories", [])[:5])
    if is_lvis:
        from lvis import LVIS

        lvis_numpy_compat()
        return LVIS(ann_file), "lvis"
    from pycocotools.coco import COCO

    return COCO(ann_file), "coco"


def image_path(img_dir: str, info: Dict) -> str:
    """The file of a COCO / LVIS ``images`` entry: its ``file_name``, or the last part of LVIS's ``coco_url``."""
    name = info.get("file_name") or os.path.basename(info["coco_url"])
    return os.path.join(img_dir, name)


def ann_to_mask(api, ann: Dict) -> np.ndarray:
    return api.ann_to_mask(ann).astype(bool) if hasattr(api, "ann_to_mask") else api.annToMask(ann).astype(bool)


def image_infos(api, kind: str) -> List[Dict]:
    if kind == "lvis":
        return api.load_imgs(sorted(api.get_img_ids()))
    return api.loadImgs(sorted(api.getImgIds()))


def anns_of(api, kind: str, image_id: int) -> List[Dict]:
    if kind == "lvis":
        return api.load_anns(api.get_ann_ids(img_ids=[image_id]))
    return api.loadAnns(api.getAnnIds(imgIds=[image_id], iscrowd=False))
