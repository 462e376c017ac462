"""The SAMI backbone export layout, and reading a plain ViT backbone out of any checkpoint of this package.

A **SAMI backbone export** (``*.safetensors`` written by ``efficientsam-zoo export-backbone``) holds the plain
:class:`~efficientsam_zoo.modeling.ViT` keys, no prefix and no neck::

    patch_embed.proj.{weight,bias}   pos_embed [1, 197, C] (224-px grid + cls slot)
    blocks.{i}.norm1.{weight,bias}   blocks.{i}.attn.qkv.{weight,bias}   blocks.{i}.attn.proj.{weight,bias}
    blocks.{i}.norm2.{weight,bias}   blocks.{i}.mlp.fc1.{weight,bias}    blocks.{i}.mlp.fc2.{weight,bias}

with safetensors metadata ``format = "sami-backbone"`` and ``vit`` = the JSON of the ViT's size (``embed_dim``,
``depth``, ``num_heads``, ``patch_size``, ``mlp_ratio``, ``pretrain_img_size``). The same keys are
``image_encoder.*`` in an official EfficientSAM checkpoint and ``vit.*`` in an HF ``SamiViTModel``;
:func:`backbone_state_dict` reads any of these and returns the plain layout.
"""
from __future__ import annotations

import json
import os
from typing import Dict, Iterable, Mapping, Tuple

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from ..utils.io import atomic_path
from .io import SHOW, CheckpointError, check_state_dict, listing, read_checkpoint
from .official import load_release_state_dict, read_model_spec, read_official_state_dict

__all__ = ["SAMI_BACKBONE_FORMAT", "backbone_state_dict", "save_sami_backbone", "read_sami_backbone",
           "load_pretrained_backbone", "load_segmenter_init"]

SAMI_BACKBONE_FORMAT = "sami-backbone"
_BACKBONE_PREFIXES = ("image_encoder.", "vit.", "sami_vit.vit.", "sami.encoder.", "encoder.", "backbone.")


def backbone_state_dict(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Plain ViT backbone keys from a SAMI export, an official EfficientSAM checkpoint (``image_encoder.``,
    neck dropped), an HF ``SamiViTModel`` (``vit.``) or a SAMI training checkpoint (``sami.encoder.``)."""
    keys = list(state_dict)
    if any(k.startswith("patch_embed.") for k in keys):
        chosen = ""
    else:
        found = [p for p in _BACKBONE_PREFIXES if any(k.startswith(p + "patch_embed.") for k in keys)]
        if not found:
            raise CheckpointError("no ViT backbone found: expected keys like 'patch_embed.proj.weight' (SAMI export), "
                                  "'image_encoder.patch_embed...' (official EfficientSAM) or 'vit.patch_embed...' "
                                  f"(HF SamiViTModel); first keys: {keys[:SHOW]}")
        chosen = found[0]
    out = {k[len(chosen):]: v for k, v in state_dict.items() if k.startswith(chosen)}
    return {k: v for k, v in out.items() if not k.startswith("neck.")}


def save_sami_backbone(state_dict: Mapping[str, torch.Tensor], path: str, vit_args: Mapping) -> None:
    """Write a backbone in the SAMI export layout as safetensors (atomically)."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in backbone_state_dict(state_dict).items()}
    meta = {"format": SAMI_BACKBONE_FORMAT, "vit": json.dumps(dict(vit_args), sort_keys=True)}
    with atomic_path(path) as tmp:
        save_file(tensors, tmp, metadata=meta)


def read_sami_backbone(path: str) -> Tuple[Dict[str, torch.Tensor], Dict]:
    """``(state_dict, vit_args)`` of a SAMI backbone export (``vit_args`` empty for non-export files).

    Also accepts an official EfficientSAM ``.pt`` or any ``.pth`` holding a backbone (read with
    ``weights_only=True``) and an HF ``SamiViTModel`` directory.
    """
    if os.path.isdir(path):
        st = os.path.join(path, "model.safetensors")
        if not os.path.isfile(st):
            raise CheckpointError(f"{path!r} is a directory without model.safetensors (not an HF model directory)")
        path = st
    if path.endswith(".safetensors"):
        if not os.path.isfile(path):
            raise CheckpointError(f"checkpoint {path!r} does not exist (or is not a file)")
        try:
            with safe_open(path, framework="pt") as f:
                meta = f.metadata() or {}
                sd = {k: f.get_tensor(k) for k in f.keys()}
        except Exception as exc:  # noqa: BLE001
            raise CheckpointError(f"could not read {path!r} as safetensors ({exc})") from exc
        vit_args = json.loads(meta["vit"]) if meta.get("format") == SAMI_BACKBONE_FORMAT else {}
        return backbone_state_dict(sd), vit_args
    obj = read_checkpoint(path)
    for key in ("model", "state_dict"):
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            obj = obj[key]
    return backbone_state_dict(obj), {}


def load_pretrained_backbone(vit: torch.nn.Module, path: str, allow_missing: Iterable[str] = ("rel_pos_",)) -> None:
    """Load a backbone checkpoint (SAMI export, official EfficientSAM, HF SamiViTModel dir, ...) into ``vit``.

    Strict, except for parameters the downstream architecture adds (ViTDet's relative-position tables).
    Loudly refuses a load where nothing matched or shapes differ.
    """
    sd, _ = read_sami_backbone(path)
    own = vit.state_dict()
    matched = [k for k in sd if k in own]
    if not matched:
        raise CheckpointError(f"nothing in {path!r} matches the backbone: checkpoint keys {list(sd)[:SHOW]}, "
                              f"backbone keys {list(own)[:SHOW]}")
    missing, unexpected, misshaped = check_state_dict(vit, sd)
    missing = [k for k in missing if not any(a in k for a in allow_missing)]
    if missing or unexpected or misshaped:
        lines = [f"backbone checkpoint {path!r} does not fit:"]
        for title, keys in (("mis-shaped", misshaped), ("missing", missing), ("unexpected", unexpected)):
            if keys:
                lines.append(listing(title, keys))
        raise CheckpointError("\n".join(lines))
    vit.load_state_dict(sd, strict=False)


def load_segmenter_init(sam: nn.Module, path: str) -> str:
    """Initialise an ``EfficientSam`` for finetuning: an official checkpoint (it has ``mask_decoder.*`` keys) or a
    finetuned model directory loads everything, strictly (switched-on prompts the release lacks start as the prompt encoder initialises them); a backbone (SAMI export, HF ``SamiViTModel`` directory, ...) loads the image encoder only,
    its SAM neck and the decoder starting fresh. Returns ``"official"`` or ``"backbone"``."""
    if read_model_spec(path) is not None:  # a finetuned model directory: everything
        load_release_state_dict(sam, read_official_state_dict(path), source=f"model directory {path!r}")
        return "official"
    if os.path.isfile(path) and not path.endswith(".safetensors"):
        obj = read_checkpoint(path)
        sd = obj.get("model", obj) if isinstance(obj, Mapping) else {}
        if any(k.startswith("mask_decoder.") for k in sd):
            load_release_state_dict(sam, dict(sd), source=f"checkpoint {path!r}")
            return "official"
    load_pretrained_backbone(sam.image_encoder, path, allow_missing=("rel_pos_", "neck."))
    return "backbone"
