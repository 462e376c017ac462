"""Atomic writes: nothing half-written is ever left at a destination path."""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from typing import Iterator

import numpy as np

__all__ = ["atomic_path", "save_png", "write_json"]


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
