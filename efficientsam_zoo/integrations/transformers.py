"""Hugging Face ``transformers`` integration: configs, ``PreTrainedModel``s, Auto registration, image processor.

The models here wrap the package's own modules (``modeling.EfficientSam``, ``modeling.ViT``); nothing is
implemented twice. Importing this module registers, idempotently:

==================  ===========================  =========================================================
``model_type``      config                       Auto classes
==================  ===========================  =========================================================
``efficientsam``    :class:`EfficientSamConfig`  ``AutoModel`` -> :class:`EfficientSamModel`,
                                                 ``AutoImageProcessor`` -> :class:`EfficientSamImageProcessor`
``sami_vit``        :class:`SamiVisionConfig`    ``AutoModel`` -> :class:`SamiViTModel`,
                                                 ``AutoModelForImageClassification`` ->
                                                 :class:`SamiViTForImageClassification`
==================  ===========================  =========================================================

Short names (``"efficientsam-s"``, ``"sami-vit-b"``, ...) resolve through :data:`HUB_ALIASES` in every
``from_pretrained`` of this module; see :func:`resolve_pretrained`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from transformers import (AutoConfig, AutoImageProcessor, AutoModel, AutoModelForImageClassification,
                          PreTrainedConfig, PreTrainedModel)
from transformers import initialization as init
from transformers.image_processing_utils import BaseImageProcessor, BatchFeature
from transformers.modeling_outputs import BaseModelOutput, ImageClassifierOutput
from transformers.utils import ModelOutput

from ..checkpoints import official_to_hf_efficientsam
from ..modeling.efficient_sam import IMAGENET_MEAN, IMAGENET_STD, EfficientSam, EfficientSamSpec
from ..modeling.prompt_encoder import PositionEmbeddingRandom, box_corner_prompts
from ..modeling.teachers import Teacher
from ..modeling.vit import ViT

__all__ = [
    "SamiVisionConfig", "EfficientSamConfig", "SamiViTModel", "SamiViTForImageClassification", "EfficientSamModel",
    "EfficientSamImageProcessor", "EfficientSamOutput", "HUB_ALIASES", "HubEntry", "resolve_pretrained",
    "register_auto_classes", "efficientsam_config_for", "spec_from_config", "HFSamTeacher",
    "sami_config_from_vit_args",
]


# ---------------------------------------------------------------------------------------------------------
# Aliases
# ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class HubEntry:
    repo_id: str
    official_file: Optional[str] = None  # a released {"model": ...} .pt to convert when the repo has no config.json
    variant: Optional[str] = None  # efficientsam-ti / efficientsam-s, for on-the-fly conversion


#: The one table of short names. ``merve/EfficientSAM`` is a community mirror holding only the official
#: ``.pt`` files, converted on the fly. The ``efficientsam-zoo/*`` SAMI repositories are where converted
#: SAMI backbones are published with ``hf/push_to_hub.py``; until then use a local directory.
HUB_ALIASES: Dict[str, HubEntry] = {
    "efficientsam-ti": HubEntry("merve/EfficientSAM", "efficient_sam_vitt.pt", "efficientsam-ti"),
    "efficientsam-s": HubEntry("merve/EfficientSAM", "efficient_sam_vits.pt", "efficientsam-s"),
    "sami-vit-ti": HubEntry("efficientsam-zoo/sami-vit-ti"),
    "sami-vit-s": HubEntry("efficientsam-zoo/sami-vit-s"),
    "sami-vit-b": HubEntry("efficientsam-zoo/sami-vit-b"),
}


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() not in ("", "0", "false", "no")


def resolve_pretrained(name: str) -> Tuple[str, Optional[str]]:
    """``name`` -> ``(directory or repo id for from_pretrained, None)`` or ``(None, official .pt path)``.

    Order: an existing local directory; an alias of :data:`HUB_ALIASES` or a full ``org/name`` id whose
    repository has a ``config.json`` (fetched or found in the HF cache); for aliases with an official file,
    that file (fetched or cached), to be converted by the caller. Offline with nothing cached: one error
    naming what to download and where to put it.
    """
    if os.path.isdir(name):
        return name, None
    from huggingface_hub import hf_hub_download

    entry = HUB_ALIASES.get(name, HubEntry(name))
    errors: List[str] = []
    try:
        hf_hub_download(entry.repo_id, "config.json")
        return entry.repo_id, None
    except Exception as exc:  # noqa: BLE001 - missing file, offline cache miss, network errors
        errors.append(f"config.json: {type(exc).__name__}")
    if entry.official_file:
        try:
            return None, hf_hub_download(entry.repo_id, entry.official_file)
        except Exception as exc:  # noqa: BLE001
            errors.append(f"{entry.official_file}: {type(exc).__name__}")
    wanted = entry.official_file or "config.json + model.safetensors"
    how = ("HF_HUB_OFFLINE=1 is set and the Hugging Face cache has no copy" if _offline()
           else "the Hub could not be reached or the repository does not hold it")
    command = " ".join(["huggingface-cli download", entry.repo_id] + ([entry.official_file] if entry.official_file else []))
    then = ("convert the .pt with hf/convert_official_checkpoint.py and call from_pretrained(<output dir>)"
            if entry.official_file else "call from_pretrained(<local directory>)")
    raise OSError(
        f"cannot load {name!r}: {how} ({'; '.join(errors)}). On a machine with network access run `{command}` and "
        f"copy the Hugging Face cache (~/.cache/huggingface/hub) here, or download {wanted} from "
        f"https://huggingface.co/{entry.repo_id} and {then}.")


# ---------------------------------------------------------------------------------------------------------
# Configs
# ---------------------------------------------------------------------------------------------------------
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
        """``"ti"``, ``"s"`` or ``"b"`` -> the paper's ViT-Ti/S/B."""
        dims = {"ti": (192, 3), "s": (384, 6), "b": (768, 12)}
        if size not in dims:
            raise ValueError(f"unknown ViT size {size!r}; choose ti, s or b")
        return cls(hidden_size=dims[size][0], num_attention_heads=dims[size][1], **kwargs)


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
    return ViT(img_size=config.image_size, patch_size=config.patch_size, in_chans=config.num_channels,
               embed_dim=config.hidden_size, depth=config.num_hidden_layers, num_heads=config.num_attention_heads,
               mlp_ratio=config.mlp_ratio, qkv_bias=config.qkv_bias, norm_eps=config.layer_norm_eps,
               pretrain_img_size=config.pretrain_image_size, drop_path_rate=config.drop_path_rate,
               window_size=config.window_size, global_attn_indexes=config.global_attn_indexes or (),
               use_rel_pos=config.use_rel_pos, neck_dim=config.neck_dim, final_norm=config.use_final_norm)


