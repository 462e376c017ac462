"""Generated datasets in the real on-disk formats (COCO instances, ADE20K), for smoke runs and tests.

Scenes are drawn with PIL: a noisy gradient background and a few ellipses / rectangles whose exact
polygons become the annotations, so every mask, box and area is known.
"""
from __future__ import annotations

import json
import math
import os
from typing import Dict, List, Tuple

import numpy as np

__all__ = ["COCO_CLASSES", "make_coco_instances", "make_ade20k"]

COCO_CLASSES = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors", "teddy bear",
    "hair drier", "toothbrush")


def _polygon(rng: np.random.Generator, w: int, h: int) -> List[Tuple[float, float]]:
    cx, cy = rng.uniform(0.25, 0.75) * w, rng.uniform(0.25, 0.75) * h
    rx, ry = rng.uniform(0.1, 0.22) * w, rng.uniform(0.1, 0.22) * h
    if rng.random() < 0.5:
        return [(cx - rx, cy - ry), (cx + rx, cy - ry), (cx + rx, cy + ry), (cx - rx, cy + ry)]
    return [(cx + rx * math.cos(t), cy + ry * math.sin(t)) for t in np.linspace(0, 2 * math.pi, 24, endpoint=False)]


def _scene(rng: np.random.Generator, w: int, h: int, n_objects: int):
    from PIL import Image, ImageDraw

    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx / w * 100 + 60, yy / h * 100 + 60, np.full_like(xx, 100.0)], -1) + rng.normal(0, 6, (h, w, 3))
    img = Image.fromarray(base.clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    objects = []
    for _ in range(n_objects):
        poly = _polygon(rng, w, h)
        color = tuple(int(c) for c in rng.integers(0, 255, 3))
        draw.polygon(poly, fill=color)
        objects.append(poly)
    return img, objects


def _area(poly: List[Tuple[float, float]]) -> float:
    x = np.array([p[0] for p in poly])
    y = np.array([p[1] for p in poly])
    return float(0.5 * abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))))


def make_coco_instances(root: str, splits: Dict[str, int] = None, size: Tuple[int, int] = (160, 120),
                        n_objects: int = 2, num_classes: int = 3, seed: int = 0) -> Dict[str, str]:
    """Write ``root/<split>2017/*.jpg`` and ``root/annotations/instances_<split>2017.json`` (polygon masks).

    All 80 COCO categories are listed (ids 1..80) so any COCO-trained head maps; objects use the first
    ``num_classes``. Later objects are drawn over earlier ones, so masks may overlap as in real data.
    Returns the annotation file of each split.
    """
    splits = splits or {"train": 4, "val": 2}
    w, h = size
    rng = np.random.default_rng(seed)
    os.makedirs(os.path.join(root, "annotations"), exist_ok=True)
    categories = [dict(id=i + 1, name=n, supercategory="thing") for i, n in enumerate(COCO_CLASSES)]
    out = {}
    ann_id = 1
    for split, n_images in splits.items():
        img_dir = os.path.join(root, f"{split}2017")
        os.makedirs(img_dir, exist_ok=True)
        images, annotations = [], []
        for k in range(n_images):
            image_id = len(images) + 1 + (1000 if split == "val" else 0)
            name = f"{image_id:012d}.jpg"
            img, objects = _scene(rng, w, h, n_objects)
            img.save(os.path.join(img_dir, name), quality=95)
            images.append(dict(id=image_id, file_name=name, width=w, height=h))
            for poly in objects:
                xs, ys = [p[0] for p in poly], [p[1] for p in poly]
                annotations.append(dict(
                    id=ann_id, image_id=image_id, category_id=int(rng.integers(1, num_classes + 1)),
                    segmentation=[[float(v) for p in poly for v in p]], area=_area(poly),
                    bbox=[min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)], iscrowd=0))
                ann_id += 1
        path = os.path.join(root, "annotations", f"instances_{split}2017.json")
        with open(path, "w") as f:
            json.dump(dict(images=images, annotations=annotations, categories=categories), f)
        out[split] = path
    return out


