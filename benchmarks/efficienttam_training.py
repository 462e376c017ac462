"""EfficientTAM training cost on this machine: time per clip (forward + backward + optimiser step of SAM 2's recipe,
``integrations.hf.efficienttam_training``) and peak memory, for Ti and S; and what that means for SA-V.

    python benchmarks/efficienttam_training.py [--models efficienttam-ti efficienttam-s] [--img-size 1024]
                                               [--frames 8] [--objects 3] [--repeats 3] [--json out.json]

Each model runs in a fresh process (its peak resident memory is the row's) on generated moving-shapes clips with
random weights (time does not depend on them), the interaction of SAM 2's recipe (``InteractionSettings()``: 7
correction clicks on up to 2 frames). Medians over ``--repeats`` steps after one warm-up step. The SA-V column is
arithmetic, not a measurement: SA-V's 50.9K training videos x 40 epochs (SAM 2's recipe) at one clip per GPU and
step, divided over 8 GPUs, at this machine's time per clip.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)
SAV_VIDEOS, EPOCHS, GPUS = 50_900, 40, 8


def _row(name: str, size: int, frames: int, objects: int, repeats: int) -> dict:
    import resource
    import time

    import torch

    from efficientsam_zoo.data.synthetic import make_moving_shapes
    from efficientsam_zoo.integrations.hf import EfficientTamVideoModel, efficienttam_config_for
    from efficientsam_zoo.integrations.hf.efficienttam_training import clip_losses

    torch.manual_seed(0)
    model = EfficientTamVideoModel(efficienttam_config_for(name, image_size=size)).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-6)
    times = []
    for step in range(repeats + 1):
        video, masks = make_moving_shapes(step, frames, size, size, n_objects=objects)
        x = (torch.tensor(video).permute(0, 3, 1, 2).float() / 255 - 0.45) / 0.225
        gt = torch.tensor(masks)[:, :objects]
        valid = gt[0].flatten(1).any(1)[None]
        start = time.perf_counter()
        loss = clip_losses(model, x[None], gt[None], valid, [torch.Generator().manual_seed(step)])["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step:  # the first step warms up
            times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    return {"model": name, "img_size": size, "frames": frames, "objects": objects, "s_per_clip": seconds,
            "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20,
            "sa_v_days_8_workers": seconds * SAV_VIDEOS * EPOCHS / GPUS / 86400}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=["efficienttam-ti", "efficienttam-s"])
    ap.add_argument("--img-size", type=int, default=1024)
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--objects", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json")
    ap.add_argument("--row", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.row:
        print(json.dumps(_row(args.row, args.img_size, args.frames, args.objects, args.repeats)))
        return
    rows = []
    for name in args.models:
        cmd = [sys.executable, __file__, "--row", name, "--img-size", str(args.img_size), "--frames",
               str(args.frames), "--objects", str(args.objects), "--repeats", str(args.repeats)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
    print(f"| model | size | frames x objects | s / clip (median of {args.repeats}) | peak RSS GiB | SA-V x {EPOCHS} "
          f"epochs on {GPUS} such workers (days) |\n|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['img_size']} | {r['frames']} x {r['objects']} | {r['s_per_clip']:.2f} | "
              f"{r['peak_rss_gib']:.2f} | {r['sa_v_days_8_workers']:.0f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
