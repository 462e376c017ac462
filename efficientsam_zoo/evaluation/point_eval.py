"""Zero-shot single-point valid-mask evaluation (paper Table 4, SAM's protocol).

For every ground-truth instance: prompt with its tightest box, with 1 random point inside the mask and with
3 random points inside the mask (optionally SAM's iterative protocol: each later point from the error region
of the previous prediction); keep the most confident of the multimask outputs; report mIoU per prompt type,
overall and by COCO size bucket of the ground-truth area. Points are drawn with a seeded generator per
image, so runs are reproducible.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Dict, List, Optional, Sequence

import numpy as np
from tqdm import tqdm

from ..utils.image import annotated_frame, load_image_rgb
from ..utils.masks import mask_iou, mask_to_box, sample_points_in_mask
from .common import SegmentFn, ann_to_mask, anns_of, area_range, image_infos, image_path, load_coco_like

__all__ = ["PROMPT_TYPES", "build_prompts", "evaluate_points", "summarize"]

PROMPT_TYPES = ("box", "1pt", "3pt")


def build_prompts(mask: np.ndarray, kind: str, rng: np.random.Generator):
    """``(points [N,2], labels [N])`` of one prompt type for one instance."""
    if kind == "box":
        return mask_to_box(mask).reshape(2, 2), np.array([2, 3])
    n = int(kind.rstrip("pt"))
    return sample_points_in_mask(mask, n, rng), np.ones(n, dtype=np.int64)


def evaluate_points(segment_fn: SegmentFn, ann_file: str, img_dir: str, prompt_types: Sequence[str] = PROMPT_TYPES,
                    num_instances: Optional[int] = None, seed: int = 0, iterative_clicks: int = 0,
                    min_area: float = 1.0, progress: bool = True) -> Dict:
    """Run the protocol; returns ``{"records": [...], "summary": {...}}``.

    ``iterative_clicks > 0`` adds prompt type ``"{k}pt-iter"``: 1 random point, then ``k - 1`` points each drawn
    from the error region (false negatives as label 1, false positives as label 0) of the previous prediction.
    """
    api, kind = load_coco_like(ann_file)
    records: List[Dict] = []
    count = 0
    infos = image_infos(api, kind)
    for info in tqdm(infos, desc="images", disable=not progress):
        anns = [a for a in anns_of(api, kind, info["id"]) if a.get("area", 1) >= min_area]
        if num_instances is not None:
            anns = anns[:max(0, num_instances - count)]
        if not anns:
            continue
        image = load_image_rgb(image_path(img_dir, info), frame=annotated_frame(info))
        gts = [ann_to_mask(api, a) for a in anns]
        keep = [i for i, m in enumerate(gts) if m.any()]
        anns, gts = [anns[i] for i in keep], [gts[i] for i in keep]
        rng = np.random.default_rng([seed, int(info["id"])])
        for ptype in prompt_types:
            prompts = [build_prompts(m, ptype, rng) for m in gts]
            points = np.stack([p for p, _ in prompts]).astype(np.float32)
            labels = np.stack([lbl for _, lbl in prompts])
            masks, scores = segment_fn(image, points, labels)
            for a, gt, m, s in zip(anns, gts, masks, scores):
                best = int(np.argmax(s))
                records.append(dict(image_id=int(info["id"]), ann_id=int(a["id"]), prompt=ptype,
                                    iou=mask_iou(m[best], gt), area=float(gt.sum()), size=area_range(float(gt.sum()))))
        if iterative_clicks > 0:
            records += _iterative(segment_fn, image, anns, gts, iterative_clicks, rng, info)
        count += len(anns)
        if num_instances is not None and count >= num_instances:
            break
    return {"records": records, "summary": summarize(records)}


def _iterative(segment_fn, image, anns, gts, clicks, rng, info) -> List[Dict]:
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
    for a, gt, pred in zip(anns, gts, preds):
        out.append(dict(image_id=int(info["id"]), ann_id=int(a["id"]), prompt=f"{clicks}pt-iter",
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
