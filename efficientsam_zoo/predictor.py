"""``EfficientSamPredictor``: segment-anything's ``SamPredictor`` workflow for EfficientSAM.

``set_image`` computes the image embedding once; every ``predict`` / ``predict_torch`` call after it
runs only the prompt encoder and mask decoder, in the original image's pixel frame. Prompts:

* ``point_coords`` ``(N, 2)`` as (x, y) pixels with ``point_labels`` ``(N,)``: 1 = foreground point,
  0 = a point without label embedding (the release has no negative clicks; see ``prompt_encoder``);
* ``box`` ``(4,)`` as (x0, y0, x1, y1) pixels, encoded as two corner points with labels 2 and 3.

At most ``model.decoder_max_num_input_points`` (6) points per query, a box counting as two.
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from .modeling.efficient_sam import EfficientSam
from .modeling.prompt_encoder import box_corner_prompts
from .utils.image import ImageLike, image_to_tensor

__all__ = ["EfficientSamPredictor", "assemble_prompts"]


class EfficientSamPredictor:
    """``cuda_graphs=True`` (model on a CUDA device) replays the prompt side from CUDA graphs, one per
    prompt-batch shape (see :class:`~efficientsam_zoo.modeling.cuda_graph.CUDAGraphDecoder`)."""

    def __init__(self, model: EfficientSam, cuda_graphs: bool = False) -> None:
        self.model = model
        self.cuda_graphs = cuda_graphs
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
            lbl = torch.as_tensor(np.asarray(point_labels))  # cast after the whole-number check
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
        low_res, scores = self.predict_low_res(point_coords, point_labels, boxes, multimask_output)
        logits = self.upscale(low_res)
        masks = logits if return_logits else logits > self.model.mask_threshold
        return masks, scores, low_res

    @torch.inference_mode()
    def predict_low_res(self, point_coords: Optional[torch.Tensor] = None,
                        point_labels: Optional[torch.Tensor] = None, boxes: Optional[torch.Tensor] = None,
                        multimask_output: bool = True) -> Tuple[torch.Tensor, torch.Tensor]:
        """:meth:`predict_torch` without the upsampling: low-res logits ``[Q, M, img_size/4, img_size/4]`` and
        scores ``[Q, M]``. Filter by score first, then :meth:`upscale` only the masks you keep."""
        self._require_image()
        points, labels = assemble_prompts(point_coords, point_labels, boxes, self.original_size,
                                          self.model.decoder_max_num_input_points)
        h, w = self.original_size
        dev = self.device
        low_res, scores = self._decode(self.features, points[None].to(dev), labels[None].to(dev),
                                       multimask_output, input_h=h, input_w=w)
        return low_res[0], scores[0]

    @torch.inference_mode()
    def predict_low_res_above(self, point_coords: torch.Tensor, point_labels: torch.Tensor,
                              min_iou: float) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Segment everything's decoder call (3 masks per query): scores ``[Q, 3]`` of every query, and low-res
        logits ``[K, 3, img_size/4, img_size/4]`` only of the ``K`` queries with a score above ``min_iou``, with
        their indices ``[K]`` (``EfficientSam.predict_masks_above``: the others' masks are never upscaled). A
        CUDA-graph predictor decodes every query in its captured graph and selects afterwards."""
        self._require_image()
        points, labels = assemble_prompts(point_coords, point_labels, None, self.original_size,
                                          self.model.decoder_max_num_input_points)
        h, w = self.original_size
        points, labels = points[None].to(self.device), labels[None].to(self.device)
        if self.cuda_graphs:
            low_res, scores = self._decode(self.features, points, labels, True, input_h=h, input_w=w)
            index = torch.nonzero((scores[0] > min_iou).any(1)).flatten()
            return low_res[0][index], scores[0], index
        low_res, scores, index = self.model.predict_masks_above(self.features, points, labels, h, w, min_iou)
        return low_res, scores[0], index

    def upscale(self, low_res: torch.Tensor) -> torch.Tensor:
        """Low-res logits ``[Q, M, h, w]`` -> logits at the set image's size (bicubic, each mask on its own)."""
        return F.interpolate(low_res, self.original_size, mode="bicubic")


