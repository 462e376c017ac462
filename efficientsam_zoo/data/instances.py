"""Instance-mask datasets in the layouts people already have, behind one interface for training and evaluation.

==========================  ================================================================================
:class:`CocoInstances`      a COCO instances JSON (polygons and RLE, through pycocotools); ``iscrowd`` skipped
:class:`LvisInstances`      an LVIS JSON (through the ``lvis`` package)
:class:`MaskFolder`         ``images/NAME.ext`` with ``masks/NAME.png`` (one instance-id PNG, 8 or 16 bit, 0 =
                            background) or ``masks/NAME/*.png`` (one binary PNG per instance)
==========================  ================================================================================

Each is a sequence of images: ``len(source)``, ``source.info(i)`` (``image_id``, ``file``, ``height``, ``width``) and
``source.load(i)`` -> :class:`Annotated` (the image as a viewer shows it -- EXIF orientation, 16-bit scaling -- and
its instances' boolean masks with their ids). :class:`InstanceSamples` turns any of them (and SA-1B shards, through
``data.sa1b``) into training samples; ``evaluation.point_eval`` and ``evaluation.interactive`` score a model on them.
Annotations that cannot be used (a polygon outside its image, a zero area) are skipped, counted in
``source.skipped`` and named in the log; a problem with the data as a whole (a missing image, a mask of another size,
an RGB mask where an instance-id PNG is expected, a category filter that matches nothing) raises one error naming it.
"""
from __future__ import annotations

import glob
import logging
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from ..utils.image import IMAGE_EXTENSIONS, annotated_frame, image_to_tensor, load_image_rgb
from ..utils.masks import mask_to_box
from .coco import ann_to_mask, anns_of, category_list, image_infos, image_path, load_coco_like

__all__ = ["Annotated", "InstanceSource", "CocoInstances", "LvisInstances", "MaskFolder", "Subset",
           "InstanceSamples", "split", "open_source"]

log = logging.getLogger(__name__)


@dataclass
class Annotated:
    """One image and its instances: ``image`` ``HxWx3`` (uint8, or uint16 for 16-bit files), ``masks`` (bool
    ``HxW`` each) and ``ids`` (annotation ids, or instance ids of a mask folder)."""

    image_id: int
    image: np.ndarray
    masks: List[np.ndarray]
    ids: List[int]
    categories: List[int] = field(default_factory=list)


class InstanceSource:
    """The interface: a sequence of annotated images (module docstring)."""

    name = "instances"

    def __init__(self) -> None:
        self.skipped: Counter = Counter()  # reason -> how many annotations were left out (each counted once)
        self._seen: set = set()

    def __len__(self) -> int:
        raise NotImplementedError

    def info(self, i: int) -> Dict:
        raise NotImplementedError

    def load(self, i: int) -> Annotated:
        raise NotImplementedError

    def _skip(self, reason: str, what: str) -> None:
        if what in self._seen:  # loaded again (a second epoch, a second evaluation)
            return
        self._seen.add(what)
        if not self.skipped[reason]:
            log.warning("%s: skipping %s (%s); further ones are counted in .skipped", self.name, what, reason)
        self.skipped[reason] += 1


class _CocoLike(InstanceSource):
    """COCO / LVIS through their own APIs (``evaluation.common.load_coco_like`` picks the API)."""

    def __init__(self, ann_file: str, img_dir: str, categories: Optional[Sequence] = None) -> None:
        super().__init__()
        self.ann_file, self.img_dir = ann_file, img_dir
        self.name = os.path.basename(ann_file)
        self.api, self.kind = load_coco_like(ann_file)
        cats = category_list(self.api, self.kind)
        self.cat_ids = None
        if categories is not None:
            wanted = {str(c) for c in categories}
            self.cat_ids = {c["id"] for c in cats if str(c["id"]) in wanted or c["name"] in wanted}
            if not self.cat_ids:
                raise ValueError(f"the category filter {list(categories)} matches no category of {ann_file!r} "
                                 f"(it has {', '.join(c['name'] for c in cats[:10])}{' ...' if len(cats) > 10 else ''})")
        self.infos = image_infos(self.api, self.kind)
        if not os.path.isdir(img_dir):
            raise FileNotFoundError(f"image folder {img_dir!r} does not exist (the images of {ann_file!r})")

    def __len__(self) -> int:
        return len(self.infos)

    def info(self, i: int) -> Dict:
        info = self.infos[i]
        return dict(image_id=int(info["id"]), file=image_path(self.img_dir, info), height=int(info["height"]),
                    width=int(info["width"]))

    def load(self, i: int) -> Annotated:
        info = self.info(i)
        if not os.path.isfile(info["file"]):
            raise FileNotFoundError(f"image {info['file']!r} of {self.name} (image id {info['image_id']}) does not "
                                    "exist; check the image folder")
        image = load_image_rgb(info["file"], frame=annotated_frame(self.infos[i]))
        masks, ids, cats = [], [], []
        for a in anns_of(self.api, self.kind, info["image_id"]):
            if a.get("iscrowd", 0) or (self.cat_ids is not None and a["category_id"] not in self.cat_ids):
                continue
            what = f"annotation {a['id']} of image {info['image_id']}"
            if float(a.get("area", 1)) <= 0:
                self._skip("zero area", what)
                continue
            m = ann_to_mask(self.api, a)
            if m.shape != image.shape[:2]:
                raise ValueError(f"{self.name}: image {info['file']!r} is {image.shape[1]}x{image.shape[0]} but its "
                                 f"annotations are for {m.shape[1]}x{m.shape[0]}; is it the right image?")
            if not m.any():
                self._skip("mask outside its image (or empty)", what)
                continue
            masks.append(m)
            ids.append(int(a["id"]))
            cats.append(int(a["category_id"]))
        return Annotated(info["image_id"], image, masks, ids, cats)


