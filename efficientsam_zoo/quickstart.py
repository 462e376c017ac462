"""``efficientsam-zoo quickstart``: an offline end-to-end run on generated data.

Stage "segment": build an EfficientSAM model (random weights unless a checkpoint is given), draw a
few synthetic scenes with known object masks, prompt each object with its centre point and with its
box, and save overlays plus a markdown report. With random weights the masks are meaningless; the
pipeline (preprocess -> encoder -> prompts -> decoder -> postprocess -> pictures) is the real one.

Stage "sami": a short SAMI pretraining run through mmengine's Runner (the shipped smoke config: ViT-Ti
student, tiny random SAM teacher) on generated images, then the backbone export.

Stage "finetune": ViTDet Mask R-CNN (the shipped MMDetection smoke config) initialised from that exported
backbone, a few iterations on a generated COCO-format set, then COCO evaluation.

Stage "evaluate": the zero-shot protocols (box / point mIoU, instance AP with COCOeval) on a generated
COCO-format set, with the stage-1 model.
"""
from __future__ import annotations

import os
import time
from typing import Dict, List, Optional, Tuple

import numpy as np

from .data.synthetic import make_scene

__all__ = ["run_quickstart"]


def _centre_point(mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    k = int(np.argmin((xs - xs.mean()) ** 2 + (ys - ys.mean()) ** 2))  # a pixel of the mask near its centroid
    return np.array([[xs[k], ys[k]]], dtype=np.float32)


def run_quickstart(out_dir: str, model: Optional[str] = None, checkpoint: Optional[str] = None,
                   device: str = "cpu", seed: int = 0, num_scenes: int = 2) -> str:
    import torch

    from .build import build_efficient_sam
    from .utils.masks import mask_iou, mask_to_box
    from .predictor import EfficientSamPredictor
    from .utils.io import atomic_path, save_png
    from .visualize import overlay_masks

    from .registry import DEFAULT_MODEL

    model = model or DEFAULT_MODEL
    os.makedirs(out_dir, exist_ok=True)
    torch.manual_seed(seed)
    sam = build_efficient_sam(model, checkpoint=checkpoint).to(device)
    predictor = EfficientSamPredictor(sam)
    weights = checkpoint or "random weights (seed %d)" % seed
    rows: List[Dict] = []
    for s in range(num_scenes):
        image, masks = make_scene(seed * 100 + s)
        save_png(image, os.path.join(out_dir, f"scene{s}.png"))
        t0 = time.perf_counter()
        predictor.set_image(image)
        embed_s = time.perf_counter() - t0
        for prompt in ("point", "box"):
            preds, prompts = [], []
            for gt in masks:
                if prompt == "point":
                    pts = _centre_point(gt)
                    out, scores, _ = predictor.predict(point_coords=pts, point_labels=np.ones(1))
                    prompts.append(pts)
                else:
                    bx = mask_to_box(gt)
                    out, scores, _ = predictor.predict(box=bx)
                    prompts.append(bx)
                best = int(np.argmax(scores))
                preds.append(out[best])
                rows.append(dict(scene=s, prompt=prompt, score=float(scores[best]), iou=mask_iou(out[best], gt),
                                 embed_s=embed_s))
            name = f"scene{s}_{prompt}_overlay.png"
            if prompt == "point":
                pic = overlay_masks(image, preds, points=np.concatenate(prompts), labels=np.ones(len(prompts)))
            else:
                pic = overlay_masks(image, preds, boxes=np.stack(prompts))
            save_png(pic, os.path.join(out_dir, name))

    sami_lines, export = _sami_stage(out_dir, seed)
    stages = [sami_lines, _finetune_stage(out_dir, export, seed), _eval_stage(out_dir, predictor, seed)]

    report = os.path.join(out_dir, "report.md")
    lines = ["# efficientsam-zoo quickstart", "", f"model: `{model}`, weights: {weights}, device: {device}", "",
             "## Stage: segment (point and box prompts on generated scenes)", "",
             "| scene | prompt | object | predicted IoU | IoU vs drawn mask | embedding s |",
             "|---|---|---|---|---|---|"]
    counters: Dict[Tuple[int, str], int] = {}
    for r in rows:
        k = counters[(r["scene"], r["prompt"])] = counters.get((r["scene"], r["prompt"]), -1) + 1
        lines.append(f"| {r['scene']} | {r['prompt']} | {k} | {r['score']:.3f} | {r['iou']:.3f} | {r['embed_s']:.2f} |")
    lines.append("")
    for s in range(num_scenes):
        lines += [f"![scene {s}, point prompts](scene{s}_point_overlay.png) "
                  f"![scene {s}, box prompts](scene{s}_box_overlay.png)", ""]
    if checkpoint is None:
        lines.append("Random weights: the masks are meaningless; the pipeline is the real one. "
                     "Pass `--checkpoint efficient_sam_vitt.pt` for real masks.")
    for stage_lines in stages:
        lines += [""] + stage_lines
    with atomic_path(report) as tmp:
        with open(tmp, "w") as f:
            f.write("\n".join(lines) + "\n")
    return report


def _shipped_config(name: str) -> str:
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "mm_configs", name)


