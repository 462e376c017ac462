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
"""
from __future__ import annotations

import argparse
import math
import os
from typing import Dict, List, Optional

import numpy as np
import torch
import yaml

from ..modeling.efficient_sam import IMAGENET_MEAN, IMAGENET_STD
from ..utils.dist import end_process_group

__all__ = ["load_recipe", "build_model", "build_datasets", "build_trainer", "topk_accuracy",
           "latest_complete_checkpoint", "main"]



def load_recipe(path: str, overrides: Optional[List[str]] = None) -> Dict:
    """A recipe file (a path, or the name of a shipped one such as ``vit-s_in1k``) with ``key=value`` overrides."""
    from .configs import resolve_config

    path = resolve_config(path, kind="recipe")
    with open(path) as f:
        recipe = yaml.safe_load(f)
    for item in overrides or []:
        if "=" not in item:
            raise ValueError(f"--set takes key=value, got {item!r}")
        key, value = item.split("=", 1)
        if key not in recipe:
            raise ValueError(f"unknown recipe key {key!r}; known: {sorted(recipe)}")
        recipe[key] = yaml.safe_load(value)
    return recipe


def build_model(name_or_path: str, num_labels: int, recipe: Dict, id2label: Optional[Dict[int, str]] = None,
                pretrained: bool = False, pretrained_path: Optional[str] = None):
    """A ``SamiViTForImageClassification`` with a fresh ``num_labels``-way head on the given backbone.

    A timm name of a SAMI backbone (``sami_vit_small_patch16_224``) builds the model with ``timm.create_model``
    -- random, or timm's pretrained weights with ``pretrained`` / ``pretrained_path`` (a file for
    ``pretrained_cfg_overlay``) as timm's ``train.py`` -- and moves its weights into the HF model."""
    from ..checkpoints import read_sami_backbone
    from ..integrations.hf import (SamiViTForImageClassification, SamiVisionConfig,
                                             sami_config_from_vit_args)

    kw = dict(num_labels=num_labels, id2label=id2label, label2id={v: k for k, v in (id2label or {}).items()} or None)
    timm_name = _sami_timm_name(name_or_path)
    if (pretrained or pretrained_path) and timm_name is None:
        raise ValueError(f"--pretrained / --pretrained-path go with a timm model name ({', '.join(_timm_names())}); "
                         f"{name_or_path!r} is not one (HF directories and SAMI exports hold their weights already)")
    if timm_name is not None:
        return _from_timm(timm_name, recipe, pretrained, pretrained_path, kw)
    if name_or_path == "scratch":
        cfg = SamiVisionConfig.from_size(recipe["size"], image_size=recipe["image_size"],
                                         num_hidden_layers=recipe.get("depth", 12), drop_path_rate=recipe["drop_path"],
                                         **kw)
        return SamiViTForImageClassification(cfg)
    if name_or_path.endswith(".safetensors"):
        sd, vit = read_sami_backbone(name_or_path)
        if not vit:
            raise ValueError(f"{name_or_path!r} is not a SAMI backbone export (no ViT size in its metadata)")
        cfg = sami_config_from_vit_args(vit, image_size=recipe["image_size"], drop_path_rate=recipe["drop_path"], **kw)
        model = SamiViTForImageClassification(cfg)
        model.sami_vit.vit.load_state_dict(sd, strict=True)
        return model
    return SamiViTForImageClassification.from_pretrained(
        name_or_path, drop_path_rate=recipe["drop_path"], image_size=recipe["image_size"],
        ignore_mismatched_sizes=True, **kw)


def _timm_names() -> List[str]:
    from ..registry import SAMI_NAMES, get_variant

    return [get_variant(n).timm_name for n in SAMI_NAMES]


def _sami_timm_name(name: str) -> Optional[str]:
    """``name`` (optionally ``timm:``-prefixed) if it is the timm name of a SAMI backbone, else None."""
    name = name[len("timm:"):] if name.startswith("timm:") else name
    return name if name in _timm_names() else None


