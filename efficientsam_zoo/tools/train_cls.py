"""ImageNet classification finetuning of SAMI backbones with the Hugging Face ``Trainer``.

    python -m efficientsam_zoo.tools.train_cls --recipe hf/recipes/vit-s_in1k.yaml --model sami-vit-s-hf \
        --train-dir data/imagenet/train --val-dir data/imagenet/val --output-dir work_dirs/cls_vit-s \
        [--resume [CHECKPOINT]] [--set key=value ...]
    torchrun --nproc_per_node 8 -m efficientsam_zoo.tools.train_cls ...      # multi-GPU, as Trainer supports

``--model``: an HF ``SamiViTModel`` / ``SamiViTForImageClassification`` directory or alias, a SAMI backbone
export (``.safetensors``), the timm name of a SAMI backbone (``sami_vit_small_patch16_224``; with timm's
``--pretrained`` or ``--pretrained-path FILE``), or ``scratch``. The recipe (paper section 4.1, MAE's
finetuning otherwise): AdamW (0.9, 0.999), weight decay 0.05, lr 1e-3 at batch 1024 scaled linearly with the
real batch, 5 warm-up epochs then cosine to 0, layer-wise lr decay (timm's ``param_groups_layer_decay``) 0.75
for S / B and none for Ti, RandAugment + random erasing (timm ``create_transform``), mixup 0.8 / cutmix 1.0 with
label smoothing 0.1 (timm ``Mixup``), drop path 0.1. Evaluation: top-1 / top-5 on the 224 centre crop of a 256 resize.
Checkpoints are HF directories (``checkpoint-N/``) that ``AutoModelForImageClassification`` loads.

The pieces live by topic: the recipe files in :mod:`efficientsam_zoo.tools.configs`, the classifier, data and
``Trainer`` in :mod:`efficientsam_zoo.integrations.hf.classification`, the metric in
:mod:`efficientsam_zoo.evaluation.classification`; this module is the command line, and moves a timm model's weights
into the HF classifier (the one place that uses both adapters).
"""
from __future__ import annotations

import argparse
import os
from typing import Dict, List, Optional

import timm
from transformers import set_seed

from ..evaluation.classification import topk_accuracy
from ..integrations.hf import SamiViTForImageClassification, sami_config_from_vit_args
from ..integrations.hf.classification import (FolderDataset, build_classifier, build_datasets, build_trainer,
                                              label_kwargs, latest_complete_checkpoint)
from ..registry import SAMI_NAMES, get_variant
from ..utils.dist import end_process_group
from .configs import load_recipe
from .export_backbone import vit_args_from_state_dict

__all__ = ["load_recipe", "build_model", "build_datasets", "build_trainer", "topk_accuracy",
           "latest_complete_checkpoint", "main"]

_FolderDataset = FolderDataset  # the name earlier releases had


def build_model(name_or_path: str, num_labels: int, recipe: Dict, id2label: Optional[Dict[int, str]] = None,
                pretrained: bool = False, pretrained_path: Optional[str] = None) -> SamiViTForImageClassification:
    """A ``SamiViTForImageClassification`` with a fresh ``num_labels``-way head on the given backbone.

    A timm name of a SAMI backbone (``sami_vit_small_patch16_224``) builds the model with ``timm.create_model``
    -- random, or timm's pretrained weights with ``pretrained`` / ``pretrained_path`` (a file for
    ``pretrained_cfg_overlay``) as timm's ``train.py`` -- and moves its weights into the HF model; anything else
    goes to :func:`~efficientsam_zoo.integrations.hf.classification.build_classifier`."""
    timm_name = _sami_timm_name(name_or_path)
    if (pretrained or pretrained_path) and timm_name is None:
        raise ValueError(f"--pretrained / --pretrained-path go with a timm model name ({', '.join(_timm_names())}); "
                         f"{name_or_path!r} is not one (HF directories and SAMI exports hold their weights already)")
    if timm_name is not None:
        return _from_timm(timm_name, recipe, pretrained, pretrained_path, label_kwargs(num_labels, id2label))
    return build_classifier(name_or_path, num_labels, recipe, id2label)


