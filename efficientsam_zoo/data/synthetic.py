"""Generated datasets in the real on-disk formats (COCO instances, ADE20K), for smoke runs and tests.

Scenes come from one generator (:func:`draw_scene`): a noisy gradient background and a few non-overlapping
ellipses / rectangles / triangles (the shape is the class), turned by random angles and filled with a noisy colour,
whose exact polygons become the annotations, so every mask, box, area and label is known.
"""
from __future__ import annotations

import json
import math
import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

from ..utils.masks import encode_rle, mask_to_xywh

__all__ = ["COCO_CLASSES", "SHAPES", "draw_scene", "make_scene", "make_coco_instances", "make_ade20k",
           "make_sa1b_shards", "make_mask_folder", "CLASSIFICATION_CLASSES", "make_classification_folders", "make_moving_shapes"]

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


#: Object shapes; a shape's category id is its index + 1 (so a detector can learn classes from appearance).
SHAPES = ("ellipse", "rectangle", "triangle")


def _polygon(shape: str, cx: float, cy: float, rx: float, ry: float) -> List[Tuple[float, float]]:
    if shape == "rectangle":
        return [(cx - rx, cy - ry), (cx + rx, cy - ry), (cx + rx, cy + ry), (cx - rx, cy + ry)]
    if shape == "triangle":
        return [(cx, cy - ry), (cx + rx, cy + ry), (cx - rx, cy + ry)]
    return [(cx + rx * math.cos(t), cy + ry * math.sin(t)) for t in np.linspace(0, 2 * math.pi, 24, endpoint=False)]


def _rotated(poly: List[Tuple[float, float]], cx: float, cy: float, angle: float) -> List[Tuple[float, float]]:
    c, s = math.cos(angle), math.sin(angle)
    return [(cx + (x - cx) * c - (y - cy) * s, cy + (x - cx) * s + (y - cy) * c) for x, y in poly]


#: The objects' texture: each pixel of an object is its colour plus Gaussian noise of this standard deviation (0..255
#: scale), so that neither a filled box nor a flood fill of the clicked colour is the object (the baselines the
#: learning tests compare against); the background's noise is 6.
TEXTURE_SIGMA = 20.0


