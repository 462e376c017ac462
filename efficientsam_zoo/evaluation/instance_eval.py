"""Zero-shot instance segmentation (paper Table 5, SAM's protocol): prompt every detector box, keep one mask
per box, evaluate the masks with pycocotools' ``COCOeval`` (segm) or ``lvis.LVISEval``.

Mask rule (paper: "the mask with the highest IoU with the bbox"): ``rule="box_iou"`` keeps, of the three
multimask outputs, the one whose IoU with the filled prompt box is highest; ``rule="score"`` keeps the one
with the highest predicted IoU. The detection's own score and category are kept.
"""
from __future__ import annotations

import json
from collections import defaultdict
from typing import Dict, List, Optional

import numpy as np
from tqdm import tqdm

from ..utils.image import annotated_frame, load_image_rgb
from ..utils.io import atomic_path
from ..utils.masks import box_to_mask, encode_rle, mask_iou
from .common import SegmentFn, image_infos, image_path, load_coco_like

__all__ = ["segment_detections", "evaluate_segm", "evaluate_instances"]


def segment_detections(segment_fn: SegmentFn, ann_file: str, img_dir: str, detections: List[Dict],
                       rule: str = "box_iou", score_thr: float = 0.0, max_per_image: Optional[int] = None,
                       progress: bool = True) -> List[Dict]:
    """COCO results with ``segmentation`` (RLE) for every detection (``bbox`` in COCO xywh)."""
    if rule not in ("box_iou", "score"):
        raise ValueError(f"rule must be 'box_iou' or 'score', got {rule!r}")
    api, kind = load_coco_like(ann_file)
    by_image = defaultdict(list)
    for det in detections:
        if det.get("score", 1.0) >= score_thr:
            by_image[int(det["image_id"])].append(det)
    results = []
    for info in tqdm(image_infos(api, kind), desc="images", disable=not progress):
        dets = sorted(by_image.get(int(info["id"]), []), key=lambda d: -d.get("score", 1.0))[:max_per_image]
        if not dets:
            continue
        image = load_image_rgb(image_path(img_dir, info), frame=annotated_frame(info))
        h, w = image.shape[:2]
        boxes = np.array([[d["bbox"][0], d["bbox"][1], d["bbox"][0] + d["bbox"][2], d["bbox"][1] + d["bbox"][3]]
                          for d in dets], dtype=np.float32)
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, w)
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, h)
        masks, scores = segment_fn(image, boxes.reshape(-1, 2, 2), np.tile([2, 3], (len(boxes), 1)))
        for det, box, m, s in zip(dets, boxes, masks, scores):
            if rule == "score":
                best = int(np.argmax(s))
            else:
                filled = box_to_mask(box, h, w)
                best = int(np.argmax([mask_iou(c, filled) for c in m]))
            results.append(dict(image_id=int(info["id"]), category_id=int(det["category_id"]),
                                score=float(det.get("score", 1.0)), bbox=[float(v) for v in det["bbox"]],
                                segmentation=encode_rle(m[best])))
    return results


def evaluate_segm(ann_file: str, results: List[Dict], img_ids: Optional[List[int]] = None,
                  iou_type: str = "segm") -> Dict[str, float]:
    """AP, AP50, AP75, AP_S, AP_M, AP_L (in %) of COCO results (over ``img_ids`` only, if given): their masks
    (``iou_type="segm"``) or their boxes (``"bbox"``), scored by pycocotools' COCOeval or ``lvis.LVISEval``."""
    api, kind = load_coco_like(ann_file)
    if not results:
        return {k: 0.0 for k in ("AP", "AP50", "AP75", "APs", "APm", "APl")}
    if kind == "lvis":
        from lvis import LVISEval, LVISResults

        ev = LVISEval(api, LVISResults(api, results), iou_type)
        if img_ids is not None:
            ev.params.img_ids = list(img_ids)
        ev.run()
        r = ev.get_results()
        return {k: 100.0 * float(r[k]) for k in ("AP", "AP50", "AP75", "APs", "APm", "APl")}
    from pycocotools.cocoeval import COCOeval

    ev = COCOeval(api, api.loadRes(results), iou_type)
    if img_ids is not None:
        ev.params.imgIds = list(img_ids)
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    return {k: 100.0 * float(ev.stats[i]) for i, k in enumerate(("AP", "AP50", "AP75", "APs", "APm", "APl"))}


def evaluate_instances(segment_fn: SegmentFn, ann_file: str, img_dir: str, detections_file: str,
                       out_file: Optional[str] = None, img_ids: Optional[List[int]] = None, **kwargs) -> Dict:
    with open(detections_file) as f:
        detections = json.load(f)
    if not isinstance(detections, list) or (detections and "bbox" not in detections[0]):
        raise ValueError(f"{detections_file!r} is not a COCO results list of boxes "
                         "([{image_id, category_id, bbox [x, y, w, h], score}, ...])")
    results = segment_detections(segment_fn, ann_file, img_dir, detections, **kwargs)
    if out_file:
        with atomic_path(out_file) as tmp, open(tmp, "w") as f:
            json.dump(results, f)
    return {"metrics": evaluate_segm(ann_file, results, img_ids), "num_results": len(results)}
