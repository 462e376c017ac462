"""SA-1B reader: ``sa_<id>.jpg`` + ``sa_<id>.json`` pairs, unpacked in a folder or inside tar shards.

Tar shards are indexed by reading their member headers once (no extraction); each sample's image and JSON are
read from the tar on demand, and only the masks a sample uses are decoded from RLE (lazily, per item).
Images are stretched to ``img_size`` x ``img_size`` (EfficientSAM's input), masks resized to the decoder's
low-resolution grid (``img_size / 4``), prompts given in the ``img_size`` frame.
"""
from __future__ import annotations

import glob
import io
import json
import os
import tarfile
from typing import Dict, List, Tuple

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["SA1BIndex", "SA1BSamples"]


class SA1BIndex:
    """Where every sample lives: ``(source, image member, json member)``; ``source`` is a tar path or a folder."""

    def __init__(self, paths: List[str]) -> None:
        self.items: List[Tuple[str, str, str]] = []
        for path in paths:
            if os.path.isdir(path):
                for jpg in sorted(glob.glob(os.path.join(path, "sa_*.jpg"))):
                    js = jpg[:-4] + ".json"
                    if os.path.isfile(js):
                        self.items.append((path, os.path.basename(jpg), os.path.basename(js)))
            elif tarfile.is_tarfile(path):
                with tarfile.open(path, "r") as tar:  # reads headers only, seeking past the data
                    names = {m.name for m in tar.getmembers() if m.isfile()}
                for name in sorted(n for n in names if n.endswith(".jpg")):
                    js = name[:-4] + ".json"
                    if js in names:
                        self.items.append((path, name, js))
            else:
                raise FileNotFoundError(f"SA-1B source {path!r} is neither a folder nor a tar shard")
        if not self.items:
            raise ValueError(f"no sa_*.jpg / sa_*.json pairs found in {paths}")

    def __len__(self) -> int:
        return len(self.items)

    def read(self, idx: int) -> Tuple[bytes, Dict]:
        source, img_name, js_name = self.items[idx]
        if os.path.isdir(source):
            with open(os.path.join(source, img_name), "rb") as f:
                img = f.read()
            with open(os.path.join(source, js_name)) as f:
                ann = json.load(f)
            return img, ann
        with tarfile.open(source, "r") as tar:
            img = tar.extractfile(img_name).read()
            ann = json.loads(tar.extractfile(js_name).read())
        return img, ann


class SA1BSamples:
    """Map-style samples: ``{"image": float [3, S, S] 0..1, "masks": bool [K, S/4, S/4], "boxes": [K, 4] (S frame),
    "valid": bool [K], "index": idx}`` with up to ``max_masks`` masks drawn per image (seeded by ``seed`` and the
    index)."""

    def __init__(self, paths: List[str], img_size: int = 1024, max_masks: int = 8, seed: int = 0,
                 min_area: int = 16) -> None:
        self.index = SA1BIndex(paths)
        self.img_size, self.max_masks, self.seed, self.min_area = img_size, max_masks, seed, min_area
        self.decoded = 0  # masks decoded so far (lazy decoding is observable)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, idx: int) -> Dict:
        from PIL import Image

        from ..utils.masks import decode_rle

        img_bytes, record = self.index.read(idx)
        image = np.asarray(Image.open(io.BytesIO(img_bytes)).convert("RGB"))
        h, w = image.shape[:2]
        anns = [a for a in record["annotations"] if a.get("area", 0) >= self.min_area]
        rng = np.random.default_rng([self.seed, idx])
        chosen = rng.choice(len(anns), size=min(self.max_masks, len(anns)), replace=False) if anns else []
        s, low = self.img_size, self.img_size // 4
        masks = torch.zeros(self.max_masks, low, low, dtype=torch.bool)
        boxes = torch.zeros(self.max_masks, 4)
        valid = torch.zeros(self.max_masks, dtype=torch.bool)
        for k, j in enumerate(chosen):
            m = torch.from_numpy(decode_rle(anns[j]["segmentation"]).astype(np.float32))
            self.decoded += 1
            masks[k] = F.interpolate(m[None, None], (low, low), mode="area")[0, 0] > 0.5
            x, y, bw, bh = anns[j]["bbox"]
            boxes[k] = torch.tensor([x * s / w, y * s / h, (x + bw) * s / w, (y + bh) * s / h])
            valid[k] = bool(masks[k].any())
        x = torch.from_numpy(image.copy()).permute(2, 0, 1).float()[None] / 255.0
        x = F.interpolate(x, (s, s), mode="bilinear")[0]
        return {"image": x, "masks": masks, "boxes": boxes, "valid": valid, "index": idx}
