"""EfficientSAM throughput, side by side: images/s at 1024x1024 with one box prompt (paper Table 8 setting).

    python benchmarks/throughput.py [--models efficientsam-ti efficientsam-s] [--paths fast reference]
        [--dtypes fp32 bf16 fp16] [--batches 1 8] [--compile] [--cuda-graphs] [--decoder-queries 64]
        [--device cpu|cuda] [--repeats 5] [--official-repo PATH] [--json rows.json]

Paths, timed in one run on the same inputs:
  fast       this package: fused SDPA attention, one shared copy of the image tokens in the decoder,
             optional autocast (bf16 / fp16) and torch.compile (--compile adds compiled rows);
  reference  the release's arithmetic in this package: eager fp32, attention as matmul-softmax-matmul,
             the image embedding copied once per query;
  official   the official EfficientSAM code from a local clone (--official-repo), eager fp32.
Each row is one end-to-end forward (stretch + normalise, encoder, prompt encoder, decoder, bicubic
upsampling). Random weights. Median of --repeats timed runs after --warmup; CUDA runs synchronise before
reading the clock. Peak memory: CUDA's max_memory_allocated; on CPU the growth of the process's resident
memory during one extra, untimed call (sampled every ms). The last table gives fast / reference.

JSON rows: model, path (fast / reference / official), scope ("model": the whole forward, images_per_s;
"prompt_side": --decoder-queries rows, prompts_per_s, queries), compiled, cuda_graphs, device, dtype, batch,
median_s, peak_mem_mb, repeats.

--cuda-graphs (CUDA only) adds `fast+cudagraph` rows: the same forward with the prompt side replayed from a
CUDA graph (modeling/cuda_graph.py). --decoder-queries Q adds a prompt-side table: Q box prompts decoded
against one stored embedding (what a predictor or segment-everything does per call), prompts/s, eager and,
with --cuda-graphs, replayed.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from typing import Callable, Dict, List, Optional

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from efficientsam_zoo import build_efficient_sam  # noqa: E402
from efficientsam_zoo.modeling.efficient_sam import use_reference_arithmetic  # noqa: E402
from efficientsam_zoo.registry import EFFICIENT_SAM_NAMES, get_spec  # noqa: E402

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def _official_builder(repo: str) -> Callable[[str], torch.nn.Module]:
    """The official ``build_efficient_sam`` from a local clone, checked before anything is timed."""
    sys.path.insert(0, repo)
    try:
        from efficient_sam.efficient_sam import build_efficient_sam as official_build
    except ImportError as exc:
        raise SystemExit(f"--official-repo {repo!r}: cannot import efficient_sam.efficient_sam ({exc}); "
                         "pass the root of a clone of the official EfficientSAM repository") from exc

    def build(name: str) -> torch.nn.Module:
        spec = get_spec(name)
        dim, heads = spec.embed_dim, spec.num_heads
        return official_build(encoder_patch_embed_dim=dim, encoder_num_heads=heads, checkpoint=None).eval()

    return build


def _inputs(batch: int, device: str):
    images = torch.rand(batch, 3, 1024, 1024, device=device)
    points = torch.tensor([[[[200.0, 300.0], [700.0, 800.0]]]], device=device).expand(batch, 1, 2, 2).contiguous()
    labels = torch.tensor([[[2, 3]]], device=device).expand(batch, 1, 2).contiguous()
    return images, points, labels


def median_time(step: Callable[[], None], device: str, warmup: int, repeats: int) -> float:
    """Median wall time of ``step`` over ``repeats`` runs after ``warmup`` (CUDA synchronised)."""
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    for _ in range(warmup):
        step()
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _rss_bytes() -> Optional[int]:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None  # not Linux


def cpu_peak_mem_mb(step: Callable[[], None], interval_s: float = 0.001) -> Optional[float]:
    """Peak resident-memory growth (MiB) during one call of ``step``, sampled every ``interval_s``.

    Freed heap memory is handed back to the OS first (glibc ``malloc_trim``) so the starting level is
    what is really live. ``None`` where /proc is missing.
    """
    import ctypes
    import threading

    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    base = _rss_bytes()
    if base is None:
        return None
    peak, done = [base], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], _rss_bytes())
            time.sleep(interval_s)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        step()
    finally:
        done.set()
        sampler.join()
    return (max(peak[0], _rss_bytes()) - base) / 2**20


def _graph_decoder(model):
    from efficientsam_zoo.modeling.cuda_graph import CUDAGraphDecoder

    return CUDAGraphDecoder(model.eval())


def measure(step: Callable[[], None], device: str, warmup: int, repeats: int):
    """(median seconds, peak MiB: CUDA max allocated, or CPU resident growth; None if unmeasurable)."""
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    med = median_time(step, device, warmup, repeats)
    if device.startswith("cuda"):
        return med, torch.cuda.max_memory_allocated() / 2**20
    return med, cpu_peak_mem_mb(step)  # one more, untimed call: the sampler does not disturb the timings


def _autocast(device: str, dtype: str):
    return torch.autocast(device_type=torch.device(device).type, dtype=DTYPES[dtype], enabled=dtype != "fp32")


def run_row(model, name: str, path: str, dtype: str, batch: int, device: str, compiled: bool, warmup: int,
            repeats: int, cuda_graphs: bool = False) -> Dict:
    images, points, labels = _inputs(batch, device)
    if cuda_graphs:  # encoder eager or compiled, prompt side replayed; same outputs as model(...)
        decode = _graph_decoder(model)
        encode = torch.compile(model.get_image_embeddings) if compiled else model.get_image_embeddings
        h, w = images.shape[-2:]

        def fn(imgs, pts, lbls):
            return decode(encode(imgs), pts, lbls, True, h, w, h, w)
    else:
        fn = torch.compile(model) if compiled else model

    def step():
        with torch.inference_mode(), _autocast(device, dtype):
            fn(images, points, labels)

    med, peak = measure(step, device, warmup + (1 if compiled or cuda_graphs else 0), repeats)
    return dict(model=name, path=path, scope="model", compiled=compiled, cuda_graphs=cuda_graphs, device=device,
                dtype=dtype, batch=batch, images_per_s=batch / med, median_s=med, peak_mem_mb=peak, repeats=repeats)


def run_decoder_row(model, name: str, dtype: str, queries: int, device: str, cuda_graphs: bool, warmup: int,
                    repeats: int) -> Dict:
    """``queries`` box prompts against one stored embedding: the prompt side alone (low-res logits)."""
    images, _, _ = _inputs(1, device)
    h, w = images.shape[-2:]
    g = torch.Generator().manual_seed(0)
    corners = torch.rand(1, queries, 2, 2, generator=g).sort(dim=2).values * torch.tensor([float(w), float(h)])
    points = corners.to(device)
    labels = torch.tensor([2, 3], device=device).expand(1, queries, 2).contiguous()
    with torch.inference_mode(), _autocast(device, dtype):
        emb = model.get_image_embeddings(images)
    decode = _graph_decoder(model) if cuda_graphs else model.predict_masks

    def step():
        with torch.inference_mode(), _autocast(device, dtype):
            decode(emb, points, labels, True, h, w)

    med, peak = measure(step, device, warmup + (1 if cuda_graphs else 0), repeats)
    return dict(model=name, path="fast", scope="prompt_side", compiled=False, cuda_graphs=cuda_graphs,
                device=device, dtype=dtype, batch=1, queries=queries, prompts_per_s=queries / med, median_s=med,
                peak_mem_mb=peak, repeats=repeats)


def variant(row: Dict) -> str:
    """``fast``, ``fast+compile``, ``fast+cudagraph``, ... for the printed tables."""
    return row["path"] + ("+compile" if row.get("compiled") else "") + ("+cudagraph" if row.get("cuda_graphs") else "")


def main(argv: Optional[List[str]] = None) -> List[Dict]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=EFFICIENT_SAM_NAMES, choices=EFFICIENT_SAM_NAMES)
    ap.add_argument("--paths", nargs="+", default=["fast", "reference"], choices=["fast", "reference", "official"])
    ap.add_argument("--dtypes", nargs="+", default=["fp32", "bf16"], choices=sorted(DTYPES))
    ap.add_argument("--batches", nargs="+", type=int, default=[1])
    ap.add_argument("--compile", action="store_true", help="also time torch.compile'd fast-path rows")
    ap.add_argument("--cuda-graphs", action="store_true",
                    help="also time fast-path rows with the prompt side replayed from CUDA graphs (CUDA only)")
    ap.add_argument("--decoder-queries", type=int, default=0, metavar="Q",
                    help="also time the prompt side alone: Q box prompts against one stored embedding")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--official-repo", help="root of a clone of the official EfficientSAM code")
    ap.add_argument("--json", help="write the rows as a JSON list")
    args = ap.parse_args(argv)
    if "official" in args.paths and not args.official_repo:
        ap.error("--paths official needs --official-repo PATH")
    if args.official_repo and "official" not in args.paths:
        args.paths.append("official")
    build_official = _official_builder(args.official_repo) if args.official_repo else None
    if args.cuda_graphs and not args.device.startswith("cuda"):
        ap.error(f"--cuda-graphs needs a CUDA device (--device is {args.device!r})")
    if args.decoder_queries < 0:
        ap.error("--decoder-queries must be >= 0")
    dev_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else (platform.processor() or
                                                                                     platform.machine())
    print(f"# {args.device} ({dev_name}), torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
    rows = []
    for name in args.models:
        for path in args.paths:
            if path == "official":
                model = build_official(name).to(args.device)
            else:
                model = build_efficient_sam(name).to(args.device)
                use_reference_arithmetic(model, path == "reference")
            dtypes = args.dtypes if path == "fast" else ["fp32"]
            for dtype in dtypes:
                if dtype == "fp16" and not args.device.startswith("cuda"):
                    continue
                for batch in args.batches:
                    modes = [(False, False)]
                    if path == "fast":
                        modes += [(True, False)] if args.compile else []
                        modes += [(c, True) for c, _ in list(modes)] if args.cuda_graphs else []
                    for compiled, graphs in modes:
                        row = run_row(model, name, path, dtype, batch, args.device, compiled, args.warmup,
                                      args.repeats, graphs)
                        rows.append(row)
                        print(f"  {name} {variant(row)} {dtype} b{batch}: {row['images_per_s']:.2f} img/s", flush=True)
                if path == "fast" and args.decoder_queries:
                    for graphs in [False, True] if args.cuda_graphs else [False]:
                        row = run_decoder_row(model, name, dtype, args.decoder_queries, args.device, graphs,
                                              args.warmup, args.repeats)
                        rows.append(row)
                        print(f"  {name} {variant(row)} {dtype} q{row['queries']}: {row['prompts_per_s']:.1f} "
                              "prompts/s", flush=True)
            del model

    def peak(r):
        return f"{r['peak_mem_mb']:.0f}" if r["peak_mem_mb"] is not None else "-"

    print("\n| model | path | dtype | batch | images/s | median s | peak MiB |")
    print("|---|---|---|---|---|---|---|")
    model_rows = [r for r in rows if r["scope"] == "model"]
    for r in model_rows:
        print(f"| {r['model']} | {variant(r)} | {r['dtype']} | {r['batch']} | {r['images_per_s']:.2f} | "
              f"{r['median_s']:.3f} | {peak(r)} |")
    decoder_rows = [r for r in rows if r["scope"] == "prompt_side"]
    if decoder_rows:
        print("\n| model | path | dtype | prompts per call | prompts/s | median ms | peak MiB |")
        print("|---|---|---|---|---|---|---|")
        for r in decoder_rows:
            print(f"| {r['model']} | {variant(r)} | {r['dtype']} | {r['queries']} | {r['prompts_per_s']:.1f} | "
                  f"{1000 * r['median_s']:.2f} | {peak(r)} |")
    refs = {(r["model"], r["batch"]): r["images_per_s"] for r in model_rows if r["path"] == "reference"}
    if refs:
        print("\n| model | path | dtype | batch | x reference (eager fp32) |")
        print("|---|---|---|---|---|")
        for r in model_rows:
            if r["path"] != "reference" and (r["model"], r["batch"]) in refs:
                print(f"| {r['model']} | {variant(r)} | {r['dtype']} | {r['batch']} | "
                      f"{r['images_per_s'] / refs[(r['model'], r['batch'])]:.2f} |")
    if args.json:
        from efficientsam_zoo.utils.io import write_json

        write_json(rows, args.json, indent=2)
    return rows


if __name__ == "__main__":
    main()
