"""Segment everything: seconds and peak memory per image by grid size, side by side.

    python benchmarks/segment_everything.py [--model efficientsam-ti] [--grids 16 32] [--size 1072 603]
                                            [--repeats 3] [--checkpoint efficient_sam_vitt.pt] [--json out.json]

Rows, each in a fresh process (peak memory = the process's max resident set):

* ``ours``: ``AutomaticMaskGenerator`` as shipped (chunks of ``points_per_batch`` against one embedding; the
  decoder upscales only the queries with a mask above ``pred_iou_thresh``; of those masks only the survivors are
  upsampled and scored for stability).
* ``ours, decoder upscales all``: the same records with every query's masks upscaled in the decoder (the order
  before ``predict_masks_above``).
* ``ours, upsample all``: the same records, plus the work the first order did on the candidates the IoU filter
  drops (upsampled to full resolution and scored for stability: what segment-anything does per chunk).
* ``decoder only``: the prompt encoder + mask decoder calls alone, the floor the others approach.

With released weights (``--checkpoint``) SAM's thresholds are used. Random weights predict other IoUs than trained
ones, so without a checkpoint ``pred_iou_thresh`` is calibrated on the image to pass ``--keep`` of the candidates
(default 0.25) and the stability filter is off. Medians of ``--repeats`` runs after one warm-up.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)

MODES = ("ours", "ours, decoder upscales all", "ours, upsample all", "decoder only")


def _calibrated(model, image, grid: int, keep: float) -> dict:
    """Thresholds that pass ``keep`` of the candidates by predicted IoU (random weights), stability filter off."""
    import numpy as np
    import torch

    from efficientsam_zoo import EfficientSamPredictor
    from efficientsam_zoo.automatic_mask_generator import point_grid

    p = EfficientSamPredictor(model)
    p.set_image(image)
    pts = point_grid(grid) * np.array([image.shape[1], image.shape[0]])
    ious = torch.cat([p.predict_low_res(torch.as_tensor(pts[i:i + 64], dtype=torch.float32)[:, None],
                                        torch.ones(len(pts[i:i + 64]), 1, dtype=torch.long))[1].flatten()
                      for i in range(0, len(pts), 64)])
    return dict(pred_iou_thresh=float(torch.quantile(ious.float(), 1.0 - keep)), stability_score_thresh=0.0)


def _one(mode: str, model_name: str, grid: int, size, repeats: int, checkpoint, keep: float) -> dict:
    import numpy as np
    import torch

    from efficientsam_zoo import build_efficient_sam
    from efficientsam_zoo.automatic_mask_generator import AutomaticMaskGenerator, point_grid, stability_score
    from efficientsam_zoo.data.synthetic import make_scene

    torch.manual_seed(0)
    model = build_efficient_sam(model_name, checkpoint=checkpoint)
    image, _ = make_scene(0, height=size[1], width=size[0], n_objects=6)
    thresholds = {} if checkpoint else _calibrated(model, image, grid, keep)
    amg = AutomaticMaskGenerator(model, points_per_side=grid, points_per_batch=64, **thresholds)
    if mode in ("ours, decoder upscales all", "ours, upsample all"):
        pred = amg.predictor

        def decode_all(point_coords, point_labels, min_iou):  # the previous orders: every query upscaled
            low, iou = pred.predict_low_res(point_coords, point_labels)
            if mode == "ours, upsample all":  # ... and every candidate upsampled and scored
                dropped = ~(iou > min_iou)
                stability_score(pred.upscale(low[dropped][:, None])[:, 0].numpy(), model.mask_threshold, 1.0)
            index = torch.nonzero((iou > min_iou).any(1)).flatten()
            return low[index], iou, index
        pred.predict_low_res_above = decode_all
    times = []
    for i in range(repeats + 1):
        t0 = time.perf_counter()
        if mode == "decoder only":
            with torch.inference_mode():
                amg.predictor.set_image(image)
                t0 = time.perf_counter()  # the embedding is not part of the decoder's floor
                pts = point_grid(grid) * np.array([size[0], size[1]])
                for j in range(0, len(pts), 64):
                    amg.predictor.predict_low_res(torch.as_tensor(pts[j:j + 64], dtype=torch.float32)[:, None],
                                                  torch.ones(len(pts[j:j + 64]), 1, dtype=torch.long))
            n = len(pts) * 3
        else:
            n = len(amg.generate(image))
        if i:
            times.append(time.perf_counter() - t0)
    upsampled = amg.stats.get("upsampled") if mode == "ours" else None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20  # KiB -> GiB
    return {"mode": mode, "grid": grid, "queries": grid * grid, "median s": round(statistics.median(times), 2),
            "peak GiB": round(peak, 2), "masks": n, "upsampled": upsampled}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="efficientsam-ti")
    p.add_argument("--grids", type=int, nargs="+", default=[16, 32])
    p.add_argument("--size", type=int, nargs=2, default=[1072, 603], metavar=("W", "H"))
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    p.add_argument("--checkpoint")
    p.add_argument("--keep", type=float, default=0.25, help="share of candidates passing the IoU filter "
                   "(random weights only)")
    p.add_argument("--json")
    p.add_argument("--_row", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args._row:
        mode, grid = args._row.rsplit(":", 1)
        print(json.dumps(_one(mode, args.model, int(grid), args.size, args.repeats, args.checkpoint, args.keep)))
        return
    rows = []
    for grid in args.grids:
        for mode in args.modes:
            cmd = [sys.executable, os.path.abspath(__file__), "--model", args.model, "--size", *map(str, args.size),
                   "--repeats", str(args.repeats), "--keep", str(args.keep), "--_row", f"{mode}:{grid}"]
            if args.checkpoint:
                cmd += ["--checkpoint", args.checkpoint]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            rows.append(json.loads(out.strip().splitlines()[-1]))
            print(rows[-1], file=sys.stderr)
    cols = ["mode", "grid", "queries", "median s", "peak GiB", "masks", "upsampled"]
    weights = "released weights" if args.checkpoint else f"random weights, IoU filter passes {args.keep:.0%}"
    print(f"{args.model}, {args.size[0]}x{args.size[1]}, {weights}")
    print("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(str(r[c]) for c in cols) + " |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
