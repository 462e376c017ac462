"""Video object segmentation scores as DAVIS defines them (Pont-Tuset et al., 2017; the ``davis2017-evaluation``
code): J, the region similarity (IoU), and F, the boundary F-measure, per object and frame; J&F is their mean.

* ``J``: ``|P & G| / |P | G|``, and 1 when both masks are empty.
* ``F``: both masks' one-pixel boundaries (DAVIS's ``seg2bmap``: a pixel differs from its right, lower or lower-right
  neighbour), each dilated by a disk of radius ``ceil(0.008 * image diagonal)``; precision is the share of predicted
  boundary pixels within that distance of the true boundary, recall the reverse; F = 2PR / (P + R). An empty
  prediction of an empty object scores 1, an empty prediction of a present object 0 (and vice versa).

A video's J (F) of an object is the mean over its frames after the one it is prompted on and before the last
(``davis2017-evaluation`` drops the first and the last: ``masks[:, 1:-1]``);
the dataset's J is the mean over every (video, object) row, and J&F the mean of J and F. ``davisinteractive`` (its
metrics are these) builds from source only (Cython), so this module writes the definitions out; the tests check them
against hand-counted masks.
"""
from __future__ import annotations

import math
from typing import Dict, List

import numpy as np

from ..utils.masks import mask_iou

__all__ = ["jaccard", "boundary_map", "f_measure", "score_video", "first_appearances", "summarize", "BOUND_TH"]

#: DAVIS's boundary tolerance: a fraction of the image diagonal.
BOUND_TH = 0.008


def jaccard(pred: np.ndarray, gt: np.ndarray) -> float:
    """Region similarity J of two boolean masks (1 when both are empty: ``utils.masks.mask_iou``)."""
    return mask_iou(pred.astype(bool), gt.astype(bool))


def boundary_map(mask: np.ndarray) -> np.ndarray:
    """DAVIS's ``seg2bmap`` at the mask's own size: pixels whose right, lower or lower-right neighbour differs."""
    seg = mask.astype(bool)
    east, south, southeast = np.zeros_like(seg), np.zeros_like(seg), np.zeros_like(seg)
    east[:, :-1], south[:-1, :], southeast[:-1, :-1] = seg[:, 1:], seg[1:, :], seg[1:, 1:]
    b = (seg ^ east) | (seg ^ south) | (seg ^ southeast)
    b[-1, :] = seg[-1, :] ^ east[-1, :]
    b[:, -1] = seg[:, -1] ^ south[:, -1]
    b[-1, -1] = False
    return b


def _disk(radius: int) -> np.ndarray:
    yy, xx = np.mgrid[-radius:radius + 1, -radius:radius + 1]
    return (xx ** 2 + yy ** 2) <= radius ** 2


def _dilate(mask: np.ndarray, disk: np.ndarray) -> np.ndarray:
    """Binary dilation of ``mask`` by the structuring element ``disk`` (odd square, centred), zero outside."""
    r = disk.shape[0] // 2
    padded = np.pad(mask, r)
    out = np.zeros_like(mask)
    h, w = mask.shape
    for dy, dx in np.argwhere(disk):
        out |= padded[dy:dy + h, dx:dx + w]
    return out


def f_measure(pred: np.ndarray, gt: np.ndarray, bound_th: float = BOUND_TH) -> float:
    """Boundary F-measure of two boolean masks of one size (DAVIS's ``f_measure``)."""
    radius = bound_th if bound_th >= 1 else math.ceil(bound_th * math.hypot(*pred.shape))
    fg, gb = boundary_map(pred), boundary_map(gt)
    n_fg, n_gt = int(fg.sum()), int(gb.sum())
    if n_fg == 0 or n_gt == 0:
        return 1.0 if n_fg == n_gt else 0.0
    disk = _disk(int(radius))
    precision = np.count_nonzero(fg & _dilate(gb, disk)) / n_fg
    recall = np.count_nonzero(gb & _dilate(fg, disk)) / n_gt
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def score_video(pred: np.ndarray, gt: np.ndarray, first_frames: Dict[int, int]) -> List[Dict]:
    """Per-object rows of one video: ``pred`` / ``gt`` ``[T, H, W]`` instance-id maps (0 background);
    ``first_frames`` maps each object to the frame it was prompted on. An object is scored on the frames after that one
    and before the last (all after it when that leaves none; DAVIS's protocol for objects of the first frame, applied
    to each object from its own first frame); an object prompted on the last frame has nothing to score and no row.
    Returns ``{"object", "J", "F", "J&F", "frames"}`` per object."""
    if pred.shape != gt.shape:
        raise ValueError(f"predicted masks {pred.shape} and ground truth {gt.shape} differ in size; predictions must "
                         "be laid out like the annotations (one PNG per annotated frame, at the frame's size)")
    rows = []
    for obj, first in sorted(first_frames.items()):
        frames = range(first + 1, max(gt.shape[0] - 1, first + 2))
        if len(frames) == 0 or frames[-1] >= gt.shape[0]:
            continue
        j = [jaccard(pred[t] == obj, gt[t] == obj) for t in frames]
        f = [f_measure(pred[t] == obj, gt[t] == obj) for t in frames]
        jm, fm = float(np.mean(j)), float(np.mean(f))
        rows.append({"object": int(obj), "J": jm, "F": fm, "J&F": (jm + fm) / 2, "frames": len(j)})
    return rows


def first_appearances(gt: np.ndarray) -> Dict[int, int]:
    """``{object id: index of the first frame of gt [T, H, W] it is in}`` (0 and DAVIS's void 255 are not objects)."""
    out: Dict[int, int] = {}
    for t, ids in enumerate(gt):
        for k in np.unique(ids):
            if 0 < k < 255 and int(k) not in out:
                out[int(k)] = t
    return out


def summarize(rows_by_video: Dict[str, List[Dict]]) -> Dict:
    """The dataset's scores from per-video rows (``score_video``): ``J``, ``F`` and ``J&F`` as the mean over every
    (video, object) row, plus ``videos`` (per-video means) and ``rows``."""
    rows = [dict(r, video=v) for v, rs in rows_by_video.items() for r in rs]
    if not rows:
        raise ValueError("nothing to score: no video has an annotated object")
    j = float(np.mean([r["J"] for r in rows]))
    f = float(np.mean([r["F"] for r in rows]))
    videos = {v: {k: float(np.mean([r[k] for r in rs])) for k in ("J", "F", "J&F")}
              for v, rs in rows_by_video.items() if rs}
    return {"J&F": (j + f) / 2, "J": j, "F": f, "videos": videos, "rows": rows}
