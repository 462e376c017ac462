"""What the demo page computes, without the page: reading uploads, clicks and boxes to masks, segment everything,
and the files a user downloads. ``app.py`` puts Gradio around it; the tests call it directly as well.

One model serves every visitor. Model calls are serialised by a lock, and each image's embedding is computed once
and kept (a few images, least recently used first out), so a further click on the same image costs only the prompt
encoder and mask decoder. Every problem with the input raises :class:`DemoInputError` with the message the page
shows; nothing about one request is kept in the backend except the embedding cache.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from ..automatic_mask_generator import PRED_IOU_THRESH, STABILITY_SCORE_THRESH, AutomaticMaskGenerator
from ..modeling.efficient_sam import EfficientSam
from ..predictor import EfficientSamPredictor
from ..utils.image import load_image_rgb, to_uint8
from ..utils.io import save_png, write_json
from ..utils.masks import decode_rle, encode_rle, mask_to_xywh
from ..visualize import overlay_masks

__all__ = ["DemoBackend", "DemoInputError", "Segmentation", "MAX_PIXELS", "parse_points", "parse_box",
           "OutputFolders"]

#: The largest upload the demo segments (40 megapixels, e.g. 8000 x 5000); larger ones are refused by name.
MAX_PIXELS = 40_000_000
EMBEDDINGS_KEPT = 8


class OutputFolders:
    """Fresh folders for the files one request returns (Gradio copies them into its own cache when it answers); only
    the newest ``keep`` stay on disk, so a server that runs for weeks does not fill it."""

    def __init__(self, root: str, keep: int = 64) -> None:
        self.root, self.keep, self._made = root, keep, []
        self._lock = threading.Lock()
        os.makedirs(root, exist_ok=True)

    def new(self) -> str:
        with self._lock:
            folder = tempfile.mkdtemp(dir=self.root, prefix="out-")
            self._made.append(folder)
            while len(self._made) > self.keep:
                shutil.rmtree(self._made.pop(0), ignore_errors=True)
            return folder


class DemoInputError(ValueError):
    """Bad input to the demo; its message names the problem and what to do, and is what the page shows."""


@dataclass
class Segmentation:
    """One prompt's result: every candidate mask (``[C, H, W]`` bool), their scores, the best one's index."""

    masks: np.ndarray
    scores: np.ndarray
    best: int

    @property
    def mask(self) -> np.ndarray:
        return self.masks[self.best]

    @property
    def score(self) -> float:
        return float(self.scores[self.best])


def parse_points(text) -> List[Tuple[float, float, int]]:
    """``'[[x, y, label], ...]'`` (JSON; label 1 = object, 0 = background) or such a list -> ``[(x, y, label)]``."""
    import json

    if text is None or (isinstance(text, str) and not text.strip()):
        return []
    try:
        items = json.loads(text) if isinstance(text, str) else text
        points = [(float(x), float(y), int(label)) for x, y, label in items]
    except (ValueError, TypeError) as exc:
        raise DemoInputError(f"points must be a JSON list of [x, y, label] in image pixels (label 1 = object, "
                             f"0 = background), e.g. [[120, 80, 1]]; got {str(text)[:80]!r} ({exc})") from None
    if any(label not in (0, 1) for _, _, label in points):
        raise DemoInputError(f"point labels must be 1 (object) or 0 (background), got {[p[2] for p in points]}")
    return points


def parse_box(text) -> Optional[Tuple[float, float, float, float]]:
    """``'x0,y0,x1,y1'`` in image pixels, or empty -> the box or ``None``."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return None
    try:
        box = tuple(float(v) for v in (text.split(",") if isinstance(text, str) else text))
    except (ValueError, TypeError):
        box = ()
    if len(box) != 4:
        raise DemoInputError(f"box must be 'x0,y0,x1,y1' in image pixels (or empty), got {str(text)[:80]!r}")
    return box