# ---------------------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------------------
class _AliasMixin:
    """``from_pretrained`` that understands the short names of :data:`HUB_ALIASES`."""

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        name = os.fspath(pretrained_model_name_or_path)
        if os.path.isdir(name) or ("/" not in name and name not in HUB_ALIASES):
            return super().from_pretrained(name, *args, **kwargs)
        target, official = resolve_pretrained(name)
        if target is not None:
            return super().from_pretrained(target, *args, **kwargs)
        return cls._from_official(official, HUB_ALIASES[name].variant)

    @classmethod
    def _from_official(cls, path: str, variant: Optional[str]):
        raise OSError(f"{cls.__name__} cannot be built from an official EfficientSAM checkpoint ({path})")


class _PreTrained(_AliasMixin, PreTrainedModel):
    main_input_name = "pixel_values"
    supports_gradient_checkpointing = False

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        std = getattr(self.config, "initializer_range", 0.02)
        if isinstance(module, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            init.trunc_normal_(module.weight, std=std)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, (nn.LayerNorm, nn.GroupNorm)) or type(module).__name__ == "LayerNorm2d":
            init.ones_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            init.normal_(module.weight, std=1.0)
        elif isinstance(module, ViT):
            init.trunc_normal_(module.pos_embed, std=std)
        elif isinstance(module, PositionEmbeddingRandom):
            init.normal_(module.positional_encoding_gaussian_matrix)
        elif isinstance(module, EfficientSam):  # non-persistent buffers are never in a checkpoint
            init.copy_(module.pixel_mean, torch.tensor(self.config.image_mean).view(1, 3, 1, 1))
            init.copy_(module.pixel_std, torch.tensor(self.config.image_std).view(1, 3, 1, 1))
        for name in ("rel_pos_h", "rel_pos_w"):
            if isinstance(getattr(module, name, None), nn.Parameter):
                init.zeros_(getattr(module, name))


