"""Precompute SAMI teacher targets for a fixed-crop image folder (the teacher dominates the cost).

    python -m efficientsam_zoo.tools.precompute_teacher mm_configs/sami_pretrain_vit-s_in1k.py \
        --data-root data/imagenet/train --out data/sami_targets_vit-h [--batch-size 32] [--device cuda]

Each image gets one fixed crop (shorter side to size/0.875, central ``size`` crop; ``size`` is the
config's student ``img_size``). The teacher (the config's ``model.teacher``) sees it, and its map is
resized to the student's token grid exactly as during training (``model.target_resize``). Written to
``--out``: ``index.json`` (image list, crop, grid, teacher), ``features.npy`` (float16 ``[N, H*W, C]``, a
memory-mapped .npy) and ``progress.json``. Interrupted runs resume where they stopped.

Sharded across processes (one per GPU, or several machines on shared storage): each rank computes its own
contiguous slice of the image list into the one ``features.npy`` and keeps its own
``progress.<rank>-of-<world>.json``; rank and world size come from ``--rank`` / ``--world-size`` or torchrun's
``RANK`` / ``WORLD_SIZE``::

    torchrun --nproc_per_node 8 -m efficientsam_zoo.tools.precompute_teacher CONFIG --data-root ... --out ...

Resume with the same world size. Train on it with
``PrecomputedFeatureDataset`` and ``teacher=dict(type="precomputed", out_channels=C)``
(see ``mm_configs/sami_pretrain_vit-ti_precomputed_smoke.py``).
"""
from __future__ import annotations

import argparse
import json
import os
from typing import List, Optional

import numpy as np
import torch

from ..integrations.openmmlab.data import ImageFolderDataset
from ..modeling.sami import resize_target
from ..modeling.teachers import build_teacher
from ..utils.io import write_json
from .configs import resolve_config


