"""Images/s of EfficientSAM-Ti / -S at 1024x1024 with one box prompt (the paper's Table 8 setting).

    python benchmarks/encoder_throughput.py [--models efficientsam-ti efficientsam-s] [--dtypes fp32 bf16]
                                            [--device cpu|cuda] [--batch 1] [--repeats 5] [--json out.json]

Each row: one end-to-end forward (preprocess + image encoder + prompt encoder + mask decoder +
bicubic upsampling to the input size) of a batch of 1024x1024 images, each with one box.
Random weights: speed does not depend on the values. Median of ``--repeats`` timed runs after
``--warmup`` untimed ones; CUDA timings synchronise before reading the clock.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from efficientsam_zoo import build_efficient_sam  # noqa: E402

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def bench(model_name: str, dtype: str, device: str, batch: int, warmup: int, repeats: int) -> dict:
    model = build_efficient_sam(model_name).to(device)
    images = torch.rand(batch, 3, 1024, 1024, device=device)
    points = torch.tensor([[[[200.0, 300.0], [700.0, 800.0]]]], device=device).expand(batch, 1, 2, 2)
    labels = torch.tensor([[[2, 3]]], device=device).expand(batch, 1, 2)
    autocast = torch.autocast(device_type=torch.device(device).type, dtype=DTYPES[dtype], enabled=dtype != "fp32")

    def step():
        with torch.inference_mode(), autocast:
            model(images, points, labels)
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    for _ in range(warmup):
        step()
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    peak = torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else float("nan")
    return dict(model=model_name, path="fast", device=device, dtype=dtype, batch=batch,
                images_per_s=batch / med, median_s=med, peak_mem_mb=peak, repeats=repeats)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=["efficientsam-ti", "efficientsam-s"])
    ap.add_argument("--dtypes", nargs="+", default=["fp32", "bf16"], choices=sorted(DTYPES))
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", help="also write the rows as a JSON list")
    args = ap.parse_args()

    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else platform.processor() or platform.machine()
    print(f"# {args.device} ({name}), torch {torch.__version__}, {torch.get_num_threads()} threads")
    rows = [bench(m, d, args.device, args.batch, args.warmup, args.repeats) for m in args.models for d in args.dtypes]
    print(f"| {'model':<16} | dtype | batch | images/s | median s | peak MiB (CUDA) |")
    print(f"|{'-' * 18}|-------|-------|----------|----------|----------------|")
    for r in rows:
        print(f"| {r['model']:<16} | {r['dtype']:<5} | {r['batch']:>5} | {r['images_per_s']:>8.2f} | "
              f"{r['median_s']:>8.3f} | {'-' if r['peak_mem_mb'] != r['peak_mem_mb'] else round(r['peak_mem_mb']):>14} |")
    if args.json:
        from efficientsam_zoo.utils.io import atomic_path

        with atomic_path(args.json) as tmp, open(tmp, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
