"""Two-way-transformer mask decoder (EfficientSAM release layout: 4 mask tokens, GroupNorm upscaling).

The image embedding is computed once per image and is never tiled per query: prompts arrive as
``[B, Q, T, C]`` and the first two-way block runs its token->image attention for all ``Q*T`` tokens of
an image against one copy of the image keys (each token attends independently, so this is exactly
the per-query computation). Only once the image->token attention has updated the image tokens
differently for every query do the per-query tensors ``[B, Q, HW, C]`` exist, as in any SAM decoder.
"""
from __future__ import annotations

import math
from typing import List, Sequence, Tuple, Type

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["MLPBlock", "TwoWayAttention", "TwoWayAttentionBlock", "TwoWayTransformer", "MaskDecoder"]


class MLPBlock(nn.Module):
    """``num_layers`` x (Linear -> act) followed by a final Linear ``fc`` (the release's MLP layout)."""

    def __init__(self, input_dim: int, hidden_dim: int, output_dim: int, num_layers: int,
                 act: Type[nn.Module] = nn.GELU) -> None:
        super().__init__()
        dims = [input_dim] + [hidden_dim] * num_layers
        self.layers = nn.ModuleList(nn.Sequential(nn.Linear(dims[i], dims[i + 1]), act())
                                    for i in range(num_layers))
        self.fc = nn.Linear(hidden_dim if num_layers > 0 else input_dim, output_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return self.fc(x)


class TwoWayAttention(nn.Module):
    """Attention with separate q/k/v projections to ``dim // downsample_rate`` channels.

    Inputs are ``[..., L, dim]`` with broadcastable leading dimensions.
    """

    def __init__(self, embedding_dim: int, num_heads: int, downsample_rate: int = 1) -> None:
        super().__init__()
        self.embedding_dim = embedding_dim
        self.internal_dim = embedding_dim // downsample_rate
        self.num_heads = num_heads
        if self.internal_dim % num_heads:
            raise ValueError(f"num_heads {num_heads} must divide the attention width {self.internal_dim}")
        self.q_proj = nn.Linear(embedding_dim, self.internal_dim)
        self.k_proj = nn.Linear(embedding_dim, self.internal_dim)
        self.v_proj = nn.Linear(embedding_dim, self.internal_dim)
        self.out_proj = nn.Linear(self.internal_dim, embedding_dim)
        self.fused = True
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        # Xavier-uniform with the fan of a packed qkv matrix, as SAM / the release initialise it.
        bound = math.sqrt(6.0 / (self.embedding_dim + 3 * self.internal_dim))
        for proj in (self.q_proj, self.k_proj, self.v_proj):
            nn.init.uniform_(proj.weight, -bound, bound)
            nn.init.zeros_(proj.bias)
        nn.init.zeros_(self.out_proj.bias)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        *lead, n, c = x.shape
        return x.reshape(*lead, n, self.num_heads, c // self.num_heads).transpose(-3, -2)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        q, k, v = self._heads(self.q_proj(q)), self._heads(self.k_proj(k)), self._heads(self.v_proj(v))
        lead = torch.broadcast_shapes(q.shape[:-3], k.shape[:-3])
        q, k, v = (t.expand(*lead, *t.shape[-3:]).reshape(-1, *t.shape[-3:]) for t in (q, k, v))
        if self.fused:
            out = F.scaled_dot_product_attention(q, k, v)
        else:
            attn = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
            out = attn.softmax(dim=-1) @ v
        out = out.transpose(1, 2).reshape(*lead, out.shape[-2], self.internal_dim)
        return self.out_proj(out)


def _token_to_image(attn: TwoWayAttention, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Tokens ``[B, Q, T, C]`` attend to image tokens ``[B, 1 or Q, HW, C]``.

    With shared image tokens (second dim 1) all ``Q*T`` tokens of an image form one query sequence
    against the single copy of the keys, which is the same arithmetic as attending per query.
    """
    b, nq, t, c = q.shape
    if k.shape[1] == 1 and nq > 1:
        return attn(q.reshape(b, 1, nq * t, c), k, v).reshape(b, nq, t, c)
    return attn(q, k, v)


class TwoWayAttentionBlock(nn.Module):
    """Self-attention of tokens, token->image, MLP on tokens, image->token (SAM's two-way block)."""

    def __init__(self, embedding_dim: int, num_heads: int, mlp_dim: int, activation: Type[nn.Module] = nn.GELU,
                 attention_downsample_rate: int = 2, skip_first_layer_pe: bool = False) -> None:
        super().__init__()
        self.self_attn = TwoWayAttention(embedding_dim, num_heads)
        self.norm1 = nn.LayerNorm(embedding_dim)
        self.cross_attn_token_to_image = TwoWayAttention(embedding_dim, num_heads, attention_downsample_rate)
        self.norm2 = nn.LayerNorm(embedding_dim)
        self.mlp = MLPBlock(embedding_dim, mlp_dim, embedding_dim, 1, activation)
        self.norm3 = nn.LayerNorm(embedding_dim)
        self.norm4 = nn.LayerNorm(embedding_dim)
        self.cross_attn_image_to_token = TwoWayAttention(embedding_dim, num_heads, attention_downsample_rate)
        self.skip_first_layer_pe = skip_first_layer_pe

    def forward(self, queries: torch.Tensor, keys: torch.Tensor, query_pe: torch.Tensor,
                key_pe: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        if not self.skip_first_layer_pe:
            queries = queries + query_pe
        queries = self.norm1(queries + self.self_attn(queries, queries, queries))

        keys_with_pe = keys + key_pe
        queries = self.norm2(queries + _token_to_image(
            self.cross_attn_token_to_image, queries + query_pe, keys_with_pe, keys))

        queries = self.norm3(queries + self.mlp(queries))

        attn_out = self.cross_attn_image_to_token(keys_with_pe, queries + query_pe, queries)
        keys = self.norm4(keys + attn_out)
        return queries, keys


class TwoWayTransformer(nn.Module):
    """SAM's two-way transformer: ``depth`` blocks in which prompt tokens and image tokens attend to each other,
    then a final token->image attention. Image tokens are shared across an image's queries until the first
    image->token attention (see the module docstring)."""

    def __init__(self, depth: int, embedding_dim: int, num_heads: int, mlp_dim: int,
                 activation: Type[nn.Module] = nn.GELU, attention_downsample_rate: int = 2) -> None:
        super().__init__()
        self.depth = depth
        self.embedding_dim = embedding_dim
        self.layers = nn.ModuleList(
            TwoWayAttentionBlock(embedding_dim, num_heads, mlp_dim, activation, attention_downsample_rate,
                                 skip_first_layer_pe=(i == 0))
            for i in range(depth)
        )
        self.final_attn_token_to_image = TwoWayAttention(embedding_dim, num_heads, attention_downsample_rate)
        self.norm_final_attn = nn.LayerNorm(embedding_dim)
        # True: copy the image tokens once per query up front, as the release does (the reference path of
        # the benchmarks); False: share one copy until the image->token attention makes them differ.
        self.tile_per_query = False

    def forward(self, image_embedding: torch.Tensor, image_pe: torch.Tensor,
                point_embedding: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """
        Args:
            image_embedding: ``[B, C, h, w]``, one per image, or ``[B, Q, C, h, w]``, one per query (mask prompts
                make the image tokens differ per query from the start).
            image_pe: ``[1, C, h, w]``.
            point_embedding: ``[B, Q, T, C]`` tokens of ``Q`` queries per image.
        Returns:
            tokens ``[B*Q, T, C]`` and image tokens ``[B*Q, h*w, C]``.
        """
        b, c = image_embedding.shape[0], image_embedding.shape[-3]
        nq, t = point_embedding.shape[1:3]
        if image_embedding.ndim == 5:
            keys = image_embedding.flatten(3).transpose(2, 3)  # [B, Q, HW, C]
        else:
            keys = image_embedding.flatten(2).transpose(1, 2).unsqueeze(1)  # [B, 1, HW, C]
        if self.tile_per_query and keys.shape[1] == 1:
            keys = keys.repeat(1, nq, 1, 1)
        key_pe = image_pe.flatten(2).transpose(1, 2).unsqueeze(1)  # [1, 1, HW, C]
        queries = point_embedding
        for layer in self.layers:
            queries, keys = layer(queries, keys, point_embedding, key_pe)
        attn_out = _token_to_image(self.final_attn_token_to_image, queries + point_embedding, keys + key_pe, keys)
        queries = self.norm_final_attn(queries + attn_out)
        keys = keys.expand(b, nq, keys.shape[2], c)
        return queries.reshape(b * nq, t, c), keys.reshape(b * nq, keys.shape[2], c)


class MaskDecoder(nn.Module):
    """Predicts masks and IoU scores from an image embedding and sparse prompt embeddings.

    ``num_mask_tokens`` = ``num_multimask_outputs`` + 1 (the single-mask token first); the upscaling path is
    ``upscaling_layer_dims`` transposed 2x2 convolutions (GroupNorm + GELU between them, the release's layout);
    ``iou_head_depth`` counts the IoU head's linear layers (3: two hidden layers and the output layer, as in
    SAM and the release).
    """

    def __init__(self, *, transformer_dim: int, transformer: nn.Module, num_multimask_outputs: int = 3,
                 activation: Type[nn.Module] = nn.GELU, iou_head_depth: int = 3, iou_head_hidden_dim: int = 256,
                 upscaling_layer_dims: Sequence[int] = (64, 32)) -> None:
        super().__init__()
        self.transformer_dim = transformer_dim
        self.transformer = transformer
        self.num_multimask_outputs = num_multimask_outputs
        self.iou_token = nn.Embedding(1, transformer_dim)
        self.num_mask_tokens = num_multimask_outputs + 1 if num_multimask_outputs > 1 else 1
        self.mask_tokens = nn.Embedding(self.num_mask_tokens, transformer_dim)
        layers: List[nn.Module] = []
        in_dim = transformer_dim
        for i, out_dim in enumerate(upscaling_layer_dims):
            last = i == len(upscaling_layer_dims) - 1
            layers.append(nn.Sequential(
                nn.ConvTranspose2d(in_dim, out_dim, kernel_size=2, stride=2),
                nn.Identity() if last else nn.GroupNorm(1, out_dim),
                activation(),
            ))
            in_dim = out_dim
        self.final_output_upscaling_layers = nn.ModuleList(layers)
        self.output_hypernetworks_mlps = nn.ModuleList(
            MLPBlock(transformer_dim, transformer_dim, in_dim, 2, activation) for _ in range(self.num_mask_tokens)
        )
        if iou_head_depth < 1:
            raise ValueError(f"iou_head_depth counts the IoU head's linear layers and must be >= 1, got {iou_head_depth}")
        self.iou_prediction_head = MLPBlock(transformer_dim, iou_head_hidden_dim, self.num_mask_tokens,
                                            iou_head_depth - 1, activation)

    def forward(self, image_embeddings: torch.Tensor, image_pe: torch.Tensor,
                sparse_prompt_embeddings: torch.Tensor, multimask_output: bool, all_tokens: bool = False
                ) -> Tuple[torch.Tensor, torch.Tensor]:
        """
        Args:
            image_embeddings: ``[B, C, h, w]``, or ``[B, Q, C, h, w]`` with per-query dense prompts added.
            image_pe: ``[1, C, h, w]``.
            sparse_prompt_embeddings: ``[B, Q, T, C]``.
            multimask_output: the 3 multimask outputs, or the single-mask token's output.
            all_tokens: every mask token's output instead, the single-mask token first (``multimask_output`` is
                then ignored): what the ONNX decoder graph returns.
        Returns:
            masks ``[B*Q, M, 4h, 4w]`` and IoU predictions ``[B*Q, M]`` (M = 3 or 1; ``num_mask_tokens``).
        """
        hyper_in, src, iou_pred = self.decode_tokens(image_embeddings, image_pe, sparse_prompt_embeddings)
        masks = self.upscale_masks(hyper_in, src, *image_embeddings.shape[-2:])
        if all_tokens:
            return masks, iou_pred
        if multimask_output and self.num_multimask_outputs > 1:
            return masks[:, 1:], iou_pred[:, 1:]
        return masks[:, :1], iou_pred[:, :1]

    def decode_tokens(self, image_embeddings: torch.Tensor, image_pe: torch.Tensor,
                      sparse_prompt_embeddings: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Everything but the upscaling, for all ``B*Q`` queries: the hypernetworks' mask weights
        ``[B*Q, num_mask_tokens, C']``, the image tokens ``[B*Q, hw, C]`` and the IoU predictions of every mask
        token ``[B*Q, num_mask_tokens]`` (the IoU head reads tokens only)."""
        b, nq = sparse_prompt_embeddings.shape[:2]
        out_tokens = torch.cat([self.iou_token.weight, self.mask_tokens.weight], dim=0)
        out_tokens = out_tokens.to(sparse_prompt_embeddings.dtype).expand(b, nq, -1, -1)
        tokens = torch.cat([out_tokens, sparse_prompt_embeddings], dim=2)
        hs, src = self.transformer(image_embeddings, image_pe, tokens)
        mask_tokens_out = hs[:, 1:1 + self.num_mask_tokens, :]
        hyper_in = torch.stack([mlp(mask_tokens_out[:, i, :]) for i, mlp in enumerate(self.output_hypernetworks_mlps)],
                               dim=1)
        return hyper_in, src, self.iou_prediction_head(hs[:, 0, :])

    def upscale_masks(self, hyper_in: torch.Tensor, src: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """Mask logits of every mask token ``[N, num_mask_tokens, 4h, 4w]`` from rows of :meth:`decode_tokens`'
        output (any subset: each row's upscaling is computed on its own)."""
        n, c = src.shape[0], src.shape[-1]
        upscaled = src.transpose(1, 2).reshape(n, c, h, w)
        for layer in self.final_output_upscaling_layers:
            upscaled = layer(upscaled)
        uc, uh, uw = upscaled.shape[1:]
        return (hyper_in @ upscaled.reshape(n, uc, uh * uw)).reshape(n, self.num_mask_tokens, uh, uw)