def _missing(config: str, module: str) -> Optional[str]:
    """Why a Runner stage cannot run here, or None."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        return f"skipped: {module} is not installed (see README, Installation)"
    if not os.path.isfile(config):
        return f"skipped: {config} not found (run the quickstart from a checkout of the repository)"
    return None


def _losses(work_dir: str) -> List[Dict]:
    import glob
    import json

    scalars = sorted(glob.glob(os.path.join(work_dir, "*", "vis_data", "scalars.json")))[-1]
    return [json.loads(line) for line in open(scalars)]


def _sami_stage(out_dir: str, seed: int) -> Tuple[List[str], Optional[str]]:
    """A few SAMI iterations through the Runner with the shipped smoke config, then the backbone export."""
    config = _shipped_config("sami_pretrain_vit-ti_smoke.py")
    lines = ["## Stage: SAMI pretraining (mmengine Runner, ViT-Ti student, tiny random SAM teacher)", ""]
    why = _missing(config, "mmengine")
    if why:
        return lines + [why], None
    from PIL import Image

    from .tools.export_backbone import export_backbone
    from .tools.train import main as train_main

    images = os.path.join(out_dir, "sami_images", "all")
    os.makedirs(images, exist_ok=True)
    for i in range(8):
        Image.fromarray(make_scene(seed * 1000 + i, 96, 128)[0]).save(os.path.join(images, f"{i}.png"))
    work = os.path.join(out_dir, "sami_work_dir")
    train_main([config, "--work-dir", work, "--cfg-options",
                f"train_dataloader.dataset.data_root={os.path.dirname(images)}", "train_cfg.max_iters=20",
                "default_hooks.checkpoint.interval=20"])
    losses = [r["loss"] for r in _losses(work) if "loss" in r]
    export = os.path.join(out_dir, "sami_vit-ti.safetensors")
    export_backbone(os.path.join(work, "iter_20.pth"), export)
    return lines + [f"20 iterations on 8 generated images: loss {losses[0]:.3f} -> {losses[-1]:.3f}; "
                    f"backbone exported to `{os.path.basename(export)}` (loads into the MMDet / MMSeg / "
                    "detectron2 / HF adapters)."], export


def _finetune_stage(out_dir: str, export: Optional[str], seed: int) -> List[str]:
    """ViTDet Mask R-CNN from the exported SAMI backbone: a few MMDetection iterations + CocoMetric."""
    config = _shipped_config("vitdet_sami_ti_smoke.py")
    lines = ["## Stage: framework finetuning (MMDetection ViTDet Mask R-CNN from the SAMI export)", ""]
    why = _missing(config, "mmdet") or (None if export else "skipped: no SAMI export from the previous stage")
    if why:
        return lines + [why]
    from mmengine.config import Config

    from .data.synthetic import make_coco_instances
    from .tools.train import main as train_main

    root = os.path.join(out_dir, "coco_detection") + os.sep
    ann = make_coco_instances(root, {"train": 4, "val": 2}, size=(160, 120), seed=seed)
    cfg = Config.fromfile(config)
    cfg.model.backbone.init_cfg = dict(type="Pretrained", checkpoint=export)  # the SAMI export from stage 2
    for loader in (cfg.train_dataloader, cfg.val_dataloader, cfg.test_dataloader):
        loader.dataset.data_root = root
    cfg.val_evaluator.ann_file = ann["val"]
    resolved = os.path.join(out_dir, "vitdet_sami_ti_quickstart.py")
    cfg.dump(resolved)
    work = os.path.join(out_dir, "vitdet_work_dir")
    train_main([resolved, "--work-dir", work])
    rows = _losses(work)
    losses = [r["loss"] for r in rows if "loss" in r]
    val = [r for r in rows if "coco/segm_mAP" in r][-1]
    return lines + [f"{len(losses)} iterations: loss {losses[0]:.3f} -> {losses[-1]:.3f}; CocoMetric on 2 generated "
                    f"images: bbox mAP {val['coco/bbox_mAP']:.3f}, segm mAP {val['coco/segm_mAP']:.3f}."]


def _eval_stage(out_dir: str, predictor, seed: int) -> List[str]:
    """Zero-shot point / box mIoU and instance AP on a generated COCO set with the stage-1 model."""
    import json

    from .data.synthetic import make_coco_instances
    from .evaluation.common import predictor_segment_fn
    from .evaluation.instance_eval import evaluate_instances
    from .evaluation.point_eval import evaluate_points

    root = os.path.join(out_dir, "coco_generated")
    ann = make_coco_instances(root, {"val": 2}, size=(160, 120), seed=seed)["val"]
    img_dir = os.path.join(root, "val2017")
    segment = predictor_segment_fn(predictor)
    points = evaluate_points(segment, ann, img_dir, seed=seed, progress=False)["summary"]
    with open(ann) as f:
        gt = json.load(f)["annotations"]
    dets = os.path.join(root, "gt_boxes_as_detections.json")
    with open(dets, "w") as f:
        json.dump([dict(image_id=a["image_id"], category_id=a["category_id"], bbox=a["bbox"], score=1.0) for a in gt], f)
    ap = evaluate_instances(segment, ann, img_dir, dets, out_file=os.path.join(root, "segm_results.json"),
                            progress=False)["metrics"]
    lines = ["## Stage: zero-shot evaluation (generated COCO-format set, ground-truth boxes as detections)", "",
             "| prompt | instances | mIoU |", "|---|---|---|"]
    lines += [f"| {p} | {v['n']} | {v['all']:.1f} |" for p, v in points.items()]
    lines += ["", f"Instance segmentation (COCOeval, segm): AP {ap['AP']:.1f}, AP50 {ap['AP50']:.1f}."]
    return lines
