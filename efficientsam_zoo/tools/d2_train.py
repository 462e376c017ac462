"""Train / evaluate a detectron2 LazyConfig, like detectron2's ``tools/lazyconfig_train_net.py``.

    python -m efficientsam_zoo.tools.d2_train --config-file d2_configs/COCO/mask_rcnn_vitdet_sami_s_100ep.py \
        [--num-gpus 8] [--resume] [--eval-only] [train.max_iter=...] [train.init_checkpoint=...]

``train.init_checkpoint`` goes through efficientsam_zoo's loader when it is a backbone checkpoint (SAMI
export, official EfficientSAM, HF SamiViTModel directory) and through ``DetectionCheckpointer`` otherwise;
``--resume`` continues from the last checkpoint in ``train.output_dir``.
"""
from __future__ import annotations

import logging

from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import LazyConfig, instantiate
from detectron2.engine import (AMPTrainer, SimpleTrainer, default_argument_parser, default_setup, default_writers,
                               hooks, launch)
from detectron2.engine.defaults import create_ddp_model
from detectron2.evaluation import inference_on_dataset, print_csv_format
from detectron2.utils import comm

from ..integrations.detectron2 import load_init_checkpoint

logger = logging.getLogger("detectron2")


def do_test(cfg, model):
    if "evaluator" in cfg.dataloader:
        results = inference_on_dataset(model, instantiate(cfg.dataloader.test), instantiate(cfg.dataloader.evaluator))
        print_csv_format(results)
        return results
    return {}


def do_train(args, cfg):
    model = instantiate(cfg.model)
    model.to(cfg.train.device)
    cfg.optimizer.params.model = model
    optimizer = instantiate(cfg.optimizer)
    train_loader = instantiate(cfg.dataloader.train)
    model = create_ddp_model(model, **cfg.train.ddp)
    trainer = (AMPTrainer if cfg.train.amp.enabled else SimpleTrainer)(model, train_loader, optimizer)
    checkpointer = DetectionCheckpointer(model, cfg.train.output_dir, optimizer=optimizer, trainer=trainer)
    trainer.register_hooks([
        hooks.IterationTimer(),
        hooks.LRScheduler(scheduler=instantiate(cfg.lr_multiplier)),
        hooks.PeriodicCheckpointer(checkpointer, **cfg.train.checkpointer) if comm.is_main_process() else None,
        hooks.EvalHook(cfg.train.eval_period, lambda: do_test(cfg, model)),
        hooks.PeriodicWriter(default_writers(cfg.train.output_dir, cfg.train.max_iter), period=cfg.train.log_period)
        if comm.is_main_process() else None,
    ])
    if args.resume and checkpointer.has_checkpoint():
        checkpointer.resume_or_load(cfg.train.init_checkpoint, resume=True)
        start_iter = trainer.iter + 1  # the checkpoint stores the iteration that just finished
    else:
        if cfg.train.init_checkpoint:
            how = load_init_checkpoint(model.module if hasattr(model, "module") else model, cfg.train.init_checkpoint)
            logger.info(f"loaded {cfg.train.init_checkpoint} ({how} checkpoint)")
        start_iter = 0
    trainer.train(start_iter, cfg.train.max_iter)


def register_datasets(specs) -> None:
    """``--register-coco NAME JSON IMAGE_DIR``: COCO-format datasets for ``dataloader.*.dataset.names``."""
    from detectron2.data import DatasetCatalog
    from detectron2.data.datasets import register_coco_instances

    for name, json_file, image_root in specs or []:
        if name not in DatasetCatalog.list():
            register_coco_instances(name, {}, json_file, image_root)


def main(args):
    register_datasets(args.register_coco)
    cfg = LazyConfig.load(args.config_file)
    cfg = LazyConfig.apply_overrides(cfg, args.opts)
    default_setup(cfg, args)
    if args.eval_only:
        model = create_ddp_model(instantiate(cfg.model).to(cfg.train.device))
        if cfg.train.init_checkpoint:
            load_init_checkpoint(model.module if hasattr(model, "module") else model, cfg.train.init_checkpoint)
        return do_test(cfg, model)
    return do_train(args, cfg)


def build_parser():
    parser = default_argument_parser()
    parser.add_argument("--register-coco", nargs=3, action="append", metavar=("NAME", "JSON", "IMAGE_DIR"),
                        help="register a COCO-format dataset under NAME before building the config (repeatable)")
    return parser


def cli(argv=None):
    args = build_parser().parse_args(argv)
    launch(main, args.num_gpus, num_machines=args.num_machines, machine_rank=args.machine_rank,
           dist_url=args.dist_url, args=(args,))


if __name__ == "__main__":
    cli()
