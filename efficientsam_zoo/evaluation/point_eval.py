"""Zero-shot single-point valid-mask evaluation (paper Table 4, SAM's protocol).

For every ground-truth instance: prompt with its tightest box, with 1 random point inside the mask and with
3 random points inside the mask (optionally SAM's iterative protocol: each later point from the error region
of the previous prediction); keep the most confident of the multimask outputs; report mIoU per prompt type,
overall and by COCO size bucket of the ground-truth area. Points are drawn with a seeded generator per
image, so runs are reproducible.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
from tqdm import tqdm

from ..data.instances import InstanceSource, open_source
from ..utils.masks import mask_iou, mask_to_box, sample_points_in_mask
from .common import SegmentFn, area_range

__all__ = ["PROMPT_TYPES", "build_prompts", "evaluate_points", "summarize"]

PROMPT_TYPES = ("box", "1pt", "3pt")


def build_prompts(mask: np.ndarray, kind: str, rng: np.random.Generator):
    """``(points [N,2], labels [N])`` of one prompt type for one instance."""
    if kind == "box":
        return mask_to_box(mask).reshape(2, 2), np.array([2, 3])
    n = int(kind.rstrip("pt"))
    return sample_points_in_mask(mask, n, rng), np.ones(n, dtype=np.int64)


def evaluate_points(segment_fn: SegmentFn, source: Union[str, InstanceSource], img_dir: Optional[str] = None,
                    prompt_types: Sequence[str] = PROMPT_TYPES, num_instances: Optional[int] = None, seed: int = 0,
                    iterative_clicks: int = 0, min_area: float = 1.0, progress: bool = True) -> Dict:
    """Run the protocol on an :class:`~efficientsam_zoo.data.instances.InstanceSource` (or a COCO / LVIS annotation
    file and its image folder); returns ``{"records": [...], "summary": {...}}``.

    ``iterative_clicks > 0`` adds prompt type ``"{k}pt-iter"``: 1 random point, then ``k - 1`` points each drawn
    from the error region (false negatives as label 1, false positives as label 0, a negative click) of the previous
    prediction.
    """
    if isinstance(source, str):
        source = open_source(img_dir, annotations=source)
    records: List[Dict] = []
    count = 0
    for i in tqdm(range(len(source)), desc="images", disable=not progress):
        item = source.load(i)
        pairs = [(a, m) for a, m in zip(item.ids, item.masks) if m.sum() >= min_area]
        if num_instances is not None:
            pairs = pairs[:max(0, num_instances - count)]
        if not pairs:
            continue
        ids, gts = [a for a, _ in pairs], [m for _, m in pairs]
        rng = np.random.default_rng([seed, int(item.image_id)])
        for ptype in prompt_types:
            prompts = [build_prompts(m, ptype, rng) for m in gts]
            points = np.stack([p for p, _ in prompts]).astype(np.float32)
            labels = np.stack([lbl for _, lbl in prompts])
            masks, scores = segment_fn(item.image, points, labels)
            for a, gt, m, sc in zip(ids, gts, masks, scores):
                best = int(np.argmax(sc))
                records.append(dict(image_id=int(item.image_id), ann_id=int(a), prompt=ptype, iou=mask_iou(m[best], gt),
                                    area=float(gt.sum()), size=area_range(float(gt.sum()))))
        if iterative_clicks > 0:
            records += _iterative(segment_fn, item.image, ids, gts, iterative_clicks, rng, item.image_id)
        count += len(pairs)
        if num_instances is not None and count >= num_instances:
            break
    return {"records": records, "summary": summarize(records)}


def _iterative(segment_fn, image, ids, gts, clicks, rng, image_id) -> List[Dict]:
    points = [sample_points_in_mask(m, 1, rng) for m in gts]
    labels = [np.ones(1, dtype=np.int64) for _ in gts]
    out = []
    for step in range(clicks):
        masks, scores = segment_fn(image, np.stack(points), np.stack(labels))
        preds = [m[int(np.argmax(s))] for m, s in zip(masks, scores)]
        if step == clicks - 1:
            break
        for i, (pred, gt) in enumerate(zip(preds, gts)):
            fn, fp = gt & ~pred, pred & ~gt
            region, lbl = (fn, 1) if fn.sum() >= fp.sum() else (fp, 0)
            new = sample_points_in_mask(region, 1, rng) if region.any() else points[i][-1:]
            points[i] = np.concatenate([points[i], new])
            labels[i] = np.concatenate([labels[i], [lbl]])
    for a, gt, pred in zip(ids, gts, preds):
        out.append(dict(image_id=int(image_id), ann_id=int(a), prompt=f"{clicks}pt-iter",
                        iou=mask_iou(pred, gt), area=float(gt.sum()), size=area_range(float(gt.sum()))))
    return out


def summarize(records: List[Dict]) -> Dict[str, Dict[str, float]]:
    """``{prompt: {"all": mIoU, "small": ..., "medium": ..., "large": ..., "n": count}}`` (mIoU in %)."""
    groups = defaultdict(lambda: defaultdict(list))
    for r in records:
        groups[r["prompt"]]["all"].append(r["iou"])
        groups[r["prompt"]][r["size"]].append(r["iou"])
    out = {}
    for prompt, by in groups.items():
        out[prompt] = {k: 100.0 * float(np.mean(v)) for k, v in by.items()}
        out[prompt]["n"] = len(by["all"])
    return out
