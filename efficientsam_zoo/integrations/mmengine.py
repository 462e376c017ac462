"""mmengine adapter: SAMI pretraining as an mmengine model, an image-folder dataset and its transforms.

Everything is registered in child registries of mmengine's root registries under the scope
``efficientsam_zoo``; configs set ``default_scope = "efficientsam_zoo"`` and import this module with
``custom_imports``. Optimisers, schedulers, hooks and ``ImgDataPreprocessor`` come from the parents.
"""
from __future__ import annotations

import math
import os
import random
from typing import List, Optional, Sequence, Tuple

import mmcv
import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmengine.dataset import BaseDataset
from mmengine.model import BaseModel
from mmengine import registry as _mm
from mmengine.registry import Registry

from ..modeling.sami import SAMI
from ..modeling.vit import VIT_SIZES, ViT
from ..teachers import build_teacher

__all__ = ["MODELS", "DATASETS", "TRANSFORMS", "SAMIPretrainer", "EfficientSamFinetuner", "SA1BDataset",
           "ImageFolderDataset", "PrecomputedFeatureDataset",
           "LoadImageRGB", "RandomResizedCrop", "ResizeCenterCrop", "PackImageInputs", "build_student"]

_LOC = ["efficientsam_zoo.integrations.mmengine"]


def _child(parent: Registry) -> Registry:
    """A registry of scope ``efficientsam_zoo`` below one of mmengine's root registries."""
    return Registry(parent.name, parent=parent, scope="efficientsam_zoo", locations=_LOC)


MODELS = _child(_mm.MODELS)
DATASETS = _child(_mm.DATASETS)
TRANSFORMS = _child(_mm.TRANSFORMS)
# the rest exist so that configs with default_scope="efficientsam_zoo" resolve every type without warnings
RUNNERS, RUNNER_CONSTRUCTORS, LOOPS, HOOKS, DATA_SAMPLERS, OPTIMIZERS, OPTIM_WRAPPERS = (
    _child(r) for r in (_mm.RUNNERS, _mm.RUNNER_CONSTRUCTORS, _mm.LOOPS, _mm.HOOKS, _mm.DATA_SAMPLERS,
                        _mm.OPTIMIZERS, _mm.OPTIM_WRAPPERS))
OPTIM_WRAPPER_CONSTRUCTORS, PARAM_SCHEDULERS, METRICS, EVALUATOR, VISUALIZERS, VISBACKENDS, LOG_PROCESSORS = (
    _child(r) for r in (_mm.OPTIM_WRAPPER_CONSTRUCTORS, _mm.PARAM_SCHEDULERS, _mm.METRICS, _mm.EVALUATOR,
                        _mm.VISUALIZERS, _mm.VISBACKENDS, _mm.LOG_PROCESSORS))
WEIGHT_INITIALIZERS, FUNCTIONS, TASK_UTILS, INFERENCERS, STRATEGIES = (
    _child(r) for r in (_mm.WEIGHT_INITIALIZERS, _mm.FUNCTIONS, _mm.TASK_UTILS, _mm.INFERENCERS, _mm.STRATEGIES))

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


# -- data -------------------------------------------------------------------------------------------------
@DATASETS.register_module()
class ImageFolderDataset(BaseDataset):
    """Images under ``data_root``: ImageNet's ``<class>/<image>`` layout or a flat folder (labels unused)."""

    def __init__(self, data_root: str, pipeline: Sequence = (), extensions: Sequence[str] = IMAGE_EXTENSIONS,
                 **kwargs) -> None:
        self.extensions = tuple(e.lower() for e in extensions)
        super().__init__(data_root=data_root, pipeline=list(pipeline), serialize_data=False, **kwargs)

    def load_data_list(self) -> List[dict]:
        root = self.data_root
        if not os.path.isdir(root):
            raise FileNotFoundError(f"image folder {root!r} does not exist; set train_dataloader.dataset.data_root")
        items = []
        classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
        label_of = {c: i for i, c in enumerate(classes)}
        for dirpath, _, files in sorted(os.walk(root)):
            for f in sorted(files):
                if f.lower().endswith(self.extensions):
                    top = os.path.relpath(dirpath, root).split(os.sep)[0]
                    items.append(dict(img_path=os.path.join(dirpath, f), gt_label=label_of.get(top, -1)))
        if not items:
            raise ValueError(f"no images ({', '.join(self.extensions)}) under {root!r}")
        return items


