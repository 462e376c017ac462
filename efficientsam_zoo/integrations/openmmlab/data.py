"""Datasets and transforms for the package's own mmengine models: ImageNet-style folders for SAMI, precomputed
teacher targets, SA-1B shards for segment-anything finetuning."""
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

from ...data.instances import InstanceSamples, open_source
from ...data.instances import split as split_indices
from ...data.sa1b import SA1BSamples
from ...utils.image import IMAGE_EXTENSIONS, load_image_rgb, to_uint8
from .scope import DATASETS, TRANSFORMS

__all__ = ["ImageFolderDataset", "LoadImageRGB", "RandomResizedCrop", "ResizeCenterCrop", "PackImageInputs",
           "PrecomputedFeatureDataset", "SA1BDataset", "InstanceDataset"]



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
    """``img_path`` -> ``img`` (HxWx3 uint8 RGB, as a viewer shows the file: EXIF orientation applied, 16-bit
    files scaled)."""

    def transform(self, results: dict) -> dict:

        img = to_uint8(load_image_rgb(results["img_path"]))
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
    """``img`` -> ``inputs`` (CHW uint8 tensor) for ``ImgDataPreprocessor``; ``data_samples`` carry the dataset
    index (``sample_idx``, which seeds the sample's masking) and precomputed ``teacher_features`` if any."""

    def transform(self, results: dict) -> dict:
        img = np.ascontiguousarray(results["img"])
        samples = {"sample_idx": int(results.get("sample_idx", -1))}
        if "teacher_features" in results:
            samples["teacher_features"] = torch.from_numpy(np.asarray(results["teacher_features"], dtype=np.float32))
        return {"inputs": torch.from_numpy(img).permute(2, 0, 1).contiguous(), "data_samples": samples}


def precomputed_count(feature_dir: str) -> int:
    """Images whose teacher targets are written: ``progress.json`` of a one-process run, or the per-rank
    ``progress.<rank>-of-<world>.json`` files of a sharded run (each ``{"start", "end", "done"}``)."""
    import glob
    import json
    import re

    counts = {}
    single = os.path.join(feature_dir, "progress.json")
    if os.path.isfile(single):
        counts[1] = json.load(open(single))["done"]
    for path in glob.glob(os.path.join(feature_dir, "progress.*-of-*.json")):
        world = int(re.search(r"-of-(\d+)\.json$", path).group(1))
        p = json.load(open(path))
        counts[world] = counts.get(world, 0) + min(p["done"], p["end"]) - p["start"]
    return max(counts.values(), default=0)


@DATASETS.register_module()
class PrecomputedFeatureDataset(BaseDataset):
    """Images plus teacher targets written by ``python -m efficientsam_zoo.tools.precompute_teacher``.

    ``feature_dir`` holds ``index.json`` (image paths, crop), ``features.npy`` (float16 ``[N, H*W, C]``, read
    memory-mapped) and the progress files (see :func:`precomputed_count`). Use a pipeline with the same fixed crop (``ResizeCenterCrop``) and
    no flips: the targets belong to that exact crop.
    """

    def __init__(self, feature_dir: str, pipeline: Sequence = (), **kwargs) -> None:
        self.feature_dir = feature_dir
        self._features = None
        super().__init__(data_root=feature_dir, pipeline=list(pipeline), serialize_data=False, **kwargs)

    def load_data_list(self) -> List[dict]:
        import json

        index_path = os.path.join(self.feature_dir, "index.json")
        if not os.path.isfile(index_path):
            raise FileNotFoundError(f"{self.feature_dir!r} has no index.json: run "
                                    "python -m efficientsam_zoo.tools.precompute_teacher first")
        index = json.load(open(index_path))
        done = precomputed_count(self.feature_dir)
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


@DATASETS.register_module()
class SA1BDataset(torch.utils.data.Dataset):
    """SA-1B tar shards or folders (``paths``: files, folders or glob patterns) as Runner samples; see
    :class:`efficientsam_zoo.data.sa1b.SA1BSamples`. Samples are dicts (image, masks, boxes, valid)."""

    def __init__(self, paths: Sequence[str], img_size: int = 1024, max_masks: int = 64, seed: int = 0,
                 min_area: int = 16) -> None:
        import glob

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


@DATASETS.register_module()
class InstanceDataset(torch.utils.data.Dataset):
    """Your own instance masks as Runner samples (``data.instances``): under ``data_root``, a COCO / LVIS JSON
    ``ann_file`` with its images in ``data_prefix["img"]``, or a mask folder (``data_prefix["masks"]``, no
    ``ann_file``). ``indices`` (or ``split="train" | "val"`` with ``val_fraction``, seeded) selects the images; samples
    are :class:`~efficientsam_zoo.data.instances.InstanceSamples`' (the form SA-1B's have)."""

    def __init__(self, data_root: str = "", ann_file: Optional[str] = None,
                 data_prefix: Optional[dict] = None, categories: Optional[Sequence] = None, img_size: int = 1024,
                 max_masks: int = 16, seed: int = 0, indices: Optional[Sequence[int]] = None,
                 split: Optional[str] = None, val_fraction: float = 0.1) -> None:
        prefix = {"img": "images/", "masks": "masks/", **(data_prefix or {})}
        images = os.path.join(data_root, prefix["img"])
        annotations = os.path.join(data_root, ann_file) if ann_file else None
        self.source = open_source(images, annotations=annotations,
                                  masks=None if ann_file else os.path.join(data_root, prefix["masks"]),
                                  categories=categories)
        if split is not None:
            if split not in ("train", "val"):
                raise ValueError(f"split must be 'train' or 'val', got {split!r}")
            indices = split_indices(len(self.source), val_fraction, seed)[split == "val"]
        self.samples = InstanceSamples(self.source, img_size=img_size, max_masks=max_masks, seed=seed,
                                       indices=indices)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, idx: int) -> dict:
        return self.samples[idx]
