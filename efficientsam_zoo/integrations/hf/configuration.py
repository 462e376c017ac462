"""Configs of the Hugging Face models: :class:`SamiVisionConfig` (a SAMI ViT) and :class:`EfficientSamConfig`
(a SAMI ViT image encoder + EfficientSAM's prompt encoder and mask decoder), with the translation to and from
the native :class:`~efficientsam_zoo.modeling.EfficientSamSpec`."""
from __future__ import annotations

from typing import Dict, List, Optional, Union

from transformers import PreTrainedConfig

from ...modeling.efficient_sam import EfficientSamSpec
from ...modeling.vit import VIT_SIZES, ViT
from ...registry import DEFAULT_MODEL, SAMI_NAMES, get_spec, get_variant

__all__ = ["SamiVisionConfig", "EfficientSamConfig", "efficientsam_config_for", "spec_from_config",
           "sami_config_from_vit_args", "vit_from_config"]


#: The defaults of both configs come from the variant table: the first SAMI backbone (ViT-Ti) and the default
#: EfficientSAM variant's architecture (``registry.DEFAULT_MODEL``).
_VIT = VIT_SIZES[get_variant(SAMI_NAMES[0]).backbone]
_SPEC = get_spec(DEFAULT_MODEL)


class SamiVisionConfig(PreTrainedConfig):
    r"""
    Configuration of a SAMI-pretrained plain ViT: [`SamiViTModel`], [`SamiViTForImageClassification`], and the image
    encoder inside [`EfficientSamConfig`]. The defaults give the paper's ViT-Ti at 224 px without a neck
    (``efficientsam_zoo.registry``: ``sami-vit-ti``). The network is ``efficientsam_zoo.modeling.ViT``.

    Args:
        image_size (`int`, *optional*, defaults to 224):
            Input resolution the model works at (224 for classification, 1024 inside EfficientSAM).
        patch_size (`int`, *optional*, defaults to 16):
            Side of each square patch.
        num_channels (`int`, *optional*, defaults to 3):
            Number of input channels.
        hidden_size (`int`, *optional*, defaults to 192):
            Width of the token embeddings (192 ViT-Ti, 384 ViT-S, 768 ViT-B).
        num_hidden_layers (`int`, *optional*, defaults to 12):
            Number of transformer blocks.
        num_attention_heads (`int`, *optional*, defaults to 3):
            Attention heads per block (3 ViT-Ti, 6 ViT-S, 12 ViT-B).
        mlp_ratio (`float`, *optional*, defaults to 4.0):
            Hidden width of each block's MLP as a multiple of `hidden_size`.
        qkv_bias (`bool`, *optional*, defaults to `True`):
            Whether the fused query / key / value projection has a bias.
        layer_norm_eps (`float`, *optional*, defaults to 1e-06):
            Epsilon of every LayerNorm.
        pretrain_image_size (`int`, *optional*, defaults to 224):
            Resolution whose patch grid the absolute position embedding is stored at (with a leading cls slot:
            `[1, (224 / 16) ** 2 + 1, hidden_size]`); it is resized bicubically to the working grid.
        drop_path_rate (`float`, *optional*, defaults to 0.0):
            Stochastic depth rate of the last block (linearly increasing from 0 over the blocks).
        window_size (`int`, *optional*, defaults to 0):
            Window attention size in the blocks not in `global_attn_indexes` (0: global attention everywhere).
        global_attn_indexes (`list[int]`, *optional*):
            Blocks that keep global attention when `window_size > 0` (ViTDet: `[2, 5, 8, 11]`).
        use_rel_pos (`bool`, *optional*, defaults to `False`):
            Whether to add ViTDet's decomposed relative position bias (new, zero-initialised tables).
        neck_dim (`int`, *optional*):
            Output channels of SAM's convolutional neck; `None` for no neck (a plain backbone).
        use_final_norm (`bool`, *optional*, defaults to `False`):
            Whether a LayerNorm follows the last block (MAE-style encoders; SAMI students have none).
        initializer_range (`float`, *optional*, defaults to 0.02):
            Standard deviation of the truncated normal initialiser of linear / conv weights and position embeddings.

    Example:

    ```python
    >>> from efficientsam_zoo import SamiVisionConfig, SamiViTModel

    >>> config = SamiVisionConfig.from_size("s")  # the paper's ViT-S
    >>> model = SamiViTModel(config)
    ```"""

    model_type = "sami_vit"

    image_size: int = 224
    patch_size: int = 16
    num_channels: int = 3
    hidden_size: int = _VIT["embed_dim"]
    num_hidden_layers: int = 12
    num_attention_heads: int = _VIT["num_heads"]
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    layer_norm_eps: float = 1e-6
    pretrain_image_size: int = _SPEC.pretrain_img_size
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
    r"""
    Configuration of [`EfficientSamModel`]: a [`SamiVisionConfig`] image encoder (1024 px, with SAM's 256-channel
    neck), EfficientSAM's sparse prompt encoder and its two-way mask decoder. The defaults give the released
    EfficientSAM-Ti (``efficientsam_zoo.registry``: ``efficientsam-ti``); every field maps one to one onto
    ``efficientsam_zoo.modeling.EfficientSamSpec`` (`spec_from_config` / `efficientsam_config_for`).

    Args:
        vision_config (`Union[dict, SamiVisionConfig]`, *optional*):
            The image encoder. Defaults to ViT-Ti at 1024 px with a 256-channel neck.
        decoder_max_num_input_points (`int`, *optional*, defaults to 6):
            Prompt points per query the decoder takes (a box counts as two); queries are padded or truncated to it.
        decoder_depth (`int`, *optional*, defaults to 2):
            Two-way transformer blocks of the mask decoder.
        decoder_mlp_dim (`int`, *optional*, defaults to 2048):
            Hidden width of the decoder blocks' MLPs.
        decoder_num_heads (`int`, *optional*, defaults to 8):
            Attention heads of the decoder.
        upscaling_layer_dims (`list[int]`, *optional*, defaults to `[64, 32]`):
            Output channels of the transposed 2x2 convolutions that upscale the image tokens to the mask grid.
        num_multimask_outputs (`int`, *optional*, defaults to 3):
            Masks predicted per query when `multimask_output=True` (plus one single-mask token).
        iou_head_depth (`int`, *optional*, defaults to 3):
            Linear layers of the IoU prediction head (two hidden layers and the output layer).
        iou_head_hidden_dim (`int`, *optional*, defaults to 256):
            Hidden width of the IoU prediction head.
        negative_points (`bool`, *optional*, defaults to `False`):
            Whether label 0 is a negative click with a learned embedding (SAM's meaning). The released weights have none;
            models finetuned by `efficientsam-zoo finetune` do.
        mask_prompts (`bool`, *optional*, defaults to `False`):
            Whether the model takes a previous round's low-resolution logits as a mask prompt (SAM's dense prompt,
            `input_masks`). The released weights have none; models finetuned by `efficientsam-zoo finetune` do.
        image_mean (`list[float]`, *optional*, defaults to ImageNet's):
            Per-channel mean on a 0..1 scale, subtracted before the encoder.
        image_std (`list[float]`, *optional*, defaults to ImageNet's):
            Per-channel standard deviation on a 0..1 scale.
        initializer_range (`float`, *optional*, defaults to 0.02):
            Standard deviation of the truncated normal initialiser of linear / conv weights.

    Example:

    ```python
    >>> from efficientsam_zoo import EfficientSamConfig, EfficientSamModel

    >>> model = EfficientSamModel(EfficientSamConfig())  # EfficientSAM-Ti's architecture, random weights
    >>> model = EfficientSamModel.from_pretrained("efficientsam-s")  # the released weights
    ```"""

    model_type = "efficientsam"
    sub_configs_defaults = {"vision_config": SamiVisionConfig}

    vision_config: Union[dict, PreTrainedConfig, None] = None
    decoder_max_num_input_points: int = _SPEC.decoder_max_num_input_points
    decoder_depth: int = _SPEC.decoder_depth
    decoder_mlp_dim: int = _SPEC.decoder_mlp_dim
    decoder_num_heads: int = _SPEC.decoder_num_heads
    upscaling_layer_dims: Optional[List[int]] = None
    num_multimask_outputs: int = _SPEC.num_multimask_outputs
    iou_head_depth: int = _SPEC.iou_head_depth
    iou_head_hidden_dim: int = _SPEC.iou_head_hidden_dim
    negative_points: bool = _SPEC.negative_points
    mask_prompts: bool = _SPEC.mask_prompts
    image_mean: Optional[List[float]] = None
    image_std: Optional[List[float]] = None
    initializer_range: float = 0.02

    def __post_init__(self, **kwargs):
        if self.vision_config is None:
            self.vision_config = {"image_size": _SPEC.img_size, "neck_dim": _SPEC.neck_dim}
        if self.upscaling_layer_dims is None:
            self.upscaling_layer_dims = list(_SPEC.upscaling_layer_dims)
        if self.image_mean is None:
            self.image_mean = list(_SPEC.pixel_mean)
        if self.image_std is None:
            self.image_std = list(_SPEC.pixel_std)
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
        iou_head_hidden_dim=spec.iou_head_hidden_dim, negative_points=spec.negative_points,
        mask_prompts=spec.mask_prompts, image_mean=list(spec.pixel_mean), image_std=list(spec.pixel_std),
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
        iou_head_hidden_dim=config.iou_head_hidden_dim, negative_points=bool(config.negative_points),
        mask_prompts=bool(config.mask_prompts), pixel_mean=tuple(config.image_mean), pixel_std=tuple(config.image_std))


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
