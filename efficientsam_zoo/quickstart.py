"""``efficientsam-zoo quickstart``: an offline end-to-end run on generated data.

Stage "segment": build an EfficientSAM model (random weights unless a checkpoint is given), draw a
few synthetic scenes with known object masks, prompt each object with its centre point and with its
box, and save overlays plus a markdown report. With random weights the masks are meaningless; the
pipeline (preprocess -> encoder -> prompts -> decoder -> postprocess -> pictures) is the real one.

Stage "sami": a short SAMI pretraining run through mmengine's Runner (the shipped smoke config: ViT-Ti
student, tiny random SAM teacher) on generated images, then the backbone export.

Stage "evaluate": the zero-shot protocols (box / point mIoU, instance AP with COCOeval) on a generated
COCO-format set, with the stage-1 model.
"""
from __future__ import annotations

import os
import time
from typing import Dict, List, Optional, Tuple

import numpy as np

__all__ = ["make_scene", "run_quickstart"]


def make_scene(seed: int, height: int = 240, width: int = 320) -> Tuple[np.ndarray, List[np.ndarray]]:
    """A generated RGB scene (uint8) and the boolean masks of the objects drawn in it."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([xx / width * 120 + 40, yy / height * 120 + 40, np.full_like(xx, 90.0)], axis=-1)
    base += rng.normal(0, 8, size=base.shape)
    pic = Image.fromarray(base.clip(0, 255).astype(np.uint8))
    masks = []
    for k in range(3):
        layer = Image.new("L", (width, height), 0)
        draw = ImageDraw.Draw(layer)
        cx, cy = rng.uniform(0.2, 0.8) * width, rng.uniform(0.2, 0.8) * height
        rx, ry = rng.uniform(0.08, 0.18) * width, rng.uniform(0.08, 0.18) * height
        shape = [cx - rx, cy - ry, cx + rx, cy + ry]
        (draw.ellipse if k % 2 == 0 else draw.rectangle)(shape, fill=255)
        mask = np.asarray(layer) > 0
        for earlier in masks:  # later objects occlude earlier ones
            earlier &= ~mask
        masks.append(mask)
        color = tuple(int(c) for c in rng.integers(0, 255, size=3))
        pic.paste(Image.new("RGB", (width, height), color), mask=layer)
    return np.asarray(pic), [m for m in masks if m.any()]


def _centre_point(mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    k = int(np.argmin((xs - xs.mean()) ** 2 + (ys - ys.mean()) ** 2))  # a pixel of the mask near its centroid
    return np.array([[xs[k], ys[k]]], dtype=np.float32)


def _box(mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    return np.array([xs.min(), ys.min(), xs.max(), ys.max()], dtype=np.float32)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def run_quickstart(out_dir: str, model: str = "efficientsam-ti", checkpoint: Optional[str] = None,
                   device: str = "cpu", seed: int = 0, num_scenes: int = 2) -> str:
    import torch

    from .build import build_efficient_sam
    from .predictor import EfficientSamPredictor
    from .utils.io import atomic_path, save_png
    from .visualize import overlay_masks

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
                    bx = _box(gt)
                    out, scores, _ = predictor.predict(box=bx)
                    prompts.append(bx)
                best = int(np.argmax(scores))
                preds.append(out[best])
                rows.append(dict(scene=s, prompt=prompt, score=float(scores[best]), iou=_iou(out[best], gt),
                                 embed_s=embed_s))
            name = f"scene{s}_{prompt}_overlay.png"
            if prompt == "point":
                pic = overlay_masks(image, preds, points=np.concatenate(prompts), labels=np.ones(len(prompts)))
            else:
                pic = overlay_masks(image, preds, boxes=np.stack(prompts))
            save_png(pic, os.path.join(out_dir, name))

    stages = [_sami_stage(out_dir, seed), _eval_stage(out_dir, predictor, seed)]

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


def _sami_stage(out_dir: str, seed: int) -> List[str]:
    """A few SAMI iterations through the Runner with the shipped smoke config, then the backbone export."""
    config = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "mm_configs",
                          "sami_pretrain_vit-ti_smoke.py")
    lines = ["## Stage: SAMI pretraining (mmengine Runner, ViT-Ti student, tiny random SAM teacher)", ""]
    try:
        import mmengine  # noqa: F401
    except ImportError:
        return lines + ["skipped: mmengine is not installed (pip install 'efficientsam-zoo[mmdet]')"]
    if not os.path.isfile(config):
        return lines + [f"skipped: {config} not found (run the quickstart from a checkout of the repository)"]
    import json
    import glob

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
    scalars = sorted(glob.glob(os.path.join(work, "*", "vis_data", "scalars.json")))[-1]
    losses = [json.loads(x)["loss"] for x in open(scalars) if '"loss"' in x]
    export = os.path.join(out_dir, "sami_vit-ti.safetensors")
    export_backbone(os.path.join(work, "iter_20.pth"), export)
    return lines + [f"20 iterations on 8 generated images: loss {losses[0]:.3f} -> {losses[-1]:.3f}; "
                    f"backbone exported to `{os.path.basename(export)}` (loads into the MMDet / MMSeg / "
                    "detectron2 / HF adapters)."]


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
