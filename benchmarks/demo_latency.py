"""The demo's click latency: the first click on an image (embedding + decoder) against the next ones (decoder only,
the embedding kept), through the demo's backend.

    python benchmarks/demo_latency.py [--model efficientsam-ti] [--images 3] [--clicks 5] [--size 768 1024]
                                      [--json out.json]

Random weights (time does not depend on them); a generated scene per image; medians over the images (first click)
and over every further click.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="efficientsam-ti")
    parser.add_argument("--images", type=int, default=3)
    parser.add_argument("--clicks", type=int, default=5, help="clicks per image (the first one embeds)")
    parser.add_argument("--size", type=int, nargs=2, default=[768, 1024], metavar=("H", "W"))
    parser.add_argument("--img-size", type=int, help="the model's input size (default: the variant's, 1024)")
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    if args.clicks < 2:
        parser.error("--clicks must be >= 2 (the first click embeds the image, the others are compared with it)")
    import numpy as np
    import torch

    from efficientsam_zoo.build import build_efficient_sam
    from efficientsam_zoo.data.synthetic import make_scene
    from efficientsam_zoo.demo import DemoBackend

    torch.manual_seed(0)
    overrides = {"img_size": args.img_size} if args.img_size else {}
    backend = DemoBackend(build_efficient_sam(args.model, **overrides), work_dir=tempfile.mkdtemp())
    rng = np.random.default_rng(0)
    first, later = [], []
    with torch.inference_mode():
        for i in range(args.images):
            image, _ = make_scene(7_000_000 + i, *args.size)
            for k in range(args.clicks):
                points = [(float(rng.uniform(0, args.size[1])), float(rng.uniform(0, args.size[0])), 1)
                          for _ in range(k + 1)]
                start = time.perf_counter()
                backend.segment(image, points)
                (first if k == 0 else later).append(time.perf_counter() - start)
    row = dict(model=args.model, image=f"{args.size[1]}x{args.size[0]}", threads=torch.get_num_threads(),
               first_click_s=statistics.median(first), later_click_s=statistics.median(later),
               embeddings_computed=backend.embeddings_computed)
    row["ratio"] = row["later_click_s"] / row["first_click_s"]
    print("| model | image | first click s (median) | later clicks s (median) | later / first |")
    print("|---|---|---|---|---|")
    print(f"| {row['model']} | {row['image']} | {row['first_click_s']:.3f} | {row['later_click_s']:.3f} | "
          f"{row['ratio']:.3f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(row, f, indent=1)
    return row


if __name__ == "__main__":
    main()
