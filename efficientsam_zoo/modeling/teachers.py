"""Frozen teachers for SAMI behind one interface.

A teacher takes the student's *normalised* images (ImageNet mean/std, the same normalisation SAM uses),
resizes them to its own input size (``input_size``, 1024 for SAM; ``resize_mode`` bilinear by default:
a 224-px crop is upsampled to 1024x1024, not padded) and returns its feature map ``[B, C, h, w]``
(64x64x256 for SAM's neck output). It is always in eval mode, has no trainable parameters and runs
under ``torch.no_grad``.

Teachers are built from config dicts by :func:`build_teacher` through the :data:`TEACHERS` registry:

=========================  ====================================================================
``type``                   what it builds
=========================  ====================================================================
``segment_anything``       segment-anything image encoder from ``checkpoint="sam_vit_h_4b8939.pth"``
                           (``size`` vit_h / vit_l / vit_b), loaded into our ViT strictly
``efficientsam_encoder``   an EfficientSAM image encoder (``model="efficientsam-s"``, ``checkpoint=...``)
``hf_sam``, ``hf_clip``    registered by the Hugging Face adapter (``import efficientsam_zoo`` with
                           transformers installed): transformers ``SamVisionModel`` / ``CLIPVisionModel``
=========================  ====================================================================

Every kind takes ``input_size`` (default: the teacher's own, 1024 for SAM) and ``resize_mode``. The kinds that read
checkpoint files are registered by ``efficientsam_zoo.build`` (a layer above this one), the transformers kinds by
the HF adapter, both with :func:`register_teacher` when ``efficientsam_zoo`` is imported; this module imports
neither.
"""
from __future__ import annotations

from typing import Callable, Dict, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from .vit import ViT

__all__ = ["Teacher", "ViTTeacher", "SAM_ENCODER_SIZES", "sam_image_encoder", "TEACHERS", "register_teacher",
           "build_teacher"]

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


#: ``type`` -> builder taking the config's other keys (``input_size`` / ``resize_mode`` included).
TEACHERS: Dict[str, Callable[..., Teacher]] = {}


def register_teacher(name: str) -> Callable:
    """Decorator: ``@register_teacher("hf_sam")`` makes ``build_teacher(dict(type="hf_sam", ...))`` call the function
    (or class). Re-registering a name replaces it (re-imports stay safe)."""
    def add(builder: Callable[..., Teacher]) -> Callable[..., Teacher]:
        TEACHERS[name] = builder
        return builder

    return add


def build_teacher(cfg: Mapping) -> Teacher:
    """A frozen teacher from ``dict(type=..., **options)``."""
    cfg = dict(cfg)
    kind = cfg.pop("type", None)
    if kind not in TEACHERS:
        hint = (" (registered by the Hugging Face adapter: install transformers and import efficientsam_zoo)"
                if str(kind).startswith("hf_") else "")
        raise ValueError(f"unknown teacher type {kind!r}{hint}; registered: {sorted(TEACHERS)}")
    return TEACHERS[kind](**cfg)
