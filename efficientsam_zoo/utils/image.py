"""Reading images: files (any format PIL reads) and in-memory arrays / tensors -> what the models take.

The one path from pixels to a model: :func:`load_image_rgb` for files, :func:`image_to_tensor` for everything
already in memory.
"""
from __future__ import annotations

import os
from typing import Union

import numpy as np
import torch

__all__ = ["ImageLike", "load_image_rgb", "image_to_tensor"]

ImageLike = Union[np.ndarray, torch.Tensor, "PIL.Image.Image"]  # noqa: F821


def load_image_rgb(path: str) -> np.ndarray:
    """``HxWx3`` uint8 RGB array of an image file, with a clear error for unreadable files."""
    from PIL import Image, UnidentifiedImageError

    if not os.path.isfile(path):
        raise FileNotFoundError(f"image {path!r} does not exist")
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError) as exc:
        raise ValueError(f"could not read image {path!r}: {exc}") from exc


def image_to_tensor(image: ImageLike, image_format: str = "RGB") -> torch.Tensor:
    """Any supported image -> float ``[3, H, W]`` RGB tensor on a 0..1 scale.

    Accepted: PIL images (any mode); numpy ``HxW`` / ``HxWx1`` (grayscale), ``HxWx3`` (RGB or BGR with
    ``image_format="BGR"``), ``HxWx4`` (RGBA, alpha dropped), uint8 or float in 0..1; torch ``[C, H, W]``
    or ``[1, C, H, W]`` with C in {1, 3}, uint8 or float in 0..1.
    """
    if image_format not in ("RGB", "BGR"):
        raise ValueError(f"image_format must be 'RGB' or 'BGR', got {image_format!r}")
    if type(image).__module__.startswith("PIL."):
        image = np.asarray(image.convert("RGB"))
    if isinstance(image, np.ndarray):
        arr = image
        if arr.ndim == 2:
            arr = arr[:, :, None]
        if arr.ndim != 3:
            raise ValueError(f"expected an HxW or HxWxC image array, got shape {arr.shape}")
        c = arr.shape[2]
        if c == 2:
            raise ValueError("got a 2-channel image (gray + alpha?); convert it to RGB first, e.g. "
                             "PIL.Image.open(path).convert('RGB')")
        if c not in (1, 3, 4):
            raise ValueError(f"expected 1, 3 or 4 channels (gray, RGB, RGBA), got {c} (shape {arr.shape})")
        if c == 4:
            arr = arr[:, :, :3]
        if c == 3 and image_format == "BGR":
            arr = arr[:, :, ::-1]
        tensor = torch.from_numpy(np.array(arr, copy=True)).permute(2, 0, 1)  # own, writable copy
    elif isinstance(image, torch.Tensor):
        tensor = image[0] if image.ndim == 4 and image.shape[0] == 1 else image
        if tensor.ndim != 3 or tensor.shape[0] not in (1, 3):
            raise ValueError(f"a tensor image must be [C, H, W] or [1, C, H, W] with C in (1, 3), "
                             f"got shape {tuple(image.shape)}")
        if tensor.shape[0] == 3 and image_format == "BGR":
            tensor = tensor.flip(0)
        tensor = tensor.detach().cpu()
    else:
        raise TypeError(f"unsupported image type {type(image).__name__}; pass a numpy array, PIL image or tensor")
    if tensor.shape[1] == 0 or tensor.shape[2] == 0:
        raise ValueError(f"empty image of size {tuple(tensor.shape[1:])}")
    if tensor.shape[0] == 1:
        tensor = tensor.expand(3, -1, -1)
    if tensor.dtype == torch.uint8:
        return tensor.float() / 255.0
    if not tensor.is_floating_point():
        raise ValueError(f"unsupported pixel type {tensor.dtype}; use uint8 (0..255) or float (0..1)")
    tensor = tensor.float()
    if tensor.numel() and (tensor.min() < 0 or tensor.max() > 1):
        raise ValueError("float images must be on a 0..1 scale (got values outside it); "
                         "pass uint8 pixels or divide by 255")
    return tensor
