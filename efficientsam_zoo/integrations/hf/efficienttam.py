"""EfficientTAM (Xiong et al., 2024, "Efficient Track Anything"; ``yformer/EfficientTAM``) as transformers models.

EfficientTAM is SAM 2's video model with two changes, and this module holds only those two:

* the image encoder is a plain SAMI ViT (window 14, global blocks 2 / 5 / 8 / 11, no relative positions) with SAM's
  single-scale neck: our one :class:`~efficientsam_zoo.modeling.vit.ViT`, wrapped as :class:`EfficientTamVisionModel`.
  It has no high-resolution skip features, so the mask decoder's two skip inputs receive exact zeros (1x1 maps that
  broadcast; ``conv_s0`` / ``conv_s1`` do not exist) and transformers' decoder code runs unmodified;
* the ``_1`` / ``_2`` releases pool each past frame's memory keys and values 2x2 into landmarks
  (:class:`EfficientTamLandmarkAttention`, a ``Sam2VideoRoPEAttention`` with a different ``forward``).

Everything else -- prompt encoder, mask decoder, memory encoder, memory bank, object pointers, the inference session
and its bookkeeping (``init_video_session``, ``add_inputs_to_inference_session``, ``propagate_in_video_iterator``) --
is transformers' ``Sam2Video*`` code, the way transformers' own ``edgetam_video`` builds on it.
"""
from __future__ import annotations

import logging
import math
import os
from typing import List, Optional

import torch
import torch.nn.functional as F
from transformers import PreTrainedModel
from transformers.activations import ACT2FN
from transformers.models.sam2_video.configuration_sam2_video import Sam2VideoConfig
from transformers.models.sam2_video.modeling_sam2_video import (ALL_ATTENTION_FUNCTIONS, Sam2VideoFeedForward,
                                                                Sam2VideoModel,
                                                                Sam2VideoPositionEmbeddingSine,
                                                                Sam2VideoRoPEAttention, Sam2VideoVisionEncoderOutput,
                                                                apply_rotary_pos_emb_2d, eager_attention_forward)

from ...checkpoints import read_efficienttam_checkpoint
from ...modeling.vit import VITDET_DEFAULTS
from ...registry import EFFICIENT_TAM_NAMES, LANDMARK_POOLINGS, get_variant
from ...utils.masks import small_regions
from .aliases import AliasMixin
from .configuration import SamiVisionConfig, vit_from_config

__all__ = ["EfficientTamVisionConfig", "EfficientTamVisionModel", "EfficientTamVideoConfig", "EfficientTamVideoModel",
           "EfficientTamLandmarkAttention", "efficienttam_config_for", "efficienttam_processor",
           "flat_image_features", "build_efficienttam_video_model", "LOW_RES_CLAMP"]

logger = logging.getLogger(__name__)
#: SAM 2 clamps low-res mask logits to +-32 where it hands them on (a mask prompt of the next click, the predictors)
LOW_RES_CLAMP = 32.0
_POOL = 2  # landmarks average 2x2 memory tokens; 2 ln 2 = ln 4 restores their weight in the softmax


class EfficientTamVisionConfig(SamiVisionConfig):
    r"""
    Configuration of [`EfficientTamVisionModel`]: a [`SamiVisionConfig`] with EfficientTAM's image-encoder settings as
    defaults (1024 px, 14x14 windows except in blocks 2, 5, 8 and 11, SAM's 256-channel neck). The fields are those of
    [`SamiVisionConfig`]; `fpn_hidden_size`, `num_feature_levels` and `backbone_feature_sizes` are derived from them
    for transformers' `Sam2VideoModel`, which reads them.
    """

    model_type = "efficienttam_vision_model"

    image_size: int = 1024
    window_size: int = VITDET_DEFAULTS["window_size"]
    global_attn_indexes: Optional[List[int]] = None
    neck_dim: Optional[int] = 256

    def __post_init__(self, **kwargs):
        if self.global_attn_indexes is None:
            self.global_attn_indexes = list(VITDET_DEFAULTS["global_attn_indexes"])
        super().__post_init__(**kwargs)

    @property
    def fpn_hidden_size(self) -> int:
        return self.neck_dim

    @property
    def num_feature_levels(self) -> int:
        return 3  # two zero skip maps (EfficientTAM has no high-resolution features) and the neck's output

    @property
    def backbone_feature_sizes(self) -> List[List[int]]:
        side = self.image_size // self.patch_size
        return [[1, 1], [1, 1], [side, side]]


