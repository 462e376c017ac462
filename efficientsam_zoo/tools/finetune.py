"""``efficientsam-zoo finetune``: EfficientSAM on your own instance masks, in one command (mmengine's Runner).

    efficientsam-zoo finetune --images DIR (--annotations FILE.json | --masks DIR)
        [--val-images DIR (--val-annotations FILE.json | --val-masks DIR) | --val-fraction 0.1]
        --model efficientsam-ti --checkpoint efficient_sam_vitt.pt --recipe full|decoder|lora
        [--max-iters N | --epochs N] --out-dir run/ [--resume]

The shipped config of the layout (``efficientsam_{ti,s}_finetune_{coco-format,mask-folder}``, or ``--config``) with
the recipe of ``mm_configs/recipes/`` runs through mmengine's Runner with negative clicks and mask prompts switched on.
Before and after training the val split is scored: box and 1-point mIoU (``eval-points``' protocol), mIoU after 1..5
clicks and NoC@85 / NoC@90 (``evaluation.interactive``). The run directory holds ``work/`` (the Runner's checkpoints;
``--resume`` continues from the latest), ``logs/finetune.log``, ``metrics.json`` (``before`` / ``after``),
``report.md`` with pictures of the same val images before and after, and ``model/``: the finetuned model (LoRA merged)
that ``build_efficient_sam(variant, checkpoint="run/model")`` and ``EfficientSamModel.from_pretrained("run/model")``
load.
"""
from __future__ import annotations

import argparse
import json
import os
from typing import Dict, List, Optional

import numpy as np
from mmengine.config import Config, DictAction

from ..checkpoints import read_model_spec
from ..data.instances import InstanceSource, Subset, open_source, split
from ..evaluation.common import predictor_segment_fn
from ..evaluation.interactive import evaluate_clicks, next_click
from ..evaluation.point_eval import evaluate_points
from ..integrations.hf.cards import save_model_dir
from ..integrations.openmmlab.lora import merge_lora
from ..predictor import EfficientSamPredictor
from ..quickstart.console import Stage, callback_hook, progress_hook, quiet_known_warnings
from ..registry import EFFICIENT_SAM_NAMES, VARIANTS, get_spec
from ..utils.io import atomic_path, save_png, write_json
from ..utils.masks import mask_to_box
from ..visualize import overlay_masks
from .configs import resolve_config
from .train import build_runner

__all__ = ["RECIPE_CONFIGS", "finetune_config", "val_metrics", "main"]

#: ``--recipe`` -> its config (model recipe and optimiser).
RECIPE_CONFIGS = {name: f"recipes/efficientsam_finetune_{name}" for name in ("full", "decoder", "lora")}
METRICS = ("box_miou", "point_miou", "miou_at_clicks", "noc85", "noc90")


