"""Milliseconds per SA-1B sample read from tar shards of different sizes: the cost must not grow with the shard.

    python benchmarks/sa1b_read.py [--sizes 100 2000] [--samples 200] [--json out.json]

Generated shards (SA-1B layout, 160x120 scenes). For each shard size: the one-time index build (a pass over
the member headers), the load of the cached index (``<shard>.index.json``), and the median time of
``SA1BIndex.read`` (image bytes + JSON record) and of a full ``SA1BSamples`` item (decode, masks, resize)
over random samples.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from efficientsam_zoo.data.sa1b import SA1BIndex, SA1BSamples  # noqa: E402
from efficientsam_zoo.data.synthetic import make_sa1b_shards  # noqa: E402


def _median_ms(fn, indices) -> float:
    times = []
    for i in indices:
        t0 = time.perf_counter()
        fn(int(i))
        times.append(time.perf_counter() - t0)
    return 1000.0 * statistics.median(times)


def bench(n_images: int, samples: int, root: str) -> dict:
    (shard,) = make_sa1b_shards(os.path.join(root, str(n_images)), n_shards=1, images_per_shard=n_images)
    t0 = time.perf_counter()
    SA1BIndex([shard])
    build = time.perf_counter() - t0
    t0 = time.perf_counter()
    index = SA1BIndex([shard])
    cached = time.perf_counter() - t0
    idx = np.random.default_rng(0).integers(0, n_images, samples)
    ds = SA1BSamples([shard], img_size=256, max_masks=8)
    return {"images per shard": n_images, "shard MiB": round(os.path.getsize(shard) / 2 ** 20, 1),
            "index build s": round(build, 3), "cached index s": round(cached, 3),
            "read ms": round(_median_ms(index.read, idx), 3),
            "sample ms": round(_median_ms(ds.__getitem__, idx), 3)}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[100, 2000])
    p.add_argument("--samples", type=int, default=200)
    p.add_argument("--json")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as root:
        rows = [bench(n, args.samples, root) for n in args.sizes]
    cols = list(rows[0])
    print("| " + " | ".join(cols) + " | read ms / smallest |")
    print("|" + "---|" * (len(cols) + 1))
    for r in rows:
        print("| " + " | ".join(str(r[c]) for c in cols) + f" | {r['read ms'] / rows[0]['read ms']:.2f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
