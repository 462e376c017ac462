"""Salient instance segmentation (paper Figure 6): clicks drawn from a saliency map instead of a person.

The paper takes U²-Net's saliency map, samples 3 points uniformly inside it and segments with those 3 clicks. Here:
the map (from any saliency model) is thresholded; each connected salient region gets ``num_points`` points drawn
uniformly inside it (seeded per region) and one single-mask prediction with those clicks. Records are SA-1B-style
(``segmentation`` as COCO RLE, ``area``, ``bbox`` x y w h, ``predicted_iou``, ``point_coords``) plus the region's
``salient_box``. A map made by a transformers model: ``integrations.hf.saliency.saliency_from_model``.
"""
from __future__ import annotations

from typing import Dict, List

import numpy as np

from .utils.masks import encode_rle, mask_to_xywh, sample_points_in_mask

__all__ = ["salient_regions", "segment_salient"]


def _check_map(saliency: np.ndarray) -> None:
    if saliency.ndim != 2:
        raise ValueError(f"a saliency map is one channel HxW, got shape {saliency.shape}")
    if not np.isfinite(saliency).all() or saliency.min() < 0 or saliency.max() > 1:
        raise ValueError("a saliency map must hold finite values on a 0..1 scale (divide 8-bit maps by 255)")


def salient_regions(saliency: np.ndarray, threshold: float = 0.5, min_area: int = 64) -> List[np.ndarray]:
    """Connected regions (8-connectivity) of ``saliency >= threshold`` (a map on a 0..1 scale) with at least
    ``min_area`` pixels, largest first."""
    import cv2

    _check_map(saliency)
    n, labels, stats, _ = cv2.connectedComponentsWithStats((saliency >= threshold).astype(np.uint8), connectivity=8)
    keep = sorted((i for i in range(1, n) if stats[i, cv2.CC_STAT_AREA] >= min_area),
                  key=lambda i: -stats[i, cv2.CC_STAT_AREA])
    return [labels == i for i in keep]


def segment_salient(predictor, image: np.ndarray, saliency: np.ndarray, threshold: float = 0.5,
                    num_points: int = 3, seed: int = 0, min_area: int = 64) -> List[Dict]:
    """One mask per salient region of ``saliency`` (HxW, 0..1, resized to the image if needed), each from
    ``num_points`` clicks drawn uniformly inside its region."""
    import torch
    import torch.nn.functional as F

    h, w = image.shape[:2]
    saliency = np.asarray(saliency, dtype=np.float32)
    _check_map(saliency)  # before resizing, which would hide an out-of-range map
    mh, mw = saliency.shape
    if abs(mh / mw - h / w) > 0.05 * (h / w):
        raise ValueError(f"the saliency map ({mw}x{mh}) does not have the image's aspect ratio ({w}x{h}); was it "
                         "made from another image, or rotated?")
    if saliency.shape != (h, w):
        saliency = F.interpolate(torch.as_tensor(saliency, dtype=torch.float32)[None, None], (h, w),
                                 mode="bilinear", align_corners=False)[0, 0].clamp(0, 1).numpy()
    regions = salient_regions(saliency, threshold, min_area)
    if not regions:
        raise ValueError(f"no salient region: no connected area of at least {min_area} px reaches the threshold "
                         f"{threshold} (map values {float(saliency.min()):.2f}..{float(saliency.max()):.2f}); lower "
                         "--threshold or --min-area")
    predictor.set_image(image)
    records = []
    for k, region in enumerate(regions):
        points = sample_points_in_mask(region, num_points, np.random.default_rng([seed, k]))
        masks, scores, _ = predictor.predict(points, np.ones(len(points), dtype=np.int64), multimask_output=False)
        mask = masks[0]
        records.append(dict(segmentation=encode_rle(mask), area=int(mask.sum()), bbox=mask_to_xywh(mask),
                            predicted_iou=float(scores[0]), point_coords=points.tolist(),
                            salient_box=mask_to_xywh(region)))
    return records