def draw_scene(rng: np.random.Generator, width: int = 160, height: int = 120, n_objects: int = 3,
               num_classes: int = len(SHAPES), radius: Tuple[float, float] = (0.1, 0.22),
               categories: Optional[Sequence[int]] = None, rotate: bool = True,
               texture: float = TEXTURE_SIGMA, touching: bool = False) -> Tuple[np.ndarray, List[Dict]]:
    """The one scene generator: a noisy gradient background and up to ``n_objects`` non-overlapping shapes.

    Returns the RGB image (``HxWx3`` uint8) and one dict per object: ``shape``, ``category_id`` (1-based, the
    shape's index among the first ``num_classes`` of :data:`SHAPES`), ``polygon`` (its exact outline), ``mask``
    (``HxW`` bool, the pixels PIL filled for it) and ``bbox`` (COCO ``[x, y, w, h]`` of the polygon). Objects never
    overlap (each keeps a 2-px gap), so every mask is fully visible and equals its polygon. ``categories`` (1-based)
    fixes the objects' classes in turn instead of drawing them. Each shape is turned by a random angle
    (``rotate``) and filled with its colour plus per-pixel noise (``texture``, the standard deviation).

    ``touching``: objects come in pairs of one colour, the second drawn behind the first and overlapping it, so the
    two touch (a click on one is ambiguous without a negative click on the other); the second's ``mask`` is what the
    first leaves visible, and ``occluded`` marks it (its polygon is no longer its mask).
    """
    from PIL import ImageDraw

    if not 1 <= num_classes <= len(SHAPES):
        raise ValueError(f"num_classes must be 1..{len(SHAPES)}, got {num_classes}")
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([xx / width * 100 + 60, yy / height * 100 + 60, np.full_like(xx, 100.0)], -1)
    base += rng.normal(0, 6, (height, width, 3))
    objects: List[Dict] = []
    taken: List[Tuple[float, float, float, float]] = []
    for _ in range(n_objects):
        partner = objects[-1] if touching and len(objects) % 2 == 1 else None
        for _attempt in range(50):
            rx, ry = rng.uniform(*radius) * width, rng.uniform(*radius) * height
            cx, cy = rng.uniform(rx + 1, width - rx - 1), rng.uniform(ry + 1, height - ry - 1)
            if partner is not None:  # beside the partner, overlapping a quarter of its width
                px0, py0, pw, ph = partner["bbox"]
                cx, cy = px0 + pw * 0.75 + rx, py0 + ph / 2 + rng.uniform(-0.25, 0.25) * ph
            cat = int(rng.integers(num_classes)) if categories is None else categories[len(objects) % len(categories)] - 1
            poly = _polygon(SHAPES[cat], cx, cy, rx, ry)
            if rotate:
                poly = _rotated(poly, cx, cy, rng.uniform(0, math.pi))
            xs, ys = [p[0] for p in poly], [p[1] for p in poly]
            box = (min(xs) - 2, min(ys) - 2, max(xs) + 2, max(ys) + 2)
            inside = box[0] >= -1 and box[1] >= -1 and box[2] <= width and box[3] <= height
            others = taken[:-1] if partner is not None else taken
            if inside and all(box[2] < t[0] or t[2] < box[0] or box[3] < t[1] or t[3] < box[1] for t in others):
                break
        else:
            if partner is not None:
                objects.pop()  # a pair or nothing
                taken.pop()
            continue  # no free spot left
        layer = Image.new("L", (width, height), 0)
        ImageDraw.Draw(layer).polygon(poly, fill=1)
        mask = np.asarray(layer, dtype=bool)
        if partner is not None:
            mask = mask & ~partner["mask"]  # drawn behind its partner: only what the partner leaves visible
        if not mask.any():
            continue
        color = partner["color"] if partner is not None else rng.integers(0, 256, 3)
        base[mask] = color + rng.normal(0, texture, (int(mask.sum()), 3)) if texture else color
        taken.append(box)
        bbox = mask_to_xywh(mask) if partner is not None else [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]
        objects.append(dict(shape=SHAPES[cat], category_id=cat + 1, polygon=poly, mask=mask, color=color,
                            occluded=partner is not None, bbox=bbox))
    if touching and len(objects) % 2:
        objects.pop()  # pairs only
    return base.clip(0, 255).astype(np.uint8), objects


def make_scene(seed: int, height: int = 240, width: int = 320, n_objects: int = 3) -> Tuple[np.ndarray, List[np.ndarray]]:
    """A generated RGB scene (uint8) and the boolean masks of its objects (:func:`draw_scene`, seeded)."""
    image, objects = draw_scene(np.random.default_rng(seed), width, height, n_objects)
    return image, [o["mask"] for o in objects]


def make_moving_shapes(seed: int, num_frames: int = 8, height: int = 120, width: int = 160, n_objects: int = 3,
                       speed: float = 0.04) -> Tuple[np.ndarray, np.ndarray]:
    """A generated video: :func:`draw_scene`'s shapes on its background, each moving in a straight line (up to
    ``speed`` of the frame's size per frame, in any direction), so that they pass in front of each other (the later
    object is in front) and may leave the frame. Returns ``frames`` (``[T, H, W, 3]`` uint8) and ``masks``
    (``[T, N, H, W]`` bool: object ``i``'s visible pixels on frame ``t``, empty while hidden or gone).
    """
    from PIL import ImageDraw

    rng = np.random.default_rng(seed)
    background, _ = draw_scene(rng, width, height, n_objects=0)
    _, objects = draw_scene(rng, width, height, n_objects)
    velocity = rng.uniform(-speed, speed, (len(objects), 2)) * (width, height)
    noise = [rng.normal(0, TEXTURE_SIGMA, (height, width, 3)) for _ in objects]
    frames = np.empty((num_frames, height, width, 3), np.uint8)
    masks = np.zeros((num_frames, len(objects), height, width), bool)
    for t in range(num_frames):
        image = background.astype(np.float32)
        for i, obj in enumerate(objects):  # later objects are drawn over earlier ones
            dx, dy = velocity[i] * t
            layer = Image.new("L", (width, height), 0)
            ImageDraw.Draw(layer).polygon([(x + dx, y + dy) for x, y in obj["polygon"]], fill=1)
            mask = np.asarray(layer, dtype=bool)
            image[mask] = obj["color"] + noise[i][mask]
            masks[t, :i][:, mask] = False  # what this object covers is hidden in the ones behind it
            masks[t, i] = mask
        frames[t] = image.clip(0, 255).astype(np.uint8)
    return frames, masks


