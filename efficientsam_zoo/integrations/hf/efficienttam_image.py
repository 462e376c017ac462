"""EfficientTAM on single images: :class:`EfficientTamModel` (transformers' ``Sam2Model`` with EfficientTAM's image
encoder) and :class:`EfficientTamImagePredictor`, SAM 2's ``SAM2ImagePredictor`` API on it.

The image model is the video model without its memory: the same vision encoder, prompt encoder and mask decoder,
built from the same variant table and loaded from the same release files (the memory tensors are left out). The
predictor prepares images as SAM 2 does (a 0..1 tensor resized to the model's square input with antialiased bilinear
interpolation, ImageNet mean / std), checks prompts with the zoo's one validation (``prompts.assemble_prompts``),
and returns SAM 2's ``(masks, scores, low_res_logits)``. It also serves segment everything:
``AutomaticMaskGenerator(efficienttam_model)`` asks the model for :meth:`EfficientTamModel.image_predictor`.
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from transformers.image_utils import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from transformers.models.sam2.configuration_sam2 import Sam2Config
from transformers.models.sam2.modeling_sam2 import Sam2Model

from ...prompts import assemble_prompts
from ...utils.image import ImageLike, image_to_tensor
from ...utils.masks import small_regions
from .aliases import AliasMixin
from .efficienttam import (LOW_RES_CLAMP, EfficientTamVideoConfig, EfficientTamVisionConfig,
                           build_efficienttam_video_model, efficienttam_config_for, flat_image_features)

__all__ = ["EfficientTamConfig", "EfficientTamModel", "EfficientTamImagePredictor", "efficienttam_image_config_for",
           "build_efficienttam"]

_NO_POINT_LIMIT = 1 << 16  # SAM 2's decoder takes any number of points per query


class EfficientTamConfig(Sam2Config):
    r"""
    Configuration of [`EfficientTamModel`]: transformers' `Sam2Config` with an [`EfficientTamVisionConfig`] image
    encoder. Build it for a release with `efficienttam_image_config_for("efficienttam-s")`.
    """

    model_type = "efficienttam"
    sub_configs_defaults = {**Sam2Config.sub_configs_defaults, "vision_config": EfficientTamVisionConfig}


def efficienttam_image_config_for(name_or_config, image_size: Optional[int] = None) -> EfficientTamConfig:
    """The image model of a released EfficientTAM (a name, or its video config): the video config's image encoder,
    prompt encoder and mask decoder."""
    video = (name_or_config if isinstance(name_or_config, EfficientTamVideoConfig)
             else efficienttam_config_for(name_or_config, image_size=image_size))

    def fields(config) -> dict:
        return {k: v for k, v in config.to_dict().items() if k not in ("model_type", "transformers_version")}

    return EfficientTamConfig(vision_config=video.vision_config,
                              prompt_encoder_config=fields(video.prompt_encoder_config),
                              mask_decoder_config=fields(video.mask_decoder_config))


class EfficientTamModel(AliasMixin, Sam2Model):
    """EfficientTAM's image model (``from_pretrained`` also takes a variant name, as the video model does)."""

    config_class = EfficientTamConfig
    mask_threshold = 0.0

    def __init__(self, config: EfficientTamConfig) -> None:
        super().__init__(config)
        del self.mask_decoder.conv_s0, self.mask_decoder.conv_s1  # no high-resolution features to project

    @property
    def image_size(self) -> int:
        return self.config.vision_config.image_size

    @classmethod
    def _from_official(cls, path: str, variant: Optional[str]) -> "EfficientTamModel":
        return cls.from_release(path, variant)

    @classmethod
    def from_release(cls, path: str, name: str) -> "EfficientTamModel":
        """The image model ``name`` with the weights of a release file: read strictly as the video model, whose
        image-side tensors it then takes."""
        return build_efficienttam(name, path)

    def get_image_features(self, pixel_values: torch.Tensor, **kwargs):
        return flat_image_features(self.vision_encoder, pixel_values, **kwargs)

    def image_predictor(self, **kwargs) -> "EfficientTamImagePredictor":
        """The predictor segment everything drives (``AutomaticMaskGenerator(model)``)."""
        return EfficientTamImagePredictor(self, **kwargs)