class CocoInstances(_CocoLike):
    """A COCO instances JSON (``ann_file``) and its image folder; ``categories``: ids or names to keep."""


class LvisInstances(_CocoLike):
    """An LVIS JSON (read with the ``lvis`` package) and its image folder."""

    def __init__(self, ann_file: str, img_dir: str, categories: Optional[Sequence] = None) -> None:
        super().__init__(ann_file, img_dir, categories)
        if self.kind != "lvis":
            raise ValueError(f"{ann_file!r} is not an LVIS file (its categories have no 'frequency'); use "
                             "CocoInstances for a COCO JSON")


class MaskFolder(InstanceSource):
    """``images_dir/NAME.ext`` with ``masks_dir/NAME.png`` (instance ids: 0 background, 1..N instances; 8- or
    16-bit, single channel) or ``masks_dir/NAME/*.png`` (one binary PNG per instance, nonzero = the instance)."""

    def __init__(self, images_dir: str, masks_dir: str) -> None:
        super().__init__()
        for what, d in (("image", images_dir), ("mask", masks_dir)):
            if not os.path.isdir(d):
                raise FileNotFoundError(f"{what} folder {d!r} does not exist (expected images/NAME.ext and "
                                        "masks/NAME.png or masks/NAME/*.png)")
        self.images_dir, self.masks_dir, self.name = images_dir, masks_dir, os.path.basename(os.path.normpath(masks_dir))
        self.files = sorted(f for f in os.listdir(images_dir) if f.lower().endswith(IMAGE_EXTENSIONS))
        if not self.files:
            raise ValueError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in {images_dir!r}")

    def __len__(self) -> int:
        return len(self.files)

    def info(self, i: int) -> Dict:
        return dict(image_id=i, file=os.path.join(self.images_dir, self.files[i]), stem=os.path.splitext(self.files[i])[0])

    def _masks(self, stem: str) -> Tuple[List[np.ndarray], List[int], List[Tuple[int, int]]]:
        """``(masks, instance ids, the size of every mask file read)``."""
        from PIL import Image

        single = os.path.join(self.masks_dir, stem + ".png")
        folder = os.path.join(self.masks_dir, stem)
        if os.path.isfile(single):
            with Image.open(single) as im:
                if im.mode not in ("L", "P", "I", "I;16", "I;16B", "I;16L", "1"):
                    raise ValueError(f"mask {single!r} is a {im.mode} image; an instance-id mask is one channel (8- or "
                                     "16-bit PNG, 0 = background, 1..N = the instances), or use masks/NAME/*.png with "
                                     "one binary PNG per instance")
                ids = np.asarray(im).astype(np.int64)
            values = [int(v) for v in np.unique(ids) if v != 0]
            return [ids == v for v in values], values, [ids.shape]
        if os.path.isdir(folder):
            out = []
            for f in sorted(glob.glob(os.path.join(folder, "*.png"))):
                with Image.open(f) as im:
                    out.append(np.asarray(im.convert("L")) > 0)
            return out, list(range(1, len(out) + 1)), [m.shape for m in out]
        raise FileNotFoundError(f"no mask for image {stem!r}: expected {single!r} or a folder {folder!r}")

    def load(self, i: int) -> Annotated:
        info = self.info(i)
        image = load_image_rgb(info["file"])
        masks, ids, shapes = self._masks(info["stem"])
        for shape in shapes:
            if tuple(shape) != image.shape[:2]:
                raise ValueError(f"the mask of {info['file']!r} is {shape[1]}x{shape[0]} but the image is "
                                 f"{image.shape[1]}x{image.shape[0]}; masks must have their image's size")
        keep = []
        for k, m in enumerate(masks):
            if m.any():
                keep.append(k)
            else:
                self._skip("empty instance mask", f"instance {ids[k]} of {info['stem']}")
        return Annotated(info["image_id"], image, [masks[k] for k in keep], [ids[k] for k in keep])