def assemble_prompts(point_coords, point_labels, boxes, image_size: Tuple[int, int], max_points: int,
                     allow_padding: bool = False) -> Tuple[torch.Tensor, torch.Tensor]:
    """The one prompt validation: points ``[Q, N, 2]`` + labels ``[Q, N]`` and / or boxes ``[Q, 4]`` (pixels of an
    image of ``image_size = (H, W)``) -> ``points [Q, N', 2]`` and ``labels [Q, N']`` on the CPU, boxes appended as
    two corner points (labels 2, 3). ``allow_padding``: label -1 marks a padding slot whose coordinates are not
    checked (the batched Hugging Face inputs). The predictor, the HF processor and the HF model all call this.
    """
    parts, part_labels = [], []
    h, w = image_size
    if point_coords is not None:
        if point_labels is None:
            raise ValueError("point_labels must be given with point_coords (1 = foreground point)")
        point_coords = torch.as_tensor(point_coords, dtype=torch.float32).cpu()
        point_labels = torch.as_tensor(point_labels).cpu()
        if point_labels.is_floating_point() or point_labels.is_complex():
            if not bool((point_labels == point_labels.round()).all()):
                bad = point_labels[point_labels != point_labels.round()][:4].tolist()
                raise ValueError(f"point labels must be whole numbers (1 = foreground, 0 = background), got {bad}")
        point_labels = point_labels.long()
        if point_coords.ndim != 3 or point_coords.shape[-1] != 2:
            raise ValueError(f"point_coords must be [Q, N, 2], got shape {tuple(point_coords.shape)}")
        if point_labels.shape != point_coords.shape[:2]:
            raise ValueError(f"point_labels must be [Q, N] = {tuple(point_coords.shape[:2])}, "
                             f"got {tuple(point_labels.shape)}")
        allowed = {0, 1, 2, 3} | ({-1} if allow_padding else set())
        bad = sorted(set(point_labels.unique().tolist()) - allowed)
        if bad:
            raise ValueError(f"point labels must be 1 (point), 0 (no label), 2 / 3 (box corners)"
                             f"{', -1 (padding)' if allow_padding else ''}; got {bad}")
        _check_finite("point_coords", point_coords)
        parts.append(point_coords)
        part_labels.append(point_labels)
    if boxes is not None:
        boxes = torch.as_tensor(boxes, dtype=torch.float32).cpu()
        if boxes.ndim != 2 or boxes.shape[-1] != 4:
            raise ValueError(f"boxes must be [Q, 4] as (x0, y0, x1, y1), got shape {tuple(boxes.shape)}")
        _check_finite("boxes", boxes)
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
    if points.shape[1] > max_points:
        raise ValueError(f"{points.shape[1]} prompt points per query (a box counts as 2), but the model takes "
                         f"at most {max_points}; pass fewer points")
    outside = (points[..., 0] < 0) | (points[..., 0] > w) | (points[..., 1] < 0) | (points[..., 1] > h)
    outside &= labels != -1
    if bool(outside.any()):
        q, n = (int(i) for i in outside.nonzero()[0])
        x, y = points[q, n].tolist()
        raise ValueError(f"prompt point ({x:g}, {y:g}) of query {q} lies outside the {w}x{h} (WxH) image; "
                         "coordinates are (x, y) pixels of the image given to set_image")
    return points, labels


def _check_finite(name: str, values: torch.Tensor) -> None:
    """NaN compares False with everything, so a range check alone lets it through (it would become padding)."""
    bad = ~torch.isfinite(values)
    if bool(bad.any()):
        where = tuple(int(i) for i in bad.nonzero()[0])
        raise ValueError(f"{name} holds a non-finite value ({values[where].item()}) at index {list(where)}; "
                         "prompts must be finite pixel coordinates")
