"""``build_efficient_sam``, a ``sam_model_registry``-style table of builders, and the SAMI teachers that are built
from checkpoint files (registered in ``modeling.teachers.TEACHERS`` on import, as adapters register theirs)."""
from __future__ import annotations

from typing import Callable, Dict, Mapping, Optional, Union

import torch

from .checkpoints import (CheckpointError, guess_efficientsam_variant, load_release_state_dict, load_state_dict_strict,
                          read_checkpoint, read_model_spec, read_official_state_dict, segment_anything_to_vit)
from .modeling.efficient_sam import EfficientSam, EfficientSamSpec
from .modeling.teachers import Teacher, ViTTeacher, register_teacher, sam_image_encoder
from .registry import DEFAULT_MODEL, EFFICIENT_SAM_NAMES, get_spec, variant_of_width

__all__ = ["build_efficient_sam", "efficient_sam_model_registry", "load_official_weights",
           "efficient_sam_from_checkpoint"]

StateDictOrPath = Union[str, Mapping[str, torch.Tensor]]


def load_official_weights(model: EfficientSam, checkpoint: StateDictOrPath) -> EfficientSam:
    """Load a release file (``.pt``, ``.pt.zip``, TorchScript ``.jit``) or its state dict strictly into ``model``.

    A model with the prompt switches on (``negative_points`` / ``mask_prompts``) takes a released file too: the
    switches' parameters, which the release lacks, keep their zero start (the release's outputs)."""
    source = f"checkpoint {checkpoint!r}" if isinstance(checkpoint, str) else "state dict"
    state_dict = read_official_state_dict(checkpoint) if isinstance(checkpoint, str) else dict(checkpoint)
    found = guess_efficientsam_variant(state_dict)
    want = guess_efficientsam_variant(model.state_dict())
    hint = ""
    if found and want and found != want:
        hint = f"  the checkpoint is {found} but the model is {want}: build the model with name={found!r}"
    elif "image_encoder.patch_embed.proj.weight" not in state_dict:
        hint = ("  it holds no EfficientSAM image encoder (no image_encoder.patch_embed.proj.weight): is it an "
                "official EfficientSAM checkpoint? (a SAMI backbone export loads with "
                "checkpoints.load_pretrained_backbone)")
    load_release_state_dict(model, state_dict, source=source, hint=hint)
    return model


def build_efficient_sam(name: Union[str, EfficientSamSpec] = DEFAULT_MODEL,
                        checkpoint: Optional[StateDictOrPath] = None, **overrides) -> EfficientSam:
    """Build an EfficientSAM model in eval mode.

    Args:
        name: a name of ``registry.EFFICIENT_SAM_NAMES`` (``"efficientsam-ti"``, ``"efficientsam-s"``) or an
            :class:`EfficientSamSpec`.
        checkpoint: path of a release file -- ``{"model": state_dict}`` (``.pt`` or ``.pt.zip``, loaded with
            ``weights_only=True``) or a TorchScript export (``efficient_sam_s_cpu.jit``) --, a model directory written
            by ``efficientsam-zoo finetune`` (its ``spec.json`` gives the architecture), or a state dict; loaded
            strictly.
        overrides: architecture fields to change (e.g. ``img_size=256`` for small tests).
    """
    spec = name if isinstance(name, EfficientSamSpec) else get_spec(name)
    stored = read_model_spec(checkpoint) if isinstance(checkpoint, str) else None
    if stored is not None:  # a model directory carries its own architecture (image size, depth, prompt switches)
        if stored.embed_dim != spec.embed_dim:
            raise CheckpointError(f"model directory {checkpoint!r} holds a {stored.embed_dim}-d encoder, not {name!r}'s "
                                  f"{spec.embed_dim}-d one: build it with name={variant_of_width(stored.embed_dim)!r}")
        spec = stored
    if overrides:
        spec = spec.replace(**overrides)
    model = EfficientSam.from_spec(spec)
    if checkpoint is not None:
        load_official_weights(model, checkpoint)
    return model.eval()


def efficient_sam_from_checkpoint(checkpoint: str, name: Optional[str] = None, **overrides) -> EfficientSam:
    """A model built for the weights in ``checkpoint`` (read once): its variant is read off the weights unless
    ``name`` is given. A model directory (``spec.json`` beside the weights) builds the architecture it stores."""
    stored = read_model_spec(checkpoint)
    if stored is not None:
        return build_efficient_sam(name or stored, checkpoint=checkpoint, **overrides)
    state_dict = read_official_state_dict(checkpoint)
    if name is None:
        name = guess_efficientsam_variant(state_dict)
        if name is None:
            raise CheckpointError(f"cannot tell the variant of {checkpoint!r}; pass --model "
                                  f"{'|'.join(EFFICIENT_SAM_NAMES)}")
    model = build_efficient_sam(name, **overrides)
    load_official_weights(model, state_dict)
    return model


def _builder(name: str) -> Callable[..., EfficientSam]:
    def build(checkpoint: Optional[str] = None, **overrides) -> EfficientSam:
        return build_efficient_sam(name, checkpoint=checkpoint, **overrides)

    build.__name__ = f"build_{name.replace('-', '_')}"
    return build


#: Like segment-anything's ``sam_model_registry``: ``efficient_sam_model_registry["efficientsam-s"](checkpoint=...)``.
efficient_sam_model_registry: Dict[str, Callable[..., EfficientSam]] = {n: _builder(n) for n in EFFICIENT_SAM_NAMES}


@register_teacher("segment_anything")
def _segment_anything_teacher(size: str = "vit_h", checkpoint: str = None, input_size: int = None,
                              resize_mode: str = "bilinear", **overrides) -> Teacher:
    """segment-anything's image encoder (``sam_vit_h_4b8939.pth`` ...) loaded strictly into our ViT."""
    vit = sam_image_encoder(size, **overrides)
    if checkpoint is not None:
        obj = read_checkpoint(checkpoint)
        obj = obj.get("model", obj) if isinstance(obj, Mapping) else obj
        load_state_dict_strict(vit, segment_anything_to_vit(obj), source=f"SAM checkpoint {checkpoint!r}",
                               hint=f"  is it a segment-anything {size} checkpoint?")
    return ViTTeacher(vit, input_size, resize_mode)


@register_teacher("efficientsam_encoder")
def _efficientsam_teacher(model: str, checkpoint: str = None, input_size: int = None,
                          resize_mode: str = "bilinear", **overrides) -> Teacher:
    """An EfficientSAM image encoder (``model="efficientsam-s"``, ``checkpoint=...``)."""
    return ViTTeacher(build_efficient_sam(model, checkpoint=checkpoint, **overrides).image_encoder, input_size,
                      resize_mode)
