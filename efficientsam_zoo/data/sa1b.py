"""SA-1B reader: ``sa_<id>.jpg`` + ``sa_<id>.json`` pairs, unpacked in a folder or inside tar shards.

Tar shards are indexed by reading their member headers once (no extraction); each sample's image and JSON are
read from the tar on demand, and only the masks a sample uses are decoded from RLE (lazily, per item).
Images are stretched to ``img_size`` x ``img_size`` (EfficientSAM's input), masks resized to the decoder's
low-resolution grid (``img_size / 4``), prompts given in the ``img_size`` frame.
"""
from __future__ import annotations

import glob
import hashlib
import json
import os
import tarfile
from typing import Dict, List, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from ..utils.image import annotated_frame, image_to_tensor, load_image_rgb
from ..utils.io import atomic_path, cache_root
from ..utils.masks import decode_rle

__all__ = ["SA1BIndex", "SA1BSamples"]


#: File descriptors each process keeps open (SA-1B has ~1,000 shards; the usual soft limit is 1,024 files).
MAX_OPEN_SHARDS = 64


class SA1BIndex:
    """Where every sample lives: ``(source, image member, json member)``; ``source`` is a tar path or a folder.

    A tar shard is indexed once -- member name -> (data offset, size) -- and the index cached under
    ``$ESZ_CACHE_DIR/sa1b_index`` (never beside the data, which may be read-only or shared); it is rebuilt when
    the shard's path, size or mtime changes. A sample is then two seeks and reads on a file handle kept per process, so the
    cost per sample does not grow with the shard (a real SA-1B shard holds ~11,000 images). At most
    :data:`MAX_OPEN_SHARDS` descriptors stay open per process.
    """

    def __init__(self, paths: List[str]) -> None:
        self.items: List[Tuple[str, str, str]] = []
        self.members: Dict[str, Dict[str, Tuple[int, int]]] = {}
        self._handles: Dict[str, int] = {}  # shard -> open descriptor, least recently used first
        self._pid = os.getpid()
        for path in paths:
            if os.path.isdir(path):
                for jpg in sorted(glob.glob(os.path.join(path, "sa_*.jpg"))):
                    js = jpg[:-4] + ".json"
                    if os.path.isfile(js):
                        self.items.append((path, os.path.basename(jpg), os.path.basename(js)))
            elif os.path.isfile(path):
                members = self.members[path] = tar_index(path)
                for name in sorted(n for n in members if n.endswith(".jpg")):
                    js = name[:-4] + ".json"
                    if js in members:
                        self.items.append((path, name, js))
            else:
                raise FileNotFoundError(f"SA-1B source {path!r} does not exist (give tar shards or folders of "
                                        "sa_*.jpg + sa_*.json)")
        if not self.items:
            raise ValueError(f"no sa_*.jpg / sa_*.json pairs found in {paths}")

    def __len__(self) -> int:
        return len(self.items)

    def __getstate__(self) -> Dict:  # DataLoader workers open their own handles
        return {**self.__dict__, "_handles": {}}

    def __del__(self) -> None:
        if getattr(self, "_pid", None) == os.getpid():
            for fd in self._handles.values():
                os.close(fd)
            self._handles = {}

    def _member(self, source: str, name: str) -> bytes:
        if self._pid != os.getpid():  # forked: the parent's descriptors stay the parent's
            self._handles, self._pid = {}, os.getpid()
        fd = self._handles.pop(source, None)
        if fd is None:
            fd = os.open(source, os.O_RDONLY)
            while len(self._handles) >= MAX_OPEN_SHARDS:  # least recently used first
                os.close(self._handles.pop(next(iter(self._handles))))
        self._handles[source] = fd  # (re)inserted last: the most recently used
        offset, size = self.members[source][name]
        data = os.pread(fd, size, offset)  # positioned read: no shared file offset between threads
        if len(data) != size:
            raise ValueError(f"SA-1B shard {source!r} ends inside {name} (the file changed or is truncated); "
                             "download it again")
        return data

    def read(self, idx: int) -> Tuple[bytes, Dict]:
        source, img_name, js_name = self.items[idx]
        if os.path.isdir(source):
            with open(os.path.join(source, img_name), "rb") as f:
                img = f.read()
            with open(os.path.join(source, js_name)) as f:
                ann = json.load(f)
            return img, ann
        img = self._member(source, img_name)
        try:
            ann = json.loads(self._member(source, js_name))
        except ValueError as exc:
            raise ValueError(f"{js_name} in SA-1B shard {source!r} is not valid JSON ({exc})") from exc
        return img, ann


def _index_cache_path(shard: str) -> str:
    digest = hashlib.sha1(os.path.abspath(shard).encode()).hexdigest()[:16]
    return os.path.join(cache_root(), "sa1b_index", f"{os.path.basename(shard)}.{digest}.json")


def tar_index(shard: str) -> Dict[str, Tuple[int, int]]:
    """``{member name: (data offset, size)}`` of the regular files in a tar shard, from the cached index when it
    matches the shard's size and mtime, else by one pass over the headers (then cached, atomically)."""
    st = os.stat(shard)
    stamp = [st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns]  # ctime: no copy tool can preserve it
    cache = _index_cache_path(shard)
    try:
        with open(cache) as f:
            data = json.load(f)
        if data.get("stamp") == stamp:
            return {k: (int(o), int(n)) for k, (o, n) in data["members"].items()}
    except (OSError, ValueError, KeyError, TypeError):
        pass  # no (usable) cached index: build it
    if st.st_size == 0:
        raise ValueError(f"SA-1B shard {shard!r} is empty (0 bytes); download it again")
    try:
        with tarfile.open(shard, "r:") as tar:  # headers only: seeks past each member's data
            members = {m.name: (m.offset_data, m.size) for m in tar if m.isfile()}
    except (tarfile.TarError, EOFError) as exc:
        raise ValueError(f"SA-1B shard {shard!r} is truncated or not a tar file ({exc}); download it "
                         "again") from exc
    end = max((o + n for o, n in members.values()), default=0)
    if end > st.st_size:
        raise ValueError(f"SA-1B shard {shard!r} is truncated: its members need {end} bytes, the file has "
                         f"{st.st_size}; download it again")
    if not members:
        return members  # nothing worth caching: the caller names the empty shard
    try:
        with atomic_path(cache) as tmp, open(tmp, "w") as f:
            json.dump({"stamp": stamp, "members": members}, f)
    except OSError:
        pass  # a read-only cache only costs the header pass next time
    return members


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
        img_bytes, record = self.index.read(idx)
        image = load_image_rgb(img_bytes, name=self.index.items[idx][1],
                               frame=annotated_frame(record.get("image", {})))
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
        x = image_to_tensor(image)[None]
        x = F.interpolate(x, (s, s), mode="bilinear")[0]
        return {"image": x, "masks": masks, "boxes": boxes, "valid": valid, "index": idx}
