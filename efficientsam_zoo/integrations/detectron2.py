"""detectron2 adapter: the SAMI ViT as a detectron2 ``Backbone``, a ``BACKBONE_REGISTRY`` entry, the ViT
layer-wise lr-decay rule for LazyConfig optimisers, and checkpoint loading through the package's loader.

LazyConfigs in ``d2_configs/`` wrap :class:`SamiViTNet` in detectron2's own ``SimpleFeaturePyramid``.
"""
from __future__ import annotations

import functools
import os
from typing import Dict, Optional

import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.layers import ShapeSpec
from detectron2.modeling import BACKBONE_REGISTRY, Backbone, SimpleFeaturePyramid
from detectron2.modeling.backbone.fpn import LastLevelMaxPool

from ..checkpoints import CheckpointError, load_pretrained_backbone
from ..modeling.vit import DEFAULT_ARCH, VITDET_DEFAULTS, vitdet_vit
from ..optim import vit_lr_decay_rate

__all__ = ["SamiViTNet", "get_sami_vit_lr_decay_rate", "check_layer_decay", "build_sami_vit_fpn_backbone",
           "load_init_checkpoint", "AtomicDetectionCheckpointer"]


class SamiViTNet(Backbone):
    """Our ViT in its ViTDet form (``modeling.vit.vitdet_vit``) as a single-scale detectron2 backbone
    (``out_feature`` at stride 16). ``arch`` is a paper size; any other keyword replaces a ViTDet default.

    ``pretrained``: optional SAMI export / official EfficientSAM checkpoint / HF ``SamiViTModel`` directory,
    loaded strictly (only the new relative-position tables may be missing).
    """

    def __init__(self, arch: str = DEFAULT_ARCH, img_size: int = 1024, out_feature: str = "last_feat",
                 pretrained: Optional[str] = None, **vitdet) -> None:
        super().__init__()
        self.vit = vitdet_vit(arch, img_size, **vitdet)
        self._out_features = [out_feature]
        self._out_feature_channels = {out_feature: self.vit.embed_dim}
        self._out_feature_strides = {out_feature: self.vit.patch_size}
        if pretrained:
            load_pretrained_backbone(self.vit, pretrained)

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        return {self._out_features[0]: self.vit.forward_features(x)[-1]}


def get_sami_vit_lr_decay_rate(name: str, lr_decay_rate: float = 1.0, num_layers: int = 12) -> float:
    """``optimizer.params.lr_factor_func = partial(get_sami_vit_lr_decay_rate, lr_decay_rate=0.7, num_layers=12)``."""
    return vit_lr_decay_rate(name, lr_decay_rate, num_layers)


def check_layer_decay(lr_factor_func, model: torch.nn.Module) -> None:
    """Refuse a ``get_sami_vit_lr_decay_rate`` partial whose ``num_layers`` is not the backbone's depth (a mismatch
    would starve or overdrive whole blocks)."""
    if not (isinstance(lr_factor_func, functools.partial) and lr_factor_func.func is get_sami_vit_lr_decay_rate):
        return
    depths = {m.vit.depth for m in model.modules() if isinstance(m, SamiViTNet)}
    num_layers = lr_factor_func.keywords.get("num_layers", 12)
    if depths and num_layers not in depths:
        raise ValueError(f"optimizer.params.lr_factor_func has num_layers={num_layers} but the SamiViTNet has "
                         f"{sorted(depths)} blocks; set num_layers to the backbone depth")


class AtomicDetectionCheckpointer(DetectionCheckpointer):
    """``DetectionCheckpointer`` whose saves never leave a half-written ``model_N.pth``: the file is written under a
    temporary name and renamed, then tagged as the last checkpoint."""

    def save(self, name: str, **kwargs) -> None:
        if not self.save_dir or not self.save_to_disk:
            return
        tmp = f".{name}.tmp"
        super().save(tmp, **kwargs)
        os.replace(os.path.join(self.save_dir, tmp + ".pth"), os.path.join(self.save_dir, name + ".pth"))
        self.tag_last_checkpoint(name + ".pth")


def build_sami_vit_fpn_backbone(cfg, input_shape: ShapeSpec = None) -> Backbone:
    """yacs-config entry (``MODEL.BACKBONE.NAME = "build_sami_vit_fpn_backbone"``), reading ``MODEL.SAMI``:
    ARCH, IMG_SIZE, DROP_PATH_RATE, WINDOW_SIZE, WEIGHTS (all optional)."""
    sami = cfg.MODEL.get("SAMI", {})
    net = SamiViTNet(arch=sami.get("ARCH", DEFAULT_ARCH), img_size=sami.get("IMG_SIZE", 1024),
                     drop_path_rate=sami.get("DROP_PATH_RATE", VITDET_DEFAULTS["drop_path_rate"]),
                     window_size=sami.get("WINDOW_SIZE", VITDET_DEFAULTS["window_size"]),
                     pretrained=sami.get("WEIGHTS", None) or None)
    return SimpleFeaturePyramid(net=net, in_feature="last_feat", out_channels=256, scale_factors=(4.0, 2.0, 1.0, 0.5),
                                top_block=LastLevelMaxPool(), norm="LN", square_pad=sami.get("IMG_SIZE", 1024))


if "build_sami_vit_fpn_backbone" not in BACKBONE_REGISTRY:  # re-import must not raise
    BACKBONE_REGISTRY.register(build_sami_vit_fpn_backbone)


def load_init_checkpoint(model: torch.nn.Module, path: str) -> str:
    """``train.init_checkpoint``: a backbone checkpoint (SAMI export, official EfficientSAM, HF directory) goes
    into the model's :class:`SamiViTNet` through our strict loader; anything else (a detectron2 checkpoint of
    the whole model) goes through ``DetectionCheckpointer``. Returns which one was used."""
    nets = [m for m in model.modules() if isinstance(m, SamiViTNet)]
    if nets:
        try:
            load_pretrained_backbone(nets[0].vit, path)
            return "backbone"
        except CheckpointError as exc:
            if "no ViT backbone found" not in str(exc):
                raise  # a backbone checkpoint that does not fit: say so, never load half of it
    DetectionCheckpointer(model).load(path)
    return "detectron2"
