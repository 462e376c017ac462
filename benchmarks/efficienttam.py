"""EfficientTAM: time per video frame (ours vs the official code), memory-attention cost, memory on long videos.

    python benchmarks/efficienttam.py frame [--models efficienttam-ti efficienttam-s] [--frames 5] [--bf16]
                                            [--official-repo PATH] [--image-size N] [--json out.json]
    python benchmarks/efficienttam.py attention [--models efficienttam-ti efficienttam-ti-1 efficienttam-ti-2]
                                                [--memory-frames 7] [--repeats 5] [--image-size N] [--json out.json]
    python benchmarks/efficienttam.py memory [--model efficienttam-ti-512x512] [--lengths 50 500] [--image-size N]
                                             [--json out.json]

``frame``: a click on frame 0 of a generated JPEG-folder video, then ``propagate_in_video``; the time between two
yielded frames (decode, preprocess, image encoder, memory attention, decoder, memory encoder), median over the
propagated frames. Rows for our ``EfficientTamVideoPredictor`` and, with ``--official-repo`` (a clone of
``yformer/EfficientTAM``), the official predictor built from its yaml without hydra (the builder's overrides, hole
filling off: its kernel is CUDA-only), both with random weights, one after the other in this process; ``--bf16`` adds
ours under CPU bf16 autocast.

``attention``: the memory-attention stack alone (4 layers) for one frame's 64x64 tokens (1024 px) against
``--memory-frames`` memory frames and 16 object pointers -- SAM 2's full cross-attention (``efficienttam-ti``) next to
the landmark variants -- median of ``--repeats`` calls.

``memory``: peak resident memory of a whole run (load, prompt, propagate) on a generated mp4 of each length, each
run in a fresh process, with ``release_old_frames`` off (SAM 2's behaviour: every frame's outputs kept) and on.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)


def _video(folder: str, frames: int, size: int, mp4: bool = False) -> str:
    """A red square moving over shaded noise: JPEG frames in ``folder`` (or one mp4); returns the path."""
    import numpy as np
    from PIL import Image

    from efficientsam_zoo.utils.video import write_video

    rng = np.random.RandomState(0)
    yy, xx = np.mgrid[0:size, 0:size]
    bg = 110 + 30 * np.sin(xx / 23.0) * np.cos(yy / 31.0)

    def frame(t):
        img = np.stack([bg, bg * 0.9 + 10, bg * 0.8 + 20], -1) + rng.randn(size, size, 3) * 6
        x = int(size * 0.1 + (t * size // 100) % int(size * 0.6))
        img[size // 4:size // 2, x:x + size // 4] = (220, 40, 40)
        return np.clip(img, 0, 255).astype(np.uint8)

    os.makedirs(folder, exist_ok=True)
    if mp4:
        path = os.path.join(folder, "video.mp4")
        write_video(path, (frame(t) for t in range(frames)))
        return path
    for t in range(frames):
        Image.fromarray(frame(t)).save(os.path.join(folder, f"{t:05d}.jpg"), quality=95)
    return folder


def _official_predictor(repo: str, name: str, image_size: int):
    """The official video predictor from its yaml (hydra-free instantiation of the ``_target_`` tree) with the
    overrides of its ``build_efficienttam_video_predictor``."""
    import yaml

    sys.path.insert(0, repo)
    try:
        importlib.import_module("efficient_track_anything")
    except ImportError as exc:
        raise SystemExit(f"cannot import efficient_track_anything from {repo!r} ({exc}); pass a clone of "
                         "yformer/EfficientTAM") from None
    cfg_path = os.path.join(repo, "efficient_track_anything", "configs", "efficienttam", name.replace("-", "_") + ".yaml")
    cfg = yaml.safe_load(open(cfg_path))["model"]
    cfg.update(_target_="efficient_track_anything.efficienttam_video_predictor.EfficientTAMVideoPredictor",
               compile_image_encoder=False, image_size=image_size, binarize_mask_from_pts_for_mem_enc=True,
               fill_hole_area=0, sam_mask_decoder_extra_args=dict(dynamic_multimask_via_stability=True,
                                                                  dynamic_multimask_stability_delta=0.05,
                                                                  dynamic_multimask_stability_thresh=0.98))
    for part in ("self_attention", "cross_attention"):
        cfg["memory_attention"]["layer"][part]["feat_sizes"] = [image_size // 16] * 2

    def build(node):
        if isinstance(node, dict):
            node = {k: build(v) for k, v in node.items()}
            if "_target_" in node:
                module, cls = node.pop("_target_").rsplit(".", 1)
                return getattr(importlib.import_module(module), cls)(**node)
            return node
        if isinstance(node, list):
            return [build(x) for x in node]
        if isinstance(node, str) and re.fullmatch(r"[-+]?\d*\.?\d+e[-+]?\d+", node):
            return float(node)
        return node

    return build(cfg).eval()


def _per_frame(predictor, video: str, size: int) -> list:
    import torch

    with torch.inference_mode():
        state = predictor.init_state(video)
        predictor.add_new_points_or_box(state, frame_idx=0, obj_id=1, points=[[size * 0.2, size * 0.4]], labels=[1])
        times, last = [], time.perf_counter()
        for _ in predictor.propagate_in_video(state):
            now = time.perf_counter()
            times.append(now - last)
            last = now
    return times[1:]  # the first yield is the prompted frame, already computed


def bench_frame(args) -> list:
    import torch

    from efficientsam_zoo.integrations.hf import EfficientTamVideoPredictor
    from efficientsam_zoo.integrations.hf.efficienttam import build_efficienttam_video_model, efficienttam_config_for

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        video = _video(tmp, args.frames, args.image_size)
        for name in args.models:
            config = efficienttam_config_for(name, image_size=args.image_size)
            torch.manual_seed(0)
            impls = {"ours": lambda: EfficientTamVideoPredictor(build_efficienttam_video_model(config))}
            if args.bf16:
                impls["ours, bf16 autocast"] = impls["ours"]
            if args.official_repo:
                impls["official"] = lambda: _official_predictor(args.official_repo, name, args.image_size)
            for impl, make in impls.items():
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled="bf16" in impl):
                    times = _per_frame(make(), video, args.image_size)
                rows.append(dict(model=name, impl=impl, image_size=args.image_size, frames=len(times),
                                 median_s_per_frame=statistics.median(times), threads=torch.get_num_threads()))
    base = {r["model"]: r["median_s_per_frame"] for r in rows if r["impl"] == "official"}
    print("| model | implementation | s / frame (median) | frames/s | official / this |")
    print("|---|---|---|---|---|")
    for r in rows:
        ratio = base.get(r["model"], float("nan")) / r["median_s_per_frame"]
        print(f"| {r['model']} | {r['impl']} | {r['median_s_per_frame']:.3f} | {1 / r['median_s_per_frame']:.2f} | "
              f"{ratio:.2f} |")
    return rows


def bench_attention(args) -> list:
    import torch

    from efficientsam_zoo.integrations.hf import EfficientTamVideoModel
    from efficientsam_zoo.integrations.hf.efficienttam import efficienttam_config_for

    rows = []
    for name in args.models:
        torch.manual_seed(0)
        model = EfficientTamVideoModel(efficienttam_config_for(name, image_size=args.image_size))  # default init
        attention = model.memory_attention.eval()
        side = model.config.image_size // 16
        dim, mem_dim = model.config.memory_attention_hidden_size, model.config.memory_encoder_output_channels
        pointers = 16 * (dim // mem_dim)  # 16 object pointers, each split into dim / mem_dim tokens
        current = torch.randn(side * side, 1, dim)
        memory = torch.randn(args.memory_frames * side * side + pointers, 1, mem_dim)
        pos, mem_pos = torch.randn_like(current), torch.randn_like(memory)
        times = []
        with torch.inference_mode():
            for i in range(args.repeats + 1):
                start = time.perf_counter()
                attention(current_vision_features=current, memory=memory, current_vision_position_embeddings=pos,
                          memory_posision_embeddings=mem_pos, num_object_pointer_tokens=pointers)
                if i:  # the first call warms up
                    times.append(time.perf_counter() - start)
        pooling = model.config.memory_attention_landmark_pooling
        rows.append(dict(model=name, pooling=pooling or "full (SAM 2)", memory_frames=args.memory_frames,
                         memory_tokens=int(memory.shape[0]), median_ms=1000 * statistics.median(times)))
    full = next((r["median_ms"] for r in rows if r["pooling"] == "full (SAM 2)"), float("nan"))
    print("| model | memory cross-attention | memory tokens | ms (median) | x faster than full |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['pooling']} | {r['memory_tokens']} | {r['median_ms']:.0f} | "
              f"{full / r['median_ms']:.2f} |")
    return rows


def _memory_run(model: str, image_size: int, video: str, release: bool) -> dict:
    """One whole run in this process: its peak resident set and what the state kept."""
    import torch

    from efficientsam_zoo.integrations.hf import EfficientTamVideoPredictor
    from efficientsam_zoo.integrations.hf.efficienttam import build_efficienttam_video_model, efficienttam_config_for

    torch.manual_seed(0)
    config = efficienttam_config_for(model, image_size=image_size)
    predictor = EfficientTamVideoPredictor(build_efficienttam_video_model(config))
    start = time.perf_counter()
    with torch.inference_mode():
        state = predictor.init_state(video, release_old_frames=release)
        size = state.video_width
        predictor.add_new_points_or_box(state, 0, 1, points=[[size * 0.2, size * 0.4]], labels=[1])
        frames = sum(1 for _ in predictor.propagate_in_video(state))
    kept = len(state.output_dict_per_obj[0]["non_cond_frame_outputs"])
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return dict(frames=frames, kept_outputs=kept, peak_rss_mb=peak_kb / 1024, seconds=time.perf_counter() - start)


def bench_memory(args) -> list:
    from efficientsam_zoo.integrations.hf.efficienttam import efficienttam_config_for

    size = args.image_size or efficienttam_config_for(args.model).image_size
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for length in args.lengths:
            video = _video(os.path.join(tmp, str(length)), length, size, mp4=True)
            for release in (False, True):
                out = subprocess.run([sys.executable, __file__, "_memory-run", args.model, str(size), video,
                                      str(int(release))], capture_output=True, text=True)
                if out.returncode:
                    raise SystemExit(f"memory run failed:\n{out.stderr[-3000:]}")
                rows.append(dict(model=args.model, image_size=size, length=length, release_old_frames=release,
                                 **json.loads(out.stdout.strip().splitlines()[-1])))
    print("| release_old_frames | frames | outputs kept | peak RSS MiB | s | peak / shortest video's |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        first = next(q for q in rows if q["release_old_frames"] == r["release_old_frames"])
        print(f"| {'on' if r['release_old_frames'] else 'off (SAM 2)'} | {r['frames']} | {r['kept_outputs']} | "
              f"{r['peak_rss_mb']:.0f} | {r['seconds']:.0f} | {r['peak_rss_mb'] / first['peak_rss_mb']:.2f} |")
    return rows


def main(argv=None) -> list:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_memory-run"]:
        print(json.dumps(_memory_run(argv[1], int(argv[2]), argv[3], bool(int(argv[4])))))
        return []
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("frame", help="time per propagated frame, ours vs the official code")
    p.add_argument("--models", nargs="+", default=["efficienttam-ti", "efficienttam-s"])
    p.add_argument("--frames", type=int, default=5, help="video length (the first frame is prompted)")
    p.add_argument("--image-size", type=int, default=1024)
    p.add_argument("--official-repo", help="a clone of yformer/EfficientTAM, timed next to ours")
    p.add_argument("--bf16", action="store_true", help="add a row of ours under CPU bf16 autocast")
    p = sub.add_parser("attention", help="memory cross-attention: landmarks vs SAM 2's full attention")
    p.add_argument("--models", nargs="+", default=["efficienttam-ti", "efficienttam-ti-1", "efficienttam-ti-2"])
    p.add_argument("--memory-frames", type=int, default=7)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--image-size", type=int, default=1024, help="input size: (size / 16)^2 tokens per frame")
    p = sub.add_parser("memory", help="peak memory by video length")
    p.add_argument("--model", default="efficienttam-ti-512x512")
    p.add_argument("--lengths", type=int, nargs="+", default=[50, 500])
    p.add_argument("--image-size", type=int, help="the model's input size (default: the variant's)")
    for p in sub.choices.values():
        p.add_argument("--json", help="write the rows here")
    args = parser.parse_args(argv)
    if getattr(args, "frames", 3) < 2:
        parser.error("--frames must be >= 2 (frame 0 is prompted, the others are timed)")
    rows = {"frame": bench_frame, "attention": bench_attention, "memory": bench_memory}[args.what](args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return rows


if __name__ == "__main__":
    main()
