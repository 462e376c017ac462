"""Build a SAMI teacher from a config dict (used by the mmengine SAMI model and the CLI).

=========================  ====================================================================
``type``                   what it builds
=========================  ====================================================================
``hf_sam``                 transformers ``SamVisionModel``: ``pretrained="facebook/sam-vit-huge"``
                           (from the Hub / HF cache, safetensors) or ``config=dict(...)`` (random)
``segment_anything``       segment-anything image encoder from ``checkpoint="sam_vit_h_4b8939.pth"``
                           (``size`` vit_h / vit_l / vit_b), loaded into our ViT strictly
``efficientsam_encoder``   an EfficientSAM image encoder (``model="efficientsam-s"``, ``checkpoint=...``)
=========================  ====================================================================

Every kind takes ``input_size`` (default: the teacher's own, 1024 for SAM) and ``resize_mode``.
"""
from __future__ import annotations

from typing import Mapping

from .modeling.teachers import Teacher, ViTTeacher, sam_image_encoder

__all__ = ["build_teacher"]


def build_teacher(cfg: Mapping) -> Teacher:
    cfg = dict(cfg)
    kind = cfg.pop("type", None)
    resize = {k: cfg.pop(k) for k in ("input_size", "resize_mode") if k in cfg}
    if kind == "hf_sam":
        from .integrations.transformers import HFSamTeacher

        return HFSamTeacher(**cfg, **resize)
    if kind == "segment_anything":
        from .checkpoints import load_state_dict_strict, read_checkpoint, segment_anything_to_vit

        size = cfg.pop("size", "vit_h")
        checkpoint = cfg.pop("checkpoint", None)
        vit = sam_image_encoder(size, **cfg)
        if checkpoint is not None:
            obj = read_checkpoint(checkpoint)
            obj = obj.get("model", obj) if isinstance(obj, Mapping) else obj
            load_state_dict_strict(vit, segment_anything_to_vit(obj), source=f"SAM checkpoint {checkpoint!r}",
                                   hint=f"  is it a segment-anything {size} checkpoint?")
        return ViTTeacher(vit, **resize)
    if kind == "efficientsam_encoder":
        from .build import build_efficient_sam

        model = build_efficient_sam(cfg.pop("model", "efficientsam-s"), checkpoint=cfg.pop("checkpoint", None), **cfg)
        return ViTTeacher(model.image_encoder, **resize)
    raise ValueError(f"unknown teacher type {kind!r}; choose hf_sam, segment_anything or efficientsam_encoder")