class EfficientTamVisionModel(PreTrainedModel):
    """The SAMI ViT + neck, returning the output contract of transformers' SAM 2 vision encoders."""

    config_class = EfficientTamVisionConfig
    base_model_prefix = "vision_encoder"
    main_input_name = "pixel_values"

    def __init__(self, config: EfficientTamVisionConfig) -> None:
        super().__init__(config)
        self.trunk = vit_from_config(config)
        self.position_encoding = Sam2VideoPositionEmbeddingSine(num_position_features=config.neck_dim // 2,
                                                                normalize=True)
        self.post_init()

    def forward(self, pixel_values: torch.Tensor, **kwargs) -> Sam2VideoVisionEncoderOutput:
        features = self.trunk(pixel_values)
        position = self.position_encoding(features.shape, features.device, features.dtype)
        skip = features.new_zeros(features.shape[0], 1, 1, 1)
        return Sam2VideoVisionEncoderOutput(last_hidden_state=features.permute(0, 2, 3, 1),
                                            fpn_hidden_states=(skip, skip, features),
                                            fpn_position_encoding=(skip, skip, position))


class EfficientTamVideoConfig(Sam2VideoConfig):
    r"""
    Configuration of [`EfficientTamVideoModel`]: transformers' `Sam2VideoConfig` with an [`EfficientTamVisionConfig`]
    image encoder and EfficientTAM's settings where they differ from SAM 2.1 (no occlusion embedding, no temporal
    encoding of the object pointers, as in SAM 2.0).

    Args:
        memory_attention_landmark_pooling (`str`, *optional*):
            `None` for SAM 2's full memory cross-attention; `"logits"` (the `_1` releases) or `"keys"` (the `_2`
            releases) to average-pool each past frame's memory keys and values 2x2 into landmarks, adding `2 ln 2`
            to the landmark logits or to the pooled key vectors.
        efficientsam_decoder (`bool`, *optional*, defaults to `False`):
            The mask decoder computes as EfficientSAM's does (GELU in its MLPs, a GroupNorm in its upscaling, IoU
            predictions without a sigmoid, where SAM 2's has ReLU, a per-pixel LayerNorm and a sigmoid; the parameters
            are the same), so that an EfficientSAM checkpoint starts it as the decoder it was. The releases use SAM 2's
            (`False`).
        fill_hole_area (`int`, *optional*, defaults to 0):
            SAM 2's post-processing: background regions of at most this many low-resolution pixels inside a
            predicted mask become foreground (score 0.1); a prompted frame's memory is encoded from the filled mask.
            The release's builder sets 8 (`build_efficienttam_video_predictor(..., apply_postprocessing=True)`).
        **kwargs: the fields of `Sam2VideoConfig`.
    """

    model_type = "efficienttam_video"
    sub_configs_defaults = {**Sam2VideoConfig.sub_configs_defaults,
                            "vision_config": EfficientTamVisionConfig}

    enable_occlusion_spatial_embedding: bool = False
    enable_temporal_pos_encoding_for_object_pointers: bool = False
    memory_attention_landmark_pooling: Optional[str] = None
    efficientsam_decoder: bool = False
    fill_hole_area: int = 0

    def __post_init__(self, **kwargs):
        if self.fill_hole_area < 0:
            raise ValueError(f"fill_hole_area must be >= 0 (0 switches hole filling off), got {self.fill_hole_area}")
        if self.memory_attention_landmark_pooling not in LANDMARK_POOLINGS:
            raise ValueError(f"memory_attention_landmark_pooling must be one of {LANDMARK_POOLINGS}, "
                             f"got {self.memory_attention_landmark_pooling!r}")
        super().__post_init__(**kwargs)


