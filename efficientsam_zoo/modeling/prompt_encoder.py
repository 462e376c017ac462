"""Sparse prompt encoder with the EfficientSAM release's semantics.

Every prompt is a point ``(x, y)`` in the 1024-px model frame with a label:

=====  ===============================================================
label  meaning (as the released weights were trained)
=====  ===============================================================
 -1    padding: position encoding + the learned ``invalid_points`` vector
  0    position encoding only, no label embedding. SAM uses 0 for a
       negative click; the EfficientSAM release was not trained with
       negatives, so a 0 here carries no "background" meaning.
  1    positive point: position encoding + ``point_embeddings``
  2    box top-left corner: position encoding + ``bbox_top_left_embeddings``
  3    box bottom-right corner: position encoding + ``bbox_bottom_right_embeddings``
=====  ===============================================================

Unlike SAM, padded slots are not zeroed: they keep their (meaningless) position encoding plus the
invalid embedding, exactly as the release computes them. There are no dense (mask) prompts.
"""
from __future__ import annotations

import math
from typing import Tuple

import torch
from torch import nn

__all__ = ["PositionEmbeddingRandom", "PromptEncoder", "PROMPT_LABELS", "box_corner_prompts"]

PROMPT_LABELS = {"padding": -1, "no_label": 0, "point": 1, "box_top_left": 2, "box_bottom_right": 3}


def box_corner_prompts(boxes: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Boxes ``[..., 4]`` (x0, y0, x1, y1) -> corner points ``[..., 2, 2]`` and labels ``[..., 2]`` (2, 3)."""
    labels = torch.tensor([PROMPT_LABELS["box_top_left"], PROMPT_LABELS["box_bottom_right"]], device=boxes.device)
    return boxes.reshape(*boxes.shape[:-1], 2, 2), labels.expand(*boxes.shape[:-1], 2)


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
    """Points + labels ``[N, P, 2]``, ``[N, P]`` -> sparse embeddings ``[N, P, embed_dim]``."""

    def __init__(self, embed_dim: int, image_embedding_size: Tuple[int, int],
                 input_image_size: Tuple[int, int]) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.image_embedding_size = tuple(image_embedding_size)
        self.input_image_size = tuple(input_image_size)
        self.pe_layer = PositionEmbeddingRandom(embed_dim // 2)
        self.invalid_points = nn.Embedding(1, embed_dim)
        self.point_embeddings = nn.Embedding(1, embed_dim)
        self.bbox_top_left_embeddings = nn.Embedding(1, embed_dim)
        self.bbox_bottom_right_embeddings = nn.Embedding(1, embed_dim)

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
        )
        for value, embedding in table:
            emb = emb + (labels == value).to(emb.dtype) * embedding.weight[0]
        return emb
