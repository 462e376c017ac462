"""Train / evaluate a detectron2 LazyConfig, like detectron2's ``tools/lazyconfig_train_net.py``.

    python -m efficientsam_zoo.tools.d2_train --config-file d2_configs/COCO/mask_rcnn_vitdet_sami_s_100ep.py \
        [--num-gpus 8] [--resume] [--eval-only] [train.max_iter=...] [train.init_checkpoint=...]

``train.init_checkpoint`` goes through efficientsam_zoo's loader when it is a backbone checkpoint (SAMI
export, official EfficientSAM, HF SamiViTModel directory) and through ``DetectionCheckpointer`` otherwise;
``--resume`` continues from the latest complete checkpoint in ``train.output_dir`` (saves are atomic); ``--num-gpus 2``
on a machine without CUDA starts two CPU processes (gloo).
"""
from __future__ import annotations

import logging

from detectron2.config import LazyConfig, instantiate
from detectron2.engine import (AMPTrainer, SimpleTrainer, default_argument_parser, default_setup, default_writers,
                               hooks, launch)
from detectron2.engine.defaults import create_ddp_model
from detectron2.evaluation import inference_on_dataset, print_csv_format
from detectron2.utils import comm

from ..integrations.detectron2 import AtomicDetectionCheckpointer, check_layer_decay, load_init_checkpoint
from ..utils.dist import end_process_group
from ..utils.io import latest_complete_file, record_samples
from .configs import resolve_config

logger = logging.getLogger("detectron2")


def do_test(cfg, model):
    if "evaluator" in cfg.dataloader:
        results = inference_on_dataset(model, instantiate(cfg.dataloader.test), instantiate(cfg.dataloader.evaluator))
        print_csv_format(results)
        return results
    return {}


class _RecordingLoader:
    """The training data stream, recording each batch's image files per rank (``--record-samples DIR``)."""

    def __init__(self, loader, directory: str) -> None:
        self.loader, self.directory = loader, directory

    def __iter__(self):

        for step, batch in enumerate(self.loader):
            record_samples(self.directory, comm.get_rank(), step, [d.get("file_name") for d in batch])
            yield batch


def _ddp_kwargs(cfg) -> dict:
    """``train.ddp``; a CPU model's DDP takes no device ids (detectron2 would pass the local rank)."""
    kwargs = dict(cfg.train.ddp)
    if str(cfg.train.device) == "cpu":
        kwargs.setdefault("device_ids", None)
    return kwargs


def build_training(args, cfg):
    """``(trainer, checkpointer, start_iter)`` ready to ``trainer.train(start_iter, cfg.train.max_iter)``: the model,
    optimizer, data, hooks, and the weights (``--resume``: the latest complete checkpoint's model, optimizer,
    scheduler and iteration; else ``train.init_checkpoint``)."""
    model = instantiate(cfg.model)
    model.to(cfg.train.device)
    check_layer_decay(cfg.optimizer.params.get("lr_factor_func"), model)
    cfg.optimizer.params.model = model
    optimizer = instantiate(cfg.optimizer)
    train_loader = instantiate(cfg.dataloader.train)
    if getattr(args, "record_samples", None):
        train_loader = _RecordingLoader(train_loader, args.record_samples)
    model = create_ddp_model(model, **_ddp_kwargs(cfg))
    trainer = (AMPTrainer if cfg.train.amp.enabled else SimpleTrainer)(model, train_loader, optimizer)
    checkpointer = AtomicDetectionCheckpointer(model, cfg.train.output_dir, optimizer=optimizer, trainer=trainer)
    trainer.register_hooks([
        hooks.IterationTimer(),
        hooks.LRScheduler(scheduler=instantiate(cfg.lr_multiplier)),
        hooks.PeriodicCheckpointer(checkpointer, **cfg.train.checkpointer) if comm.is_main_process() else None,
        hooks.EvalHook(cfg.train.eval_period, lambda: do_test(cfg, model)),
        hooks.PeriodicWriter(default_writers(cfg.train.output_dir, cfg.train.max_iter), period=cfg.train.log_period)
        if comm.is_main_process() else None,
    ])
    latest = latest_complete_file(cfg.train.output_dir) if args.resume else None
    if latest:
        logger.info(f"resuming from {latest}")
        checkpointer.load(latest)  # model, optimizer, scheduler and the trainer's iteration
        start_iter = trainer.iter + 1  # the checkpoint stores the iteration that just finished
    else:
        if cfg.train.init_checkpoint:
            how = load_init_checkpoint(model.module if hasattr(model, "module") else model, cfg.train.init_checkpoint)
            logger.info(f"loaded {cfg.train.init_checkpoint} ({how} checkpoint)")
        start_iter = 0
    return trainer, checkpointer, start_iter


def do_train(args, cfg):
    trainer, _, start_iter = build_training(args, cfg)
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
    args.config_file = resolve_config(args.config_file, kind="d2")
    cfg = LazyConfig.load(args.config_file)
    cfg = LazyConfig.apply_overrides(cfg, args.opts)
    output_dir = cfg.train.output_dir
    if comm.get_rank() > 0:  # detectron2 would write log.txt.rank<N> there: only rank 0 writes files
        cfg.train.output_dir = None
    default_setup(cfg, args)
    cfg.train.output_dir = output_dir
    if args.eval_only:
        model = create_ddp_model(instantiate(cfg.model).to(cfg.train.device), **_ddp_kwargs(cfg))
        if cfg.train.init_checkpoint:
            load_init_checkpoint(model.module if hasattr(model, "module") else model, cfg.train.init_checkpoint)
        return do_test(cfg, model)
    result = do_train(args, cfg)
    end_process_group()
    return result


def build_parser():
    parser = default_argument_parser()
    parser.add_argument("--register-coco", nargs=3, action="append", metavar=("NAME", "JSON", "IMAGE_DIR"),
                        help="register a COCO-format dataset under NAME before building the config (repeatable)")
    parser.add_argument("--record-samples", metavar="DIR",
                        help="write the images each process trains on to DIR/samples_rank<N>.jsonl (data sharding)")
    return parser


def cli(argv=None):
    args = build_parser().parse_args(argv)
    launch(main, args.num_gpus, num_machines=args.num_machines, machine_rank=args.machine_rank,
           dist_url=args.dist_url, args=(args,))


if __name__ == "__main__":
    cli()