class DemoBackend:
    """``DemoBackend(model)``: an EfficientSAM model (in eval mode) behind the demo's calls."""

    def __init__(self, model: EfficientSam, max_pixels: int = MAX_PIXELS, work_dir: Optional[str] = None) -> None:
        self.model = model.eval()
        self.predictor = EfficientSamPredictor(self.model)
        self.max_pixels = max_pixels
        self.lock = threading.Lock()
        self._embeddings: "OrderedDict[str, Tuple[torch.Tensor, Tuple[int, int]]]" = OrderedDict()
        self.work_dir = work_dir or tempfile.mkdtemp(prefix="efficientsam-demo-")
        self.outputs = OutputFolders(self.work_dir)
        self.embeddings_computed = 0  # counted, so that tests can see the cache work

    # -- input ------------------------------------------------------------------------------------------------------
    def read_image(self, path: str) -> np.ndarray:
        """An uploaded file as the CLI reads it (EXIF orientation, 16-bit kept, CMYK / palette / grey as RGB);
        refused by name when it is no image or larger than ``max_pixels``."""
        from PIL import Image, UnidentifiedImageError

        if not path or not os.path.isfile(path):
            raise DemoInputError("no image: upload one (PNG, JPEG, TIFF, ...) or pick an example")
        try:
            with Image.open(path) as im:  # the header only: refuse huge images before decoding them
                width, height = im.size
        except (UnidentifiedImageError, OSError):
            raise DemoInputError(f"{os.path.basename(path)!r} is not an image this demo can read (PNG, JPEG, TIFF, "
                                 "WebP, BMP ...); upload an image file") from None
        if width * height > self.max_pixels:
            raise DemoInputError(f"the image is {width}x{height} = {width * height / 1e6:.3g} megapixels, over the "
                                 f"demo's limit of {self.max_pixels / 1e6:g} megapixels; downscale it first")
        try:
            return load_image_rgb(path)
        except ValueError as exc:
            raise DemoInputError(str(exc)) from None

    # -- one prompt -------------------------------------------------------------------------------------------------
    def segment(self, image: np.ndarray, points: Sequence[Tuple[float, float, int]] = (),
                box: Optional[Sequence[float]] = None) -> Segmentation:
        """Clicks ``(x, y, label)`` and / or a box on ``image``: every candidate mask, scores and the best."""
        if not len(points) and box is None:
            raise DemoInputError("click on the object (or draw a box) first")
        h, w = image.shape[:2]
        for x, y, _ in points:
            if not (0 <= x < w and 0 <= y < h):
                raise DemoInputError(f"the click ({x:g}, {y:g}) lies outside the {w}x{h} image; click on the image")
        coords = np.array([[x, y] for x, y, _ in points], np.float32) if len(points) else None
        labels = np.array([label for _, _, label in points], np.int64) if len(points) else None
        with self.lock:
            self._set_image(image)
            try:
                masks, scores, _ = self.predictor.predict(coords, labels, None if box is None else np.asarray(box))
            except ValueError as exc:  # the predictor's one prompt check: reversed box, negative clicks ...
                raise DemoInputError(str(exc)) from None
        return Segmentation(masks=masks, scores=scores, best=int(np.argmax(scores)))

    def _set_image(self, image: np.ndarray) -> None:
        """Point the predictor at ``image``'s embedding, computing it only for an image not seen lately."""
        key = hashlib.sha1(np.ascontiguousarray(image).tobytes() + str(image.shape).encode()).hexdigest()
        if key in self._embeddings:
            self._embeddings.move_to_end(key)
            features, size = self._embeddings[key]
            self.predictor.set_embedding(features, size)
            return
        self.predictor.set_image(image)
        self.embeddings_computed += 1
        self._embeddings[key] = (self.predictor.features, self.predictor.original_size)
        while len(self._embeddings) > EMBEDDINGS_KEPT:
            self._embeddings.popitem(last=False)

    # -- segment everything -----------------------------------------------------------------------------------------
    def everything(self, image: np.ndarray, grid: int = 16, pred_iou_thresh: float = PRED_IOU_THRESH,
                   stability_score_thresh: float = STABILITY_SCORE_THRESH,
                   progress: Optional[Callable[[int, int], None]] = None) -> List[Dict]:
        """SAM's segment everything (``AutomaticMaskGenerator``) on a ``grid x grid`` point grid: COCO-RLE records,
        largest first."""
        if not 1 <= int(grid) <= 64:
            raise DemoInputError(f"grid must be 1..64 points per side, got {grid}")
        generator = AutomaticMaskGenerator(self.model, points_per_side=int(grid), pred_iou_thresh=pred_iou_thresh,
                                           stability_score_thresh=stability_score_thresh)
        generator.progress = progress
        with self.lock:
            records = generator.generate(image)
        return sorted(records, key=lambda r: -r["area"])

    # -- pictures and files -----------------------------------------------------------------------------------------
    def overlay(self, image: np.ndarray, masks: Sequence[np.ndarray] = (),
                points: Sequence[Tuple[float, float, int]] = (), box=None) -> np.ndarray:
        coords = np.array([[x, y] for x, y, _ in points], np.float32) if len(points) else None
        labels = np.array([label for _, _, label in points]) if len(points) else None
        return overlay_masks(to_uint8(image), list(masks), points=coords, labels=labels,
                             boxes=None if box is None else np.asarray(box, np.float32)[None])

    def everything_overlay(self, image: np.ndarray, records: Sequence[Dict]) -> np.ndarray:
        return overlay_masks(to_uint8(image), [decode_rle(r["segmentation"]) for r in records])

    def mask_files(self, segmentation: Segmentation, stem: str = "mask") -> Tuple[str, str]:
        """The best mask as a PNG (255 = object) and as COCO RLE JSON (one SAM-style record), in a fresh folder."""
        folder = self.outputs.new()
        mask = segmentation.mask
        png, rle = os.path.join(folder, f"{stem}.png"), os.path.join(folder, f"{stem}.json")
        save_png(mask.astype(np.uint8) * 255, png)
        write_json([dict(segmentation=encode_rle(mask), area=int(mask.sum()), bbox=mask_to_xywh(mask),
                         predicted_iou=segmentation.score)], rle)
        return png, rle

    def records_file(self, records: Sequence[Dict], stem: str = "masks") -> str:
        folder = self.outputs.new()
        path = os.path.join(folder, f"{stem}.json")
        write_json(list(records), path)
        return path
