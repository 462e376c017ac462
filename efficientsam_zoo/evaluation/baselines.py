"""What a model that learned nothing scores: the baselines every learning figure is shown beside.

* :func:`box_fill_segment_fn`: a box prompt's mask is the filled box (on shapes that fill most of their box this
  alone scores a high box mIoU, so a learned segmenter must beat it, not a fixed number);
* :func:`color_region_segment_fn`: a click's mask is the 4-connected region of similar colour around it (a flood
  fill: each pixel joins when it is within ``tolerance`` of a neighbour already in, on every channel) -- what an
  untrained click tool does; :func:`best_color_region_miou` takes the best tolerance on the scored data itself, an
  oracle-tuned (so the strongest) version of it;
* :func:`mean_box_detections`: a detector that puts, in every image, each class's mean training box (as a fraction of
  the image) with a filled-box mask -- chance-level detection AP;
* :func:`mean_feature_loss`: SAMI's reconstruction loss of a student that outputs the teacher's mean feature map.

The segment functions have the evaluations' interface (``evaluation.common.SegmentFn``), so the same protocol
(``evaluate_points``) scores a baseline and a model.
"""
from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

import numpy as np

from ..utils.masks import box_to_mask, encode_rle
from .common import SegmentFn, anns_of, image_infos, load_coco_like

__all__ = ["box_fill_segment_fn", "color_region_segment_fn", "COLOR_TOLERANCES", "best_color_region_miou",
           "color_region", "mean_box_detections", "mean_feature_loss"]

#: The flood-fill tolerances (0..255 per channel) the point baseline is tuned over.
COLOR_TOLERANCES = (4, 8, 12, 16, 24, 32, 48, 64)


def _as_outputs(masks) -> Tuple[np.ndarray, np.ndarray]:
    """One mask per query -> the segment functions' ``(masks [Q, 1, H, W], scores [Q, 1])``."""
    masks = np.stack(masks)[:, None]
    return masks, np.ones(masks.shape[:2], dtype=np.float32)


def box_fill_segment_fn() -> SegmentFn:
    """Each query's mask is the box its corner points (labels 2 / 3) span; a query without a box gets an empty mask."""
    def segment(image: np.ndarray, points: np.ndarray, labels: np.ndarray):
        h, w = image.shape[:2]
        out = []
        for pts, lbl in zip(points, labels):
            corners = pts[np.isin(lbl, (2, 3))]
            out.append(box_to_mask(np.concatenate([corners.min(0), corners.max(0)]), h, w) if len(corners) == 2
                       else np.zeros((h, w), dtype=bool))
        return _as_outputs(out)

    return segment


def color_region(image: np.ndarray, x: float, y: float, tolerance: int) -> np.ndarray:
    """The 4-connected region around pixel ``(x, y)`` whose neighbouring pixels differ by at most ``tolerance`` on
    every channel (OpenCV's floating-range flood fill), as a bool mask."""
    import cv2

    h, w = image.shape[:2]
    mask = np.zeros((h + 2, w + 2), np.uint8)
    rgb = np.ascontiguousarray(image[..., :3]).astype(np.uint8)
    cv2.floodFill(rgb, mask, (int(x), int(y)), (0, 0, 0), (tolerance,) * 3, (tolerance,) * 3,
                  flags=4 | cv2.FLOODFILL_MASK_ONLY | (1 << 8))
    return mask[1:-1, 1:-1].astype(bool)


def color_region_segment_fn(tolerance: int) -> SegmentFn:
    """Each query's mask is the colour region around its first foreground point (label 1)."""
    def segment(image: np.ndarray, points: np.ndarray, labels: np.ndarray):
        h, w = image.shape[:2]
        out = []
        for pts, lbl in zip(points, labels):
            fg = pts[lbl == 1]
            out.append(color_region(image, *fg[0], tolerance) if len(fg) else np.zeros((h, w), dtype=bool))
        return _as_outputs(out)

    return segment


def best_color_region_miou(ann_file: str, img_dir: str, prompt: str = "1pt", seed: int = 0,
                           tolerances: Sequence[int] = COLOR_TOLERANCES, **kwargs) -> Dict[str, float]:
    """``{"miou": best mIoU (0..1), "tolerance": its tolerance}`` of the colour-region baseline under the
    ``eval-points`` protocol (the same seeded clicks a model gets)."""
    from .point_eval import evaluate_points

    scores = {t: evaluate_points(color_region_segment_fn(t), ann_file, img_dir, prompt_types=(prompt,), seed=seed,
                                 progress=False, **kwargs)["summary"][prompt]["all"] / 100.0 for t in tolerances}
    best = max(scores, key=scores.get)
    return {"miou": scores[best], "tolerance": best}


def mean_box_detections(train_ann: str, heldout_ann: str) -> List[Dict]:
    """COCO results for every image of ``heldout_ann``: for each category of ``train_ann``, its mean box there (x, y,
    w, h as fractions of each image's width / height) scaled to the image, score 1, the filled box as its mask."""
    train, kind = load_coco_like(train_ann)
    size = {i["id"]: (i["width"], i["height"]) for i in image_infos(train, kind)}
    by_cat: Dict[int, List[np.ndarray]] = {}
    for info in image_infos(train, kind):
        w, h = size[info["id"]]
        for a in anns_of(train, kind, info["id"]):
            by_cat.setdefault(int(a["category_id"]), []).append(np.asarray(a["bbox"]) / (w, h, w, h))
    heldout, kind = load_coco_like(heldout_ann)
    out = []
    for info in image_infos(heldout, kind):
        w, h = info["width"], info["height"]
        for cat, boxes in sorted(by_cat.items()):
            x, y, bw, bh = (np.mean(boxes, axis=0) * (w, h, w, h)).tolist()
            mask = box_to_mask((x, y, x + bw - 1, y + bh - 1), h, w)
            out.append(dict(image_id=int(info["id"]), category_id=cat, bbox=[x, y, bw, bh], score=1.0,
                            segmentation=encode_rle(mask)))
    return out


def mean_feature_loss(train_targets, heldout_targets) -> float:
    """The MSE of predicting, for every held-out image, the mean of the training images' target maps (``[N, C, h, w]``
    tensors on the student's grid): the per-position variance a student must get below to have learned anything
    image-specific."""
    mean = train_targets.float().mean(0, keepdim=True)
    return float(((heldout_targets.float() - mean) ** 2).mean())
