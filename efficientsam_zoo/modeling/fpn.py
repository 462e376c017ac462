"""ViTDet's simple feature pyramid from one stride-16 ViT map (Li et al., 2022), framework-free.

From ``[B, C, H/16, W/16]``: stride 4 by two 2x deconvolutions (LayerNorm2d + GELU between), stride 8 by
one, stride 16 as is, stride 32 by 2x2 max-pooling; each level then goes through a 1x1 conv and a 3x3
conv (no bias, each followed by LayerNorm2d) to ``out_channels``. With ``top_block=True`` a 1x1-kernel
stride-2 max-pool of the last level adds stride 64 (Mask R-CNN's P6). Outputs are finest first.
"""
from __future__ import annotations

from typing import List, Sequence

import torch
from torch import nn

from .layers import LayerNorm2d

__all__ = ["SimpleFeaturePyramid"]


class SimpleFeaturePyramid(nn.Module):
    """ViTDet's simple feature pyramid (see the module docstring): ``scale_factors`` relative to the input map
    (4, 2, 1, 0.5 -> strides 4, 8, 16, 32 for a stride-16 ViT), each level projected to ``out_channels``;
    ``top_block`` adds a stride-2 max-pooled copy of the last level."""

    def __init__(self, in_channels: int, out_channels: int = 256, scale_factors: Sequence[float] = (4.0, 2.0, 1.0, 0.5),
                 top_block: bool = True) -> None:
        super().__init__()
        self.scale_factors = tuple(scale_factors)
        self.top_block = top_block
        self.stages = nn.ModuleList()
        for scale in self.scale_factors:
            dim = in_channels
            if scale == 4.0:
                layers: List[nn.Module] = [nn.ConvTranspose2d(dim, dim // 2, 2, stride=2), LayerNorm2d(dim // 2),
                                           nn.GELU(), nn.ConvTranspose2d(dim // 2, dim // 4, 2, stride=2)]
                dim //= 4
            elif scale == 2.0:
                layers, dim = [nn.ConvTranspose2d(dim, dim // 2, 2, stride=2)], dim // 2
            elif scale == 1.0:
                layers = []
            elif scale == 0.5:
                layers = [nn.MaxPool2d(kernel_size=2, stride=2)]
            else:
                raise ValueError(f"scale factor {scale} is not one of 4, 2, 1, 0.5")
            layers += [nn.Conv2d(dim, out_channels, 1, bias=False), LayerNorm2d(out_channels),
                       nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False), LayerNorm2d(out_channels)]
            self.stages.append(nn.Sequential(*layers))

    def strides(self, base_stride: int = 16) -> List[int]:
        out = [int(base_stride / s) for s in self.scale_factors]
        return out + [out[-1] * 2] if self.top_block else out

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        outs = [stage(x) for stage in self.stages]
        if self.top_block:
            outs.append(nn.functional.max_pool2d(outs[-1], kernel_size=1, stride=2))
        return outs