def make_ade20k(root: str, splits: Dict[str, int] = None, size: Tuple[int, int] = (160, 120), n_objects: int = 3,
                num_classes: int = 150, seed: int = 0) -> str:
    """Write ``root/images/{training,validation}/*.jpg`` and ``root/annotations/.../*.png`` (ADE20K layout:
    label 0 = "other", 1..150 the classes, i.e. ``reduce_zero_label=True`` data)."""
    from PIL import Image, ImageDraw

    splits = splits or {"training": 4, "validation": 2}
    w, h = size
    rng = np.random.default_rng(seed)
    for split, n_images in splits.items():
        os.makedirs(os.path.join(root, "images", split), exist_ok=True)
        os.makedirs(os.path.join(root, "annotations", split), exist_ok=True)
        for k in range(n_images):
            img, objects = _scene(rng, w, h, n_objects)
            label = Image.new("L", (w, h), int(rng.integers(1, num_classes + 1)))  # background class
            draw = ImageDraw.Draw(label)
            for poly in objects:
                draw.polygon(poly, fill=int(rng.integers(1, num_classes + 1)))
            name = f"ADE_{split}_{k:08d}"
            img.save(os.path.join(root, "images", split, name + ".jpg"), quality=95)
            label.save(os.path.join(root, "annotations", split, name + ".png"))
    return root


def make_sa1b_shards(root: str, n_shards: int = 2, images_per_shard: int = 3, size: Tuple[int, int] = (160, 120),
                     n_objects: int = 3, seed: int = 0) -> List[str]:
    """Write SA-1B-layout tar shards (``sa_<id>.jpg`` + ``sa_<id>.json`` pairs, per-mask COCO RLE with ``bbox``,
    ``area``, ``point_coords``, ``predicted_iou``, ``stability_score``, ``crop_box``). Returns the shard paths."""
    import io
    import tarfile

    from PIL import Image, ImageDraw
    from pycocotools import mask as mask_utils

    w, h = size
    rng = np.random.default_rng(seed)
    os.makedirs(root, exist_ok=True)
    paths, image_id, ann_id = [], 1, 1
    for s in range(n_shards):
        path = os.path.join(root, f"sa_{s:06d}.tar")
        with tarfile.open(path, "w") as tar:
            for _ in range(images_per_shard):
                img, objects = _scene(rng, w, h, n_objects)
                anns = []
                for poly in objects:
                    layer = Image.new("L", (w, h), 0)
                    ImageDraw.Draw(layer).polygon(poly, fill=1)
                    m = np.asarray(layer, dtype=np.uint8)
                    if not m.any():
                        continue
                    rle = mask_utils.encode(np.asfortranarray(m))
                    ys, xs = np.nonzero(m)
                    k = int(rng.integers(len(xs)))
                    anns.append(dict(id=ann_id, segmentation={"size": [h, w], "counts": rle["counts"].decode()},
                                     bbox=[int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1),
                                           int(ys.max() - ys.min() + 1)], area=int(m.sum()),
                                     point_coords=[[float(xs[k]), float(ys[k])]], predicted_iou=0.9,
                                     stability_score=0.95, crop_box=[0, 0, w, h]))
                    ann_id += 1
                record = dict(image=dict(image_id=image_id, width=w, height=h, file_name=f"sa_{image_id}.jpg"),
                              annotations=anns)
                for name, data in ((f"sa_{image_id}.jpg", _jpeg(img)), (f"sa_{image_id}.json",
                                                                         json.dumps(record).encode())):
                    info = tarfile.TarInfo(name)
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
                image_id += 1
        paths.append(path)
    return paths


def _jpeg(img) -> bytes:
    import io

    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=95)
    return buf.getvalue()
