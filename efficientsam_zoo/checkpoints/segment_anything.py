"""Key tables of other projects' image encoders, translated onto our :class:`~efficientsam_zoo.modeling.ViT`.

* **segment-anything** image encoders (``sam_vit_h_4b8939.pth`` ...): ``image_encoder.*`` with ``mlp.lin1`` /
  ``mlp.lin2`` for our ``mlp.fc1`` / ``mlp.fc2`` and ``pos_embed`` stored as ``[1, 64, 64, C]`` (1024-px grid, no cls
  slot): :func:`segment_anything_to_vit`.
* **transformers** ``SamVisionModel`` / ``SamModel`` vision keys map onto that layout with
  :func:`hf_sam_vision_to_segment_anything`.
"""
from __future__ import annotations

import re
from typing import Dict, Mapping

import torch

__all__ = ["segment_anything_to_vit", "hf_sam_vision_to_segment_anything"]


def segment_anything_to_vit(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """segment-anything image-encoder keys (with or without ``image_encoder.``) -> :class:`ViT` keys.

    Prompt-encoder / mask-decoder keys of a full SAM checkpoint are dropped.
    """
    has_prefix = any(k.startswith("image_encoder.") for k in state_dict)
    out: Dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        if has_prefix:
            if not key.startswith("image_encoder."):
                continue
            key = key[len("image_encoder."):]
        key = key.replace(".mlp.lin1.", ".mlp.fc1.").replace(".mlp.lin2.", ".mlp.fc2.")
        if key == "pos_embed" and value.ndim == 4:  # [1, H, W, C] -> [1, H*W, C]
            value = value.reshape(1, -1, value.shape[-1])
        out[key] = value
    return out


_HF_SAM_RULES = [
    (r"^patch_embed\.projection\.", "patch_embed.proj."),
    (r"^layers\.(\d+)\.layer_norm1\.", r"blocks.\1.norm1."),
    (r"^layers\.(\d+)\.layer_norm2\.", r"blocks.\1.norm2."),
    (r"^layers\.(\d+)\.", r"blocks.\1."),
    (r"^neck\.conv1\.", "neck.0."),
    (r"^neck\.layer_norm1\.", "neck.1."),
    (r"^neck\.conv2\.", "neck.2."),
    (r"^neck\.layer_norm2\.", "neck.3."),
]


def hf_sam_vision_to_segment_anything(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """transformers ``SamVisionModel`` / ``SamModel`` vision keys -> segment-anything ``image_encoder.*`` keys."""
    out: Dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        for prefix in ("vision_encoder.", "model.vision_encoder."):
            if key.startswith(prefix):
                key = key[len(prefix):]
        if not key.startswith(("patch_embed.", "pos_embed", "layers.", "neck.")):
            continue
        for pattern, repl in _HF_SAM_RULES:
            new = re.sub(pattern, repl, key)
            if new != key:
                key = new
                break
        out["image_encoder." + key] = value
    return out


