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

from .modeling.cuda_graph import CUDAGraphDecoder
from .modeling.efficient_sam import EfficientSam
from .prompts import assemble_prompts, check_mask_input
from .utils.image import ImageLike, image_to_tensor
from .utils.predictor_state import PredictorState
from .utils.prompt_checks import single_query_arrays

__all__ = ["EfficientSamPredictor", "assemble_prompts"]  # assemble_prompts lives in .prompts; kept importable here


class EfficientSamPredictor(PredictorState):
    """``cuda_graphs=True`` (model on a CUDA device) replays the prompt side from CUDA graphs, one per
    prompt-batch shape (see :class:`~efficientsam_zoo.modeling.cuda_graph.CUDAGraphDecoder`)."""

    def __init__(self, model: EfficientSam, cuda_graphs: bool = False) -> None:
        self.model = model
        self.cuda_graphs = cuda_graphs
        self._decode = CUDAGraphDecoder(model) if cuda_graphs else model.predict_masks
        self.reset_image()

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def mask_threshold(self) -> float:
        return self.model.mask_threshold

    @torch.inference_mode()
    def set_image(self, image: ImageLike, image_format: str = "RGB") -> None:
        """Compute and keep the embedding of ``image`` (see :func:`image_to_tensor` for formats)."""
        tensor = image_to_tensor(image, image_format)  # checks the pixels once (type, scale, NaN)
        self.set_embedding(self.model.embed_images(tensor[None].to(self.device)), tensor.shape[1:])

    def predict(self, point_coords: Optional[np.ndarray] = None, point_labels: Optional[np.ndarray] = None,
                box: Optional[np.ndarray] = None, mask_input: Optional[np.ndarray] = None,
                multimask_output: bool = True, return_logits: bool = False
                ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One query -> ``(masks [M,H,W], scores [M], low_res_logits [M,h,w])`` as numpy (SamPredictor's arguments).

        ``mask_input`` ``(1, h, w)``: a previous call's ``low_res_logits[i][None]``, as a mask prompt (models with mask
        prompts only: a finetuned model of ``efficientsam-zoo finetune``); label 0 is a negative click for models with
        negative clicks, and refused for the released weights, which have none."""
        self._require_image()
        pts, lbl, bx = single_query_arrays(point_coords, point_labels, box)  # assemble_prompts checks the rest
        masks, scores, low_res = self.predict_torch(pts, lbl, bx, mask_input, multimask_output, return_logits)
        return masks[0].cpu().numpy(), scores[0].float().cpu().numpy(), low_res[0].float().cpu().numpy()

    @torch.inference_mode()
    def predict_torch(self, point_coords: Optional[torch.Tensor] = None, point_labels: Optional[torch.Tensor] = None,
                      boxes: Optional[torch.Tensor] = None, mask_input: Optional[torch.Tensor] = None,
                      multimask_output: bool = True, return_logits: bool = False
                      ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Many queries at once, all against the one stored embedding.

        Args:
            point_coords: ``[Q, N, 2]`` pixels of the original image; ``point_labels``: ``[Q, N]``.
            boxes: ``[Q, 4]`` pixels (x0, y0, x1, y1); appended to each query as two corner points.
            mask_input: ``[Q, 1, h, w]`` (or one ``[1, h, w]`` for every query) low-res logits as mask prompts.
        Returns:
            masks ``[Q, M, H, W]`` (bool, or logits with ``return_logits``), scores ``[Q, M]``,
            low-res logits ``[Q, M, img_size/4, img_size/4]``.
        """
        low_res, scores = self.predict_low_res(point_coords, point_labels, boxes, multimask_output, mask_input)
        logits = self.upscale(low_res)
        masks = logits if return_logits else logits > self.model.mask_threshold
        return masks, scores, low_res

    @torch.inference_mode()
    def predict_low_res(self, point_coords: Optional[torch.Tensor] = None,
                        point_labels: Optional[torch.Tensor] = None, boxes: Optional[torch.Tensor] = None,
                        multimask_output: bool = True, mask_input: Optional[torch.Tensor] = None
                        ) -> Tuple[torch.Tensor, torch.Tensor]:
        """:meth:`predict_torch` without the upsampling: low-res logits ``[Q, M, img_size/4, img_size/4]`` and
        scores ``[Q, M]``. Filter by score first, then :meth:`upscale` only the masks you keep."""
        self._require_image()
        points, labels = self.check_prompts(point_coords, point_labels, boxes)
        return self.decode(points, labels, multimask_output,
                           check_mask_input(mask_input, len(points), self.model.prompt_encoder.mask_input_size,
                                            self.model.mask_prompts))

    def check_prompts(self, point_coords, point_labels, boxes) -> Tuple[torch.Tensor, torch.Tensor]:
        """:func:`~efficientsam_zoo.prompts.assemble_prompts` for this predictor's image and model (its point budget,
        whether it has negative clicks)."""
        self._require_image()
        return assemble_prompts(point_coords, point_labels, boxes, self.original_size,
                                self.model.decoder_max_num_input_points, negatives=self.model.negative_points)

    @torch.inference_mode()
    def decode(self, points: torch.Tensor, labels: torch.Tensor, multimask_output: bool = True,
               mask_input: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        """The decoder on prompts already checked by :meth:`check_prompts` (``points [Q, N, 2]``, ``labels [Q, N]`` in
        the set image's pixels; ``mask_input [Q, 1, h, w]`` by ``prompts.check_mask_input``): low-res logits
        ``[Q, M, h, w]``, scores ``[Q, M]``. Mask prompts run eagerly (the CUDA graphs hold the prompt-only decoder)."""
        self._require_image()
        h, w = self.original_size
        dev = self.device
        args = (self.features, points[None].to(dev), labels[None].to(dev), multimask_output)
        if mask_input is None:
            low_res, scores = self._decode(*args, input_h=h, input_w=w)
        else:
            low_res, scores = self.model.predict_masks(*args, input_h=h, input_w=w, mask_input=mask_input[None].to(dev))
        return low_res[0], scores[0]

    @torch.inference_mode()
    def predict_low_res_above(self, point_coords: torch.Tensor, point_labels: torch.Tensor,
                              min_iou: float) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Segment everything's decoder call (3 masks per query): scores ``[Q, 3]`` of every query, and low-res
        logits ``[K, 3, img_size/4, img_size/4]`` only of the ``K`` queries with a score above ``min_iou``, with
        their indices ``[K]`` (``EfficientSam.predict_masks_above``: the others' masks are never upscaled). A
        CUDA-graph predictor decodes every query in its captured graph and selects afterwards."""
        self._require_image()
        points, labels = self.check_prompts(point_coords, point_labels, None)
        h, w = self.original_size
        points, labels = points[None].to(self.device), labels[None].to(self.device)
        if self.cuda_graphs:
            low_res, scores = self._decode(self.features, points, labels, True, input_h=h, input_w=w)
            index = torch.nonzero((scores[0] > min_iou).any(1)).flatten()
            return low_res[0][index], scores[0], index
        low_res, scores, index = self.model.predict_masks_above(self.features, points, labels, h, w, min_iou)
        return low_res, scores[0], index

    @torch.inference_mode()
    def upscale(self, low_res: torch.Tensor) -> torch.Tensor:
        """Low-res logits ``[Q, M, h, w]`` -> logits at the set image's size (bicubic, each mask on its own)."""
        return F.interpolate(low_res, self.original_size, mode="bicubic")