class SamiViTModel(_PreTrained):
    """Bare SAMI ViT backbone: ``last_hidden_state`` ``[B, N, C]`` and, on request, every block's output."""

    config_class = SamiVisionConfig
    base_model_prefix = "sami_vit"

    def __init__(self, config: SamiVisionConfig) -> None:
        super().__init__(config)
        self.vit = vit_from_config(config)
        self.post_init()

    def forward(self, pixel_values: torch.Tensor, output_hidden_states: Optional[bool] = None,
                return_dict: Optional[bool] = None, **kwargs) -> Union[BaseModelOutput, Tuple]:
        output_hidden_states = (output_hidden_states if output_hidden_states is not None
                                else self.config.output_hidden_states)
        return_dict = return_dict if return_dict is not None else self.config.use_return_dict
        feats = self.vit.forward_features(pixel_values, out_indices=range(self.vit.depth))
        tokens = [f.flatten(2).transpose(1, 2) for f in feats]  # [B, N, C] per block
        last = tokens[-1]
        hidden = None
        if output_hidden_states:
            emb = self.vit.embed(pixel_values).flatten(1, 2)
            hidden = (emb, *tokens)
        if not return_dict:
            return (last,) + ((hidden,) if hidden is not None else ())
        return BaseModelOutput(last_hidden_state=last, hidden_states=hidden)


class SamiViTForImageClassification(_PreTrained):
    """SAMI ViT + mean pooling over tokens + LayerNorm + linear head (MAE's finetuning head)."""

    config_class = SamiVisionConfig
    base_model_prefix = "sami_vit"

    def __init__(self, config: SamiVisionConfig) -> None:
        super().__init__(config)
        self.num_labels = config.num_labels
        self.sami_vit = SamiViTModel(config)
        self.fc_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels) if config.num_labels > 0 else nn.Identity()
        self.post_init()

    def group_matcher(self, coarse: bool = False) -> dict:
        """timm's layer grouping (``timm.optim.param_groups_layer_decay``): embeddings, each block, then head."""
        return dict(stem=r"^sami_vit\.vit\.(?:pos_embed|patch_embed)",
                    blocks=[(r"^sami_vit\.vit\.blocks\.(\d+)", None), (r"^sami_vit\.vit\.norm|^fc_norm", (99999,))])

    def no_weight_decay(self) -> set:
        return {"sami_vit.vit.pos_embed"}

    def forward(self, pixel_values: torch.Tensor, labels: Optional[torch.Tensor] = None,
                output_hidden_states: Optional[bool] = None, return_dict: Optional[bool] = None,
                **kwargs) -> Union[ImageClassifierOutput, Tuple]:
        return_dict = return_dict if return_dict is not None else self.config.use_return_dict
        out = self.sami_vit(pixel_values, output_hidden_states=output_hidden_states, return_dict=True)
        logits = self.classifier(self.fc_norm(out.last_hidden_state.mean(dim=1)))
        loss = None
        if labels is not None:
            if labels.dtype.is_floating_point and labels.shape == logits.shape:  # soft targets (mixup / cutmix)
                loss = torch.sum(-labels * F.log_softmax(logits, dim=-1), dim=-1).mean()
            else:
                loss = F.cross_entropy(logits, labels)
        if not return_dict:
            rest = (logits,) + ((out.hidden_states,) if out.hidden_states is not None else ())
            return ((loss,) + rest) if loss is not None else rest
        return ImageClassifierOutput(loss=loss, logits=logits, hidden_states=out.hidden_states)