def _timm_names() -> List[str]:
    return [get_variant(n).timm_name for n in SAMI_NAMES]


def _sami_timm_name(name: str) -> Optional[str]:
    """``name`` (optionally ``timm:``-prefixed) if it is the timm name of a SAMI backbone, else None."""
    name = name[len("timm:"):] if name.startswith("timm:") else name
    return name if name in _timm_names() else None


def _from_timm(timm_name: str, recipe: Dict, pretrained: bool, pretrained_path: Optional[str], kw: Dict):
    """The timm model (our ViT with timm's interface, at its 224-px position grid) -> the HF classifier with the
    same weights: blocks and embeddings, ``fc_norm``, and the head (timm's ``head`` = our ``classifier``)."""
    overlay = dict(file=pretrained_path) if pretrained_path else None
    net = timm.create_model(timm_name, pretrained=pretrained or bool(pretrained_path), pretrained_cfg_overlay=overlay,
                            num_classes=kw["num_labels"])
    sd = net.state_dict()
    backbone = {k: v for k, v in sd.items() if not k.startswith(("fc_norm.", "head."))}
    cfg = sami_config_from_vit_args(vit_args_from_state_dict(backbone, net.blocks[0].attn.num_heads),
                                    image_size=recipe["image_size"], drop_path_rate=recipe["drop_path"], **kw)
    model = SamiViTForImageClassification(cfg)
    model.sami_vit.vit.load_state_dict(backbone, strict=True)
    model.fc_norm.load_state_dict(net.fc_norm.state_dict())
    model.classifier.load_state_dict(net.head.state_dict())
    return model


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--recipe", required=True, help="a recipe file or a shipped recipe name (vit-s_in1k, ...)")
    ap.add_argument("--model", required=True,
                    help="HF directory / alias, SAMI export .safetensors, a timm name (sami_vit_small_patch16_224) or "
                         "'scratch'")
    ap.add_argument("--pretrained", action="store_true", help="timm names: start from timm's pretrained weights")
    ap.add_argument("--pretrained-path", metavar="FILE",
                    help="timm names: load FILE as the pretrained weights (timm's pretrained_cfg_overlay file)")
    ap.add_argument("--train-dir", required=True)
    ap.add_argument("--val-dir")
    ap.add_argument("--output-dir", required=True)
    ap.add_argument("--resume", nargs="?", const="auto", help="continue from the last (or this) checkpoint")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="override recipe values")
    ap.add_argument("--max-steps", type=int, default=-1, help="stop after this many optimiser steps (smoke runs)")
    ap.add_argument("--record-samples", metavar="DIR",
                    help="write the images each process loads to DIR/samples_rank<N>.jsonl (data sharding)")
    args = ap.parse_args(argv)

    recipe = load_recipe(args.recipe, args.set)
    set_seed(int(recipe.get("seed", 0)))  # before the model is built: a fresh head / scratch model repeats too
    train, val = build_datasets(recipe, args.train_dir, args.val_dir, args.record_samples)
    id2label = dict(enumerate(train.classes))
    model = build_model(args.model, len(train.classes), recipe, id2label, args.pretrained, args.pretrained_path)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    trainer = build_trainer(recipe, model, train, val, args.output_dir, world_size=world, max_steps=args.max_steps)
    if trainer.is_world_process_zero():
        print(f"world size {trainer.args.world_size}, {trainer.args.per_device_train_batch_size} images per process "
              f"and step, lr {trainer.args.learning_rate:g}")
    resume = args.resume
    if args.resume == "auto":
        resume = latest_complete_checkpoint(args.output_dir)
        print(f"resuming from {resume}" if resume else f"no checkpoint in {args.output_dir} yet: starting from scratch")
    trainer.train(resume_from_checkpoint=resume)
    if val is not None:
        print(trainer.evaluate())
    trainer.save_model(os.path.join(args.output_dir, "final"))
    end_process_group()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