def efficienttam_config_for(name: str, image_size: Optional[int] = None, **overrides) -> EfficientTamVideoConfig:
    """The config of a released EfficientTAM (``efficienttam-ti``, ``efficienttam-s-2`` ...), from the variant table;
    ``image_size`` (a multiple of 16) changes the input size everywhere it appears (tests use small ones); a
    ``vision_config`` dict overrides fields of the variant's image encoder (``num_hidden_layers`` ...)."""
    name = name.replace("_", "-")  # the release's file names: efficienttam_ti_512x512
    if name not in EFFICIENT_TAM_NAMES:
        raise ValueError(f"unknown EfficientTAM model {name!r}; choose one of {EFFICIENT_TAM_NAMES}")
    variant = get_variant(name)
    size = image_size or variant.tracker.image_size
    vision = EfficientTamVisionConfig.from_size(variant.backbone, **{"image_size": size,
                                                                       **overrides.pop("vision_config", {})})
    side = size // vision.patch_size
    kwargs = dict(vision_config=vision, prompt_encoder_config={"image_size": size}, image_size=size,
                  memory_attention_rope_feat_sizes=[side, side],
                  memory_attention_landmark_pooling=variant.tracker.landmark_pooling)
    return EfficientTamVideoConfig(**{**kwargs, **overrides})


def build_efficienttam_video_model(variant_or_config, ckpt_path: Optional[str] = None, device="cpu",
                                   mode: str = "eval", **overrides) -> "EfficientTamVideoModel":
    """SAM 2's ``build_sam2`` for EfficientTAM: a variant name (``"efficienttam-ti"``, ``"efficienttam_s_512x512"``)
    or an :class:`EfficientTamVideoConfig`; ``ckpt_path`` a release file (``{"model": state_dict}``, loaded strictly)
    or a ``save_pretrained`` directory; ``overrides`` set config fields (``fill_hole_area=8`` ...)."""
    known = set(EfficientTamVideoConfig().to_dict())
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"unknown EfficientTAM setting(s) {unknown}; overrides set fields of EfficientTamVideoConfig, "
                         "e.g. fill_hole_area, memory_attention_landmark_pooling, num_maskmem")
    if mode not in ("eval", "train"):
        raise ValueError(f"mode must be 'eval' or 'train', got {mode!r}")
    if ckpt_path is not None and os.path.isdir(ckpt_path):
        model = EfficientTamVideoModel.from_pretrained(ckpt_path, **overrides)
    else:
        if isinstance(variant_or_config, EfficientTamVideoConfig):
            config = EfficientTamVideoConfig(**{**variant_or_config.to_dict(), **overrides})
        else:
            config = efficienttam_config_for(str(variant_or_config), **overrides)
        model = EfficientTamVideoModel(config)
        if ckpt_path is None:
            logger.warning("build_efficienttam: no ckpt_path, so the weights are random (as SAM 2's builders leave "
                           "them); pass a release file such as efficienttam_ti.pt")
        else:
            state = read_efficienttam_checkpoint(ckpt_path, {k: v.shape for k, v in model.state_dict().items()})
            model.load_state_dict(state, strict=True)
    return model.to(device).train(mode == "train")


def efficienttam_processor(config: EfficientTamVideoConfig):
    """transformers' ``Sam2VideoProcessor`` at the model's input size (SAM 2's preprocessing: resize to a square,
    ImageNet mean / std; points and boxes scaled to that square)."""
    from transformers.models.sam2.image_processing_sam2 import Sam2ImageProcessor
    from transformers.models.sam2_video.processing_sam2_video import Sam2VideoProcessor
    from transformers.models.sam2_video.video_processing_sam2_video import Sam2VideoVideoProcessor

    size = {"height": config.image_size, "width": config.image_size}
    return Sam2VideoProcessor(Sam2ImageProcessor(size=size), Sam2VideoVideoProcessor(size=size),
                              target_size=config.image_size)