@dataclass
class EfficientSamOutput(ModelOutput):
    """``iou_scores`` ``[B, Q, M]``; ``pred_masks`` low-resolution logits ``[B, Q, M, 256, 256]`` in the stretched
    1024-px frame (``EfficientSamImageProcessor.post_process_masks`` brings them back to each image's size)."""

    iou_scores: Optional[torch.FloatTensor] = None
    pred_masks: Optional[torch.FloatTensor] = None
    image_embeddings: Optional[torch.FloatTensor] = None


class EfficientSamModel(_PreTrained):
    """EfficientSAM for ``transformers``; inputs come from :class:`EfficientSamImageProcessor`."""

    config_class = EfficientSamConfig
    base_model_prefix = "efficientsam"

    def __init__(self, config: EfficientSamConfig) -> None:
        super().__init__(config)
        self.efficientsam = EfficientSam.from_spec(spec_from_config(config))
        self.post_init()

    @classmethod
    def _from_official(cls, path: str, variant: Optional[str]):
        from ..build import load_official_weights
        from ..registry import get_spec

        model = cls(efficientsam_config_for(get_spec(variant)))
        load_official_weights(model.efficientsam, path)
        return model.eval()

    @classmethod
    def from_native(cls, native: EfficientSam) -> "EfficientSamModel":
        """Wrap the weights of a native model (its ``spec`` gives the config)."""
        if native.spec is None:
            raise ValueError("the native model has no spec; build it with build_efficient_sam / EfficientSam.from_spec")
        model = cls(efficientsam_config_for(native.spec))
        model.load_state_dict(official_to_hf_efficientsam(native.state_dict()), strict=True)
        return model

    def get_image_embeddings(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Processor output (stretched + normalised) -> ``[B, 256, 64, 64]``."""
        return self.efficientsam.image_encoder(pixel_values)

    def forward(self, pixel_values: Optional[torch.Tensor] = None, input_points: Optional[torch.Tensor] = None,
                input_labels: Optional[torch.Tensor] = None, input_boxes: Optional[torch.Tensor] = None,
                image_embeddings: Optional[torch.Tensor] = None, multimask_output: bool = True,
                return_dict: Optional[bool] = None, **kwargs) -> Union[EfficientSamOutput, Tuple]:
        """Points ``[B, Q, N, 2]`` / labels ``[B, Q, N]`` / boxes ``[B, Q, 4]`` in the 1024-px model frame."""
        return_dict = return_dict if return_dict is not None else self.config.use_return_dict
        if (pixel_values is None) == (image_embeddings is None):
            raise ValueError("pass exactly one of pixel_values or image_embeddings")
        if image_embeddings is None:
            image_embeddings = self.get_image_embeddings(pixel_values)
        points, labels = _join_prompts(input_points, input_labels, input_boxes)
        size = self.efficientsam.img_size
        masks, iou = self.efficientsam.predict_masks(image_embeddings, points, labels, multimask_output, size, size)
        if not return_dict:
            return iou, masks, image_embeddings
        return EfficientSamOutput(iou_scores=iou, pred_masks=masks, image_embeddings=image_embeddings)


def _join_prompts(points, labels, boxes) -> Tuple[torch.Tensor, torch.Tensor]:
    parts, part_labels = [], []
    if points is not None:
        if labels is None:
            raise ValueError("input_labels must be given with input_points (1 = foreground point)")
        parts.append(points)
        part_labels.append(labels)
    if boxes is not None:
        if boxes.ndim != 3 or boxes.shape[-1] != 4:
            raise ValueError(f"input_boxes must be [B, Q, 4], got shape {tuple(boxes.shape)}")
        corners, corner_labels = box_corner_prompts(boxes)
        parts.append(corners)
        part_labels.append(corner_labels)
    if not parts:
        raise ValueError("empty prompt: give input_points + input_labels and/or input_boxes")
    if len(parts) == 2 and parts[0].shape[:2] != parts[1].shape[:2]:
        raise ValueError(f"input_points are for [B, Q] = {tuple(parts[0].shape[:2])} but input_boxes for "
                         f"{tuple(parts[1].shape[:2])}")
    return torch.cat(parts, dim=2), torch.cat([lbl.to(torch.long) for lbl in part_labels], dim=2)


# ---------------------------------------------------------------------------------------------------------
# Image processor
# ---------------------------------------------------------------------------------------------------------
class EfficientSamImageProcessor(BaseImageProcessor):
    """Stretch to ``size`` x ``size`` (bilinear, as the model was trained; no letterbox), scale to 0..1,
    normalise with ImageNet mean/std; rescale prompts into the same frame. Needs torch, not torchvision.

    The arithmetic is the native model's ``preprocess``, so native and HF paths give identical inputs.
    """

    model_input_names = ["pixel_values"]

    def __init__(self, size: int = 1024, image_mean: Sequence[float] = IMAGENET_MEAN,
                 image_std: Sequence[float] = IMAGENET_STD, **kwargs) -> None:
        super().__init__(**kwargs)
        self.size = int(size)
        self.image_mean = list(image_mean)
        self.image_std = list(image_std)

    def _to_tensor(self, image) -> torch.Tensor:
        from ..predictor import image_to_tensor

        return image_to_tensor(image)

    def preprocess(self, images, input_points=None, input_labels=None, input_boxes=None, return_tensors="pt",
                   **kwargs) -> BatchFeature:
        """``images``: one image or a list (numpy HWC, PIL, or CHW tensors). Prompts are in each image's pixels:
        points ``[B, Q, N, 2]``, labels ``[B, Q, N]``, boxes ``[B, Q, 4]`` (nested lists or arrays)."""
        if return_tensors not in ("pt", None):
            raise ValueError("EfficientSamImageProcessor returns PyTorch tensors only (return_tensors='pt')")
        if not isinstance(images, (list, tuple)):
            images = [images]
        tensors = [self._to_tensor(im) for im in images]
        sizes = torch.tensor([[t.shape[1], t.shape[2]] for t in tensors])
        mean = torch.tensor(self.image_mean).view(1, 3, 1, 1)
        std = torch.tensor(self.image_std).view(1, 3, 1, 1)
        batch = []
        for t in tensors:
            x = t[None]
            if tuple(x.shape[-2:]) != (self.size, self.size):
                x = F.interpolate(x, (self.size, self.size), mode="bilinear")
            batch.append((x - mean) / std)
        data = {"pixel_values": torch.cat(batch), "original_sizes": sizes}
        scale = torch.stack([self.size / sizes[:, 1], self.size / sizes[:, 0]], dim=-1).float()  # (sx, sy) per image
        if input_points is not None:
            pts = torch.as_tensor(np.asarray(input_points, dtype=np.float32))
            if pts.ndim != 4 or pts.shape[0] != len(tensors):
                raise ValueError(f"input_points must be [B={len(tensors)}, Q, N, 2], got shape {tuple(pts.shape)}")
            data["input_points"] = torch.where(pts >= 0, pts * scale[:, None, None, :], torch.full_like(pts, -1.0))
            if input_labels is None:
                raise ValueError("input_labels must be given with input_points")
            data["input_labels"] = torch.as_tensor(np.asarray(input_labels, dtype=np.int64))
        if input_boxes is not None:
            boxes = torch.as_tensor(np.asarray(input_boxes, dtype=np.float32))
            if boxes.ndim != 3 or boxes.shape[0] != len(tensors):
                raise ValueError(f"input_boxes must be [B={len(tensors)}, Q, 4], got shape {tuple(boxes.shape)}")
            data["input_boxes"] = boxes * scale.repeat(1, 2)[:, None, :]
        return BatchFeature(data=data, tensor_type=None)

    def post_process_masks(self, masks: torch.Tensor, original_sizes, binarize: bool = True,
                           mask_threshold: float = 0.0) -> List[torch.Tensor]:
        """Low-res logits ``[B, Q, M, h, w]`` -> per image ``[Q, M, H, W]`` (bicubic), thresholded if ``binarize``."""
        out = []
        for i, (h, w) in enumerate(torch.as_tensor(original_sizes).tolist()):
            up = F.interpolate(masks[i], (int(h), int(w)), mode="bicubic")
            out.append(up > mask_threshold if binarize else up)
        return out


# ---------------------------------------------------------------------------------------------------------
# SAMI teacher
# ---------------------------------------------------------------------------------------------------------
class HFSamTeacher(Teacher):
    """A transformers ``SamVisionModel`` (SAM ViT-H/L/B image encoder) as frozen SAMI teacher.

    ``pretrained``: a Hub id such as ``facebook/sam-vit-huge`` (a ``SamModel`` checkpoint works: its vision
    tower is taken) or a local directory; ``config``: a ``SamVisionConfig`` dict for a randomly initialised
    teacher (tests, smoke runs). Output: ``last_hidden_state`` ``[B, 256, 64, 64]`` (the neck output).
    """

    def __init__(self, pretrained: Optional[str] = None, config: Optional[dict] = None,
                 input_size: Optional[int] = None, resize_mode: str = "bilinear", seed: int = 0) -> None:
        from transformers import SamVisionConfig, SamVisionModel

        if (pretrained is None) == (config is None):
            raise ValueError("give exactly one of pretrained= (Hub id or directory) or config= (random teacher)")
        if pretrained is not None:
            model = SamVisionModel.from_pretrained(pretrained)
        else:
            # SamVisionConfig's default initializer_range (1e-10) gives a teacher whose features are ~0;
            # a random teacher is only useful with weights of ordinary scale.
            config = {"initializer_range": 0.02, **config}
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)  # every rank / resumed run gets the same random teacher
                model = SamVisionModel(SamVisionConfig(**config))
        super().__init__(input_size or model.config.image_size, resize_mode)
        if self.input_size != model.config.image_size:
            raise ValueError(f"SamVisionModel takes {model.config.image_size}-px inputs, input_size is {self.input_size}")
        self.model = model
        self.out_channels = model.config.output_channels
        self.freeze()

    def extract(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=images).last_hidden_state


# ---------------------------------------------------------------------------------------------------------
# Registration
# ---------------------------------------------------------------------------------------------------------
def register_auto_classes() -> None:
    """Register the configs / models / processor with the Auto classes (safe to call repeatedly)."""
    AutoConfig.register(SamiVisionConfig.model_type, SamiVisionConfig, exist_ok=True)
    AutoConfig.register(EfficientSamConfig.model_type, EfficientSamConfig, exist_ok=True)
    AutoModel.register(SamiVisionConfig, SamiViTModel, exist_ok=True)
    AutoModel.register(EfficientSamConfig, EfficientSamModel, exist_ok=True)
    AutoModelForImageClassification.register(SamiVisionConfig, SamiViTForImageClassification, exist_ok=True)
    AutoImageProcessor.register(EfficientSamConfig, slow_image_processor_class=EfficientSamImageProcessor,
                                exist_ok=True)


register_auto_classes()
