"""Overlay pictures of masks and prompts."""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from .utils.image import to_uint8

__all__ = ["overlay_masks", "overlay_ids", "PALETTE"]

PALETTE = np.array([[30, 144, 255], [255, 99, 71], [50, 205, 50], [255, 215, 0], [186, 85, 211],
                    [0, 206, 209], [255, 140, 0], [199, 21, 133]], dtype=np.float32)


def overlay_masks(image: np.ndarray, masks: Sequence[np.ndarray], alpha: float = 0.5,
                  points: Optional[np.ndarray] = None, labels: Optional[np.ndarray] = None,
                  boxes: Optional[np.ndarray] = None) -> np.ndarray:
    """Blend boolean masks (each ``HxW``) over an ``HxWx3`` image (uint8, uint16 or 0..1 float); draw prompts on
    top. Returns uint8."""
    from PIL import Image, ImageDraw

    out = to_uint8(image).astype(np.float32)
    for i, mask in enumerate(masks):
        m = np.asarray(mask, dtype=bool)
        if m.shape != out.shape[:2]:
            raise ValueError(f"mask {i} has shape {m.shape}, image is {out.shape[:2]}")
        color = PALETTE[i % len(PALETTE)]
        out[m] = (1 - alpha) * out[m] + alpha * color
    pic = Image.fromarray(out.clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(pic)
    r = max(3, round(min(out.shape[:2]) / 80))
    if points is not None:
        for k, (x, y) in enumerate(np.asarray(points, dtype=float).reshape(-1, 2)):
            fill = (0, 255, 0) if labels is None or int(np.asarray(labels).reshape(-1)[k]) == 1 else (255, 0, 0)
            draw.ellipse([x - r, y - r, x + r, y + r], fill=fill, outline=(255, 255, 255))
    if boxes is not None:
        for x0, y0, x1, y1 in np.asarray(boxes, dtype=float).reshape(-1, 4):
            draw.rectangle([x0, y0, x1, y1], outline=(0, 255, 0), width=max(1, r // 2))
    return np.asarray(pic)


def overlay_ids(image: np.ndarray, ids: np.ndarray, alpha: float = 0.5, points: Optional[np.ndarray] = None,
                labels: Optional[np.ndarray] = None) -> np.ndarray:
    """:func:`overlay_masks` for an object-id map (0 = background): object ``k`` always gets ``PALETTE[k - 1]``, so
    an object keeps its colour from frame to frame."""
    out = to_uint8(image).astype(np.float32)
    for k in np.unique(ids[ids > 0]):  # only the ids present
        m = ids == k
        out[m] = (1 - alpha) * out[m] + alpha * PALETTE[(int(k) - 1) % len(PALETTE)]
    return overlay_masks(out.clip(0, 255).astype(np.uint8), [], alpha, points, labels)  # the clicks on top
