"""Segment-anything finetuning on SA-1B, framework-free: SAM-style prompt simulation, losses and the step.

Prompt simulation (SAM's training): each ground-truth mask first gets a box (with probability ``box_prob``;
the tight box jittered by up to ``box_noise`` of its side, at most 20 px) or one point drawn uniformly from the
mask; every further round adds one point drawn from the error region of the previous best prediction — from
the false negatives with label 1 when they outnumber the false positives, else from the false positives with
label 0. (The released EfficientSAM gives label 0 no embedding; finetuning with these points teaches it to
use them as corrections.) Queries stay within the decoder's 6 points.

Loss (SAM): ``20 * focal + dice`` for each of the 3 multimask outputs, supervising only the best of them,
plus the MSE between its predicted IoU and its actual IoU with the ground truth. Masks are compared at the
decoder's low resolution (``img_size / 4``).
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from torchvision.ops import sigmoid_focal_loss

__all__ = ["initial_prompts", "error_points", "mask_losses", "finetune_losses", "FOCAL_WEIGHT"]

FOCAL_WEIGHT = 20.0


def _pixel_to_frame(ys: torch.Tensor, xs: torch.Tensor, scale: float) -> torch.Tensor:
    return torch.stack([(xs.float() + 0.5) * scale, (ys.float() + 0.5) * scale], -1)


def _random_pixel(mask: torch.Tensor, generator: torch.Generator) -> Optional[Tuple[torch.Tensor, torch.Tensor]]:
    ys, xs = torch.nonzero(mask, as_tuple=True)
    if len(ys) == 0:
        return None
    k = int(torch.randint(len(ys), (1,), generator=generator))
    return ys[k], xs[k]


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
            x0, y0, x1, y1 = boxes[i].tolist()
            bw, bh = x1 - x0, y1 - y0
            jitter = (torch.rand(4, generator=generator) * 2 - 1) * torch.tensor(
                [min(box_noise * bw, 20.0), min(box_noise * bh, 20.0)] * 2)
            box = (torch.tensor([x0, y0, x1, y1]) + jitter).clamp(0, img_size)
            points[i] = box.view(2, 2)
            labels[i] = torch.tensor([2, 3])
        else:
            pix = _random_pixel(masks[i], generator)
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
        pix = _random_pixel(region, generator)
        if pix is not None:
            points[i, 0] = _pixel_to_frame(*pix, scale)
            labels[i, 0] = label
    return points, labels


def mask_losses(logits: torch.Tensor, iou_pred: torch.Tensor, gt: torch.Tensor
                ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``logits [K, M, h, w]``, ``iou_pred [K, M]``, ``gt [K, h, w]`` (bool) ->
    ``(total, focal, dice, iou_mse)`` of the best of the ``M`` outputs per mask, averaged over masks;
    also returns nothing else (the chosen index is internal)."""
    target = gt[:, None].float().expand_as(logits)
    focal = sigmoid_focal_loss(logits, target, alpha=0.25, gamma=2.0, reduction="none").flatten(2).mean(-1)
    prob = logits.sigmoid().flatten(2)
    t = target.flatten(2)
    dice = 1.0 - (2 * (prob * t).sum(-1) + 1.0) / (prob.sum(-1) + t.sum(-1) + 1.0)
    per_output = FOCAL_WEIGHT * focal + dice  # [K, M]
    best = per_output.argmin(dim=1)
    rows = torch.arange(len(best))
    with torch.no_grad():
        binary = logits[rows, best] > 0
        inter = (binary & gt).flatten(1).sum(-1).float()
        union = (binary | gt).flatten(1).sum(-1).float().clamp(min=1)
        actual_iou = inter / union
    iou_mse = F.mse_loss(iou_pred[rows, best], actual_iou)
    return per_output[rows, best].mean() + iou_mse, focal[rows, best].mean(), dice[rows, best].mean(), iou_mse


def finetune_losses(sam, image: torch.Tensor, masks: torch.Tensor, boxes: torch.Tensor, valid: torch.Tensor,
                    generator: torch.Generator, iterative_rounds: int = 2, box_prob: float = 0.5) -> Dict[str, torch.Tensor]:
    """One training step's losses for an :class:`EfficientSam` on a batch of SA-1B-style samples.

    ``image [B, 3, S, S]`` (0..1), ``masks [B, K, S/4, S/4]`` (bool), ``boxes [B, K, 4]`` (S frame), ``valid [B, K]``.
    Each image is embedded once; every valid mask gets first-round prompts, then ``iterative_rounds`` rounds of
    error-region points, each round decoded against the same embedding; the losses of all rounds are averaged,
    then averaged over images. Returns ``loss`` (to optimise) and the detached ``loss_focal`` / ``loss_dice`` /
    ``loss_iou`` parts.
    """
    size = sam.img_size
    embeddings = sam.get_image_embeddings(image)  # once per image, reused by every round
    totals = {"loss": 0.0, "loss_focal": 0.0, "loss_dice": 0.0, "loss_iou": 0.0}
    n_images = 0
    for b in range(image.shape[0]):
        keep = valid[b]
        if not bool(keep.any()):
            continue
        gt, gt_boxes = masks[b][keep], boxes[b][keep].cpu()
        points, labels = initial_prompts(gt.cpu(), gt_boxes, size, generator, box_prob)
        rounds = []
        for r in range(1 + iterative_rounds):
            logits, iou = sam.predict_masks(embeddings[b:b + 1], points[None].to(image.device),
                                            labels[None].to(image.device), True, size, size)
            logits, iou = logits[0], iou[0]
            rounds.append(mask_losses(logits, iou, gt))
            if r < iterative_rounds:
                with torch.no_grad():
                    best = iou.argmax(1)
                    pred = logits[torch.arange(len(best)), best] > 0
                new_p, new_l = error_points(pred.cpu(), gt.cpu(), size, generator)
                points, labels = torch.cat([points, new_p], 1), torch.cat([labels, new_l], 1)
        for key, idx in (("loss", 0), ("loss_focal", 1), ("loss_dice", 2), ("loss_iou", 3)):
            totals[key] = totals[key] + sum(rd[idx] for rd in rounds) / len(rounds)
        n_images += 1
    if n_images == 0:  # no valid mask in the batch: a zero loss that still touches the graph
        return {"loss": embeddings.sum() * 0.0}
    loss = totals.pop("loss") / n_images
    return {"loss": loss, **{k: (v / n_images).detach() for k, v in totals.items()}}
