"""Reading images: files (any format PIL reads) and in-memory arrays / tensors -> what the models take.

The one path from pixels to a model: :func:`load_image_rgb` for files (and encoded bytes), :func:`image_to_array`
(numpy, no torch) and :func:`image_to_tensor` (the same as a tensor) for everything already in memory. Both show the
image as a viewer does (EXIF orientation applied) and scale 16-bit pixels by their bit depth instead of clipping
them.
"""
from __future__ import annotations

import io
import os
import sys
from typing import Dict, Optional, Tuple, Union

import numpy as np

__all__ = ["IMAGE_EXTENSIONS", "ImageLike", "annotated_frame", "load_image_rgb", "load_image_pil", "image_to_tensor",
           "image_to_array", "to_uint8", "as_numpy"]

#: File endings read as images in image folders (datasets, mask folders, the HF Trainer's folders).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")

ImageLike = Union[np.ndarray, "torch.Tensor", "PIL.Image.Image"]  # noqa: F821  (torch is not needed here)


def _decode(im, frame: Optional[Tuple[int, int]] = None) -> np.ndarray:
    """A PIL image -> ``HxWx3`` RGB, uint8, or uint16 for 16-bit images (PIL's ``convert("RGB")`` saturates
    those: every pixel above 255 would become white). EXIF orientation is applied first, unless ``frame``
    (``(H, W)`` of the annotations) matches the stored pixels and not the oriented ones."""
    from PIL import ImageOps

    oriented = ImageOps.exif_transpose(im)
    stored_hw = (im.height, im.width)
    if frame is None or (oriented.height, oriented.width) == tuple(frame) or stored_hw != tuple(frame):
        im = oriented
    mode = im.mode
    if mode.startswith("I;16") or mode == "I":
        arr = np.asarray(im)
        if arr.size and (int(arr.min()) < 0 or int(arr.max()) > 65535):
            raise ValueError(f"32-bit integer image (values {int(arr.min())}..{int(arr.max())}); save it with 8 or "
                             "16 bits per channel, or pass the pixels as a float array scaled to 0..1")
        return np.repeat(arr.astype(np.uint16)[:, :, None], 3, axis=2)
    if mode == "F":
        arr = np.asarray(im, dtype=np.float32)
        _check_float_pixels(arr)
        return np.repeat((arr * 65535).round().astype(np.uint16)[:, :, None], 3, axis=2)
    return np.asarray(im.convert("RGB"))


def annotated_frame(info: Dict) -> Optional[Tuple[int, int]]:
    """``(height, width)`` an annotation record (COCO / LVIS ``images`` entry, SA-1B ``image``) gives an image,
    or ``None``: the ``frame`` of :func:`load_image_rgb`."""
    return (int(info["height"]), int(info["width"])) if "height" in info and "width" in info else None


def load_image_rgb(source: Union[str, bytes], name: Optional[str] = None,
                   frame: Optional[Tuple[int, int]] = None) -> np.ndarray:
    """An image file (a path, or its encoded bytes with ``name`` for messages) as a viewer shows it: EXIF
    orientation applied, ``HxWx3`` RGB, uint8 -- or uint16 for 16-bit files, which :func:`image_to_tensor` scales
    by 65535. One clear error for missing or unreadable files.

    ``frame``: the ``(height, width)`` an annotation file gives the image. Annotations are in the frame they were
    drawn in: where the stored pixels have that shape and the oriented ones do not, the stored pixels are returned
    (so masks and boxes stay aligned)."""
    from PIL import Image, UnidentifiedImageError

    if isinstance(source, (bytes, bytearray)):
        name, fobj = name or "<bytes>", io.BytesIO(source)
    else:
        name, fobj = str(source), str(source)
        if not os.path.isfile(name):
            raise FileNotFoundError(f"image {name!r} does not exist")
    try:
        with Image.open(fobj) as im:
            return _decode(im, frame)
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ValueError(f"could not read image {name!r} ({exc}); is it a complete image file?") from exc


def to_uint8(image: np.ndarray) -> np.ndarray:
    """An ``HxWx3`` uint8 / uint16 / 0..1 float array -> uint8 for display (16-bit scaled, not clipped)."""
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.uint16:
        return (image.astype(np.float32) / 257.0).round().astype(np.uint8)
    return (np.asarray(image, dtype=np.float32) * 255.0).round().clip(0, 255).astype(np.uint8)


