"""Layer-wise learning-rate decay for ViT backbones (ViTDet / BEiT / MAE finetuning rule), framework-free.

A parameter's layer id is 0 for the patch / position embeddings, ``i + 1`` for block ``i`` and
``num_layers + 1`` for everything after the backbone (neck, heads); its learning rate is
``base_lr * decay_rate ** (num_layers + 1 - layer_id)``. Weight decay is 0 for 1-D parameters (norms,
biases), position embeddings and relative-position tables.
"""
from __future__ import annotations

import re

__all__ = ["vit_layer_id", "vit_lr_decay_rate", "no_weight_decay"]

_BLOCK = re.compile(r"(?:^|\.)blocks\.(\d+)\.")


def vit_layer_id(name: str, num_layers: int) -> int:
    if ".pos_embed" in name or name.startswith("pos_embed") or ".patch_embed." in name or name.startswith("patch_embed."):
        return 0
    m = _BLOCK.search(name)
    if m is not None and ("backbone" in name or "image_encoder." in name or "vision_encoder." in name
                          or name.startswith(("blocks.", "vit.", "sami_vit."))):
        return int(m.group(1)) + 1
    return num_layers + 1


def vit_lr_decay_rate(name: str, lr_decay_rate: float = 1.0, num_layers: int = 12) -> float:
    """The learning-rate multiplier of parameter ``name`` (detectron2's ``get_vit_lr_decay_rate`` rule)."""
    return lr_decay_rate ** (num_layers + 1 - vit_layer_id(name, num_layers))


def no_weight_decay(name: str, param) -> bool:
    return param.ndim <= 1 or name.endswith(".bias") or "pos_embed" in name or "rel_pos" in name
