"""ImageNet-style classification finetuning of SAMI backbones with the Hugging Face ``Trainer``: the classifier,
the image-folder data with timm's augmentation, the ``Trainer`` with timm's layer decay and mixup, and finding the
last complete checkpoint. ``efficientsam_zoo.tools.train_cls`` is the command line around these."""
from __future__ import annotations

import math
import os
from typing import Dict, Optional

import numpy as np
import torch
from timm.data import Mixup, create_transform
from timm.optim import param_groups_layer_decay
from torchvision.datasets import ImageFolder
from transformers import Trainer, TrainingArguments

from ...checkpoints import read_sami_backbone
from ...evaluation.classification import topk_accuracy
from ...modeling.efficient_sam import IMAGENET_MEAN, IMAGENET_STD
from ...utils.image import load_image_pil
from ...utils.io import record_samples
from .configuration import SamiVisionConfig, sami_config_from_vit_args
from .modeling import SamiViTForImageClassification

__all__ = ["label_kwargs", "build_classifier", "FolderDataset", "build_datasets", "latest_complete_checkpoint",
           "ClsTrainer", "build_trainer"]


def label_kwargs(num_labels: int, id2label: Optional[Dict[int, str]] = None) -> Dict:
    """The config keywords of a ``num_labels``-way head (transformers' ``num_labels`` / ``id2label`` / ``label2id``)."""
    return dict(num_labels=num_labels, id2label=id2label,
                label2id={v: k for k, v in (id2label or {}).items()} or None)


def build_classifier(name_or_path: str, num_labels: int, recipe: Dict,
                     id2label: Optional[Dict[int, str]] = None) -> SamiViTForImageClassification:
    """A ``SamiViTForImageClassification`` with a fresh ``num_labels``-way head on the backbone ``name_or_path``: an HF
    ``SamiViTModel`` / ``SamiViTForImageClassification`` directory or alias, a SAMI backbone export
    (``.safetensors``), or ``scratch``."""
    kw = label_kwargs(num_labels, id2label)
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


class FolderDataset(torch.utils.data.Dataset):
    """``<root>/<class>/<image>`` samples; with ``record_dir`` each process appends the indices it loads to
    ``record_dir/samples_rank<N>.jsonl`` (``--record-samples``)."""

    def __init__(self, root: str, transform, record_dir: Optional[str] = None) -> None:
        if not os.path.isdir(root):
            raise FileNotFoundError(f"image folder {root!r} does not exist (expected <root>/<class>/<image>)")
        self.folder = ImageFolder(root, transform=transform, loader=load_image_pil)
        self.classes = self.folder.classes
        self.record_dir = record_dir

    def __len__(self) -> int:
        return len(self.folder)

    def __getitem__(self, i: int) -> Dict:
        if self.record_dir:
            record_samples(self.record_dir, int(os.environ.get("RANK", 0)), -1, [i])
        x, y = self.folder[i]
        return {"pixel_values": x, "labels": y}


def build_datasets(recipe: Dict, train_dir: str, val_dir: Optional[str], record_dir: Optional[str] = None):
    size = recipe["image_size"]
    train_tf = create_transform(input_size=size, is_training=True, auto_augment=recipe.get("auto_augment"),
                                re_prob=recipe.get("reprob", 0.0), re_mode="pixel", re_count=1,
                                scale=tuple(recipe.get("crop_scale", (0.08, 1.0))), hflip=recipe.get("hflip", 0.5),
                                color_jitter=recipe.get("color_jitter", 0.4), interpolation="bicubic",
                                mean=IMAGENET_MEAN, std=IMAGENET_STD)
    eval_tf = create_transform(input_size=size, is_training=False, interpolation="bicubic",
                               crop_pct=size / recipe.get("eval_resize", round(size / 0.875)),
                               mean=IMAGENET_MEAN, std=IMAGENET_STD)
    train = FolderDataset(train_dir, train_tf, record_dir)
    val = FolderDataset(val_dir, eval_tf) if val_dir else None
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


class ClsTrainer(Trainer):
    """``Trainer`` with timm's layer-decay parameter groups and timm's mixup / cutmix / label smoothing."""

    def __init__(self, *args, recipe: Dict, num_labels: int, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.recipe = recipe
        active = recipe.get("mixup", 0) > 0 or recipe.get("cutmix", 0) > 0
        self.mixup = Mixup(mixup_alpha=recipe.get("mixup", 0.0), cutmix_alpha=recipe.get("cutmix", 0.0),
                           switch_prob=recipe.get("mixup_switch_prob", 0.5), prob=1.0 if active else 0.0,
                           label_smoothing=recipe.get("label_smoothing", 0.0), num_classes=num_labels)

    def create_optimizer(self, model=None):
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


def build_trainer(recipe: Dict, model, train, val, output_dir: str, world_size: int = 1, **overrides) -> ClsTrainer:
    """The recipe's ``TrainingArguments`` (lr scaled linearly with the real batch, warm-up then cosine, top-1 / top-5
    evaluation each epoch) around a :class:`ClsTrainer`."""
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

    return ClsTrainer(model=model, args=args, train_dataset=train, eval_dataset=val, compute_metrics=metrics,
                       recipe=recipe, num_labels=model.config.num_labels)