def _from_timm(timm_name: str, recipe: Dict, pretrained: bool, pretrained_path: Optional[str], kw: Dict):
    """The timm model (our ViT with timm's interface, at its 224-px position grid) -> the HF classifier with the
    same weights: blocks and embeddings, ``fc_norm``, and the head (timm's ``head`` = our ``classifier``)."""
    import timm

    from ..integrations.hf import SamiViTForImageClassification, sami_config_from_vit_args
    from .export_backbone import vit_args_from_state_dict

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


class _FolderDataset(torch.utils.data.Dataset):
    """``<root>/<class>/<image>`` samples; with ``record_dir`` each process appends the indices it loads to
    ``record_dir/samples_rank<N>.jsonl`` (``--record-samples``)."""

    def __init__(self, root: str, transform, record_dir: Optional[str] = None) -> None:
        from torchvision.datasets import ImageFolder

        from ..utils.image import load_image_pil

        if not os.path.isdir(root):
            raise FileNotFoundError(f"image folder {root!r} does not exist (expected <root>/<class>/<image>)")
        self.folder = ImageFolder(root, transform=transform, loader=load_image_pil)
        self.classes = self.folder.classes
        self.record_dir = record_dir

    def __len__(self) -> int:
        return len(self.folder)

    def __getitem__(self, i: int) -> Dict:
        if self.record_dir:
            from ..utils.io import record_samples

            record_samples(self.record_dir, int(os.environ.get("RANK", 0)), -1, [i])
        x, y = self.folder[i]
        return {"pixel_values": x, "labels": y}


def build_datasets(recipe: Dict, train_dir: str, val_dir: Optional[str], record_dir: Optional[str] = None):
    from timm.data import create_transform

    size = recipe["image_size"]
    train_tf = create_transform(input_size=size, is_training=True, auto_augment=recipe.get("auto_augment"),
                                re_prob=recipe.get("reprob", 0.0), re_mode="pixel", re_count=1,
                                scale=tuple(recipe.get("crop_scale", (0.08, 1.0))), hflip=recipe.get("hflip", 0.5),
                                color_jitter=recipe.get("color_jitter", 0.4), interpolation="bicubic",
                                mean=IMAGENET_MEAN, std=IMAGENET_STD)
    eval_tf = create_transform(input_size=size, is_training=False, interpolation="bicubic",
                               crop_pct=size / recipe.get("eval_resize", round(size / 0.875)),
                               mean=IMAGENET_MEAN, std=IMAGENET_STD)
    train = _FolderDataset(train_dir, train_tf, record_dir)
    val = _FolderDataset(val_dir, eval_tf) if val_dir else None
    if val is not None and val.classes != train.classes:
        raise ValueError(f"train and val folders have different classes ({len(train.classes)} vs {len(val.classes)})")
    return train, val


def latest_complete_checkpoint(output_dir: str) -> Optional[str]:
    """The newest ``checkpoint-N`` directory the Trainer finished writing (``trainer_state.json`` is its last file;
    a directory a kill interrupted lacks it), or ``None``."""
    if not os.path.isdir(output_dir):
        return None
    done = [d for d in os.listdir(output_dir) if d.startswith("checkpoint-") and d.split("-")[-1].isdigit()
            and os.path.isfile(os.path.join(output_dir, d, "trainer_state.json"))]
    return os.path.join(output_dir, max(done, key=lambda d: int(d.split("-")[-1]))) if done else None


def topk_accuracy(logits: np.ndarray, labels: np.ndarray, ks=(1, 5)) -> Dict[str, float]:
    order = np.argsort(-logits, axis=1)
    out = {}
    for k in ks:
        k_eff = min(k, logits.shape[1])
        out[f"top{k}"] = float(np.mean([labels[i] in order[i, :k_eff] for i in range(len(labels))]) * 100.0)
    return out


