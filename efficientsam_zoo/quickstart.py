"""``efficientsam-zoo quickstart``: an offline end-to-end run on generated data.

Stage "segment": build an EfficientSAM model (random weights unless a checkpoint is given), draw a
few synthetic scenes with known object masks, prompt each object with its centre point and with its
box, and save overlays plus a markdown report. With random weights the masks are meaningless; the
pipeline (preprocess -> encoder -> prompts -> decoder -> postprocess -> pictures) is the real one.
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
    with atomic_path(report) as tmp:
        with open(tmp, "w") as f:
            f.write("\n".join(lines) + "\n")
    return report
