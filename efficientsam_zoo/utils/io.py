"""Atomic writes: nothing half-written is ever left at a destination path."""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from typing import Iterator, Optional

import numpy as np

__all__ = ["cache_root", "atomic_path", "save_png", "write_json", "is_complete_torch_file", "latest_complete_file", "record_samples"]


def cache_root() -> str:
    """Where the package keeps what it downloads or derives (weights, SA-1B shard indexes): ``$ESZ_CACHE_DIR``,
    default ``~/.cache/efficientsam-zoo``."""
    return os.environ.get("ESZ_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "efficientsam-zoo")


@contextmanager
def atomic_path(path: str) -> Iterator[str]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds."""
    directory = os.path.dirname(os.path.abspath(path)) or "."
    os.makedirs(directory, exist_ok=True)
    suffix = os.path.splitext(path)[1]
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=suffix, dir=directory)
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def save_png(array: np.ndarray, path: str) -> None:
    """Write a uint8 ``HxW`` or ``HxWx3`` array as PNG, atomically."""
    from PIL import Image

    with atomic_path(path) as tmp:
        Image.fromarray(array).save(tmp, format="PNG")


def write_json(obj, path: str, indent=None) -> None:
    """``json.dump`` to ``path``, atomically."""
    import json

    with atomic_path(path) as tmp, open(tmp, "w") as f:
        json.dump(obj, f, indent=indent)


def is_complete_torch_file(path: str) -> bool:
    """A ``torch.save`` zip archive with its central directory in place (a file cut short by a kill has none)."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            return any(n.endswith("data.pkl") for n in z.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


def latest_complete_file(folder: str, suffix: str = ".pth", named_by: str = "last_checkpoint") -> Optional[str]:
    """The checkpoint a resume should take: the one the ``named_by`` tag file names if it is complete, else the most
    recently written complete ``*suffix`` file in ``folder``; ``None`` when there is none. (mmengine and detectron2
    both tag their last save that way; the tag may name a file that a kill left unfinished.)"""
    tag = os.path.join(folder, named_by)
    if os.path.isfile(tag):
        named = open(tag).read().strip()
        named = named if os.path.isabs(named) else os.path.join(folder, named)
        if named and os.path.isfile(named) and is_complete_torch_file(named):
            return named
    if not os.path.isdir(folder):
        return None
    found = [os.path.join(folder, f) for f in os.listdir(folder) if f.endswith(suffix)]
    found = [p for p in found if is_complete_torch_file(p)]
    return max(found, key=os.path.getmtime) if found else None


def record_samples(directory: str, rank: int, step: int, ids) -> None:
    """Append ``{"step", "ids"}`` to ``directory/samples_rank<rank>.jsonl``: which samples a process trained on (the
    trainers' ``--record-samples DIR``; a debugging aid for data sharding, written by every rank)."""
    import json

    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, f"samples_rank{rank}.jsonl"), "a") as f:
        f.write(json.dumps({"step": int(step), "ids": [str(i) for i in ids]}) + "\n")