class EfficientTamImagePredictor:
    """SAM 2's image predictor on :class:`EfficientTamModel`: ``set_image`` / ``set_image_batch``, then ``predict`` /
    ``predict_batch`` with SAM 2's arguments. ``max_hole_area`` / ``max_sprinkle_area`` fill holes and remove
    specks of the low-res masks (SAM 2's post-processing, on every device)."""

    def __init__(self, model: EfficientTamModel, mask_threshold: float = 0.0, max_hole_area: float = 0.0,
                 max_sprinkle_area: float = 0.0) -> None:
        self.model = model.eval()
        self.mask_threshold, self.max_hole_area, self.max_sprinkle_area = mask_threshold, max_hole_area, max_sprinkle_area
        self.reset_predictor()

    @classmethod
    def from_pretrained(cls, name_or_path: str, **kwargs) -> "EfficientTamImagePredictor":
        return cls(EfficientTamModel.from_pretrained(name_or_path), **kwargs)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def reset_predictor(self) -> None:
        self._features: Optional[List[List[torch.Tensor]]] = None
        self._orig_hw: List[Tuple[int, int]] = []
        self._is_image_set = self._is_batch = False

    # -- images ----------------------------------------------------------------------------------------------------
    @torch.inference_mode()
    def set_image(self, image: ImageLike) -> None:
        """Embed one image (``HxWx3`` RGB uint8 array, PIL image, or anything ``image_to_tensor`` takes)."""
        self.set_image_batch([image])
        self._is_batch = False

    @torch.inference_mode()
    def set_image_batch(self, images: Sequence[ImageLike]) -> None:
        """Embed several images; then ``predict_batch`` takes one prompt set per image."""
        if not len(images):
            raise ValueError("set_image_batch needs at least one image")
        tensors = [image_to_tensor(im) for im in images]  # checks the pixels once (type, scale, NaN)
        size = self.model.image_size
        mean = torch.tensor(IMAGENET_DEFAULT_MEAN).view(3, 1, 1)
        std = torch.tensor(IMAGENET_DEFAULT_STD).view(3, 1, 1)
        pixels = torch.stack([(F.interpolate(t[None], (size, size), mode="bilinear", align_corners=False,
                                             antialias=True)[0] - mean) / std for t in tensors])
        self._features = self.model.get_image_embeddings(pixels.to(self.device))
        self._orig_hw = [(int(t.shape[1]), int(t.shape[2])) for t in tensors]
        self._is_image_set, self._is_batch = True, True

    def get_image_embedding(self) -> torch.Tensor:
        """The set image's embedding ``[1, 256, S/16, S/16]`` (the no-memory embedding added, as SAM 2 returns it)."""
        self._require_image()
        return self._features[-1]

    def _require_image(self) -> None:
        if not self._is_image_set:
            raise RuntimeError("no image set: call predictor.set_image(image) before predicting")

    # -- prompts ---------------------------------------------------------------------------------------------------
    def predict(self, point_coords=None, point_labels=None, box=None, mask_input=None, multimask_output: bool = True,
                return_logits: bool = False, normalize_coords: bool = True
                ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """SAM 2's ``predict``: points ``(N, 2)`` (or ``(B, N, 2)``) with labels, a box ``(4,)`` (or ``(B, 4)``), a
        mask prompt ``(1, h, w)`` (a previous ``low_res_logits``) -> ``masks (C, H, W)``, ``scores (C,)``,
        ``low_res_logits (C, h, w)`` (a leading ``B`` for batched prompts). ``normalize_coords=False``: coordinates
        are already relative (0..1)."""
        self._require_image()
        if self._is_batch:
            raise RuntimeError("predict() after set_image_batch(): use predict_batch(), one prompt set per image")
        return self._predict_image(0, point_coords, point_labels, box, mask_input, multimask_output, return_logits,
                                   normalize_coords)

    def predict_batch(self, point_coords_batch=None, point_labels_batch=None, box_batch=None, mask_input_batch=None,
                      multimask_output: bool = True, return_logits: bool = False, normalize_coords: bool = True):
        """One prompt set per image of ``set_image_batch``: lists of ``masks``, ``scores`` and ``low_res_logits``."""
        self._require_image()
        n = len(self._orig_hw)
        args = [point_coords_batch, point_labels_batch, box_batch, mask_input_batch]
        for name, arg in zip(("point_coords_batch", "point_labels_batch", "box_batch", "mask_input_batch"), args):
            if arg is not None and len(arg) != n:
                raise ValueError(f"{name} holds {len(arg)} entries for {n} images; give one per image")
        outs = [self._predict_image(i, *(a[i] if a is not None else None for a in args), multimask_output,
                                    return_logits, normalize_coords) for i in range(n)]
        return [o[0] for o in outs], [o[1] for o in outs], [o[2] for o in outs]

    @torch.inference_mode()
    def _predict_image(self, index, point_coords, point_labels, box, mask_input, multimask_output, return_logits,
                       normalize_coords):
        h, w = self._orig_hw[index]
        points = None if point_coords is None else torch.as_tensor(np.asarray(point_coords, np.float32))
        boxes = None if box is None else torch.as_tensor(np.asarray(box, np.float32))
        single = (points is None or points.ndim == 2) and (boxes is None or boxes.ndim == 1)
        if points is not None:  # assemble_prompts checks them (finite, inside the image) after the scaling
            points = points[None] if points.ndim == 2 else points
            points = points * torch.tensor([w, h]) if not normalize_coords else points
        labels = None if point_labels is None else torch.as_tensor(np.asarray(point_labels))
        if labels is not None and labels.ndim == 1:
            labels = labels[None]
        if boxes is not None:
            boxes = boxes.reshape(-1, 4)
            boxes = boxes * torch.tensor([w, h, w, h]) if not normalize_coords else boxes
        points, labels = assemble_prompts(points, labels, boxes, (h, w), max_points=_NO_POINT_LIMIT, negatives=True)
        mask = None
        if mask_input is not None:
            mask = torch.as_tensor(np.asarray(mask_input, np.float32))
            expected = tuple(self.model.prompt_encoder.mask_input_size)
            if tuple(mask.shape[-2:]) != expected or mask.ndim not in (3, 4):
                raise ValueError(f"mask_input must be low-res logits (1, {expected[0]}, {expected[1]}) -- a previous "
                                 f"predict's low_res_logits[i][None] -- got {tuple(mask.shape)}")
            mask = mask.reshape(-1, 1, *expected).expand(len(points), -1, -1, -1)
        low_res, scores = self._decode(index, points, labels, mask, multimask_output)
        masks = self.upscale_at(low_res, (h, w))
        if not return_logits:
            masks = masks > self.mask_threshold
        low_res = low_res.clamp(-LOW_RES_CLAMP, LOW_RES_CLAMP)
        out = masks.cpu().numpy(), scores.float().cpu().numpy(), low_res.float().cpu().numpy()
        return tuple(o[0] for o in out) if single else out

    def _decode(self, index: int, points: torch.Tensor, labels: torch.Tensor, mask: Optional[torch.Tensor],
                multimask_output: bool) -> Tuple[torch.Tensor, torch.Tensor]:
        """Points ``[Q, N, 2]`` in pixels of image ``index`` -> low-res logits ``[Q, C, h, w]``, scores ``[Q, C]``."""
        h, w = self._orig_hw[index]
        scale = torch.tensor([self.model.image_size / w, self.model.image_size / h])
        out = self.model(image_embeddings=[f[index:index + 1] for f in self._features],
                         input_points=(points * scale)[None].to(self.device), input_labels=labels[None].to(self.device),
                         input_masks=None if mask is None else mask.to(self.device), multimask_output=multimask_output)
        return out.pred_masks[0], out.iou_scores[0]

    def upscale_at(self, low_res: torch.Tensor, size: Tuple[int, int]) -> torch.Tensor:
        """Low-res logits ``[Q, C, h, w]`` -> logits at ``size``, after SAM 2's hole / sprinkle clean-up."""
        low_res = low_res.float()
        # both found on the decoder's masks, as SAM 2 finds them, then applied
        holes = small_regions(low_res, self.max_hole_area, self.mask_threshold) if self.max_hole_area > 0 else None
        specks = (small_regions(low_res, self.max_sprinkle_area, self.mask_threshold, foreground=True)
                  if self.max_sprinkle_area > 0 else None)
        if holes is not None:
            low_res = torch.where(holes, self.mask_threshold + 10.0, low_res)
        if specks is not None:
            low_res = torch.where(specks, self.mask_threshold - 10.0, low_res)
        return F.interpolate(low_res, size, mode="bilinear", align_corners=False)

    # -- segment everything's calls (see automatic_mask_generator) -------------------------------------------------
    @torch.inference_mode()
    def predict_low_res_above(self, point_coords: torch.Tensor, point_labels: torch.Tensor,
                              min_iou: float) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Three masks per one-point query; scores ``[Q, 3]`` of all, low-res logits ``[K, 3, h, w]`` of the ``K``
        queries with a score above ``min_iou``, and their indices."""
        self._require_image()
        points, labels = assemble_prompts(point_coords, point_labels, None, self._orig_hw[0],
                                          max_points=_NO_POINT_LIMIT, negatives=True)
        low_res, scores = self._decode(0, points, labels, None, True)
        index = torch.nonzero((scores > min_iou).any(1)).flatten()
        return low_res[index], scores, index

    @torch.inference_mode()
    def upscale(self, low_res: torch.Tensor) -> torch.Tensor:
        return self.upscale_at(low_res, self._orig_hw[0])


def build_efficienttam(variant_or_config, ckpt_path: Optional[str] = None, device="cpu",
                       mode: str = "eval", **overrides) -> EfficientTamModel:
    """SAM 2's ``build_sam2``: the image model of a release (name or video config, as
    ``build_efficienttam_video_model`` takes them), with the image-side weights of ``ckpt_path``."""
    video = build_efficienttam_video_model(variant_or_config, ckpt_path, "cpu", mode, **overrides)
    model = EfficientTamModel(efficienttam_image_config_for(video.config))
    weights = video.state_dict()
    model.load_state_dict({k: weights[k] for k in model.state_dict()}, strict=True)
    return model.to(device).train(mode == "train")