def _create_once(path: str, make) -> None:
    """Create ``path`` with ``make(tmp)`` unless another process got there first: a hard link is atomic and never
    replaces; on file systems without hard links the first rename wins (``os.replace`` after a re-check)."""
    import tempfile

    if os.path.isfile(path):
        return
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".", suffix=".tmp", dir=os.path.dirname(path))
    os.close(fd)
    try:
        make(tmp)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        except OSError:  # no hard links here (CIFS, some FUSE mounts)
            if not os.path.isfile(path):
                os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _write_rows(path: str, offset: int, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        view = memoryview(data)
        while view:
            view = view[os.pwrite(fd, view, offset + len(data) - len(view)):]
        os.fsync(fd)
    finally:
        os.close(fd)


def precompute(config: str, data_root: str, out: str, batch_size: int = 32, device: str = "cpu",
               limit: Optional[int] = None, crop_pct: float = 0.875, rank: int = 0, world_size: int = 1) -> dict:
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from tqdm import tqdm


    cfg = Config.fromfile(resolve_config(config))  # a path or a shipped config's name
    init_default_scope("efficientsam_zoo")
    student = cfg.model.student
    size = int(student.get("img_size", 224))
    patch = int(student.get("patch_size", 16))
    grid = (size // patch, size // patch)
    teacher_cfg = cfg.model.teacher.to_dict() if hasattr(cfg.model.teacher, "to_dict") else dict(cfg.model.teacher)
    pipeline = [dict(type="LoadImageRGB"), dict(type="ResizeCenterCrop", size=size, crop_pct=crop_pct),
                dict(type="PackImageInputs")]
    dataset = ImageFolderDataset(data_root, pipeline=pipeline)
    images = [dataset.get_data_info(i)["img_path"] for i in range(len(dataset))]
    mean = torch.tensor(cfg.model.data_preprocessor.mean).view(1, 3, 1, 1)
    std = torch.tensor(cfg.model.data_preprocessor.std).view(1, 3, 1, 1)

    os.makedirs(out, exist_ok=True)
    index_path, feat_path, prog_path = (os.path.join(out, n) for n in ("index.json", "features.npy", "progress.json"))
    teacher = build_teacher(teacher_cfg).to(device)
    index = dict(images=images, size=size, crop_pct=crop_pct, grid=list(grid), channels=teacher.out_channels,
                 teacher=teacher_cfg, target_resize=cfg.model.get("target_resize", "area"))
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is not in 0..{world_size - 1} (world size {world_size})")
    if os.path.isfile(index_path) and json.load(open(index_path)) != json.loads(json.dumps(index)):
        raise RuntimeError(f"{out!r} holds features of another image list / crop / teacher; use a new --out")
    shape = (len(images), grid[0] * grid[1], teacher.out_channels)
    _create_once(feat_path, lambda tmp: np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float16, shape=shape))
    if not os.path.isfile(index_path):
        write_json(index, index_path)  # every rank writes the same content, atomically
    # rows are written with positioned writes of exactly their bytes (never through a shared memory map: on a
    # network file system a mapped page holding two ranks' rows would be written back whole by each)
    header = np.load(feat_path, mmap_mode="r")
    data_offset, row_bytes = header.offset, header[0].nbytes
    del header
    start, end_all = rank * len(images) // world_size, (rank + 1) * len(images) // world_size
    if world_size == 1:  # the one-process layout: {"done", "total"}
        def progress(n: int) -> dict:
            return {"done": n, "total": len(images)}
    else:
        prog_path = os.path.join(out, f"progress.{rank}-of-{world_size}.json")

        def progress(n: int) -> dict:
            return {"start": start, "end": end_all, "done": n}
    done = json.load(open(prog_path))["done"] if os.path.isfile(prog_path) else start
    stop = end_all if limit is None else min(end_all, done + limit)
    with tqdm(total=end_all - start, initial=done - start, desc=f"teacher features (rank {rank}/{world_size})",
              unit="img", disable=rank > 0) as bar:
        while done < stop:
            end = min(done + batch_size, stop)
            batch = torch.stack([dataset[i]["inputs"] for i in range(done, end)]).float()
            x = ((batch - mean) / std).to(device)
            with torch.no_grad():
                tokens = resize_target(teacher(x).float(), grid, index["target_resize"])
            rows = np.ascontiguousarray(tokens.cpu().numpy().astype(np.float16))
            _write_rows(feat_path, data_offset + done * row_bytes, rows.tobytes())  # data first, then the
            # progress marker that vouches for it
            done = end
            write_json(progress(done), prog_path)
            bar.update(end - start - bar.n)
    return {"done": done - start, "total": end_all - start, "grid": grid, "channels": teacher.out_channels,
            "rank": rank, "world_size": world_size}


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("config", help="a SAMI pretraining config (its model.teacher and student size are used)")
    ap.add_argument("--data-root", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--limit", type=int, help="process at most this many more images, then stop (resumable)")
    ap.add_argument("--rank", type=int, default=int(os.environ.get("RANK", 0)),
                    help="this process's slice (default: torchrun's RANK)")
    ap.add_argument("--world-size", type=int, default=int(os.environ.get("WORLD_SIZE", 1)),
                    help="number of slices (default: torchrun's WORLD_SIZE)")
    args = ap.parse_args(argv)
    if args.device == "cuda" and "LOCAL_RANK" in os.environ:  # torchrun: one GPU per process
        args.device = f"cuda:{os.environ['LOCAL_RANK']}"
    report = precompute(args.config, args.data_root, args.out, args.batch_size, args.device, args.limit,
                        rank=args.rank, world_size=args.world_size)
    where = f" (rank {args.rank} of {args.world_size})" if args.world_size > 1 else ""
    print(f"{report['done']}/{report['total']} images{where}, targets {report['grid'][0]}x{report['grid'][1]}x"
          f"{report['channels']} in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
