"""LoRA on the image encoder's attention through ``peft`` (the ``lora`` finetuning recipe), and merging it back into
plain weights for export, so that a finetuned model loads without peft."""
from __future__ import annotations

from typing import Dict, Sequence

import torch
from torch import nn

__all__ = ["LORA_TARGETS", "add_lora", "merge_lora", "lora_parameters"]

#: The encoder's attention projections (``blocks.N.attn.qkv`` / ``.proj``) carry the adapters.
LORA_TARGETS = ("qkv", "proj")


def add_lora(encoder: nn.Module, rank: int = 8, alpha: float = 16.0, dropout: float = 0.0,
             targets: Sequence[str] = LORA_TARGETS) -> nn.Module:
    """Inject peft LoRA adapters into ``encoder``'s attention projections (in place); its own weights are frozen, the
    adapters train. The adapters start as a zero update (peft's ``B = 0``), so the model is unchanged until trained."""
    from peft import LoraConfig, inject_adapter_in_model

    # the attention's own projections only (the neck's convolutions and the MLPs stay as they are)
    names = [n for n, m in encoder.named_modules() if isinstance(m, nn.Linear) and n.split(".")[-1] in targets
             and ".attn." in f".{n}"]
    if not names:
        raise ValueError(f"no attention projections named {list(targets)} in {type(encoder).__name__}")
    config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules=names, bias="none")
    inject_adapter_in_model(config, encoder)
    for name, p in encoder.named_parameters():
        p.requires_grad_("lora_" in name)
    return encoder


def lora_parameters(module: nn.Module) -> Dict[str, torch.Tensor]:
    """The adapters' parameters of ``module`` (empty when it has none)."""
    return {n: p for n, p in module.named_parameters() if "lora_" in n}


def merge_lora(module: nn.Module) -> nn.Module:
    """Fold every LoRA adapter of ``module`` into the weight it adapts and put the plain layer back (in place): the
    module then holds ordinary ``nn.Linear`` layers with the release's parameter names."""
    from peft.tuners.lora import LoraLayer

    for name, layer in list(module.named_modules()):
        if isinstance(layer, LoraLayer):
            layer.merge()
            parent = module.get_submodule(name.rsplit(".", 1)[0]) if "." in name else module
            setattr(parent, name.rsplit(".", 1)[-1], layer.get_base_layer())
    return module
