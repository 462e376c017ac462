"""Video object segmentation training, framework-free: SAM 2's simulated interaction on a clip and its losses.

The arithmetic of SAM 2's ``training/model/sam2.py`` (``SAM2Train.prepare_prompt_inputs``, ``_iter_correct_pt_sampling``)
and ``training/loss_fns.py`` (``MultiStepMultiMasksAndIous``), written for one video at a time:

* :func:`plan_clip`: which frames are prompted and how. With probability ``prob_point`` the clip gets clicks or boxes,
  else the initial conditioning frames get the ground-truth masks as mask prompts; 1..``num_init_cond_frames`` initial conditioning frames
  (frame 0 always); with clicks, up to ``num_frames_to_correct`` frames receive ``num_correction_points`` correction
  clicks each. A one-frame clip (an image dataset) always takes clicks on its only frame.
* :func:`first_prompts`: noisy boxes (probability ``prob_box``; SAM 2's ``sample_box_points``) or one click per object
  drawn uniformly from its mask; :func:`correction_points`: one click per object drawn uniformly from the error region
  (label 1 from missed pixels, 0 from false positives; from the ground truth itself with ``prob_from_gt``). Points
  are pixel indices ``(x, y)`` in the model's input frame, as SAM 2's samplers return them.
* :func:`step_losses`: for one decoding step of a frame, ``20 * focal + dice`` of the best of the ``M`` candidate
  masks, the L1 error of every candidate's predicted IoU, and the object-score BCE; the mask terms are zero for an
  object absent from the frame. :func:`clip_loss` sums them over steps and frames and divides by the video's number of
  objects (SAM 2 divides by the mean number of objects per GPU, all-reduced: with one video per GPU, its recipe, the
  two agree when the GPUs' clips hold as many objects, e.g. the maximum of 3).

Randomness comes from a ``torch.Generator`` per video (so a step is the same in one process or split across
several, and after a resume).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Sequence, Tuple

import torch
import torch.nn.functional as F

from ..utils.masks import masks_to_boxes
from .sam_finetune import FOCAL_WEIGHT, focal_and_dice, noisy_box, random_pixel

__all__ = ["ClipPlan", "plan_clip", "first_prompts", "correction_points", "step_losses", "clip_loss",
           "LOSS_WEIGHTS", "NO_OBJECT_LOGIT"]

#: SAM 2's ``weight_dict`` (sam2.1 training yaml): focal (SAM's 20), dice, IoU (L1), object score.
LOSS_WEIGHTS = {"loss_mask": FOCAL_WEIGHT, "loss_dice": 1.0, "loss_iou": 1.0, "loss_class": 1.0}
#: The mask logit SAM 2 writes where the object score says "absent" (``NO_OBJ_SCORE``).
NO_OBJECT_LOGIT = -1024.0


def _uniform(n: int, generator: torch.Generator) -> int:
    return int(torch.randint(n, (1,), generator=generator))


def _chance(p: float, generator: torch.Generator) -> bool:
    return float(torch.rand(1, generator=generator)) < p


@dataclass
class ClipPlan:
    """The prompts of one clip: ``use_points`` (else the initial frames take the ground-truth masks), the initial conditioning
    frames (prompted, decoded without memory), the frames that receive correction clicks, and the processing order
    (initial frames first, then the rest in time order, as SAM 2's ``forward_tracking``)."""

    use_points: bool
    init_frames: List[int]
    correct_frames: List[int] = field(default_factory=list)

    def order(self, num_frames: int) -> List[int]:
        return self.init_frames + [t for t in range(num_frames) if t not in self.init_frames]


def plan_clip(num_frames: int, generator: torch.Generator, prob_point: float = 0.5, num_init_cond_frames: int = 2,
              num_frames_to_correct: int = 2) -> ClipPlan:
    """SAM 2's ``prepare_prompt_inputs`` (random initial and correction frame counts, as its sam2.1 recipe sets)."""
    if num_frames < 1:
        raise ValueError(f"a clip needs at least one frame, got {num_frames}")
    if num_frames_to_correct < num_init_cond_frames:  # SAM 2 asserts this too: every clicked initial frame is corrected
        raise ValueError(f"num_frames_to_correct ({num_frames_to_correct}) must be >= num_init_cond_frames "
                         f"({num_init_cond_frames})")
    if num_frames == 1:  # an image as a one-frame video: clicks on its frame, corrected
        return ClipPlan(True, [0], [0])
    use_points = _chance(prob_point, generator)
    n_init = 1 + _uniform(min(num_init_cond_frames, num_frames), generator)
    others = torch.randperm(num_frames - 1, generator=generator)[:n_init - 1] + 1
    init = [0] + sorted(int(t) for t in others)
    if not use_points:
        return ClipPlan(False, init, [])
    n_corr = n_init + _uniform(max(num_frames_to_correct, n_init) - n_init + 1, generator)
    rest = [t for t in range(num_frames) if t not in init]
    extra = [rest[int(i)] for i in torch.randperm(len(rest), generator=generator)[:n_corr - n_init]]
    return ClipPlan(True, init, sorted(init + extra))


def _pixel_xy(mask: torch.Tensor, generator: torch.Generator):
    """A pixel of ``mask`` drawn uniformly, as ``(x, y)`` pixel indices (SAM 2's point frame: the prompt encoder
    adds the half pixel), or ``None`` for an empty mask."""
    pixel = random_pixel(mask, generator)
    return None if pixel is None else (int(pixel[1]), int(pixel[0]))


def first_prompts(masks: torch.Tensor, generator: torch.Generator, prob_box: float = 0.5, box_noise: float = 0.1,
                  box_noise_bound: float = 20.0) -> Tuple[torch.Tensor, torch.Tensor]:
    """Prompts of an initial conditioning frame for ``K`` masks ``[K, H, W]`` (bool): with probability ``prob_box``
    (one draw for the frame) boxes, as corners ``points [K, 2, 2]`` labelled 2 / 3, the tight boxes jittered by up
    to ``box_noise`` of their side (at most ``box_noise_bound`` px) and clamped to the image; else one click per
    object, ``points [K, 1, 2]`` labelled 1, drawn uniformly from its mask (a background click labelled 0 for an
    empty mask)."""
    k, h, w = masks.shape
    if not _chance(prob_box, generator):
        return correction_points(torch.zeros_like(masks), masks, generator, prob_from_gt=0.0)
    points = torch.zeros(k, 2, 2)
    for i, tight in enumerate(torch.from_numpy(masks_to_boxes(masks.cpu().numpy()))):
        if not masks[i].any():  # no box and no draw
            continue
        box = noisy_box(tight, generator, box_noise, box_noise_bound)
        box[0::2], box[1::2] = box[0::2].clamp(0, w - 1), box[1::2].clamp(0, h - 1)
        points[i] = box.view(2, 2)
    return points, torch.tensor([[2, 3]]).expand(k, 2).clone()


def correction_points(pred: torch.Tensor, gt: torch.Tensor, generator: torch.Generator, prob_from_gt: float = 0.1
                      ) -> Tuple[torch.Tensor, torch.Tensor]:
    """One correction click per object (SAM 2's ``sample_random_points_from_errors``): ``pred`` / ``gt`` ``[K, H, W]``
    bool -> ``points [K, 1, 2]``, ``labels [K, 1]``: a pixel drawn uniformly from the false negatives (label 1) and
    false positives (label 0) together, or from the background (label 0) when the prediction is exact; with
    ``prob_from_gt`` (one draw per call) the prediction is ignored, so the click lands anywhere on the object."""
    k = gt.shape[0]
    points = torch.zeros(k, 1, 2)
    labels = torch.zeros(k, 1, dtype=torch.long)
    if _chance(prob_from_gt, generator):
        pred = torch.zeros_like(pred)
    for i in range(k):
        fn, fp = gt[i] & ~pred[i], pred[i] & ~gt[i]
        if not bool(fn.any() or fp.any()):
            fp = ~gt[i]
        xy = _pixel_xy(fn | fp, generator)
        if xy is not None:
            points[i, 0] = torch.tensor(xy, dtype=torch.float32)
            labels[i, 0] = int(bool(fn[xy[1], xy[0]]))
    return points, labels


def step_losses(multimask_logits: torch.Tensor, iou_pred: torch.Tensor, object_logits: torch.Tensor,
                gt: torch.Tensor) -> Dict[str, torch.Tensor]:
    """SAM 2's per-step losses, one value per object (each ``[K]``, not yet weighted).

    ``multimask_logits [K, M, H, W]``, ``iou_pred [K, M]``, ``object_logits [K, 1]``, ``gt [K, H, W]`` (bool).
    ``loss_mask``: sigmoid focal loss (mean over pixels) and ``loss_dice`` (``1 - (2 sum(p y) + 1) / (sum p + sum y
    + 1)``) of the candidate with the smallest ``20 * focal + dice``; ``loss_iou``: ``|iou_pred - IoU(logits > 0,
    gt)|`` averaged over the ``M`` candidates; ``loss_class``: BCE of the object score against "the object is in the
    frame". The first three are zero where the object is absent."""
    focal, dice = focal_and_dice(multimask_logits, gt)  # [K, M] each, SAM's (and SAM 2's) formulas
    with torch.no_grad():
        binary = multimask_logits.flatten(2) > 0
        y = gt.flatten(1)[:, None]
        inter = (binary & y).sum(-1).float()
        union = (binary | y).sum(-1).float().clamp(min=1)
    iou_l1 = (iou_pred - inter / union).abs().mean(-1)
    best = (LOSS_WEIGHTS["loss_mask"] * focal + LOSS_WEIGHTS["loss_dice"] * dice).argmin(1)
    rows = torch.arange(len(best))
    present = gt.flatten(1).any(1).float()
    object_loss = F.binary_cross_entropy_with_logits(object_logits[:, 0], present, reduction="none")
    return {"loss_mask": focal[rows, best] * present, "loss_dice": dice[rows, best] * present,
            "loss_iou": iou_l1 * present, "loss_class": object_loss}


def clip_loss(frame_steps: Sequence[Sequence[Tuple[torch.Tensor, torch.Tensor, torch.Tensor]]],
              gt: torch.Tensor) -> Dict[str, torch.Tensor]:
    """The loss of one clip: ``frame_steps[t]`` holds frame ``t``'s decoding steps (``(multimask_logits, iou_pred,
    object_logits)``, see :func:`step_losses`), ``gt [T, K, H, W]``. Summed over steps, frames and objects, divided by
    the number of objects ``K``; ``loss`` is the weighted total, the parts are returned detached."""
    parts = {k: gt.new_zeros((), dtype=torch.float32) for k in LOSS_WEIGHTS}
    for t, steps in enumerate(frame_steps):
        for logits, iou, obj in steps:
            for k, v in step_losses(logits, iou, obj, gt[t]).items():
                parts[k] = parts[k] + v.sum()
    k = max(gt.shape[1], 1)
    parts = {name: v / k for name, v in parts.items()}
    total = sum(LOSS_WEIGHTS[name] * v for name, v in parts.items())
    return {"loss": total, **{name: v.detach() for name, v in parts.items()}}
