"""Frozen teachers for SAMI behind one interface.

A teacher takes the student's *normalised* images (ImageNet mean/std, the same normalisation SAM uses),
resizes them to its own input size (``input_size``, 1024 for SAM; ``resize_mode`` bilinear by default:
a 224-px crop is upsampled to 1024x1024, not padded) and returns its feature map ``[B, C, h, w]``
(64x64x256 for SAM's neck output). It is always in eval mode, has no trainable parameters and runs
under ``torch.no_grad``.

This module holds the pure-PyTorch teachers: any :class:`ViT` with a neck — the segment-anything
ViT-H/L/B image encoders (:func:`sam_image_encoder`) and EfficientSAM's own encoders. The transformers
``SamVisionModel`` teacher lives in ``integrations/transformers.py``; ``efficientsam_zoo.teachers``
builds any of them from a config dict.
"""
from __future__ import annotations

from typing import Dict

import torch
import torch.nn.functional as F
from torch import nn

from .vit import ViT

__all__ = ["Teacher", "ViTTeacher", "SAM_ENCODER_SIZES", "sam_image_encoder"]

#: segment-anything image encoders (embed dim, depth, heads, global-attention blocks); window 14, rel-pos.
SAM_ENCODER_SIZES: Dict[str, dict] = {
    "vit_h": dict(embed_dim=1280, depth=32, num_heads=16, global_attn_indexes=(7, 15, 23, 31)),
    "vit_l": dict(embed_dim=1024, depth=24, num_heads=16, global_attn_indexes=(5, 11, 17, 23)),
    "vit_b": dict(embed_dim=768, depth=12, num_heads=12, global_attn_indexes=(2, 5, 8, 11)),
}


def sam_image_encoder(size: str = "vit_h", img_size: int = 1024, **overrides) -> ViT:
    """Our ViT configured as segment-anything's ``ImageEncoderViT`` (load weights with
    ``checkpoints.segment_anything_to_vit``)."""
    if size not in SAM_ENCODER_SIZES:
        raise ValueError(f"unknown SAM encoder {size!r}; choose one of {sorted(SAM_ENCODER_SIZES)}")
    cfg = dict(SAM_ENCODER_SIZES[size], img_size=img_size, patch_size=16, window_size=14, use_rel_pos=True,
               pretrain_img_size=img_size, pretrain_use_cls_token=False, neck_dim=256)
    cfg.update(overrides)
    return ViT(**cfg)


class Teacher(nn.Module):
    """Base class: subclasses implement :meth:`extract` on images already at ``input_size``."""

    out_channels: int = 256

    def __init__(self, input_size: int = 1024, resize_mode: str = "bilinear") -> None:
        super().__init__()
        if resize_mode not in ("bilinear", "bicubic"):
            raise ValueError(f"resize_mode must be 'bilinear' or 'bicubic', got {resize_mode!r}")
        self.input_size = int(input_size)
        self.resize_mode = resize_mode

    def freeze(self) -> "Teacher":
        for p in self.parameters():
            p.requires_grad_(False)
        return self.eval()

    def train(self, mode: bool = True) -> "Teacher":  # a teacher never leaves eval mode
        return super().train(False)

    def extract(self, images: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if tuple(images.shape[-2:]) != (self.input_size, self.input_size):
            images = F.interpolate(images, size=(self.input_size, self.input_size), mode=self.resize_mode,
                                   align_corners=False)
        return self.extract(images)


class ViTTeacher(Teacher):
    """A :class:`ViT` with a neck as teacher: segment-anything encoders, EfficientSAM encoders, ..."""

    def __init__(self, vit: ViT, input_size: int = None, resize_mode: str = "bilinear") -> None:
        super().__init__(input_size or vit.img_size, resize_mode)
        self.vit = vit
        self.out_channels = vit.transformer_output_dim
        self.freeze()

    def extract(self, images: torch.Tensor) -> torch.Tensor:
        return self.vit(images)