def load_image_pil(path: str):
    """An image file as an 8-bit RGB PIL image, as a viewer shows it (for torchvision-style transforms)."""
    from PIL import Image

    return Image.fromarray(to_uint8(load_image_rgb(path)))


def _check_float_pixels(arr: np.ndarray) -> None:
    if not arr.size:
        return
    finite = np.isfinite(arr)
    if not finite.all():
        bad = arr[~finite]
        kinds = sorted({"NaN" if v != v else ("inf" if v > 0 else "-inf") for v in bad[:1000].tolist()})
        raise ValueError(f"the image holds {bad.size} non-finite pixel values ({', '.join(kinds)}); "
                         "replace them (e.g. numpy.nan_to_num) before segmenting")
    if arr.min() < 0 or arr.max() > 1:
        raise ValueError(f"float images must be on a 0..1 scale (got values in {float(arr.min()):g}.."
                         f"{float(arr.max()):g}); pass uint8 / uint16 pixels or divide by 255")


def _tensor_to_chw(image, image_format: str) -> np.ndarray:
    """A torch ``[C, H, W]`` / ``[1, C, H, W]`` image -> a numpy ``[C, H, W]`` array of its pixels (RGB order)."""
    import torch

    tensor = image[0] if image.ndim == 4 and image.shape[0] == 1 else image
    if tensor.dtype == torch.uint16:
        tensor = tensor.float() / 65535.0
    if tensor.ndim != 3 or tensor.shape[0] not in (1, 3):
        raise ValueError(f"a tensor image must be [C, H, W] or [1, C, H, W] with C in (1, 3), "
                         f"got shape {tuple(image.shape)}")
    if tensor.shape[0] == 3 and image_format == "BGR":
        tensor = tensor.flip(0)
    return as_numpy(tensor)


def as_numpy(values):
    """A torch tensor (any device; half precision as float32, which numpy can hold) as a numpy array; anything else
    as it is. Shared by the image reading and the prompt checks, both numpy."""
    if "torch" not in sys.modules or not isinstance(values, sys.modules["torch"].Tensor):
        return values
    import torch

    values = values.detach().cpu()
    return (values.float() if values.dtype in (torch.bfloat16, torch.float16) else values).numpy()


def image_to_array(image: ImageLike, image_format: str = "RGB") -> np.ndarray:
    """Any supported image -> float32 ``[3, H, W]`` RGB numpy array on a 0..1 scale (no torch needed unless the image
    is a tensor): what the torch predictor and the torch-free ONNX predictor both read.

    Accepted: PIL images (any mode; EXIF orientation applied, as :func:`load_image_rgb` does); numpy ``HxW`` /
    ``HxWx1`` (grayscale), ``HxWx3`` (RGB or BGR with ``image_format="BGR"``), ``HxWx4`` (RGBA, alpha dropped);
    torch ``[C, H, W]`` or ``[1, C, H, W]`` with C in {1, 3}. Pixels: uint8 (/255), uint16 (/65535) or finite
    float in 0..1.
    """
    if image_format not in ("RGB", "BGR"):
        raise ValueError(f"image_format must be 'RGB' or 'BGR', got {image_format!r}")
    if type(image).__module__.startswith("PIL."):
        image = _decode(image)
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
        if arr.dtype == np.uint16:
            arr = arr.astype(np.float32) / 65535.0
        arr = arr.transpose(2, 0, 1)
    elif "torch" in sys.modules and isinstance(image, sys.modules["torch"].Tensor):  # torch loaded only if used
        arr = _tensor_to_chw(image, image_format)
    else:
        raise TypeError(f"unsupported image type {type(image).__name__}; pass a numpy array, PIL image or tensor")
    if arr.shape[1] == 0 or arr.shape[2] == 0:
        raise ValueError(f"empty image of size {tuple(arr.shape[1:])}")
    if arr.shape[0] == 1:
        arr = np.broadcast_to(arr, (3, *arr.shape[1:]))
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / np.float32(255.0)
    if arr.dtype.kind != "f":
        raise ValueError(f"unsupported pixel type {arr.dtype}; use uint8 (0..255), uint16 (0..65535) or float "
                         "(0..1)")
    arr = np.array(arr, dtype=np.float32, order="C", copy=True)  # an own, writable copy
    _check_float_pixels(arr)
    return arr


def image_to_tensor(image: ImageLike, image_format: str = "RGB") -> "torch.Tensor":  # noqa: F821
    """:func:`image_to_array` as a float ``[3, H, W]`` torch tensor (an own, writable copy)."""
    import torch

    return torch.from_numpy(image_to_array(image, image_format))