@TRANSFORMS.register_module()
class LoadImageRGB(BaseTransform):
    """``img_path`` -> ``img`` (HxWx3 uint8 RGB)."""

    def transform(self, results: dict) -> dict:
        from ..utils.io import load_image_rgb

        img = load_image_rgb(results["img_path"])
        results.update(img=img, img_shape=img.shape[:2], ori_shape=img.shape[:2])
        return results


@TRANSFORMS.register_module()
class RandomResizedCrop(BaseTransform):
    """torchvision's RandomResizedCrop on numpy images: a crop of random area share ``scale`` and aspect
    ``ratio`` resized to ``size`` (MAE / SAMI: scale (0.2, 1.0), bicubic)."""

    def __init__(self, size: int = 224, scale: Tuple[float, float] = (0.2, 1.0),
                 ratio: Tuple[float, float] = (3 / 4, 4 / 3), interpolation: str = "bicubic") -> None:
        self.size, self.scale, self.ratio, self.interpolation = size, scale, ratio, interpolation

    def _params(self, h: int, w: int) -> Tuple[int, int, int, int]:
        area = h * w
        log_ratio = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(10):
            target = area * random.uniform(*self.scale)
            aspect = math.exp(random.uniform(*log_ratio))
            cw, ch = int(round(math.sqrt(target * aspect))), int(round(math.sqrt(target / aspect)))
            if 0 < cw <= w and 0 < ch <= h:
                return random.randint(0, h - ch), random.randint(0, w - cw), ch, cw
        in_ratio = w / h  # fallback: central crop within the ratio limits
        if in_ratio < self.ratio[0]:
            cw, ch = w, int(round(w / self.ratio[0]))
        elif in_ratio > self.ratio[1]:
            ch, cw = h, int(round(h * self.ratio[1]))
        else:
            cw, ch = w, h
        return (h - ch) // 2, (w - cw) // 2, ch, cw

    def transform(self, results: dict) -> dict:
        img = results["img"]
        top, left, ch, cw = self._params(*img.shape[:2])
        crop = img[top:top + ch, left:left + cw]
        results["img"] = mmcv.imresize(crop, (self.size, self.size), interpolation=self.interpolation)
        results["img_shape"] = results["img"].shape[:2]
        return results


@TRANSFORMS.register_module()
class ResizeCenterCrop(BaseTransform):
    """Resize the shorter side to ``size / crop_pct`` and take the central ``size`` x ``size`` crop (the fixed
    crop of precomputed teacher features, and the usual evaluation crop)."""

    def __init__(self, size: int = 224, crop_pct: float = 0.875, interpolation: str = "bicubic") -> None:
        self.size, self.crop_pct, self.interpolation = size, crop_pct, interpolation

    def transform(self, results: dict) -> dict:
        img = results["img"]
        h, w = img.shape[:2]
        short = int(round(self.size / self.crop_pct))
        nh, nw = (short, max(short, round(w * short / h))) if h <= w else (max(short, round(h * short / w)), short)
        img = mmcv.imresize(img, (nw, nh), interpolation=self.interpolation)
        top, left = (nh - self.size) // 2, (nw - self.size) // 2
        results["img"] = img[top:top + self.size, left:left + self.size]
        results["img_shape"] = results["img"].shape[:2]
        return results


@TRANSFORMS.register_module()
class PackImageInputs(BaseTransform):
    """``img`` -> ``inputs`` (CHW uint8 tensor) for ``ImgDataPreprocessor``; precomputed
    ``teacher_features`` travel in ``data_samples``."""

    def transform(self, results: dict) -> dict:
        img = np.ascontiguousarray(results["img"])
        packed = {"inputs": torch.from_numpy(img).permute(2, 0, 1).contiguous()}
        if "teacher_features" in results:
            packed["data_samples"] = {"teacher_features": torch.from_numpy(np.asarray(results["teacher_features"],
                                                                                        dtype=np.float32))}
        return packed