def _trainer_class():
    from transformers import Trainer

    class ClsTrainer(Trainer):
        """``Trainer`` with timm's layer-decay parameter groups and timm's mixup / cutmix / label smoothing."""

        def __init__(self, *args, recipe: Dict, num_labels: int, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            from timm.data import Mixup

            self.recipe = recipe
            active = recipe.get("mixup", 0) > 0 or recipe.get("cutmix", 0) > 0
            self.mixup = Mixup(mixup_alpha=recipe.get("mixup", 0.0), cutmix_alpha=recipe.get("cutmix", 0.0),
                               switch_prob=recipe.get("mixup_switch_prob", 0.5), prob=1.0 if active else 0.0,
                               label_smoothing=recipe.get("label_smoothing", 0.0), num_classes=num_labels)

        def create_optimizer(self, model=None):
            from timm.optim import param_groups_layer_decay

            if self.optimizer is None:
                model = model if model is not None else self.model
                groups = param_groups_layer_decay(model, weight_decay=self.args.weight_decay,
                                                  no_weight_decay_list=model.no_weight_decay(),
                                                  layer_decay=self.recipe.get("layer_decay", 1.0))
                for g in groups:
                    g["lr"] = self.args.learning_rate * g.get("lr_scale", 1.0)
                kind = self.recipe.get("optimizer", "adamw")
                if kind == "adamw":
                    self.optimizer = torch.optim.AdamW(groups, lr=self.args.learning_rate,
                                                       betas=tuple(self.recipe.get("betas", (0.9, 0.999))))
                elif kind == "sgd":  # plain SGD (momentum betas[0]), e.g. for linear probes
                    self.optimizer = torch.optim.SGD(groups, lr=self.args.learning_rate,
                                                     momentum=float(self.recipe.get("betas", (0.9,))[0]))
                else:
                    raise ValueError(f"recipe optimizer must be 'adamw' or 'sgd', got {kind!r}")
            return self.optimizer

        def compute_loss(self, model, inputs, return_outputs=False, **kwargs):
            if model.training:
                x, y = inputs["pixel_values"], inputs["labels"]
                if x.shape[0] % 2 == 0:  # timm's Mixup needs an even batch; also applies label smoothing
                    x, y = self.mixup(x, y)
                inputs = {**inputs, "pixel_values": x, "labels": y}
            outputs = model(**inputs)
            return (outputs.loss, outputs) if return_outputs else outputs.loss

    return ClsTrainer


def __getattr__(name):  # ClsTrainer is built lazily so that importing this module does not import transformers
    if name == "ClsTrainer":
        return _trainer_class()
    raise AttributeError(name)


def build_trainer(recipe: Dict, model, train, val, output_dir: str, world_size: int = 1, **overrides):
    from transformers import TrainingArguments

    per_device = int(recipe["per_device_batch_size"])
    accumulation = max(1, int(recipe["batch_size"]) // (per_device * world_size)) if recipe.get("accumulate") else 1
    total_batch = per_device * world_size * accumulation
    lr = float(recipe["lr"]) * total_batch / float(recipe["batch_size"])  # linear scaling
    steps_per_epoch = math.ceil(len(train) / (per_device * world_size * accumulation))
    args = TrainingArguments(
        output_dir=output_dir, per_device_train_batch_size=per_device, per_device_eval_batch_size=per_device,
        gradient_accumulation_steps=accumulation, num_train_epochs=recipe["epochs"], learning_rate=lr,
        weight_decay=recipe["weight_decay"], lr_scheduler_type="cosine",  # warm-up, then cosine to 0
        warmup_steps=int(recipe["warmup_epochs"] * steps_per_epoch), adam_beta1=recipe["betas"][0],
        adam_beta2=recipe["betas"][1], eval_strategy="epoch" if val is not None else "no", save_strategy="epoch",
        logging_steps=max(1, steps_per_epoch // 10), remove_unused_columns=False, report_to=[],
        dataloader_num_workers=int(recipe.get("num_workers", 4)), seed=int(recipe.get("seed", 0)),
        save_total_limit=int(recipe.get("keep_checkpoints", 3)),
        use_cpu=not torch.cuda.is_available(),  # torchrun CPU processes: accelerate's multi-CPU (gloo) mode
        **overrides)

    def metrics(eval_pred):
        return topk_accuracy(np.asarray(eval_pred.predictions), np.asarray(eval_pred.label_ids))

    trainer_cls = _trainer_class()
    return trainer_cls(model=model, args=args, train_dataset=train, eval_dataset=val, compute_metrics=metrics,
                       recipe=recipe, num_labels=model.config.num_labels)


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
    from transformers import set_seed

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
