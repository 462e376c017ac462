"""Segment-anything finetuning on SA-1B, framework-free: SAM-style prompt simulation, losses and the step.

Prompt simulation (SAM's training): each ground-truth mask first gets a box (with probability ``box_prob``;
the tight box jittered by up to ``box_noise`` of its side, at most 20 px) or one point drawn uniformly from the
mask; every further round adds one point drawn from the error region of the previous best prediction — from
the false negatives with label 1 when they outnumber the false positives, else from the false positives with
label 0 (a negative click for a model with ``negative_points``; the released EfficientSAM gives label 0 no embedding).
A model with ``mask_prompts`` also gets the previous round's best low-resolution logits as its mask prompt, and, as in
SAM's recipe, ``mask_only_rounds`` extra rounds add no point (the mask prompt alone carries the correction): the first
at a random place among the click rounds, the others at the end (:func:`round_plan`). Queries stay within the decoder's
6 points.

Loss (SAM): ``20 * focal + dice`` for each of the 3 multimask outputs, supervising only the best of them,
plus the MSE between its predicted IoU and its actual IoU with the ground truth. Masks are compared at the
decoder's low resolution (``img_size / 4``).
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torchvision.ops import sigmoid_focal_loss

__all__ = ["random_pixel", "noisy_box", "initial_prompts", "error_points", "round_plan", "focal_and_dice", "mask_losses",
           "finetune_losses", "FOCAL_WEIGHT"]

FOCAL_WEIGHT = 20.0


def _pixel_to_frame(ys: torch.Tensor, xs: torch.Tensor, scale: float) -> torch.Tensor:
    return torch.stack([(xs.float() + 0.5) * scale, (ys.float() + 0.5) * scale], -1)


def random_pixel(mask: torch.Tensor, generator: torch.Generator) -> Optional[Tuple[torch.Tensor, torch.Tensor]]:
    """``(y, x)`` of a pixel of ``mask`` drawn uniformly (one ``randint`` from ``generator``), ``None`` if empty."""
    ys, xs = torch.nonzero(mask, as_tuple=True)
    if len(ys) == 0:
        return None
    k = int(torch.randint(len(ys), (1,), generator=generator))
    return ys[k], xs[k]


def noisy_box(box: torch.Tensor, generator: torch.Generator, noise: float = 0.1, bound: float = 20.0) -> torch.Tensor:
    """``box`` (x0, y0, x1, y1) with each side moved by a uniform draw of up to ``noise`` of the box's width / height,
    at most ``bound`` px (SAM's and SAM 2's box noise; one ``rand(4)`` from ``generator``); not clamped."""
    x0, y0, x1, y1 = box.tolist()
    jitter = (torch.rand(4, generator=generator) * 2 - 1) * torch.tensor(
        [min(noise * (x1 - x0), bound), min(noise * (y1 - y0), bound)] * 2)
    return torch.tensor([x0, y0, x1, y1]) + jitter


def initial_prompts(masks: torch.Tensor, boxes: torch.Tensor, img_size: int, generator: torch.Generator,
                    box_prob: float = 0.5, box_noise: float = 0.1) -> Tuple[torch.Tensor, torch.Tensor]:
    """First-round prompts for ``K`` masks (low-res ``[K, h, w]``, boxes ``[K, 4]`` in the ``img_size`` frame):
    ``points [K, 2, 2]`` and ``labels [K, 2]`` (a box as corners 2 / 3, or a point 1 plus a padding slot -1)."""
    k, h, _ = masks.shape
    scale = img_size / h
    points = torch.full((k, 2, 2), -1.0)
    labels = torch.full((k, 2), -1, dtype=torch.long)
    for i in range(k):
        if float(torch.rand(1, generator=generator)) < box_prob:
            box = noisy_box(boxes[i], generator, box_noise).clamp(0, img_size)
            points[i] = box.view(2, 2)
            labels[i] = torch.tensor([2, 3])
        else:
            pix = random_pixel(masks[i], generator)
            if pix is not None:
                points[i, 0] = _pixel_to_frame(*pix, scale)
                labels[i, 0] = 1
    return points, labels


def error_points(pred: torch.Tensor, gt: torch.Tensor, img_size: int, generator: torch.Generator
                 ) -> Tuple[torch.Tensor, torch.Tensor]:
    """One correction point per mask from the larger error region: ``points [K, 1, 2]``, ``labels [K, 1]``
    (1 for a missed pixel, 0 for a false-positive pixel, -1 when the prediction is already exact)."""
    k, h, _ = gt.shape
    scale = img_size / h
    points = torch.full((k, 1, 2), -1.0)
    labels = torch.full((k, 1), -1, dtype=torch.long)
    for i in range(k):
        fn, fp = gt[i] & ~pred[i], pred[i] & ~gt[i]
        region, label = (fn, 1) if fn.sum() >= fp.sum() else (fp, 0)
        pix = random_pixel(region, generator)
        if pix is not None:
            points[i, 0] = _pixel_to_frame(*pix, scale)
            labels[i, 0] = label
    return points, labels


def focal_and_dice(logits: torch.Tensor, gt: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """SAM's two mask losses of every candidate: ``logits [K, M, h, w]`` against ``gt [K, h, w]`` (bool) -> sigmoid
    focal loss (alpha 0.25, gamma 2, mean over pixels) and dice (``1 - (2 sum(p y) + 1) / (sum p + sum y + 1)``),
    each ``[K, M]``."""
    target = gt[:, None].float().expand_as(logits)
    focal = sigmoid_focal_loss(logits, target, alpha=0.25, gamma=2.0, reduction="none").flatten(2).mean(-1)
    prob = logits.sigmoid().flatten(2)
    t = target.flatten(2)
    dice = 1.0 - (2 * (prob * t).sum(-1) + 1.0) / (prob.sum(-1) + t.sum(-1) + 1.0)
    return focal, dice


def mask_losses(logits: torch.Tensor, iou_pred: torch.Tensor, gt: torch.Tensor, reduction: str = "mean"
                ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``logits [K, M, h, w]``, ``iou_pred [K, M]``, ``gt [K, h, w]`` (bool) -> ``(total, focal, dice, iou_mse)``
    of the best of the ``M`` outputs of each mask: averaged over the masks (``reduction="mean"``) or one value per
    mask (``"none"``, each ``[K]``)."""
    focal, dice = focal_and_dice(logits, gt)
    per_output = FOCAL_WEIGHT * focal + dice  # [K, M]
    best = per_output.argmin(dim=1)
    rows = torch.arange(len(best))
    with torch.no_grad():
        binary = logits[rows, best] > 0
        inter = (binary & gt).flatten(1).sum(-1).float()
        union = (binary | gt).flatten(1).sum(-1).float().clamp(min=1)
        actual_iou = inter / union
    iou_sq = (iou_pred[rows, best] - actual_iou) ** 2
    per_mask = (per_output[rows, best] + iou_sq, focal[rows, best], dice[rows, best], iou_sq)
    if reduction == "none":
        return per_mask
    if reduction != "mean":
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    return tuple(v.mean() for v in per_mask)


