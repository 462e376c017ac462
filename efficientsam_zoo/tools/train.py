"""Train with mmengine's Runner from a config, like OpenMMLab's ``tools/train.py``.

    python -m efficientsam_zoo.tools.train CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
                                           [--auto-scale-lr] [--cfg-options k=v ...] [--launcher pytorch]

Multi-GPU: ``torchrun --nproc_per_node 8 -m efficientsam_zoo.tools.train CONFIG --launcher pytorch``.
"""
from __future__ import annotations

import argparse
import os
import os.path as osp
from typing import List, Optional


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    from mmengine.config import DictAction

    parser = argparse.ArgumentParser(description="Train a model with mmengine's Runner")
    parser.add_argument("config", help="train config file path")
    parser.add_argument("--work-dir", help="the dir to save logs and checkpoints")
    parser.add_argument("--resume", nargs="?", type=str, const="auto",
                        help="resume from this checkpoint, or from the latest one in the work dir if no path is given")
    parser.add_argument("--amp", action="store_true", help="automatic mixed precision (AmpOptimWrapper)")
    parser.add_argument("--auto-scale-lr", action="store_true", help="scale the lr by the real batch size")
    parser.add_argument("--cfg-options", nargs="+", action=DictAction, help="override config settings, key=value")
    parser.add_argument("--launcher", choices=["none", "pytorch", "slurm", "mpi"], default="none")
    parser.add_argument("--local_rank", "--local-rank", type=int, default=0)
    args = parser.parse_args(argv)
    if "LOCAL_RANK" not in os.environ:
        os.environ["LOCAL_RANK"] = str(args.local_rank)
    return args


def build_cfg(args: argparse.Namespace):
    from mmengine.config import Config

    if not osp.isfile(args.config):
        raise FileNotFoundError(f"config {args.config!r} does not exist")
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get("work_dir", None) is None:
        cfg.work_dir = osp.join("./work_dirs", osp.splitext(osp.basename(args.config))[0])
    if args.amp:
        cfg.optim_wrapper.type = "AmpOptimWrapper"
        cfg.optim_wrapper.setdefault("loss_scale", "dynamic")
    if args.auto_scale_lr:
        if "auto_scale_lr" not in cfg or "base_batch_size" not in cfg.auto_scale_lr:
            raise ValueError("--auto-scale-lr needs auto_scale_lr = dict(base_batch_size=...) in the config")
        cfg.auto_scale_lr.enable = True
    if args.resume == "auto":
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        cfg.resume, cfg.load_from = True, args.resume
    return cfg


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    cfg = build_cfg(args)
    if cfg.get("resume", False) or cfg.get("load_from", None):
        # mmengine reads its own checkpoints (optimizer, message hub) with a plain torch.load, which
        # torch >= 2.6 restricts to weights; these files are written by this very trainer. Weights we
        # load ourselves (official, SAMI, HF) always pass weights_only=True explicitly, which this
        # variable does not override.
        os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner

    runner = Runner.from_cfg(cfg) if "runner_type" not in cfg else RUNNERS.build(cfg)
    runner.train()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
