"""``EfficientSamPredictor``: segment-anything's ``SamPredictor`` workflow for EfficientSAM.

``set_image`` computes the image embedding once; every ``predict`` / ``predict_torch`` call after it
runs only the prompt encoder and mask decoder, in the original image's pixel frame. Prompts:

* ``point_coords`` ``(N, 2)`` as (x, y) pixels with ``point_labels`` ``(N,)``: 1 = foreground point,
  0 = a point without label embedding (the release has no negative clicks; see ``prompt_encoder``);
* ``box`` ``(4,)`` as (x0, y0, x1, y1) pixels, encoded as two corner points with labels 2 and 3.

At most ``model.decoder_max_num_input_points`` (6) points per query, a box counting as two.
"""
from __future__ import annotations

from typing import Optional, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F

from .modeling.efficient_sam import EfficientSam
from .modeling.prompt_encoder import box_corner_prompts

__all__ = ["EfficientSamPredictor", "image_to_tensor"]

ImageLike = Union[np.ndarray, torch.Tensor, "PIL.Image.Image"]  # noqa: F821


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


class EfficientSamPredictor:
    """``cuda_graphs=True`` (model on a CUDA device) replays the prompt side from CUDA graphs, one per
    prompt-batch shape (see :class:`~efficientsam_zoo.modeling.cuda_graph.CUDAGraphDecoder`)."""

    def __init__(self, model: EfficientSam, cuda_graphs: bool = False) -> None:
        self.model = model
        self._decode = model.predict_masks
        if cuda_graphs:
            from .modeling.cuda_graph import CUDAGraphDecoder

            self._decode = CUDAGraphDecoder(model)
        self.reset_image()

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def reset_image(self) -> None:
        self.features: Optional[torch.Tensor] = None
        self.original_size: Optional[Tuple[int, int]] = None
        self.is_image_set = False

    @torch.inference_mode()
    def set_image(self, image: ImageLike, image_format: str = "RGB") -> None:
        """Compute and keep the embedding of ``image`` (see :func:`image_to_tensor` for formats)."""
        tensor = image_to_tensor(image, image_format)
        self.features = self.model.get_image_embeddings(tensor[None].to(self.device))
        self.original_size = (int(tensor.shape[1]), int(tensor.shape[2]))
        self.is_image_set = True

    def get_image_embedding(self) -> torch.Tensor:
        self._require_image()
        return self.features

    def _require_image(self) -> None:
        if not self.is_image_set:
            raise RuntimeError("no image set: call predictor.set_image(image) before predicting")

    def predict(self, point_coords: Optional[np.ndarray] = None, point_labels: Optional[np.ndarray] = None,
                box: Optional[np.ndarray] = None, multimask_output: bool = True, return_logits: bool = False
                ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One query -> ``(masks [M,H,W], scores [M], low_res_logits [M,h,w])`` as numpy."""
        self._require_image()
        pts = lbl = bx = None
        if point_coords is not None:
            if point_labels is None:
                raise ValueError("point_labels must be given with point_coords (1 = foreground point)")
            pts = torch.as_tensor(np.asarray(point_coords, dtype=np.float32))
            lbl = torch.as_tensor(np.asarray(point_labels, dtype=np.int64))
            if pts.ndim != 2 or pts.shape[-1] != 2:
                raise ValueError(f"point_coords must be (N, 2) as (x, y), got shape {tuple(pts.shape)}")
            pts, lbl = pts[None], lbl[None]
        elif point_labels is not None:
            raise ValueError("point_labels given without point_coords")
        if box is not None:
            bx = torch.as_tensor(np.asarray(box, dtype=np.float32))
            if bx.shape != (4,):
                raise ValueError(f"box must be (4,) as (x0, y0, x1, y1), got shape {tuple(bx.shape)}")
            bx = bx[None]
        masks, scores, low_res = self.predict_torch(pts, lbl, bx, multimask_output, return_logits)
        return masks[0].cpu().numpy(), scores[0].float().cpu().numpy(), low_res[0].float().cpu().numpy()

    @torch.inference_mode()
    def predict_torch(self, point_coords: Optional[torch.Tensor] = None, point_labels: Optional[torch.Tensor] = None,
                      boxes: Optional[torch.Tensor] = None, multimask_output: bool = True,
                      return_logits: bool = False) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Many queries at once, all against the one stored embedding.

        Args:
            point_coords: ``[Q, N, 2]`` pixels of the original image; ``point_labels``: ``[Q, N]``.
            boxes: ``[Q, 4]`` pixels (x0, y0, x1, y1); appended to each query as two corner points.
        Returns:
            masks ``[Q, M, H, W]`` (bool, or logits with ``return_logits``), scores ``[Q, M]``,
            low-res logits ``[Q, M, img_size/4, img_size/4]``.
        """
        self._require_image()
        points, labels = self._assemble(point_coords, point_labels, boxes)
        h, w = self.original_size
        dev = self.device
        low_res, scores = self._decode(self.features, points[None].to(dev), labels[None].to(dev),
                                       multimask_output, input_h=h, input_w=w)
        low_res, scores = low_res[0], scores[0]
        logits = F.interpolate(low_res, (h, w), mode="bicubic")
        masks = logits if return_logits else logits > self.model.mask_threshold
        return masks, scores, low_res

    def _assemble(self, point_coords, point_labels, boxes) -> Tuple[torch.Tensor, torch.Tensor]:
        parts, part_labels = [], []
        h, w = self.original_size
        if point_coords is not None:
            if point_labels is None:
                raise ValueError("point_labels must be given with point_coords")
            point_coords = torch.as_tensor(point_coords, dtype=torch.float32).cpu()
            point_labels = torch.as_tensor(point_labels).cpu().long()
            if point_coords.ndim != 3 or point_coords.shape[-1] != 2:
                raise ValueError(f"point_coords must be [Q, N, 2], got shape {tuple(point_coords.shape)}")
            if point_labels.shape != point_coords.shape[:2]:
                raise ValueError(f"point_labels must be [Q, N] = {tuple(point_coords.shape[:2])}, "
                                 f"got {tuple(point_labels.shape)}")
            bad = sorted(set(point_labels.unique().tolist()) - {0, 1, 2, 3})
            if bad:
                raise ValueError(f"point labels must be 1 (point), 0 (no label), 2 / 3 (box corners); got {bad}")
            parts.append(point_coords)
            part_labels.append(point_labels)
        if boxes is not None:
            boxes = torch.as_tensor(boxes, dtype=torch.float32).cpu()
            if boxes.ndim != 2 or boxes.shape[-1] != 4:
                raise ValueError(f"boxes must be [Q, 4] as (x0, y0, x1, y1), got shape {tuple(boxes.shape)}")
            if bool(((boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1])).any()):
                raise ValueError("boxes must be (x0, y0, x1, y1) with x1 >= x0 and y1 >= y0")
            corners, corner_labels = box_corner_prompts(boxes)
            parts.append(corners)
            part_labels.append(corner_labels)
        if not parts or sum(p.shape[1] for p in parts) == 0:
            raise ValueError("empty prompt: give point_coords + point_labels and/or a box")
        if len(parts) == 2 and parts[0].shape[0] != parts[1].shape[0]:
            raise ValueError(f"{parts[0].shape[0]} point queries but {parts[1].shape[0]} boxes; they must match")
        points = torch.cat(parts, dim=1)
        labels = torch.cat(part_labels, dim=1)
        limit = self.model.decoder_max_num_input_points
        if points.shape[1] > limit:
            raise ValueError(f"{points.shape[1]} prompt points per query (a box counts as 2), but the model takes "
                             f"at most {limit}; pass fewer points")
        outside = (points[..., 0] < 0) | (points[..., 0] > w) | (points[..., 1] < 0) | (points[..., 1] > h)
        if bool(outside.any()):
            q, n = (int(i) for i in outside.nonzero()[0])
            x, y = points[q, n].tolist()
            raise ValueError(f"prompt point ({x:g}, {y:g}) of query {q} lies outside the {w}x{h} (WxH) image; "
                             "coordinates are (x, y) pixels of the image given to set_image")
        return points, labels