class Subset(InstanceSource):
    """Some images of a source (a train / val split), as a source of their own."""

    def __init__(self, source: InstanceSource, indices: Sequence[int]) -> None:
        super().__init__()
        self.source, self.indices, self.name = source, list(indices), source.name
        self.skipped = source.skipped

    def __len__(self) -> int:
        return len(self.indices)

    def info(self, i: int) -> Dict:
        return self.source.info(self.indices[i])

    def load(self, i: int) -> Annotated:
        return self.source.load(self.indices[i])


def open_source(images: str, annotations: Optional[str] = None, masks: Optional[str] = None,
                categories: Optional[Sequence] = None) -> InstanceSource:
    """The source a user points at: a COCO / LVIS JSON (``annotations``) or a mask folder (``masks``)."""
    if (annotations is None) == (masks is None):
        raise ValueError("give exactly one of an annotation file (COCO / LVIS JSON) or a mask folder")
    if masks is not None:
        return MaskFolder(images, masks)
    kind = load_coco_like(annotations)[1]
    return (LvisInstances if kind == "lvis" else CocoInstances)(annotations, images, categories)


def split(n: int, val_fraction: float, seed: int = 0) -> Tuple[List[int], List[int]]:
    """``(train, val)`` indices of ``n`` images: a seeded ``val_fraction`` of them held out (at least one of each)."""
    if not 0.0 < val_fraction < 1.0 or n < 2:
        raise ValueError(f"cannot hold out {val_fraction} of {n} images; give a separate val split instead")
    order = np.random.default_rng(seed).permutation(n)
    k = min(n - 1, max(1, int(round(n * val_fraction))))
    return sorted(order[k:].tolist()), sorted(order[:k].tolist())


class InstanceSamples(torch.utils.data.Dataset):
    """Training samples of any :class:`InstanceSource`, in the form SA-1B's samples have (``data.sa1b``):
    ``{"image": float [3, S, S] 0..1, "masks": bool [K, S/4, S/4], "boxes": [K, 4] (S frame), "valid": bool [K],
    "index": idx}`` with up to ``max_masks`` instances drawn per image (seeded by ``seed`` and the index).
    ``indices`` restricts the source to a split."""

    def __init__(self, source: InstanceSource, img_size: int = 1024, max_masks: int = 16, seed: int = 0,
                 indices: Optional[Sequence[int]] = None) -> None:
        self.source, self.img_size, self.max_masks, self.seed = source, img_size, max_masks, seed
        self.indices = list(range(len(source))) if indices is None else list(indices)
        if not self.indices:
            raise ValueError(f"{source.name}: the split holds no images")

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, idx: int) -> Dict:
        item = self.source.load(self.indices[idx])
        h, w = item.image.shape[:2]
        rng = np.random.default_rng([self.seed, idx])
        chosen = rng.choice(len(item.masks), size=min(self.max_masks, len(item.masks)), replace=False)
        s, low = self.img_size, self.img_size // 4
        masks = torch.zeros(self.max_masks, low, low, dtype=torch.bool)
        boxes = torch.zeros(self.max_masks, 4)
        valid = torch.zeros(self.max_masks, dtype=torch.bool)
        for k, j in enumerate(chosen):
            m = torch.from_numpy(item.masks[j].astype(np.float32))
            masks[k] = F.interpolate(m[None, None], (low, low), mode="area")[0, 0] > 0.5
            x0, y0, x1, y1 = mask_to_box(item.masks[j]).tolist()
            boxes[k] = torch.tensor([x0 * s / w, y0 * s / h, (x1 + 1) * s / w, (y1 + 1) * s / h])
            valid[k] = bool(masks[k].any())
        image = F.interpolate(image_to_tensor(item.image)[None], (s, s), mode="bilinear")[0]
        return {"image": image, "masks": masks, "boxes": boxes, "valid": valid, "index": idx}
