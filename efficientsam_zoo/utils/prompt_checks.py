"""The prompt validation itself, in numpy (no torch): what :func:`efficientsam_zoo.prompts.assemble_prompts` runs
for the torch entry points and what the torch-free ONNX predictor (``efficientsam_zoo.onnx_runtime``) runs, so both
refuse the same prompts with the same messages.

Labels as the model takes them (:data:`PROMPT_LABELS`): 1 point, 0 no label / negative click, 2 / 3 box corners,
-1 padding; a box ``(x0, y0, x1, y1)`` is appended to its query as two corner points.
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

__all__ = ["PROMPT_LABELS", "NO_NEGATIVES", "NO_MASK_PROMPTS", "assemble_prompt_arrays", "check_finite_array",
           "box_corner_arrays", "single_query_arrays"]

PROMPT_LABELS = {"padding": -1, "no_label": 0, "point": 1, "box_top_left": 2, "box_bottom_right": 3}
NO_NEGATIVES = ("label 0 is a negative click, and this model has none: the released EfficientSAM weights were not "
                "trained with negative points (a 0 would silently act as an unlabelled point). Finetune with negative "
                "clicks (efficientsam-zoo finetune; its model has them), or drop the negative points")
NO_MASK_PROMPTS = ("this model takes no mask prompts (mask_input): the released EfficientSAM weights have no dense "
                   "prompt encoder. Finetune with mask prompts (efficientsam-zoo finetune; its model has them), or "
                   "leave mask_input out")


def box_corner_arrays(boxes: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Boxes ``[..., 4]`` -> corner points ``[..., 2, 2]`` and labels ``[..., 2]`` (2, 3)."""
    labels = np.array([PROMPT_LABELS["box_top_left"], PROMPT_LABELS["box_bottom_right"]], dtype=np.int64)
    return boxes.reshape(*boxes.shape[:-1], 2, 2), np.broadcast_to(labels, (*boxes.shape[:-1], 2)).copy()


def check_finite_array(name: str, values: np.ndarray) -> None:
    """Refuse NaN / inf in ``values``, naming the first one and its index."""
    bad = ~np.isfinite(values)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"{name} holds a non-finite value ({float(values[where])}) at index {list(where)}; "
                         "prompts must be finite pixel coordinates")


def assemble_prompt_arrays(point_coords, point_labels, boxes, image_size: Optional[Tuple[int, int]], max_points: int,
                           allow_padding: bool = False, negatives: bool = False) -> Tuple[np.ndarray, np.ndarray]:
    """Points ``[Q, N, 2]`` + labels ``[Q, N]`` and / or boxes ``[Q, 4]`` (pixels of an ``image_size = (H, W)``
    image; numpy arrays or lists) -> ``points [Q, N', 2]`` float32 and ``labels [Q, N']`` int64, boxes appended as
    two corner points. See :func:`efficientsam_zoo.prompts.assemble_prompts` for the arguments."""
    parts, part_labels = [], []
    if point_coords is not None:
        if point_labels is None:
            raise ValueError("point_labels must be given with point_coords (1 = foreground point)")
        point_coords = np.asarray(point_coords, dtype=np.float32)
        point_labels = np.asarray(point_labels)
        if point_labels.dtype.kind in "fc":
            whole = point_labels == np.round(point_labels)
            if not whole.all():
                bad = point_labels[~whole][:4].tolist()
                raise ValueError(f"point labels must be whole numbers (1 = foreground, 0 = background), got {bad}")
        point_labels = point_labels.astype(np.int64)
        if point_coords.ndim != 3 or point_coords.shape[-1] != 2:
            raise ValueError(f"point_coords must be [Q, N, 2], got shape {tuple(point_coords.shape)}")
        if point_labels.shape != point_coords.shape[:2]:
            raise ValueError(f"point_labels must be [Q, N] = {tuple(point_coords.shape[:2])}, "
                             f"got {tuple(point_labels.shape)}")
        allowed = {0, 1, 2, 3} | ({-1} if allow_padding else set())
        bad = sorted(set(np.unique(point_labels).tolist()) - allowed)
        if bad:
            raise ValueError(f"point labels must be 1 (point), 0 (negative click), 2 / 3 (box corners)"
                             f"{', -1 (padding)' if allow_padding else ''}; got {bad}")
        if not negatives and (point_labels == 0).any():
            raise ValueError(NO_NEGATIVES)
        check_finite_array("point_coords", point_coords)
        parts.append(point_coords)
        part_labels.append(point_labels)
    if boxes is not None:
        boxes = np.asarray(boxes, dtype=np.float32)
        if boxes.ndim != 2 or boxes.shape[-1] != 4:
            raise ValueError(f"boxes must be [Q, 4] as (x0, y0, x1, y1), got shape {tuple(boxes.shape)}")
        check_finite_array("boxes", boxes)
        if ((boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1])).any():
            raise ValueError("boxes must be (x0, y0, x1, y1) with x1 >= x0 and y1 >= y0")
        corners, corner_labels = box_corner_arrays(boxes)
        parts.append(corners)
        part_labels.append(corner_labels)
    if not parts or sum(p.shape[1] for p in parts) == 0:
        raise ValueError("empty prompt: give point_coords + point_labels and/or a box")
    if len(parts) == 2 and parts[0].shape[0] != parts[1].shape[0]:
        raise ValueError(f"{parts[0].shape[0]} point queries but {parts[1].shape[0]} boxes; they must match")
    points = np.concatenate(parts, axis=1)
    labels = np.concatenate(part_labels, axis=1)
    if points.shape[1] > max_points:
        raise ValueError(f"{points.shape[1]} prompt points per query (a box counts as 2), but the model takes "
                         f"at most {max_points}; pass fewer points")
    if image_size is None:
        return points, labels
    h, w = image_size
    outside = (points[..., 0] < 0) | (points[..., 0] > w) | (points[..., 1] < 0) | (points[..., 1] > h)
    outside &= labels != -1
    if outside.any():
        q, n = (int(i) for i in np.argwhere(outside)[0])
        x, y = points[q, n].tolist()
        raise ValueError(f"prompt point ({x:g}, {y:g}) of query {q} lies outside the {w}x{h} (WxH) image; "
                         "coordinates are (x, y) pixels of the image given to set_image")
    return points, labels


