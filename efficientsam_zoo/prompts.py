"""The one prompt validation: every entry point (predictor, HF processor and model, CLI, ONNX predictor) turns the
prompts it was given into the decoder's ``points [Q, N, 2]`` + ``labels [Q, N]`` through :func:`assemble_prompts`,
once per call path.

Prompts are (x, y) pixels of the image they belong to; labels as the model takes them (``modeling.prompt_encoder``:
1 point, 0 no label / negative, 2 / 3 box corners, -1 padding); a box ``(x0, y0, x1, y1)`` is appended to its query as
two corner points. Each problem gets one error naming it: NaN / inf values (NaN compares False with everything, so a
range check alone would let it through as padding), fractional or unknown labels, reversed boxes, more points than
the decoder takes, points outside the image.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch

from .modeling.prompt_encoder import NO_MASK_PROMPTS, NO_NEGATIVES, box_corner_prompts

__all__ = ["assemble_prompts", "check_finite", "NO_NEGATIVES", "check_mask_input"]


def assemble_prompts(point_coords, point_labels, boxes, image_size: Optional[Tuple[int, int]], max_points: int,
                     allow_padding: bool = False, negatives: bool = False) -> Tuple[torch.Tensor, torch.Tensor]:
    """The one prompt validation: points ``[Q, N, 2]`` + labels ``[Q, N]`` and / or boxes ``[Q, 4]`` (pixels of an
    image of ``image_size = (H, W)``) -> ``points [Q, N', 2]`` and ``labels [Q, N']`` on the CPU, boxes appended as
    two corner points (labels 2, 3). ``allow_padding``: label -1 marks a padding slot whose coordinates are not
    checked (the batched Hugging Face inputs). ``negatives``: the model takes label 0 as a negative click
    (``EfficientSam.negative_points``); otherwise label 0 is refused. ``image_size=None`` skips the range check
    (prompts already checked in their image's pixel frame, then rescaled).
    """
    parts, part_labels = [], []
    if point_coords is not None:
        if point_labels is None:
            raise ValueError("point_labels must be given with point_coords (1 = foreground point)")
        point_coords = torch.as_tensor(point_coords, dtype=torch.float32).cpu()
        point_labels = torch.as_tensor(point_labels).cpu()
        if point_labels.is_floating_point() or point_labels.is_complex():
            if not bool((point_labels == point_labels.round()).all()):
                bad = point_labels[point_labels != point_labels.round()][:4].tolist()
                raise ValueError(f"point labels must be whole numbers (1 = foreground, 0 = background), got {bad}")
        point_labels = point_labels.long()
        if point_coords.ndim != 3 or point_coords.shape[-1] != 2:
            raise ValueError(f"point_coords must be [Q, N, 2], got shape {tuple(point_coords.shape)}")
        if point_labels.shape != point_coords.shape[:2]:
            raise ValueError(f"point_labels must be [Q, N] = {tuple(point_coords.shape[:2])}, "
                             f"got {tuple(point_labels.shape)}")
        allowed = {0, 1, 2, 3} | ({-1} if allow_padding else set())
        bad = sorted(set(point_labels.unique().tolist()) - allowed)
        if bad:
            raise ValueError(f"point labels must be 1 (point), 0 (negative click), 2 / 3 (box corners)"
                             f"{', -1 (padding)' if allow_padding else ''}; got {bad}")
        if not negatives and bool((point_labels == 0).any()):
            raise ValueError(NO_NEGATIVES)
        check_finite("point_coords", point_coords)
        parts.append(point_coords)
        part_labels.append(point_labels)
    if boxes is not None:
        boxes = torch.as_tensor(boxes, dtype=torch.float32).cpu()
        if boxes.ndim != 2 or boxes.shape[-1] != 4:
            raise ValueError(f"boxes must be [Q, 4] as (x0, y0, x1, y1), got shape {tuple(boxes.shape)}")
        check_finite("boxes", boxes)
        if bool(((boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1])).any()):
            raise ValueError("boxes must be (x0, y0, x1, y1) with x1 >= x0 and y1 >= y0")
        corners, corner_labels = box_corner_prompts(boxes)
        parts.append(corners)
        part_labels.append(corner_labels)
    if not parts or sum(p.shape[1] for p in parts) == 0:
        raise ValueError("empty prompt: give point_coords + point_labels and/or a box")
    if len(parts) == 2 and parts[0].shape[0] != parts[1].shape[0]:
        raise ValueError(f"{parts[0].shape[0]} point queries but {parts[1].shape[0]} boxes; they must match")
    points = torch.cat(parts, dim=1)
    labels = torch.cat(part_labels, dim=1)
    if points.shape[1] > max_points:
        raise ValueError(f"{points.shape[1]} prompt points per query (a box counts as 2), but the model takes "
                         f"at most {max_points}; pass fewer points")
    if image_size is None:
        return points, labels
    h, w = image_size
    outside = (points[..., 0] < 0) | (points[..., 0] > w) | (points[..., 1] < 0) | (points[..., 1] > h)
    outside &= labels != -1
    if bool(outside.any()):
        q, n = (int(i) for i in outside.nonzero()[0])
        x, y = points[q, n].tolist()
        raise ValueError(f"prompt point ({x:g}, {y:g}) of query {q} lies outside the {w}x{h} (WxH) image; "
                         "coordinates are (x, y) pixels of the image given to set_image")
    return points, labels


def check_mask_input(mask_input, queries: int, size: Tuple[int, int], mask_prompts: bool) -> Optional[torch.Tensor]:
    """A mask prompt (SamPredictor's ``mask_input``: the previous round's low-res logits) -> ``[Q, 1, h, w]`` float on
    the CPU; ``[1, h, w]`` / ``[h, w]`` serve every one of ``queries``. ``None`` stays ``None``."""
    if mask_input is None:
        return None
    if not mask_prompts:
        raise ValueError(NO_MASK_PROMPTS)
    m = torch.as_tensor(mask_input, dtype=torch.float32).cpu()
    m = m.reshape(1, 1, *m.shape[-2:]) if m.ndim in (2, 3) and (m.ndim == 2 or m.shape[0] == 1) else m
    if m.ndim != 4 or m.shape[1] != 1 or tuple(m.shape[-2:]) != tuple(size) or m.shape[0] not in (1, queries):
        raise ValueError(f"mask_input must be low-res logits of shape (1, {size[0]}, {size[1]}) -- the low_res_logits "
                         f"a previous predict returned, one mask -- or [Q, 1, {size[0]}, {size[1]}], got "
                         f"{tuple(torch.as_tensor(mask_input).shape)}")
    check_finite("mask_input", m)
    return m.expand(queries, -1, -1, -1)


def check_finite(name: str, values: torch.Tensor) -> None:
    """Refuse NaN / inf in ``values``, naming the first one and its index."""
    bad = ~torch.isfinite(values)
    if bool(bad.any()):
        where = tuple(int(i) for i in bad.nonzero()[0])
        raise ValueError(f"{name} holds a non-finite value ({values[where].item()}) at index {list(where)}; "
                         "prompts must be finite pixel coordinates")
