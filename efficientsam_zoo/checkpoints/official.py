"""The official EfficientSAM release layout, and its Hugging Face form.

* **official release** (``efficient_sam_vitt.pt`` / ``efficient_sam_vits.pt``, the zip archive ``*.pt.zip`` that
  wraps one, and the TorchScript exports ``efficient_sam_*_{cpu,gpu}.jit``): ``{"model": state_dict}`` whose keys
  are exactly the module names of :class:`efficientsam_zoo.modeling.EfficientSam` (``image_encoder.*``,
  ``prompt_encoder.*``, ``mask_decoder.*``). No translation is needed; loading is strict.
* **Hugging Face** ``EfficientSamModel`` directories (``model.safetensors``): the official keys under the prefix
  ``efficientsam.`` (:func:`official_to_hf_efficientsam` / :func:`hf_to_official_efficientsam`).
* **model directories** written by ``efficientsam-zoo finetune`` (and the quickstart): an HF directory plus
  ``spec.json``, the native :class:`EfficientSamSpec` (image size, depth, the prompt switches ...), so that
  ``build_efficient_sam(name, checkpoint=DIR)`` and ``EfficientSamModel.from_pretrained(DIR)`` both load it.

A model with the prompt switches on (``negative_points`` / ``mask_prompts``) loads a released file too
(:func:`load_release_state_dict`): the switches' parameters, which the release lacks, keep their zero start.
"""
from __future__ import annotations

import json
import os
from typing import Dict, Mapping, Optional

import torch
from torch import nn

from ..modeling.efficient_sam import EfficientSam, EfficientSamSpec
from ..registry import variant_of_width
from ..utils.io import atomic_path
from .io import SHOW, CheckpointError, atomic_torch_save, load_state_dict_strict, read_checkpoint

__all__ = ["read_official_state_dict", "guess_efficientsam_variant", "save_official_checkpoint",
           "official_to_hf_efficientsam", "hf_to_official_efficientsam", "HF_EFFICIENTSAM_PREFIX",
           "NON_PERSISTENT_BUFFERS", "SPEC_FILE", "read_model_spec", "write_model_spec", "load_release_state_dict"]

#: The native architecture beside the weights of a model directory.
SPEC_FILE = "spec.json"

HF_EFFICIENTSAM_PREFIX = "efficientsam."


def _non_persistent_buffers() -> frozenset:
    with torch.device("meta"):
        model = EfficientSam.from_spec(EfficientSamSpec())
    return frozenset(k for k, _ in model.named_buffers()) - frozenset(model.state_dict())


#: Buffers of :class:`EfficientSam` that a checkpoint does not hold (a TorchScript export's ``state_dict`` does).
NON_PERSISTENT_BUFFERS = _non_persistent_buffers()


def read_model_spec(path: str) -> Optional[EfficientSamSpec]:
    """The :class:`EfficientSamSpec` a model directory stores (``None`` for anything else)."""
    spec_file = os.path.join(path, SPEC_FILE)
    if not (os.path.isdir(path) and os.path.isfile(spec_file)):
        return None
    with open(spec_file) as f:
        fields = json.load(f)
    return EfficientSamSpec(**{k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()})


def write_model_spec(spec: EfficientSamSpec, path: str) -> None:
    """Store ``spec`` as ``path/spec.json`` (atomically): what :func:`read_model_spec` reads back."""
    with atomic_path(os.path.join(path, SPEC_FILE)) as tmp, open(tmp, "w") as f:
        json.dump(spec.to_dict(), f, indent=1)


def read_official_state_dict(path: str) -> Dict[str, torch.Tensor]:
    """The state dict of a release file: ``{"model": ...}`` (``.pt``, ``.pt.zip``; a bare state dict is accepted), a
    TorchScript export (its ``state_dict()``, without the non-persistent buffers a checkpoint never holds), or a
    model / HF ``EfficientSamModel`` directory (its ``model.safetensors``)."""
    if os.path.isdir(path):
        weights = os.path.join(path, "model.safetensors")
        if not os.path.isfile(weights):
            raise CheckpointError(f"{path!r} is a directory without model.safetensors (not a model directory)")
        from safetensors.torch import load_file

        return hf_to_official_efficientsam(load_file(weights))
    obj = read_checkpoint(path)
    if isinstance(obj, Mapping) and "model" in obj and isinstance(obj["model"], Mapping):
        obj = obj["model"]
    elif isinstance(obj, Mapping) and "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{path!r} holds no state dict: expected {{'model': state_dict}} as released")
    return {k: v for k, v in obj.items() if k not in NON_PERSISTENT_BUFFERS}


def guess_efficientsam_variant(state_dict: Mapping[str, torch.Tensor]) -> Optional[str]:
    """The EfficientSAM variant (``registry.VARIANTS``) whose encoder width matches the patch embedding, else
    ``None``."""
    w = state_dict.get("image_encoder.patch_embed.proj.weight")
    if w is None or w.ndim != 4:
        return None
    return variant_of_width(int(w.shape[0]))


def load_release_state_dict(model: nn.Module, state_dict: Mapping[str, torch.Tensor], source: str,
                            hint: str = "") -> None:
    """Strict load of EfficientSAM weights; a model with prompt switches the file lacks keeps those parameters' zero
    start (all of them missing, or none: a half-switched file is refused like any other mismatch)."""
    extensions = model.extension_keys()
    fresh = extensions if not any(k in state_dict for k in extensions) else ()
    load_state_dict_strict(model, state_dict, source=source, hint=hint, ignore_missing=fresh)


def save_official_checkpoint(model: nn.Module, path: str) -> None:
    """Write ``model`` in the release layout ``{"model": state_dict}`` (atomically)."""
    atomic_torch_save({"model": {k: v.detach().cpu() for k, v in model.state_dict().items()}}, path)


def official_to_hf_efficientsam(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Official release keys -> ``EfficientSamModel`` (transformers) keys."""
    return {HF_EFFICIENTSAM_PREFIX + k: v for k, v in state_dict.items()}


def hf_to_official_efficientsam(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """``EfficientSamModel`` keys -> official release keys (refuses keys without the prefix)."""
    stray = [k for k in state_dict if not k.startswith(HF_EFFICIENTSAM_PREFIX)]
    if stray:
        raise CheckpointError(f"not an EfficientSamModel state dict: keys without {HF_EFFICIENTSAM_PREFIX!r}: "
                              f"{stray[:SHOW]}")
    return {k[len(HF_EFFICIENTSAM_PREFIX):]: v for k, v in state_dict.items()}