def finetune_config(args: argparse.Namespace, train_indices: Optional[List[int]]) -> Config:
    """The Runner's config: the layout's shipped config (or ``--config``), the recipe, the user's data and model."""
    size = VARIANTS[args.model].backbone.split("-")[1]
    layout = "coco-format" if args.annotations else "mask-folder"
    cfg = Config.fromfile(resolve_config(args.config or f"efficientsam_{size}_finetune_{layout}"))
    args.recipe = args.recipe or cfg.model.get("recipe", "full")
    if args.recipe != cfg.model.get("recipe", "full"):  # the recipe's own model switches and optimiser
        recipe = Config.fromfile(resolve_config(RECIPE_CONFIGS[args.recipe]))
        cfg.model.recipe = recipe.model.recipe
        cfg.model.pop("lora", None)
        if "lora" in recipe.model:
            cfg.model.lora = recipe.model.lora
        cfg.optim_wrapper = recipe.optim_wrapper
    cfg.model.variant = args.model
    cfg.model.init_checkpoint = args.checkpoint
    start = read_model_spec(args.checkpoint)  # a model directory brings its own input size
    img_size = cfg.model.get("overrides", {}).get("img_size") or (start or get_spec(args.model)).img_size
    work = os.path.join(args.out_dir, "work")
    cfg.model.embedding_cache = os.path.join(work, "embeddings") if args.recipe == "decoder" else None
    cfg.train_dataloader.dataset.update(data_root="", ann_file=args.annotations, indices=train_indices, img_size=img_size,
                                        data_prefix=dict(img=args.images, masks=args.masks or ""))
    if args.batch_size:
        cfg.train_dataloader.batch_size = args.batch_size
    if args.max_iters:
        warmup = min(cfg.param_scheduler[0].end, max(1, args.max_iters // 10))
        cfg.train_cfg = dict(type="IterBasedTrainLoop", max_iters=args.max_iters)
        cfg.param_scheduler = [dict(type="LinearLR", start_factor=0.1, by_epoch=False, begin=0, end=warmup)]
        if args.max_iters > warmup:
            cfg.param_scheduler.append(dict(type="CosineAnnealingLR", T_max=args.max_iters - warmup, eta_min_ratio=0.01,
                                            by_epoch=False, begin=warmup, end=args.max_iters))
        cfg.default_hooks.checkpoint = dict(type="CheckpointHook", by_epoch=False,
                                            interval=max(1, args.max_iters // 4), max_keep_ckpts=2)
        cfg.log_processor = dict(by_epoch=False)
        cfg.train_dataloader.sampler = dict(type="InfiniteSampler", shuffle=True)
    elif args.epochs:
        cfg.train_cfg.max_epochs = args.epochs
        cfg.param_scheduler[1].update(T_max=args.epochs, end=args.epochs)
    cfg.randomness = dict(seed=args.seed)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    return cfg


def val_metrics(sam, source: InstanceSource, max_clicks: int, num_instances: Optional[int]) -> Dict:
    """Box / 1-point mIoU, mIoU after 1..5 clicks and NoC@85 / @90 of ``sam`` on ``source`` (all 0..1 but NoC)."""
    was_training = sam.training
    sam.eval()
    try:
        points = evaluate_points(predictor_segment_fn(EfficientSamPredictor(sam)), source, prompt_types=("box", "1pt"),
                                 num_instances=num_instances, progress=False)["summary"]
        clicks = evaluate_clicks(EfficientSamPredictor(sam), source, max_clicks=max_clicks,
                                 num_instances=num_instances, progress=False)
    finally:
        sam.train(was_training)
    return dict(box_miou=points["box"]["all"] / 100, point_miou=points["1pt"]["all"] / 100,
                miou_at_clicks=clicks["miou_at_clicks"], noc85=clicks["noc"]["85"], noc90=clicks["noc"]["90"],
                instances=clicks["n"], max_clicks=max_clicks)


def _pictures(sam, source: InstanceSource, out_dir: str, tag: str, n: int = 2) -> List[str]:
    """Box-prompted and one-click masks of the first ``n`` val images, drawn over them."""
    predictor, was_training = EfficientSamPredictor(sam), sam.training
    sam.eval()
    paths = []
    for i in range(min(n, len(source))):
        item = source.load(i)
        if not item.masks:
            continue
        predictor.set_image(item.image)
        boxes = np.stack([mask_to_box(m) for m in item.masks])
        clicks = np.array([next_click(np.zeros_like(m), m)[:2] for m in item.masks], dtype=np.float32)
        by_box = [m[int(np.argmax(s))] for m, s, _ in (predictor.predict(box=b) for b in boxes)]
        by_click = [m[int(np.argmax(s))] for m, s, _ in (predictor.predict(c[None], np.ones(1)) for c in clicks)]
        for kind, masks, extra in (("box", by_box, dict(boxes=boxes)), ("click", by_click, dict(points=clicks))):
            path = os.path.join(out_dir, "pictures", f"{tag}_{i}_{kind}.png")
            picture = overlay_masks(item.image, masks, **extra)
            zoom = max(1, 384 // max(picture.shape[:2]))  # small images enlarged to be readable in the report
            save_png(np.repeat(np.repeat(picture, zoom, axis=0), zoom, axis=1), path)
            paths.append(path)
    sam.train(was_training)
    return paths


def _report(out_dir: str, metrics: Dict, pictures: Dict[str, List[str]], args: argparse.Namespace) -> str:
    rows = [("box-prompt mIoU", "box_miou", "{:.3f}"), ("1-point mIoU", "point_miou", "{:.3f}"),
            ("NoC@85 (clicks, fewer is better)", "noc85", "{:.2f}"), ("NoC@90", "noc90", "{:.2f}")]
    lines = ["# efficientsam-zoo finetune", "",
             f"{args.model} from `{args.checkpoint}`, recipe **{args.recipe}**, on `{args.images}`; scored on "
             f"{metrics['after']['instances']} val instances.", "", "| metric | before | after |", "|---|---|---|"]
    lines += [f"| {name} | {fmt.format(metrics['before'][k])} | {fmt.format(metrics['after'][k])} |"
              for name, k, fmt in rows]
    lines += [f"| mIoU after {k + 1} click{'s' if k else ''} | {before:.3f} | {after:.3f} |"
              for k, (before, after) in enumerate(zip(metrics["before"]["miou_at_clicks"],
                                                      metrics["after"]["miou_at_clicks"]))]
    for when in ("before", "after"):
        lines += ["", f"## {when.capitalize()} finetuning", ""]
        lines += [f"![{os.path.basename(p)}]({os.path.relpath(p, out_dir)})" for p in pictures.get(when, [])]
    lines += ["", "Files: `metrics.json`, `model/` (load with `build_efficient_sam(...)` or `from_pretrained`), "
                  "`work/` (checkpoints), `logs/finetune.log`.", ""]
    path = os.path.join(out_dir, "report.md")
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        f.write("\n".join(lines))
    return path


def _fmt(value) -> str:
    return " / ".join(f"{v:.3f}" for v in value) if isinstance(value, list) else f"{value:.3f}"


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    quiet_known_warnings()
    if (args.annotations is None) == (args.masks is None):
        raise SystemExit("error: give --annotations FILE.json (COCO / LVIS) or --masks DIR")
    if args.max_iters and args.epochs:
        raise SystemExit("error: give --max-iters or --epochs, not both")
    train_source = open_source(args.images, args.annotations, args.masks, args.categories)
    if args.val_images:
        val_source, train_indices = open_source(args.val_images, args.val_annotations, args.val_masks,
                                                args.categories), None
    else:
        train_indices, val_indices = split(len(train_source), args.val_fraction, args.seed)
        val_source = Subset(train_source, val_indices)
    if len(val_source) == 0:
        raise ValueError("the val split is empty; give --val-images or a larger --val-fraction")
    os.makedirs(args.out_dir, exist_ok=True)
    cfg = finetune_config(args, train_indices)
    logs = os.path.join(args.out_dir, "logs")
    metrics: Dict = {}
    before_file = os.path.join(args.out_dir, "metrics_before.json")
    pictures: Dict[str, List[str]] = {}

    def before(runner):
        sam = runner.model.sam
        if os.path.isfile(before_file):  # a resumed run: the first run measured the starting point
            metrics["before"] = json.load(open(before_file))
        else:
            metrics["before"] = val_metrics(sam, val_source, args.max_clicks, args.eval_instances)
            write_json(metrics["before"], before_file, indent=1)
        pictures["before"] = _pictures(sam, val_source, args.out_dir, "before")

    def after(runner):
        sam = runner.model.sam
        metrics["after"] = val_metrics(sam, val_source, args.max_clicks, args.eval_instances)
        pictures["after"] = _pictures(sam, val_source, args.out_dir, "after")

    argv_runner = ["(finetune)", "--work-dir", os.path.join(args.out_dir, "work")] + (["--resume"] if args.resume else [])
    total = cfg.train_cfg.get("max_iters") or None
    with Stage("finetune", os.path.join(logs, "finetune.log"), total, args.verbose) as bar:
        runner = build_runner(argv_runner, cfg=cfg)
        runner.register_hook(progress_hook(bar))
        runner.register_hook(callback_hook(before, after))
        runner.train()
    # annotations left out, by reason (each reason is also named in logs/finetune.log); data workers count their own
    in_process = runner.train_dataloader.num_workers == 0
    metrics["skipped"] = {"val": dict(val_source.skipped),
                          "train": dict(runner.train_dataloader.dataset.source.skipped) if in_process else None}
    sam = merge_lora(runner.model.sam.eval())
    save_model_dir(sam, os.path.join(args.out_dir, "model"), overwrite=True)
    write_json(metrics, os.path.join(args.out_dir, "metrics.json"), indent=1)
    report = _report(args.out_dir, metrics, pictures, args)
    for k in METRICS:
        print(f"  {k:<16} {_fmt(metrics['before'][k])} -> {_fmt(metrics['after'][k])}")
    print(f"model -> {os.path.join(args.out_dir, 'model')}/\nreport -> {report}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="efficientsam-zoo finetune", description=__doc__.split("\n\n")[0])
    data = ap.add_argument_group("data (a COCO / LVIS JSON or a mask folder)")
    data.add_argument("--images", required=True, help="the images (COCO: the image folder; mask folder: images/)")
    data.add_argument("--annotations", help="a COCO or LVIS instances JSON")
    data.add_argument("--masks", help="masks/NAME.png (instance ids) or masks/NAME/*.png (one binary PNG each)")
    data.add_argument("--val-images", help="a separate val split (else --val-fraction of the images is held out)")
    data.add_argument("--val-annotations")
    data.add_argument("--val-masks")
    data.add_argument("--val-fraction", type=float, default=0.1)
    data.add_argument("--categories", nargs="+", help="keep only these category ids or names (COCO / LVIS)")
    ap.add_argument("--model", default=EFFICIENT_SAM_NAMES[0], choices=EFFICIENT_SAM_NAMES)
    ap.add_argument("--checkpoint", required=True,
                    help="where to start: the released weights, a finetuned model directory, or a SAMI export")
    ap.add_argument("--recipe", choices=sorted(RECIPE_CONFIGS), help="default: the config's (the shipped ones: full)")
    ap.add_argument("--config", help="start from this config instead of the layout's shipped one")
    ap.add_argument("--cfg-options", nargs="+", action=DictAction, help="override config settings (key=value)")
    length = ap.add_mutually_exclusive_group()
    length.add_argument("--max-iters", type=int)
    length.add_argument("--epochs", type=int)
    ap.add_argument("--batch-size", type=int)
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in OUT_DIR/work")
    ap.add_argument("--max-clicks", type=int, default=20, help="the NoC protocol's click budget")
    ap.add_argument("--eval-instances", type=int, help="score at most this many val instances")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--verbose", action="store_true", help="show the Runner's log on the console too")
    return ap


if __name__ == "__main__":
    raise SystemExit(main())