def _landmarks(x: torch.Tensor, tokens_per_frame: int) -> torch.Tensor:
    """``[B, heads, M * S * S, d]`` memory tokens of M frames -> their 2x2 averages ``[B, heads, M * S * S / 4, d]``
    (frame by frame, row-major within a frame)."""
    b, h, n, d = x.shape
    side = math.isqrt(tokens_per_frame)
    frames = x.reshape(b * h * (n // tokens_per_frame), side, side, d).permute(0, 3, 1, 2)
    pooled = F.avg_pool2d(frames, _POOL, stride=_POOL)
    return pooled.permute(0, 2, 3, 1).reshape(b, h, -1, d)


class EfficientTamLandmarkAttention(Sam2VideoRoPEAttention):
    """Memory cross-attention over 2x2 landmarks of each past frame; the object-pointer tokens (the last
    ``num_k_exclude_rope`` keys) are attended in full. Pooling follows the rotary encoding; with a single memory frame
    the attention is exact, as in the release. Same parameters as ``Sam2VideoRoPEAttention``."""

    def __init__(self, config: EfficientTamVideoConfig, kv_in_dim: int) -> None:
        super().__init__(config, kv_in_dim=kv_in_dim, rope_k_repeat=True)
        self.pooling = config.memory_attention_landmark_pooling

    def forward(self, query, key, value, position_embeddings, num_k_exclude_rope: int = 0, **kwargs):
        batch_size, point_batch_size = query.shape[:2]
        shape = (batch_size * point_batch_size, -1, self.num_attention_heads, self.head_dim)
        query = self.q_proj(query).view(*shape).transpose(1, 2)
        key = self.k_proj(key).view(*shape).transpose(1, 2)
        value = self.v_proj(value).view(*shape).transpose(1, 2)
        cos, sin = position_embeddings
        query, key = apply_rotary_pos_emb_2d(query, key, cos, sin, repeat_freqs_k=True,
                                             num_k_exclude_rope=num_k_exclude_rope)
        mask = None
        per_frame = query.shape[-2]
        spatial = key.shape[-2] - num_k_exclude_rope
        if spatial > per_frame:  # two or more memory frames: landmarks
            bias = 2 * math.log(_POOL)
            key_marks = _landmarks(key[..., :spatial, :], per_frame)
            if self.pooling == "keys":
                key_marks = key_marks + bias
            else:
                mask = query.new_zeros(1, 1, 1, key_marks.shape[-2] + num_k_exclude_rope)
                mask[..., :key_marks.shape[-2]] = bias
            key = torch.cat([key_marks, key[..., spatial:, :]], dim=-2)
            value = torch.cat([_landmarks(value[..., :spatial, :], per_frame), value[..., spatial:, :]], dim=-2)
        attend = ALL_ATTENTION_FUNCTIONS.get_interface(self.config._attn_implementation, eager_attention_forward)
        out, weights = attend(self, query, key, value, attention_mask=mask,
                              dropout=self.dropout_p if self.training else 0.0, scaling=self.scaling,
                              is_causal=False, **kwargs)
        out = out.reshape(batch_size, point_batch_size, -1, self.num_attention_heads * self.head_dim)
        return self.o_proj(out.contiguous()), weights


class EfficientTamVideoModel(AliasMixin, Sam2VideoModel):
    """EfficientTAM's video model: transformers' `Sam2VideoModel` with an [`EfficientTamVisionModel`] image encoder
    and, for the `_1` / `_2` releases, [`EfficientTamLandmarkAttention`] as the memory cross-attention.

    `from_pretrained` takes a directory, a Hub id, or a variant name (``"efficienttam-s"``): the released file is then
    found through the variant table's sources and its keys translated (``checkpoints.efficienttam``).
    """

    config_class = EfficientTamVideoConfig
    base_model_prefix = "efficienttam_video"

    def __init__(self, config: EfficientTamVideoConfig) -> None:
        super().__init__(config)
        del self.mask_decoder.conv_s0, self.mask_decoder.conv_s1  # no high-resolution features to project
        if config.efficientsam_decoder:
            for module in self.mask_decoder.modules():
                if isinstance(module, Sam2VideoFeedForward):
                    module.activation = ACT2FN["gelu"]
            norm = self.mask_decoder.upscale_layer_norm
            self.mask_decoder.upscale_layer_norm = torch.nn.GroupNorm(1, norm.weight.shape[0])  # same weight / bias
            self.mask_decoder.iou_prediction_head.sigmoid_output = False
        if config.memory_attention_landmark_pooling is not None:
            for layer in self.memory_attention.layers:
                full = layer.cross_attn_image
                layer.cross_attn_image = EfficientTamLandmarkAttention(config, kv_in_dim=full.kv_in_dim)
                layer.cross_attn_image.load_state_dict(full.state_dict())

    @classmethod
    def _from_official(cls, path: str, variant: Optional[str]) -> "EfficientTamVideoModel":
        return cls.from_release(path, variant)

    @classmethod
    def from_release(cls, path: str, name: str) -> "EfficientTamVideoModel":
        """The model ``name`` (``efficienttam-ti`` ...) with the weights of a release file, loaded strictly."""
        return build_efficienttam_video_model(name, path)

    # Where transformers' Sam2Video departs from SAM 2's (and so the release's) video predictor:
    def _run_single_frame_inference(self, inference_session, frame_idx, obj_idx, batch_size, is_init_cond_frame,
                                    point_inputs, mask_inputs, reverse, prev_sam_mask_logits=None, streaming=False):
        """Two steps of SAM 2's ``add_new_points_or_box`` / ``_run_single_frame_inference`` that transformers leaves
        out: clicks on a frame that already has a mask refine that mask (it enters the decoder as a mask prompt,
        clamped to +-32), and ``fill_hole_area`` fills small holes of every output mask -- a prompted frame's memory
        is then encoded from the filled mask, upsampled, as SAM 2 encodes it in ``propagate_in_video_preflight``."""
        if point_inputs is not None and prev_sam_mask_logits is None:
            for conditioning in (True, False):
                previous = inference_session.get_output(obj_idx, frame_idx, "pred_masks", conditioning)
                if previous is not None:
                    prev_sam_mask_logits = previous.clamp(-LOW_RES_CLAMP, LOW_RES_CLAMP)
                    break
        out = super()._run_single_frame_inference(
            inference_session=inference_session, frame_idx=frame_idx, obj_idx=obj_idx, batch_size=batch_size,
            is_init_cond_frame=is_init_cond_frame, point_inputs=point_inputs, mask_inputs=mask_inputs,
            reverse=reverse, prev_sam_mask_logits=prev_sam_mask_logits, streaming=streaming)
        if self.config.fill_hole_area > 0:
            masks = out["pred_masks"]
            out["pred_masks"] = torch.where(small_regions(masks, self.config.fill_hole_area), 0.1, masks)
            if point_inputs is not None or mask_inputs is not None:
                out["high_res_masks"] = F.interpolate(out["pred_masks"].float(), size=(self.image_size,) * 2,
                                                      mode="bilinear", align_corners=False).to(masks.dtype)
        return out

    def _single_frame_forward(self, *args, multimask_output: bool = False, **kwargs):
        """SAM 2 decodes a mask prompt's object pointer from the single-mask output; transformers' default
        (``multimask_output=True``, which only that call leaves unset) takes the best of three."""
        return super()._single_frame_forward(*args, multimask_output=multimask_output, **kwargs)

    def _use_mask_as_output(self, backbone_features, high_res_features, mask_inputs):
        """A mask prompt's memory comes from its low-resolution mask upsampled back, as the release (SAM 2's
        ``propagate_in_video_preflight``) encodes every frame the user prompted; transformers would encode the
        full-resolution input mask, whose edges differ."""
        out = super()._use_mask_as_output(backbone_features, high_res_features, mask_inputs)
        out.high_res_masks = F.interpolate(out.pred_masks.float(), size=(self.image_size, self.image_size),
                                           mode="bilinear", align_corners=False).to(out.high_res_masks.dtype)
        return out

    def get_image_features(self, pixel_values: torch.Tensor, **kwargs) -> Sam2VideoVisionEncoderOutput:
        return flat_image_features(self.vision_encoder, pixel_values, **kwargs)


def flat_image_features(vision_encoder: EfficientTamVisionModel, pixel_values: torch.Tensor,
                        **kwargs) -> Sam2VideoVisionEncoderOutput:
    """``get_image_features`` of the image and video models: the vision encoder's levels flattened to ``[HW, B, C]``
    (transformers projects the two skip levels with ``conv_s0`` / ``conv_s1``; EfficientTAM's zero maps need none)."""
    kwargs.pop("return_dict", None)
    out = vision_encoder(pixel_values, **kwargs)
    out.fpn_hidden_states = [f.flatten(2).permute(2, 0, 1) for f in out.fpn_hidden_states]
    out.fpn_position_encoding = [p.flatten(2).permute(2, 0, 1) for p in out.fpn_position_encoding]
    return out