@DATASETS.register_module()
class PrecomputedFeatureDataset(BaseDataset):
    """Images plus teacher targets written by ``python -m efficientsam_zoo.tools.precompute_teacher``.

    ``feature_dir`` holds ``index.json`` (image paths, crop), ``features.npy`` (float16 ``[N, H*W, C]``, read
    memory-mapped) and ``progress.json``. Use a pipeline with the same fixed crop (``ResizeCenterCrop``) and
    no flips: the targets belong to that exact crop.
    """

    def __init__(self, feature_dir: str, pipeline: Sequence = (), **kwargs) -> None:
        self.feature_dir = feature_dir
        self._features = None
        super().__init__(data_root=feature_dir, pipeline=list(pipeline), serialize_data=False, **kwargs)

    def load_data_list(self) -> List[dict]:
        import json

        index_path = os.path.join(self.feature_dir, "index.json")
        progress_path = os.path.join(self.feature_dir, "progress.json")
        if not os.path.isfile(index_path):
            raise FileNotFoundError(f"{self.feature_dir!r} has no index.json: run "
                                    "python -m efficientsam_zoo.tools.precompute_teacher first")
        index = json.load(open(index_path))
        done = json.load(open(progress_path))["done"] if os.path.isfile(progress_path) else 0
        if done < len(index["images"]):
            raise RuntimeError(f"teacher features in {self.feature_dir!r} are incomplete ({done}/{len(index['images'])});"
                               " run precompute_teacher again to finish them")
        self.index = index
        return [dict(img_path=p, feature_row=i) for i, p in enumerate(index["images"])]

    def get_data_info(self, idx: int) -> dict:
        info = super().get_data_info(idx)
        if self._features is None:  # opened lazily, once per worker process
            self._features = np.load(os.path.join(self.feature_dir, "features.npy"), mmap_mode="r")
        info["teacher_features"] = self._features[info["feature_row"]]
        return info


# -- model ------------------------------------------------------------------------------------------------
def build_student(arch: str = "vit-ti", img_size: int = 224, **overrides) -> ViT:
    """A plain ViT (no neck) of one of the paper's sizes, for SAMI pretraining."""
    if arch not in VIT_SIZES:
        raise ValueError(f"unknown student arch {arch!r}; choose one of {sorted(VIT_SIZES)}")
    return ViT(img_size=img_size, neck_dim=None, **{**VIT_SIZES[arch], **overrides})


@MODELS.register_module()
class SAMIPretrainer(BaseModel):
    """SAMI as an mmengine model: ``mode="loss"`` runs the frozen teacher and returns ``{"loss": mse}``.

    The teacher is held outside the module tree: it is moved with the model (``.to`` / ``.cuda``) but is not
    part of ``state_dict`` (checkpoints stay student-sized) nor of the optimiser's parameters.
    """

    def __init__(self, student: dict, teacher: dict, mask_ratio: float = 0.75, decoder: Optional[dict] = None,
                 target_resize: str = "area", data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if teacher.get("type") == "precomputed":  # targets come with the data (PrecomputedFeatureDataset)
            teacher_module, teacher_dim = None, int(teacher["out_channels"])
        else:
            teacher_module = build_teacher(teacher)
            teacher_dim = teacher_module.out_channels
        decoder = dict(decoder or {})
        self.sami = SAMI(build_student(**student), teacher_dim=teacher_dim, mask_ratio=mask_ratio,
                         decoder_dim=decoder.get("dim", 512), decoder_depth=decoder.get("depth", 8),
                         decoder_heads=decoder.get("num_heads", 16), target_resize=target_resize)
        self._teacher = [teacher_module]

    @property
    def teacher(self):
        return self._teacher[0]

    def _apply(self, fn, *args, **kwargs):
        super()._apply(fn, *args, **kwargs)
        if self._teacher[0] is not None:
            self._teacher[0]._apply(fn, *args, **kwargs)
        return self

    def forward(self, inputs: torch.Tensor, data_samples=None, mode: str = "tensor"):
        if mode == "loss":
            if self.teacher is None:
                if not isinstance(data_samples, dict) or "teacher_features" not in data_samples:
                    raise ValueError("teacher type 'precomputed' needs a PrecomputedFeatureDataset")
                tokens = data_samples["teacher_features"]  # [B, H*W, C] on the student grid
                h, w = self.sami.encoder.grid_size
                target = tokens.transpose(1, 2).reshape(tokens.shape[0], -1, h, w)
            else:
                with torch.no_grad():
                    target = self.teacher(inputs)
            return {"loss": self.sami(inputs, target)["loss"]}
        out = self.sami.forward_features(inputs)
        if mode == "predict":
            return [dict(pred=p, mask=m) for p, m in zip(out["pred"], out["mask"])]
        return out["pred"]


# -- segment-anything finetuning on SA-1B -------------------------------------------------------------------
@DATASETS.register_module()
class SA1BDataset(torch.utils.data.Dataset):
    """SA-1B tar shards or folders (``paths``: files, folders or glob patterns) as Runner samples; see
    :class:`efficientsam_zoo.data.sa1b.SA1BSamples`. Samples are dicts (image, masks, boxes, valid)."""

    def __init__(self, paths: Sequence[str], img_size: int = 1024, max_masks: int = 64, seed: int = 0,
                 min_area: int = 16) -> None:
        import glob

        from ..data.sa1b import SA1BSamples

        resolved = []
        for p in [paths] if isinstance(paths, str) else paths:
            found = sorted(glob.glob(p)) if any(ch in p for ch in "*?[") else [p]
            if not found:
                raise FileNotFoundError(f"no SA-1B shards match {p!r}")
            resolved += found
        self.samples = SA1BSamples(resolved, img_size=img_size, max_masks=max_masks, seed=seed, min_area=min_area)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, idx: int) -> dict:
        return self.samples[idx]


