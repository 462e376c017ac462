"""``PreTrainedModel`` wrappers of the package's own modules: :class:`SamiViTModel`,
:class:`SamiViTForImageClassification` and :class:`EfficientSamModel`. Nothing is implemented twice: the
networks are ``modeling.ViT`` and ``modeling.EfficientSam``, the prompt checks ``prompts.assemble_prompts``."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import BaseModelOutput, ImageClassifierOutput
from transformers.utils import ModelOutput

from ...build import load_official_weights
from ...checkpoints import official_to_hf_efficientsam
from ...modeling.efficient_sam import EfficientSam
from ...modeling.prompt_encoder import PositionEmbeddingRandom
from ...modeling.vit import ViT
from ...prompts import assemble_prompts, check_mask_input
from ...registry import get_spec
from .aliases import AliasMixin
from .configuration import (EfficientSamConfig, SamiVisionConfig, efficientsam_config_for, spec_from_config,
                            vit_from_config)

__all__ = ["SamiViTModel", "SamiViTForImageClassification", "EfficientSamModel", "EfficientSamOutput"]


class _PreTrained(AliasMixin, PreTrainedModel):
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

    def _return_dict(self, return_dict: Optional[bool]) -> bool:
        return self.config.return_dict if return_dict is None else return_dict


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
        feats = self.vit.forward_features(pixel_values, out_indices=range(self.vit.depth))
        tokens = [f.flatten(2).transpose(1, 2) for f in feats]  # [B, N, C] per block
        last = tokens[-1]
        hidden = None
        if output_hidden_states:
            emb = self.vit.embed(pixel_values).flatten(1, 2)
            hidden = (emb, *tokens)
        if not self._return_dict(return_dict):
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
        out = self.sami_vit(pixel_values, output_hidden_states=output_hidden_states, return_dict=True)
        logits = self.classifier(self.fc_norm(out.last_hidden_state.mean(dim=1)))
        loss = None
        if labels is not None:
            if labels.dtype.is_floating_point and labels.shape == logits.shape:  # soft targets (mixup / cutmix)
                loss = torch.sum(-labels * F.log_softmax(logits, dim=-1), dim=-1).mean()
            else:
                loss = F.cross_entropy(logits, labels)
        if not self._return_dict(return_dict):
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
        """The processor's **normalised** ``pixel_values`` (stretched to 1024, ImageNet mean/std) -> ``[B, 256, 64,
        64]``, as transformers' ``SamModel.get_image_embeddings``. The native ``EfficientSam.get_image_embeddings``
        takes 0..1 images and normalises them itself."""
        return self.efficientsam.image_encoder(pixel_values)

    def forward(self, pixel_values: Optional[torch.Tensor] = None, input_points: Optional[torch.Tensor] = None,
                input_labels: Optional[torch.Tensor] = None, input_boxes: Optional[torch.Tensor] = None,
                input_masks: Optional[torch.Tensor] = None, image_embeddings: Optional[torch.Tensor] = None,
                multimask_output: bool = True, return_dict: Optional[bool] = None, **kwargs
                ) -> Union[EfficientSamOutput, Tuple]:
        """Points ``[B, Q, N, 2]`` / labels ``[B, Q, N]`` / boxes ``[B, Q, 4]`` in the 1024-px model frame;
        ``input_masks`` ``[B, Q, 1, 256, 256]``: a previous output's low-res ``pred_masks`` as mask prompts (models with
        ``mask_prompts`` only; label 0 is a negative click for models with ``negative_points``)."""
        if (pixel_values is None) == (image_embeddings is None):
            raise ValueError("pass exactly one of pixel_values or image_embeddings")
        if image_embeddings is None:
            image_embeddings = self.get_image_embeddings(pixel_values)
        model = self.efficientsam
        points, labels = _join_prompts(input_points, input_labels, input_boxes, model)
        masks_in = None
        if input_masks is not None:
            if input_masks.ndim != 5 or tuple(input_masks.shape[:2]) != tuple(points.shape[:2]):
                raise ValueError(f"input_masks must be [B, Q, 1, h, w] for the [B, Q] = {tuple(points.shape[:2])} "
                                 f"queries, got {tuple(input_masks.shape)}")
            masks_in = torch.stack([check_mask_input(m, points.shape[1], model.prompt_encoder.mask_input_size,
                                                     model.mask_prompts) for m in input_masks])
            masks_in = masks_in.to(image_embeddings.device)
        size = model.img_size
        points, labels = points.to(image_embeddings.device), labels.to(image_embeddings.device)
        masks, iou = model.predict_masks(image_embeddings, points, labels, multimask_output, size, size,
                                         mask_input=masks_in)
        if not self._return_dict(return_dict):
            return iou, masks, image_embeddings
        return EfficientSamOutput(iou_scores=iou, pred_masks=masks, image_embeddings=image_embeddings)


def _join_prompts(points, labels, boxes, model: EfficientSam) -> Tuple[torch.Tensor, torch.Tensor]:
    """Batched prompts in the model frame -> ``points [B, Q, N, 2]``, ``labels [B, Q, N]`` through the predictor's
    one validation (:func:`~efficientsam_zoo.prompts.assemble_prompts`), image by image."""
    lead = next((t.shape[:2] for t in (points, boxes) if t is not None), None)
    if lead is None:
        raise ValueError("empty prompt: give input_points + input_labels and/or input_boxes")
    if points is not None and (points.ndim != 4 or labels is not None and labels.ndim != 3):
        raise ValueError(f"input_points must be [B, Q, N, 2] and input_labels [B, Q, N], got shapes "
                         f"{tuple(points.shape)} and {tuple(labels.shape) if labels is not None else None}")
    if boxes is not None and (boxes.ndim != 3 or boxes.shape[-1] != 4):
        raise ValueError(f"input_boxes must be [B, Q, 4], got shape {tuple(boxes.shape)}")
    if points is not None and boxes is not None and points.shape[:2] != boxes.shape[:2]:
        raise ValueError(f"input_points are for [B, Q] = {tuple(points.shape[:2])} but input_boxes for "
                         f"{tuple(boxes.shape[:2])}")
    size = (model.img_size, model.img_size)
    out = [assemble_prompts(None if points is None else points[b], None if labels is None else labels[b],
                            None if boxes is None else boxes[b], size, model.decoder_max_num_input_points,
                            allow_padding=True, negatives=model.negative_points) for b in range(lead[0])]
    return torch.stack([p for p, _ in out]), torch.stack([lbl for _, lbl in out])