def _area(poly: List[Tuple[float, float]]) -> float:
    x = np.array([p[0] for p in poly])
    y = np.array([p[1] for p in poly])
    return float(0.5 * abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))))


def make_coco_instances(root: str, splits: Dict[str, int] = None, size: Tuple[int, int] = (160, 120),
                        n_objects: int = 2, num_classes: int = 3, seed: int = 0, touching: bool = False
                        ) -> Dict[str, str]:
    """Write ``root/<split>2017/*.jpg`` and ``root/annotations/instances_<split>2017.json`` (polygon masks; RLE for
    the occluded objects of ``touching`` scenes).

    All 80 COCO categories are listed (ids 1..80) so any COCO-trained head maps; objects use the first
    ``num_classes`` (category = shape, see :func:`draw_scene`). Returns the annotation file of each split.
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
            img, objects = draw_scene(rng, w, h, n_objects, num_classes, touching=touching)
            Image.fromarray(img).save(os.path.join(img_dir, name), quality=95)
            images.append(dict(id=image_id, file_name=name, width=w, height=h))
            for obj in objects:
                if obj["occluded"]:
                    seg, area = encode_rle(obj["mask"]), float(obj["mask"].sum())
                else:
                    seg, area = [[float(v) for p in obj["polygon"] for v in p]], _area(obj["polygon"])
                annotations.append(dict(id=ann_id, image_id=image_id, category_id=obj["category_id"], segmentation=seg,
                                        area=area, bbox=obj["bbox"], iscrowd=0))
                ann_id += 1
        path = os.path.join(root, "annotations", f"instances_{split}2017.json")
        with open(path, "w") as f:
            json.dump(dict(images=images, annotations=annotations, categories=categories), f)
        out[split] = path
    return out


#: ADE20K label of the generated background (1 = "wall"); objects get 1 + their category id (2, 3, 4).
ADE_BACKGROUND = 1


def make_ade20k(root: str, splits: Dict[str, int] = None, size: Tuple[int, int] = (160, 120), n_objects: int = 3,
                seed: int = 0, categories: Optional[Sequence[int]] = None) -> str:
    """Write ``root/images/{training,validation}/*.jpg`` and ``root/annotations/.../*.png`` (ADE20K layout:
    label 0 = "other", 1..150 the classes, i.e. ``reduce_zero_label=True`` data). The background is
    :data:`ADE_BACKGROUND`, each object ``ADE_BACKGROUND + category_id`` (its shape)."""
    splits = splits or {"training": 4, "validation": 2}
    w, h = size
    rng = np.random.default_rng(seed)
    for split, n_images in splits.items():
        os.makedirs(os.path.join(root, "images", split), exist_ok=True)
        os.makedirs(os.path.join(root, "annotations", split), exist_ok=True)
        for k in range(n_images):
            img, objects = draw_scene(rng, w, h, n_objects, categories=categories)
            label = np.full((h, w), ADE_BACKGROUND, dtype=np.uint8)
            for obj in objects:
                label[obj["mask"]] = ADE_BACKGROUND + obj["category_id"]
            name = f"ADE_{split}_{k:08d}"
            Image.fromarray(img).save(os.path.join(root, "images", split, name + ".jpg"), quality=95)
            Image.fromarray(label).save(os.path.join(root, "annotations", split, name + ".png"))
    return root


def make_sa1b_shards(root: str, n_shards: int = 2, images_per_shard: int = 3, size: Tuple[int, int] = (160, 120),
                     n_objects: int = 3, seed: int = 0, touching: bool = False) -> List[str]:
    """Write SA-1B-layout tar shards (``sa_<id>.jpg`` + ``sa_<id>.json`` pairs, per-mask COCO RLE with ``bbox``,
    ``area``, ``point_coords``, ``predicted_iou``, ``stability_score``, ``crop_box``). Returns the shard paths."""
    import io
    import tarfile

    w, h = size
    rng = np.random.default_rng(seed)
    os.makedirs(root, exist_ok=True)
    paths, image_id, ann_id = [], 1, 1
    for s in range(n_shards):
        path = os.path.join(root, f"sa_{s:06d}.tar")
        with tarfile.open(path, "w") as tar:
            for _ in range(images_per_shard):
                img, objects = draw_scene(rng, w, h, n_objects, touching=touching)
                anns = []
                for obj in objects:
                    m = obj["mask"]
                    ys, xs = np.nonzero(m)
                    k = int(rng.integers(len(xs)))
                    anns.append(dict(id=ann_id, segmentation=encode_rle(m), bbox=mask_to_xywh(m),
                                     area=int(m.sum()), point_coords=[[float(xs[k]), float(ys[k])]],
                                     predicted_iou=0.9, stability_score=0.95, crop_box=[0, 0, w, h]))
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


def make_mask_folder(root: str, n_images: int = 4, size: Tuple[int, int] = (160, 120), n_objects: int = 3,
                     seed: int = 0, layout: str = "ids", touching: bool = False,
                     radius: Tuple[float, float] = (0.1, 0.22)) -> Tuple[str, str]:
    """Write ``root/images/NAME.png`` and the masks: ``layout="ids"`` one instance-id PNG ``root/masks/NAME.png``
    (0 = background, 1..N the objects), ``"binary"`` a folder ``root/masks/NAME/`` of one binary PNG per object.
    ``n_objects``, ``touching`` and ``radius`` are :func:`draw_scene`'s. Returns ``(images folder, masks folder)``."""
    if layout not in ("ids", "binary"):
        raise ValueError(f"layout must be 'ids' or 'binary', got {layout!r}")
    w, h = size
    rng = np.random.default_rng(seed)
    images, masks = os.path.join(root, "images"), os.path.join(root, "masks")
    os.makedirs(images, exist_ok=True)
    os.makedirs(masks, exist_ok=True)
    for k in range(n_images):
        img, objects = draw_scene(rng, w, h, n_objects, radius=radius, touching=touching)
        name = f"scene_{k:04d}"
        Image.fromarray(img).save(os.path.join(images, name + ".png"))
        if layout == "ids":
            ids = np.zeros((h, w), dtype=np.uint8)
            for i, obj in enumerate(objects, start=1):
                ids[obj["mask"]] = i
            Image.fromarray(ids).save(os.path.join(masks, name + ".png"))
        else:
            os.makedirs(os.path.join(masks, name), exist_ok=True)
            for i, obj in enumerate(objects, start=1):
                Image.fromarray(obj["mask"].astype(np.uint8) * 255).save(os.path.join(masks, name, f"{i:03d}.png"))
    return images, masks


def _jpeg(img: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


#: The 10 classes of :func:`make_classification_folders`: a rectangle or a triangle in one of five colours.
_COLOURS = {"red": (220, 40, 40), "green": (40, 180, 60), "blue": (40, 70, 220), "yellow": (230, 210, 30),
            "magenta": (200, 40, 200)}
CLASSIFICATION_CLASSES = tuple(f"{c}_{s}" for s in ("rectangle", "triangle") for c in _COLOURS)


def make_classification_folders(root: str, splits: Dict[str, int] = None, size: int = 64, seed: int = 0) -> Dict[str, str]:
    """An ImageNet-layout 10-class set (``root/<split>/<class>/<i>.png``, :data:`CLASSIFICATION_CLASSES`): one
    object of the class's shape and colour (size, place, aspect and shade jittered) on the generator's background.
    ``splits`` maps split name -> images per class. Returns each split's folder."""
    from PIL import ImageDraw

    splits = splits or {"train": 20, "val": 5}
    rng = np.random.default_rng(seed)
    out = {}
    for split, per_class in splits.items():
        for name in CLASSIFICATION_CLASSES:
            folder = os.path.join(root, split, name)
            os.makedirs(folder, exist_ok=True)
            for i in range(per_class):
                img, _ = draw_scene(rng, size, size, n_objects=0)
                pic = Image.fromarray(img)
                colour, shape = name.split("_")
                r = rng.uniform(0.3, 0.42) * size
                cx, cy = rng.uniform(r + 1, size - r - 1, 2)
                shade = tuple(int(np.clip(c + rng.integers(-25, 26), 0, 255)) for c in _COLOURS[colour])
                ImageDraw.Draw(pic).polygon(_polygon(shape, cx, cy, r, r * rng.uniform(0.8, 1.2)), fill=shade)
                pic.save(os.path.join(folder, f"{i}.png"))
        out[split] = os.path.join(root, split)
    return out
