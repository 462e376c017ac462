"""Interactive segmentation scored the way the field scores it: mIoU after k clicks and NoC@85 / NoC@90 (RITM's
protocol, also SimpleClick's and SAM's interactive evaluation).

For every instance the clicker places click after click where the prediction is most wrong: in the error region (the
missed object pixels, or the false-alarm pixels) whose interior is deepest -- the largest distance to the region's
boundary, the image border counting as boundary -- positive when the missed region is the deeper one, negative
otherwise (the first click is positive, at the object's deepest pixel). Each click is answered with every click so far
(the latest ``decoder_max_num_input_points`` when there are more) and, for a model with mask prompts, the previous
round's logits as the mask prompt; the most confident of the multimask outputs is the prediction. ``NoC@t`` is the
first click count whose IoU reaches ``t``, or ``max_clicks`` when none does; ``mIoU@k`` the mean IoU after ``k``
clicks. Negative clicks need a model that has them (``EfficientSam.negative_points``).
"""
from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import torch
from tqdm import tqdm

from ..data.instances import InstanceSource
from ..modeling.prompt_encoder import NO_NEGATIVES
from ..utils.masks import mask_iou

__all__ = ["next_click", "evaluate_clicks", "NOC_THRESHOLDS"]

NOC_THRESHOLDS = (0.85, 0.90)


def _deepest(region: np.ndarray) -> Tuple[float, Tuple[int, int]]:
    """``(distance, (x, y))`` of the region's pixel farthest from its boundary (the image border counts as one)."""
    import cv2

    if not region.any():
        return 0.0, (0, 0)
    padded = np.pad(region.astype(np.uint8), 1)
    dist = cv2.distanceTransform(padded, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)  # the first (row-major) of the deepest pixels
    return float(dist[y, x]), (int(x), int(y))


def next_click(pred: np.ndarray, gt: np.ndarray, clicked: Optional[np.ndarray] = None) -> Tuple[int, int, bool]:
    """``(x, y, positive)`` of the next click (module docstring); ``clicked`` marks pixels already clicked."""
    free = np.ones_like(gt, dtype=bool) if clicked is None else ~clicked
    missed, extra = gt & ~pred & free, pred & ~gt & free
    d_missed, p_missed = _deepest(missed)
    d_extra, p_extra = _deepest(extra)
    return (*p_missed, True) if d_missed > d_extra else (*p_extra, False)


def evaluate_clicks(predictor, source: InstanceSource, max_clicks: int = 20, report_clicks: int = 5,
                    thresholds: Sequence[float] = NOC_THRESHOLDS, num_instances: Optional[int] = None,
                    progress: bool = True) -> Dict:
    """The protocol on every instance of ``source`` with an ``EfficientSamPredictor``: ``{"miou_at_clicks": [mIoU
    after 1 .. report_clicks clicks], "noc": {"85": ..., "90": ...}, "n": instances, "max_clicks": max_clicks}``."""
    model = predictor.model
    if not model.negative_points:
        raise ValueError(f"the interactive protocol places negative clicks: {NO_NEGATIVES}")
    ious_at, nocs, n = [], {t: [] for t in thresholds}, 0
    for i in tqdm(range(len(source)), desc="images", disable=not progress):
        item = source.load(i)
        if not item.masks:
            continue
        predictor.set_image(item.image)
        for gt in item.masks:
            curve = _clicks(predictor, gt, max_clicks, report_clicks, max(thresholds))
            ious_at.append(curve[:report_clicks] + [curve[-1]] * (report_clicks - len(curve)))
            for t in thresholds:
                nocs[t].append(next((k + 1 for k, v in enumerate(curve) if v >= t), max_clicks))
            n += 1
            if num_instances is not None and n >= num_instances:
                break
        if num_instances is not None and n >= num_instances:
            break
    if not n:
        raise ValueError(f"{source.name}: no instance to evaluate")
    return {"miou_at_clicks": np.mean(ious_at, axis=0).tolist(), "n": n, "max_clicks": max_clicks,
            "noc": {f"{round(100 * t)}": float(np.mean(v)) for t, v in nocs.items()}}


@torch.inference_mode()
def _clicks(predictor, gt: np.ndarray, max_clicks: int, report_clicks: int, stop_at: float):
    """IoU after each click, until ``stop_at`` is reached and at least ``report_clicks`` were made (or
    ``max_clicks``)."""
    model = predictor.model
    cap = model.decoder_max_num_input_points
    pred = np.zeros_like(gt)
    clicked = np.zeros_like(gt)
    points, labels, curve, logits = [], [], [], None
    for k in range(max_clicks):
        x, y, positive = next_click(pred, gt, clicked)
        clicked[y, x] = True
        points.append([x, y])
        labels.append(1 if positive else 0)
        low, scores = predictor.decode(*predictor.check_prompts(np.array([points[-cap:]], dtype=np.float32),
                                                                np.array([labels[-cap:]]), None),
                                       mask_input=None if logits is None else logits)
        best = int(scores[0].argmax())
        if model.mask_prompts:
            logits = low[:, best:best + 1].float().cpu()
        pred = (predictor.upscale(low[:, best:best + 1]) > model.mask_threshold)[0, 0].cpu().numpy()
        curve.append(mask_iou(pred, gt))
        if curve[-1] >= stop_at and k + 1 >= report_clicks:
            break
    return curve