def single_query_arrays(point_coords, point_labels, box):
    """SamPredictor.predict's one query -- ``point_coords (N, 2)``, ``point_labels (N,)``, ``box (4,)``, each
    optional -- with the query axis added (``[1, N, 2]``, ``[1, N]``, ``[1, 4]``), for :func:`assemble_prompt_arrays`
    to check the rest."""
    pts = lbl = bx = None
    if point_coords is not None:
        pts = np.asarray(point_coords, dtype=np.float32)
        if pts.ndim != 2 or pts.shape[-1] != 2:
            raise ValueError(f"point_coords must be (N, 2) as (x, y), got shape {tuple(pts.shape)}")
        pts = pts[None]
    if point_labels is not None:
        lbl = np.asarray(point_labels)[None]  # cast after the whole-number check
    if box is not None:
        bx = np.asarray(box, dtype=np.float32)
        if bx.shape != (4,):
            raise ValueError(f"box must be (4,) as (x0, y0, x1, y1), got shape {tuple(bx.shape)}")
        bx = bx[None]
    return pts, lbl, bx


def check_mask_input_array(mask_input, queries: int, size: Tuple[int, int], mask_prompts: bool
                           ) -> Optional[np.ndarray]:
    """A mask prompt (SamPredictor's ``mask_input``: the previous round's low-res logits) -> float32
    ``[Q, 1, h, w]``, or ``[1, 1, h, w]`` for every one of the ``queries`` (from ``[1, h, w]`` / ``[h, w]``; the
    caller broadcasts). ``None`` stays ``None``. What the torch predictor (``prompts.check_mask_input``) and the ONNX
    predictor both check."""
    if mask_input is None:
        return None
    if not mask_prompts:
        raise ValueError(NO_MASK_PROMPTS)
    given = np.asarray(mask_input)
    m = given.astype(np.float32)
    m = m.reshape(1, 1, *m.shape[-2:]) if m.ndim in (2, 3) and (m.ndim == 2 or m.shape[0] == 1) else m
    if m.ndim != 4 or m.shape[1] != 1 or tuple(m.shape[-2:]) != tuple(size) or m.shape[0] not in (1, queries):
        raise ValueError(f"mask_input must be low-res logits of shape (1, {size[0]}, {size[1]}) -- the low_res_logits "
                         f"a previous predict returned, one mask -- or [Q, 1, {size[0]}, {size[1]}], got "
                         f"{tuple(given.shape)}")
    check_finite_array("mask_input", m)
    return m
