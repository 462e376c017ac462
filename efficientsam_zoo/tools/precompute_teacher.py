"""Precompute SAMI teacher targets for a fixed-crop image folder (the teacher dominates the cost).

    python -m efficientsam_zoo.tools.precompute_teacher mm_configs/sami_pretrain_vit-s_in1k.py \
        --data-root data/imagenet/train --out data/sami_targets_vit-h [--batch-size 32] [--device cuda]

Each image gets one fixed crop (shorter side to size/0.875, central ``size`` crop; ``size`` is the
config's student ``img_size``). The teacher (the config's ``model.teacher``) sees it, and its map is
resized to the student's token grid exactly as during training (``model.target_resize``). Written to
``--out``: ``index.json`` (image list, crop, grid, teacher), ``features.npy`` (float16 ``[N, H*W, C]``, a
memory-mapped .npy) and ``progress.json``. Interrupted runs resume where they stopped. Train on it with
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


def precompute(config: str, data_root: str, out: str, batch_size: int = 32, device: str = "cpu",
               limit: Optional[int] = None, crop_pct: float = 0.875) -> dict:
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from tqdm import tqdm

    from ..integrations.openmmlab.data import ImageFolderDataset
    from ..modeling.sami import resize_target
    from ..modeling.teachers import build_teacher
    from ..utils.io import write_json

    cfg = Config.fromfile(config)
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
    if os.path.isfile(index_path):
        old = json.load(open(index_path))
        if old != json.loads(json.dumps(index)):
            raise RuntimeError(f"{out!r} holds features of another image list / crop / teacher; use a new --out")
        done = json.load(open(prog_path))["done"] if os.path.isfile(prog_path) else 0
        feats = np.load(feat_path, mmap_mode="r+")
    else:
        feats = np.lib.format.open_memmap(feat_path, mode="w+", dtype=np.float16,
                                          shape=(len(images), grid[0] * grid[1], teacher.out_channels))
        write_json(index, index_path)
        write_json({"done": 0, "total": len(images)}, prog_path)
        done = 0
    stop = len(images) if limit is None else min(len(images), done + limit)
    with tqdm(total=len(images), initial=done, desc="teacher features", unit="img") as bar:
        while done < stop:
            end = min(done + batch_size, stop)
            batch = torch.stack([dataset[i]["inputs"] for i in range(done, end)]).float()
            x = ((batch - mean) / std).to(device)
            with torch.no_grad():
                tokens = resize_target(teacher(x).float(), grid, index["target_resize"])
            feats[done:end] = tokens.cpu().numpy().astype(np.float16)
            feats.flush()  # data first, then the progress marker that vouches for it
            done = end
            write_json({"done": done, "total": len(images)}, prog_path)
            bar.update(end - bar.n)
    return {"done": done, "total": len(images), "grid": grid, "channels": teacher.out_channels}


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("config", help="a SAMI pretraining config (its model.teacher and student size are used)")
    ap.add_argument("--data-root", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--limit", type=int, help="process at most this many more images, then stop (resumable)")
    args = ap.parse_args(argv)
    report = precompute(args.config, args.data_root, args.out, args.batch_size, args.device, args.limit)
    print(f"{report['done']}/{report['total']} images, targets {report['grid'][0]}x{report['grid'][1]}x"
          f"{report['channels']} in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
