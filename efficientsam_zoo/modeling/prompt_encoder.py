"""Sparse prompt encoder with the EfficientSAM release's semantics.

Every prompt is a point ``(x, y)`` in the 1024-px model frame with a label:

=====  ===============================================================
label  meaning (as the released weights were trained)
=====  ===============================================================
 -1    padding: position encoding + the learned ``invalid_points`` vector
  0    a negative click (SAM's meaning), with ``negative_points`` on:
       position encoding + ``negative_point_embeddings``. The release
       has no such embedding (position encoding only, no meaning of
       "background"), so callers refuse label 0 for it.
  1    positive point: position encoding + ``point_embeddings``
  2    box top-left corner: position encoding + ``bbox_top_left_embeddings``
  3    box bottom-right corner: position encoding + ``bbox_bottom_right_embeddings``
=====  ===============================================================

Unlike SAM, padded slots are not zeroed: they keep their (meaningless) position encoding plus the
invalid embedding, exactly as the release computes them. The release has no dense (mask) prompts.

Two switches add SAM's missing prompts (both off by default, so the released weights keep loading strictly and
compute what they compute). Switched on, a model still computes exactly what the release does for every prompt the
release takes, until it is finetuned:

* ``negative_points``: label 0 gets a learned embedding of its own (``negative_point_embeddings``): SAM's negative
  click. It starts as SAM's label embeddings do (``nn.Embedding``'s N(0, 1)), at the scale of the release's
  learned ones: it only enters prompts the release refuses, and a zero start would take Adam a thousand steps to
  reach that scale;
* ``mask_prompts``: SAM's dense prompt -- the previous round's low-resolution logits (``4h x 4w`` for an ``h x w``
  image embedding) through ``mask_downscaling`` (two 2x2 stride-2 convolutions with LayerNorm2d and GELU, then a 1x1
  convolution to the embedding width), added to the image embedding; without a mask, ``no_mask_embed`` is added
  everywhere instead. ``no_mask_embed`` starts at zero, so a prompt without a mask is the release's; the
  convolutions start as SAM's do (PyTorch's default initialisation; a zero start leaves them unlearned after a short
  finetune).
"""
from __future__ import annotations

import math
from typing import Optional, Tuple

import torch
from torch import nn

from ..utils.prompt_checks import NO_MASK_PROMPTS, NO_NEGATIVES, PROMPT_LABELS
from .layers import LayerNorm2d

__all__ = ["PositionEmbeddingRandom", "PromptEncoder", "PROMPT_LABELS", "NO_NEGATIVES",
           "NO_MASK_PROMPTS"]

# NO_NEGATIVES / NO_MASK_PROMPTS (what a model without the switch says when given a negative click / a mask prompt;
# every entry point refuses them) and PROMPT_LABELS live with the prompt checks (utils.prompt_checks), re-exported here.


class PositionEmbeddingRandom(nn.Module):
    """Fourier features of normalised coordinates with a fixed random Gaussian matrix (SAM's PE)."""

    def __init__(self, num_pos_feats: int) -> None:
        super().__init__()
        self.register_buffer("positional_encoding_gaussian_matrix", torch.randn(2, num_pos_feats))

    def _encode(self, coords01: torch.Tensor) -> torch.Tensor:
        # (2c - 1) @ G written out over its two terms: elementwise ops are not autocast ops, so the phases
        # stay fp32 under bf16 / fp16 autocast (a bf16 matmul here moved sin / cos by up to 0.16).
        c = 2.0 * coords01 - 1.0
        g = self.positional_encoding_gaussian_matrix
        proj = 2.0 * math.pi * (c[..., :1] * g[0] + c[..., 1:] * g[1])
        return torch.cat([torch.sin(proj), torch.cos(proj)], dim=-1)

    def forward(self, size: Tuple[int, int]) -> torch.Tensor:
        """Encoding of the centre of every cell of an ``(H, W)`` grid, ``[C, H, W]``."""
        h, w = size
        matrix = self.positional_encoding_gaussian_matrix
        ys = (torch.arange(h, device=matrix.device, dtype=torch.float32) + 0.5) / h
        xs = (torch.arange(w, device=matrix.device, dtype=torch.float32) + 0.5) / w
        grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)  # [H, W, (x, y)]
        return self._encode(grid.to(matrix.dtype)).permute(2, 0, 1)

    def forward_with_coords(self, coords: torch.Tensor, image_size: Tuple[int, int]) -> torch.Tensor:
        """Encoding of pixel coordinates ``[..., 2]`` (x, y) inside an image of ``(H, W)``."""
        h, w = image_size
        # Python-scalar arithmetic only: no tensor built from host data (a host-to-device copy, which CUDA-graph
        # capture of the prompt side forbids).
        coords01 = torch.stack([coords[..., 0] / w, coords[..., 1] / h], dim=-1)
        return self._encode(coords01.to(self.positional_encoding_gaussian_matrix.dtype))