def round_plan(click_rounds: int, mask_rounds: int, generator: torch.Generator) -> List[str]:
    """The rounds after the first, as SAM's training orders them: ``click_rounds`` correction clicks, the first of
    the ``mask_rounds`` mask-only rounds at a random place among them and the others at the end."""
    plan = ["click"] * click_rounds
    if mask_rounds:
        plan.insert(int(torch.randint(click_rounds + 1, (1,), generator=generator)), "mask")
        plan += ["mask"] * (mask_rounds - 1)
    return plan


def finetune_losses(sam, image: torch.Tensor, masks: torch.Tensor, boxes: torch.Tensor, valid: torch.Tensor,
                    generators: Sequence[torch.Generator], iterative_rounds: int = 2, box_prob: float = 0.5,
                    mask_only_rounds: int = 0, embeddings: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
    """One training step's losses for an :class:`EfficientSam` on a batch of SA-1B-style samples.

    ``image [B, 3, S, S]`` (0..1), ``masks [B, K, S/4, S/4]`` (bool), ``boxes [B, K, 4]`` (S frame), ``valid [B, K]``;
    ``generators`` (one per image) draw that image's prompts. The images are embedded once (or ``embeddings`` are
    given: a frozen encoder's, cached); every valid mask gets first-round prompts, then ``iterative_rounds`` rounds of
    error-region points and ``mask_only_rounds`` rounds of the mask prompt alone (models with mask prompts; in
    :func:`round_plan`'s order), each round
    decoded for the whole batch at once against the same embeddings, the previous round's best logits as the mask
    prompt. A mask's loss is averaged over the rounds, an image's over its masks, the batch's over its images with at
    least one mask. Returns ``loss`` (to optimise) and the detached ``loss_focal`` / ``loss_dice`` / ``loss_iou`` parts.
    """
    size = sam.img_size
    b, k = valid.shape
    if embeddings is None:
        embeddings = sam.get_image_embeddings(image)  # once per image, reused by every round
    has_mask = valid.any(1)
    if not bool(has_mask.any()):  # no valid mask in the batch: a zero loss that still touches the graph
        return {"loss": embeddings.sum() * 0.0 + sum(p.sum() * 0.0 for p in sam.mask_decoder.parameters())}
    masks_cpu, valid_cpu = masks.cpu(), valid.cpu()
    points = torch.full((b, k, 2, 2), -1.0)  # empty slots stay padding and are left out of the loss
    labels = torch.full((b, k, 2), -1, dtype=torch.long)
    for i in range(b):
        v = valid_cpu[i]
        if bool(v.any()):
            points[i, v], labels[i, v] = initial_prompts(masks_cpu[i][v], boxes[i][v].cpu(), size, generators[i],
                                                         box_prob)
    gt = masks[valid]
    plan = round_plan(iterative_rounds, mask_only_rounds if sam.mask_prompts else 0, generators[0])
    rounds = 1 + len(plan)
    totals, mask_input = None, None
    for r in range(rounds):
        logits, iou = sam.predict_masks(embeddings, points.to(image.device), labels.to(image.device), True, size, size,
                                        mask_input=mask_input)
        per_mask = mask_losses(logits[valid], iou[valid], gt, reduction="none")
        totals = per_mask if totals is None else tuple(t + p for t, p in zip(totals, per_mask))
        if r == rounds - 1:
            break
        with torch.no_grad():
            best = iou.argmax(2, keepdim=True)[..., None, None].expand(-1, -1, 1, *logits.shape[-2:])
            best_logits = logits.gather(2, best)  # [B, K, 1, h, w]
            if sam.mask_prompts:
                mask_input = best_logits.detach()
            pred = (best_logits[:, :, 0] > 0).cpu()
        if plan[r] == "click":  # a correction click; a "mask" round adds no point
            new_p, new_l = torch.full((b, k, 1, 2), -1.0), torch.full((b, k, 1), -1, dtype=torch.long)
            for i in range(b):
                v = valid_cpu[i]
                if bool(v.any()):
                    new_p[i, v], new_l[i, v] = error_points(pred[i][v], masks_cpu[i][v], size, generators[i])
            points, labels = torch.cat([points, new_p], 2), torch.cat([labels, new_l], 2)
    image_of = torch.arange(b, device=valid.device)[:, None].expand(b, k)[valid]
    n_images = int(has_mask.sum())
    per_image = [torch.zeros(b, device=gt.device).index_add(0, image_of, t / rounds)
                 / valid.sum(1).clamp(min=1) for t in totals]
    loss, focal, dice, iou_mse = (v.sum() / n_images for v in per_image)
    return {"loss": loss, "loss_focal": focal.detach(), "loss_dice": dice.detach(), "loss_iou": iou_mse.detach()}
