"""The backbone pieces shared by the MMDetection and MMSegmentation adapters (mmengine only).

``mmdet.py`` and ``mmseg.py`` register these in their framework's registries; nothing here imports mmdet
or mmseg. The classes translate config and checkpoints; the networks are ``modeling.vit.vitdet_vit`` and
``modeling.fpn.SimpleFeaturePyramid``.
"""
from __future__ import annotations

import json
from typing import Dict, List, Optional

import torch
from mmengine.dist import get_dist_info
from mmengine.logging import MMLogger
from mmengine.model import BaseModule
from mmengine.optim import DefaultOptimWrapperConstructor
from torch import nn

from ...checkpoints import load_pretrained_backbone
from ...modeling.fpn import SimpleFeaturePyramid
from ...modeling.vit import DEFAULT_ARCH, ViT, vitdet_vit
from ...optim import no_weight_decay, vit_lr_decay_rate

__all__ = ["SamiViT", "SamiSimpleFPN", "SamiLayerDecayOptimizerConstructor"]


class SamiViT(BaseModule):
    """A SAMI ViT in its ViTDet form (``modeling.vit.vitdet_vit``: 14x14 windows except the global blocks, relative
    position bias, drop path, the 224-px absolute position embedding resized to the working grid). ``arch`` is a
    paper size (``vit-ti`` / ``vit-s`` / ``vit-b``); any other keyword replaces a ViTDet default. Returns the
    outputs of ``out_indices`` (default: the last block), stride 16.

    ``init_cfg=dict(type="Pretrained", checkpoint=PATH)`` accepts a SAMI export (``.safetensors``), an official
    EfficientSAM checkpoint (``image_encoder.*``; the SAM neck is dropped) or an HF ``SamiViTModel`` directory.
    It loads strictly (only the new relative-position tables may be missing) and raises when nothing matches.
    """

    def __init__(self, arch: str = DEFAULT_ARCH, img_size: int = 1024, init_cfg: Optional[dict] = None, **vitdet) -> None:
        super().__init__(init_cfg=init_cfg)
        self.vit = vitdet_vit(arch, img_size, **vitdet)
        self.out_indices = self.vit.out_indices
        self.embed_dim = self.vit.embed_dim

    def init_weights(self) -> None:
        cfg = self.init_cfg
        if isinstance(cfg, dict) and cfg.get("type") == "Pretrained":
            load_pretrained_backbone(self.vit, cfg["checkpoint"])
            MMLogger.get_current_instance().info(f"SamiViT: loaded backbone weights from {cfg['checkpoint']}")
            self._is_init = True
        elif cfg is not None:
            super().init_weights()

    def forward(self, x: torch.Tensor):
        return tuple(self.vit.forward_features(x))


class SamiSimpleFPN(BaseModule):
    """ViTDet's simple feature pyramid on the backbone's last output (strides 4, 8, 16, 32 and, with
    ``num_outs=5``, a max-pooled 64) — Mask R-CNN's neck; ``num_outs=4`` feeds Mask2Former."""

    def __init__(self, in_channels: int, out_channels: int = 256, num_outs: int = 5,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if num_outs not in (4, 5):
            raise ValueError(f"num_outs must be 4 (strides 4-32) or 5 (+ stride 64), got {num_outs}")
        self.fpn = SimpleFeaturePyramid(in_channels, out_channels, top_block=num_outs == 5)
        self.strides = self.fpn.strides()

    def forward(self, inputs):
        return tuple(self.fpn(inputs[-1]))


class SamiLayerDecayOptimizerConstructor(DefaultOptimWrapperConstructor):
    """Layer-wise lr decay for the SAMI ViT (``efficientsam_zoo.optim``): ``paramwise_cfg=dict(decay_rate=0.7,
    custom_keys={...})``. lr = base_lr * decay_rate ** (num_layers + 1 - layer_id) * lr_mult; no weight decay on
    norms, biases, position embeddings and relative-position tables. ``num_layers`` is the model's ViT depth (a
    ``num_layers`` in ``paramwise_cfg`` must agree with it: a mismatch would starve or overdrive whole blocks)."""

    def add_params(self, params: List[dict], module: nn.Module, **kwargs) -> None:
        cfg = dict(self.paramwise_cfg or {})
        decay_rate = float(cfg.get("decay_rate", 0.7))
        depths = {m.depth for m in module.modules() if isinstance(m, ViT)}
        if len(depths) != 1 and "num_layers" not in cfg:
            raise ValueError(f"cannot tell the ViT depth for layer decay (found depths {sorted(depths)}); "
                             "set paramwise_cfg.num_layers")
        num_layers = int(cfg.get("num_layers", next(iter(depths), 0)))
        if depths and num_layers not in depths:
            raise ValueError(f"paramwise_cfg.num_layers={num_layers} but the backbone ViT has {sorted(depths)} blocks; "
                             "drop num_layers (it is read off the model) or make them agree")
        custom = cfg.get("custom_keys", {})
        keys = sorted(custom, key=lambda k: (-len(k), k))  # longest match first, as mmengine does
        groups: Dict[tuple, dict] = {}
        for name, param in module.named_parameters():
            if not param.requires_grad:
                continue
            lr_mult, decay_mult = 1.0, 1.0
            for key in keys:
                if key in name:
                    lr_mult = custom[key].get("lr_mult", 1.0)
                    decay_mult = custom[key].get("decay_mult", 1.0)
                    break
            scale = vit_lr_decay_rate(name, decay_rate, num_layers) * lr_mult
            wd = 0.0 if no_weight_decay(name, param) else self.base_wd * decay_mult
            group = groups.setdefault((scale, wd), dict(params=[], param_names=[], lr=self.base_lr * scale,
                                                        weight_decay=wd, lr_scale=scale))
            group["params"].append(param)
            group["param_names"].append(name)
        if get_dist_info()[0] == 0:
            summary = {f"lr_scale={s:.4g}, wd={w:g}": len(g["params"]) for (s, w), g in sorted(groups.items())}
            MMLogger.get_current_instance().info(f"layer-decay param groups (n params): {json.dumps(summary)}")
        for g in groups.values():
            g.pop("param_names")
            params.append(g)