@MODELS.register_module()
class EfficientSamFinetuner(BaseModel):
    """EfficientSAM trained end to end (encoder + decoder) with SAM's simulated prompts and losses.

    ``init_checkpoint``: a SAMI backbone export / HF ``SamiViTModel`` directory (into the image encoder; its SAM
    neck and the decoder start fresh) or an official EfficientSAM checkpoint (everything).
    """

    def __init__(self, variant: str = "efficientsam-ti", overrides: Optional[dict] = None,
                 init_checkpoint: Optional[str] = None, iterative_rounds: int = 2, box_prob: float = 0.5,
                 seed: int = 0, data_preprocessor: Optional[dict] = None, init_cfg: Optional[dict] = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor or dict(type="BaseDataPreprocessor"), init_cfg=init_cfg)
        from ..build import build_efficient_sam

        self.sam = build_efficient_sam(variant, **(overrides or {})).train()
        self.init_checkpoint = init_checkpoint
        if iterative_rounds < 0 or 2 + iterative_rounds > self.sam.decoder_max_num_input_points:
            raise ValueError(f"iterative_rounds={iterative_rounds}: a box plus the extra points must fit in "
                             f"{self.sam.decoder_max_num_input_points} prompt points")
        self.iterative_rounds = iterative_rounds
        self.box_prob = box_prob
        self.generator = torch.Generator().manual_seed(seed)

    def init_weights(self) -> None:
        if not self.init_checkpoint:
            return
        from ..build import load_official_weights
        from ..checkpoints import load_pretrained_backbone, read_checkpoint

        path = self.init_checkpoint
        is_official = False
        if os.path.isfile(path) and not path.endswith(".safetensors"):
            obj = read_checkpoint(path)
            sd = obj.get("model", obj) if isinstance(obj, dict) else {}
            is_official = any(k.startswith("mask_decoder.") for k in sd)
        if is_official:
            load_official_weights(self.sam, path)
        else:
            load_pretrained_backbone(self.sam.image_encoder, path, allow_missing=("rel_pos_", "neck."))

    def forward(self, image: torch.Tensor = None, masks: torch.Tensor = None, boxes: torch.Tensor = None,
                valid: torch.Tensor = None, mode: str = "loss", **kwargs):
        from ..training.sam_finetune import error_points, initial_prompts, mask_losses

        if mode != "loss":
            raise ValueError("EfficientSamFinetuner only trains (mode='loss'); evaluate with efficientsam-zoo eval-*")
        size = self.sam.img_size
        embeddings = self.sam.get_image_embeddings(image)  # once per image, reused by every round
        totals = {"loss": 0.0, "loss_focal": 0.0, "loss_dice": 0.0, "loss_iou": 0.0}
        n_images = 0
        for b in range(image.shape[0]):
            keep = valid[b]
            if not bool(keep.any()):
                continue
            gt, gt_boxes = masks[b][keep], boxes[b][keep].cpu()
            points, labels = initial_prompts(gt.cpu(), gt_boxes, size, self.generator, self.box_prob)
            rounds = []
            for r in range(1 + self.iterative_rounds):
                logits, iou = self.sam.predict_masks(embeddings[b:b + 1], points[None].to(image.device),
                                                     labels[None].to(image.device), True, size, size)
                logits, iou = logits[0], iou[0]
                rounds.append(mask_losses(logits, iou, gt))
                if r < self.iterative_rounds:
                    with torch.no_grad():
                        best = iou.argmax(1)
                        pred = logits[torch.arange(len(best)), best] > 0
                    new_p, new_l = error_points(pred.cpu(), gt.cpu(), size, self.generator)
                    points, labels = torch.cat([points, new_p], 1), torch.cat([labels, new_l], 1)
            for key, idx in (("loss", 0), ("loss_focal", 1), ("loss_dice", 2), ("loss_iou", 3)):
                totals[key] = totals[key] + sum(rd[idx] for rd in rounds) / len(rounds)
            n_images += 1
        if n_images == 0:  # no valid mask in the batch: a zero loss that still touches the graph
            return {"loss": embeddings.sum() * 0.0}
        loss = totals.pop("loss") / n_images
        return {"loss": loss, **{k: (v / n_images).detach() for k, v in totals.items()}}
