"""Configs of the Hugging Face models: :class:`SamiVisionConfig` (a SAMI ViT) and :class:`EfficientSamConfig`
(a SAMI ViT image encoder + EfficientSAM's prompt encoder and mask decoder), with the translation to and from
the native :class:`~efficientsam_zoo.modeling.EfficientSamSpec`."""
from __future__ import annotations

from typing import Dict, List, Optional, Union

from transformers import PreTrainedConfig

from ...modeling.efficient_sam import IMAGENET_MEAN, IMAGENET_STD, EfficientSamSpec
from ...modeling.vit import VIT_SIZES, ViT

__all__ = ["SamiVisionConfig", "EfficientSamConfig", "efficientsam_config_for", "spec_from_config",
           "sami_config_from_vit_args", "vit_from_config"]


class SamiVisionConfig(PreTrainedConfig):
    """A plain ViT backbone as pretrained by SAMI (defaults: ViT-Ti at 224 px, no neck)."""

    model_type = "sami_vit"

    image_size: int = 224
    patch_size: int = 16
    num_channels: int = 3
    hidden_size: int = 192
    num_hidden_layers: int = 12
    num_attention_heads: int = 3
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    layer_norm_eps: float = 1e-6
    pretrain_image_size: int = 224
    drop_path_rate: float = 0.0
    window_size: int = 0
    global_attn_indexes: Optional[List[int]] = None
    use_rel_pos: bool = False
    neck_dim: Optional[int] = None
    use_final_norm: bool = False
    initializer_range: float = 0.02

    @classmethod
    def from_size(cls, size: str, **kwargs) -> "SamiVisionConfig":
        """``"ti"``, ``"s"`` or ``"b"`` (or ``"vit-ti"`` ...) -> the paper's ViT-Ti/S/B (``modeling.VIT_SIZES``)."""
        arch = size if size.startswith("vit-") else f"vit-{size}"
        if arch not in VIT_SIZES:
            raise ValueError(f"unknown ViT size {size!r}; choose one of {sorted(VIT_SIZES)}")
        dims = VIT_SIZES[arch]
        return cls(hidden_size=dims["embed_dim"], num_attention_heads=dims["num_heads"], **kwargs)


class EfficientSamConfig(PreTrainedConfig):
    """EfficientSAM = a :class:`SamiVisionConfig` image encoder (1024 px, 256-d neck) + prompt encoder + decoder."""

    model_type = "efficientsam"
    sub_configs_defaults = {"vision_config": SamiVisionConfig}

    vision_config: Union[dict, PreTrainedConfig, None] = None
    decoder_max_num_input_points: int = 6
    decoder_depth: int = 2
    decoder_mlp_dim: int = 2048
    decoder_num_heads: int = 8
    upscaling_layer_dims: Optional[List[int]] = None
    num_multimask_outputs: int = 3
    iou_head_depth: int = 3
    iou_head_hidden_dim: int = 256
    image_mean: Optional[List[float]] = None
    image_std: Optional[List[float]] = None
    initializer_range: float = 0.02

    def __post_init__(self, **kwargs):
        if self.vision_config is None:
            self.vision_config = {"image_size": 1024, "neck_dim": 256}
        if self.upscaling_layer_dims is None:
            self.upscaling_layer_dims = [64, 32]
        if self.image_mean is None:
            self.image_mean = list(IMAGENET_MEAN)
        if self.image_std is None:
            self.image_std = list(IMAGENET_STD)
        super().__post_init__(**kwargs)


def efficientsam_config_for(spec: EfficientSamSpec) -> EfficientSamConfig:
    """The HF config of a native :class:`EfficientSamSpec`."""
    vision = dict(image_size=spec.img_size, patch_size=spec.patch_size, hidden_size=spec.embed_dim,
                  num_hidden_layers=spec.depth, num_attention_heads=spec.num_heads, mlp_ratio=spec.mlp_ratio,
                  pretrain_image_size=spec.pretrain_img_size, neck_dim=spec.neck_dim)
    return EfficientSamConfig(
        vision_config=vision, decoder_max_num_input_points=spec.decoder_max_num_input_points,
        decoder_depth=spec.decoder_depth, decoder_mlp_dim=spec.decoder_mlp_dim,
        decoder_num_heads=spec.decoder_num_heads, upscaling_layer_dims=list(spec.upscaling_layer_dims),
        num_multimask_outputs=spec.num_multimask_outputs, iou_head_depth=spec.iou_head_depth,
        iou_head_hidden_dim=spec.iou_head_hidden_dim, image_mean=list(spec.pixel_mean), image_std=list(spec.pixel_std),
        architectures=["EfficientSamModel"])


def spec_from_config(config: EfficientSamConfig) -> EfficientSamSpec:
    """The native :class:`EfficientSamSpec` of an HF config (inverse of :func:`efficientsam_config_for`)."""
    v = config.vision_config
    return EfficientSamSpec(
        img_size=v.image_size, patch_size=v.patch_size, embed_dim=v.hidden_size, depth=v.num_hidden_layers,
        num_heads=v.num_attention_heads, mlp_ratio=v.mlp_ratio, pretrain_img_size=v.pretrain_image_size,
        neck_dim=v.neck_dim or 256, decoder_max_num_input_points=config.decoder_max_num_input_points,
        decoder_depth=config.decoder_depth, decoder_mlp_dim=config.decoder_mlp_dim,
        decoder_num_heads=config.decoder_num_heads, upscaling_layer_dims=tuple(config.upscaling_layer_dims),
        num_multimask_outputs=config.num_multimask_outputs, iou_head_depth=config.iou_head_depth,
        iou_head_hidden_dim=config.iou_head_hidden_dim, pixel_mean=tuple(config.image_mean),
        pixel_std=tuple(config.image_std))


def sami_config_from_vit_args(vit_args: Dict, **overrides) -> SamiVisionConfig:
    """The ``SamiVisionConfig`` of a SAMI export's ViT size (``checkpoints.read_sami_backbone`` metadata)."""
    cfg = dict(hidden_size=vit_args["embed_dim"], num_hidden_layers=vit_args["depth"],
               num_attention_heads=vit_args["num_heads"], patch_size=vit_args["patch_size"],
               mlp_ratio=vit_args["mlp_ratio"], pretrain_image_size=vit_args["pretrain_img_size"],
               image_size=vit_args["pretrain_img_size"], use_final_norm=vit_args.get("final_norm", False))
    return SamiVisionConfig(**{**cfg, **overrides})


def vit_from_config(config: SamiVisionConfig) -> ViT:
    """Our one :class:`ViT`, configured by a :class:`SamiVisionConfig`."""
    return ViT(img_size=config.image_size, patch_size=config.patch_size, in_chans=config.num_channels,
               embed_dim=config.hidden_size, depth=config.num_hidden_layers, num_heads=config.num_attention_heads,
               mlp_ratio=config.mlp_ratio, qkv_bias=config.qkv_bias, norm_eps=config.layer_norm_eps,
               pretrain_img_size=config.pretrain_image_size, drop_path_rate=config.drop_path_rate,
               window_size=config.window_size, global_attn_indexes=config.global_attn_indexes or (),
               use_rel_pos=config.use_rel_pos, neck_dim=config.neck_dim, final_norm=config.use_final_norm)
