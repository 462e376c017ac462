"""Train with mmengine's Runner from a config, like OpenMMLab's ``tools/train.py``.

    python -m efficientsam_zoo.tools.train CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
                                           [--auto-scale-lr] [--cfg-options k=v ...] [--launcher pytorch]
                                           [--trust-checkpoint FILE] [--cpu-smoke IMAGE_DIR]

``CONFIG`` is a path or the name of a shipped config (``vitdet_sami_s``, ``sami_pretrain_vit-s_in1k``).
Multi-GPU: ``torchrun --nproc_per_node 8 -m efficientsam_zoo.tools.train CONFIG --launcher pytorch``; the same
command with CPU processes uses gloo. ``--resume`` without a path continues from the latest complete checkpoint in
the work dir (checkpoints are written atomically; see ``integrations.openmmlab.runtime``).
"""
from __future__ import annotations

import argparse
import os
import os.path as osp
from typing import List, Optional

from ..integrations.openmmlab.runtime import (install_checkpoint_io, latest_checkpoint, rng_state_hook,
                                              sample_recorder_hook, setup_cpu_distributed)
from ..utils.dist import end_process_group
from .configs import SMOKE_ITERS, cpu_smoke, resolve_config


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    from mmengine.config import DictAction

    parser = argparse.ArgumentParser(description="Train a model with mmengine's Runner")
    parser.add_argument("config", help="train config file path, or the name of a shipped config")
    parser.add_argument("--work-dir", help="the dir to save logs and checkpoints")
    parser.add_argument("--resume", nargs="?", type=str, const="auto",
                        help="resume from this checkpoint, or from the latest one in the work dir if no path is given")
    parser.add_argument("--amp", action="store_true", help="automatic mixed precision (AmpOptimWrapper)")
    parser.add_argument("--auto-scale-lr", action="store_true", help="scale the lr by the real batch size")
    parser.add_argument("--cfg-options", nargs="+", action=DictAction, help="override config settings, key=value")
    parser.add_argument("--launcher", choices=["none", "pytorch", "slurm", "mpi"], default="none")
    parser.add_argument("--record-samples", metavar="DIR",
                        help="write the samples each process trains on to DIR/samples_rank<N>.jsonl (data sharding)")
    parser.add_argument("--trust-checkpoint", action="append", default=[], metavar="FILE",
                        help="unpickle this checkpoint in full although it is outside the work dir (only files you "
                             "trust: unpickling runs code)")
    parser.add_argument("--cpu-smoke", metavar="IMAGE_DIR",
                        help="run a CPU-sized variant of a SAMI / MAE pretraining config on the images in IMAGE_DIR "
                             f"(a 6-block ViT-Ti at 128 px, tiny random teacher, {SMOKE_ITERS} iterations; the "
                             "config's mask ratio, loss, decoder and target are kept)")
    parser.add_argument("--local_rank", "--local-rank", type=int, default=0)
    args = parser.parse_args(argv)
    if args.launcher != "none" and "LOCAL_RANK" not in os.environ:  # torch.distributed.launch passes --local-rank
        os.environ["LOCAL_RANK"] = str(args.local_rank)
    return args


def build_cfg(args: argparse.Namespace):
    from mmengine.config import Config

    if isinstance(args.config, Config):
        cfg, args.config = args.config, args.config.filename or "config.py"
    else:
        args.config = resolve_config(args.config)
        cfg = Config.fromfile(args.config)
    if getattr(args, "cpu_smoke", None):

        cfg = cpu_smoke(cfg, args.cpu_smoke)
        args.config = osp.splitext(args.config)[0] + "_cpu-smoke.py"  # the default work dir's name
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

        found = latest_checkpoint(cfg.work_dir)
        cfg.resume, cfg.load_from = found is not None, found
        print(f"resuming from {found}" if found else f"no checkpoint in {cfg.work_dir} yet: starting from scratch")
    elif args.resume is not None:
        cfg.resume, cfg.load_from = True, args.resume
    return cfg


def build_runner(argv: Optional[List[str]] = None, cfg=None):
    """The Runner ``main`` would train (command-line arguments as ``main`` takes them); ``cfg`` (a ``Config``)
    replaces the config file, e.g. one edited in code. Checkpoint I/O and CPU multi-processing are set up."""
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner

    args = parse_args(argv)
    if cfg is not None:
        args.config = cfg
    cfg = build_cfg(args)
    install_checkpoint_io(cfg.work_dir, trusted=args.trust_checkpoint)
    setup_cpu_distributed(cfg)
    runner = Runner.from_cfg(cfg) if "runner_type" not in cfg else RUNNERS.build(cfg)
    runner.register_hook(rng_state_hook())
    if args.record_samples:
        runner.register_hook(sample_recorder_hook(args.record_samples))
    return runner


def main(argv: Optional[List[str]] = None) -> int:

    build_runner(argv).train()
    end_process_group()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