class PromptEncoder(nn.Module):
    """Points + labels ``[N, P, 2]``, ``[N, P]`` -> sparse embeddings ``[N, P, embed_dim]``; with ``mask_prompts``,
    :meth:`dense_embeddings` of the mask prompts too (module docstring)."""

    def __init__(self, embed_dim: int, image_embedding_size: Tuple[int, int], input_image_size: Tuple[int, int],
                 negative_points: bool = False, mask_prompts: bool = False, mask_in_chans: int = 16) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.image_embedding_size = tuple(image_embedding_size)
        self.input_image_size = tuple(input_image_size)
        self.pe_layer = PositionEmbeddingRandom(embed_dim // 2)
        self.invalid_points = nn.Embedding(1, embed_dim)
        self.point_embeddings = nn.Embedding(1, embed_dim)
        self.bbox_top_left_embeddings = nn.Embedding(1, embed_dim)
        self.bbox_bottom_right_embeddings = nn.Embedding(1, embed_dim)
        self.negative_points, self.mask_prompts = negative_points, mask_prompts
        if negative_points:
            self.negative_point_embeddings = nn.Embedding(1, embed_dim)  # N(0, 1), as SAM's label embeddings
        if mask_prompts:
            self.mask_downscaling = nn.Sequential(
                nn.Conv2d(1, mask_in_chans // 4, kernel_size=2, stride=2), LayerNorm2d(mask_in_chans // 4), nn.GELU(),
                nn.Conv2d(mask_in_chans // 4, mask_in_chans, kernel_size=2, stride=2), LayerNorm2d(mask_in_chans),
                nn.GELU(), nn.Conv2d(mask_in_chans, embed_dim, kernel_size=1))
            self.no_mask_embed = nn.Embedding(1, embed_dim)
            nn.init.zeros_(self.no_mask_embed.weight)

    @property
    def mask_input_size(self) -> Tuple[int, int]:
        """``(h, w)`` of the low-resolution mask prompts (4x the image embedding's grid, the decoder's output)."""
        return 4 * self.image_embedding_size[0], 4 * self.image_embedding_size[1]

    def dense_embeddings(self, masks: Optional[torch.Tensor]) -> torch.Tensor:
        """Mask prompts ``[N, 1, 4h, 4w]`` (logits) -> ``[N, C, h, w]``; ``None`` -> ``no_mask_embed`` as
        ``[1, C, 1, 1]`` (the same for every query and position)."""
        if masks is None:
            return self.no_mask_embed.weight.reshape(1, -1, 1, 1)
        return self.mask_downscaling(masks)

    def get_dense_pe(self) -> torch.Tensor:
        """Position encoding of the image-embedding grid, ``[1, C, h, w]``."""
        return self.pe_layer(self.image_embedding_size).unsqueeze(0)

    def forward(self, coords: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        # +0.5: a pixel coordinate names the pixel's centre.
        emb = self.pe_layer.forward_with_coords(coords + 0.5, self.input_image_size)
        labels = labels[..., None]
        table = (
            (-1, self.invalid_points),
            (1, self.point_embeddings),
            (2, self.bbox_top_left_embeddings),
            (3, self.bbox_bottom_right_embeddings),
        ) + (((0, self.negative_point_embeddings),) if self.negative_points else ())
        for value, embedding in table:
            emb = emb + (labels == value).to(emb.dtype) * embedding.weight[0]
        return emb
