"""The one ViT of efficientsam-zoo.

EfficientSAM's image encoder, the SAMI student, and every framework backbone (ViTDet in MMDetection
and detectron2, Mask2Former in MMSegmentation, the transformers ``SamiViTModel``) are all this class
with different options:

* plain ViT-Ti/S/B blocks (pre-norm, qkv bias, GELU MLP, LayerNorm eps 1e-6), attention through
  :func:`torch.nn.functional.scaled_dot_product_attention`;
* an absolute position embedding learned on the 224-px pretraining grid (14x14 + one cls slot, shape
  ``[1, 197, C]``) and resized bicubically to whatever token grid the input produces;
* optional ViTDet features: window attention in every block not listed in ``global_attn_indexes``,
  decomposed relative position bias, stochastic depth;
* an optional SAM neck (1x1 conv -> LayerNorm2d -> 3x3 conv -> LayerNorm2d, no conv bias);
* intermediate outputs (``out_indices``) and a token-sequence entry point (:meth:`forward_tokens`)
  used by masked-image pretraining, where only the kept tokens are run.

Parameter names follow the official EfficientSAM release (``patch_embed.proj``, ``pos_embed``,
``blocks.N.attn.qkv`` ... ``neck.3``), so its ``image_encoder.*`` weights load without a key map.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple, Type

import torch
import torch.nn.functional as F
from torch import nn

from .layers import DropPath, LayerNorm2d, Mlp, PatchEmbed

__all__ = [
    "LayerNorm2d",  # re-exported from .layers
    "DEFAULT_ARCH",
    "Attention",
    "Block",
    "ViT",
    "VIT_SIZES",
    "VITDET_DEFAULTS",
    "build_vit",
    "vitdet_vit",
    "resize_abs_pos_embed",
    "window_partition",
    "window_unpartition",
]

#: The backbone sizes the paper uses (depth 12, patch 16, MLP ratio 4 for all of them).
VIT_SIZES = {
    "vit-ti": dict(embed_dim=192, num_heads=3),
    "vit-s": dict(embed_dim=384, num_heads=6),
    "vit-b": dict(embed_dim=768, num_heads=12),
}

#: The backbone size a ViTDet / SAMI backbone gets when a config names none (the paper's main detection size).
DEFAULT_ARCH = "vit-s"

#: ViTDet's form of a plain ViT (Li et al., 2022), as the paper's detection / segmentation finetuning uses it:
#: 14x14 windows in every block but the 4 global ones (2, 5, 8, 11), decomposed relative position bias (new,
#: zero-initialised tables), drop path 0.1, the 224-px absolute position embedding resized to the working grid.
VITDET_DEFAULTS = dict(window_size=14, global_attn_indexes=(2, 5, 8, 11), use_rel_pos=True, drop_path_rate=0.1,
                       pretrain_img_size=224)


def resize_abs_pos_embed(pos_embed: torch.Tensor, has_cls_token: bool, grid: Tuple[int, int]) -> torch.Tensor:
    """Position embedding ``[1, (1+)S*S, C]`` -> ``[1, H, W, C]`` for a token grid ``(H, W)``.

    The cls slot (if any) is dropped; the square grid is resized bicubically (align_corners=False)
    when it differs from ``grid``, exactly as the EfficientSAM release / ViTDet do.
    """
    if has_cls_token:
        pos_embed = pos_embed[:, 1:]
    n = pos_embed.shape[1]
    side = int(math.isqrt(n))
    if side * side != n:
        raise ValueError(f"position embedding has {n} grid slots, which is not a square number")
    pos = pos_embed.reshape(1, side, side, -1)
    if (side, side) != tuple(grid):
        pos = F.interpolate(pos.permute(0, 3, 1, 2), size=tuple(grid), mode="bicubic", align_corners=False)
        pos = pos.permute(0, 2, 3, 1)
    return pos


def window_partition(x: torch.Tensor, window_size: int) -> Tuple[torch.Tensor, Tuple[int, int]]:
    """``[B, H, W, C]`` -> ``[B * nW, ws, ws, C]`` (zero-padding H, W up to multiples of ``ws``)."""
    b, h, w, c = x.shape
    pad_h = (window_size - h % window_size) % window_size
    pad_w = (window_size - w % window_size) % window_size
    if pad_h or pad_w:
        x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
    hp, wp = h + pad_h, w + pad_w
    x = x.view(b, hp // window_size, window_size, wp // window_size, window_size, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window_size, window_size, c), (hp, wp)


def window_unpartition(windows: torch.Tensor, window_size: int, padded_hw: Tuple[int, int],
                       hw: Tuple[int, int]) -> torch.Tensor:
    """Inverse of :func:`window_partition`, cropping the padding away."""
    hp, wp = padded_hw
    h, w = hw
    b = windows.shape[0] // ((hp // window_size) * (wp // window_size))
    x = windows.view(b, hp // window_size, wp // window_size, window_size, window_size, -1)
    x = x.permute(0, 1, 3, 2, 4, 5).reshape(b, hp, wp, -1)
    return x[:, :h, :w, :].contiguous()


def _relative_positions(q_size: int, k_size: int, rel_pos: torch.Tensor) -> torch.Tensor:
    """Table of relative-position embeddings ``[q_size, k_size, C]`` (ViTDet's get_rel_pos)."""
    max_dist = 2 * max(q_size, k_size) - 1
    if rel_pos.shape[0] != max_dist:
        rel_pos = F.interpolate(rel_pos.t()[None], size=max_dist, mode="linear")[0].t()
    q_coords = torch.arange(q_size, device=rel_pos.device)[:, None] * max(k_size / q_size, 1.0)
    k_coords = torch.arange(k_size, device=rel_pos.device)[None, :] * max(q_size / k_size, 1.0)
    offsets = (q_coords - k_coords) + (k_size - 1) * max(q_size / k_size, 1.0)
    return rel_pos[offsets.long()]


class Attention(nn.Module):
    """Multi-head self-attention with a fused qkv projection and an optional decomposed rel-pos bias.

    Input is a token sequence ``[B, N, C]``; when ``use_rel_pos`` the caller passes the token grid
    ``hw`` so the bias can be built. ``fused=False`` writes attention out as matmul-softmax-matmul
    (the release's arithmetic); it is the reference path of the benchmarks.
    """

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True, use_rel_pos: bool = False,
                 rel_pos_size: Optional[Tuple[int, int]] = None) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"embed dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.fused = True
        self.use_rel_pos = use_rel_pos
        if use_rel_pos:
            if rel_pos_size is None:
                raise ValueError("use_rel_pos=True needs rel_pos_size (the token grid of the attention)")
            self.rel_pos_h = nn.Parameter(torch.zeros(2 * rel_pos_size[0] - 1, self.head_dim))
            self.rel_pos_w = nn.Parameter(torch.zeros(2 * rel_pos_size[1] - 1, self.head_dim))

    def _rel_pos_bias(self, q: torch.Tensor, hw: Tuple[int, int]) -> torch.Tensor:
        h, w = hw
        rh = _relative_positions(h, h, self.rel_pos_h)
        rw = _relative_positions(w, w, self.rel_pos_w)
        bsz = q.shape[0]
        r_q = q.reshape(bsz, h, w, self.head_dim)
        bias_h = torch.einsum("bhwc,hkc->bhwk", r_q, rh)
        bias_w = torch.einsum("bhwc,wkc->bhwk", r_q, rw)
        bias = bias_h[:, :, :, :, None] + bias_w[:, :, :, None, :]
        return bias.reshape(bsz, h * w, h * w)

    def forward(self, x: torch.Tensor, hw: Optional[Tuple[int, int]] = None) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # each [B, heads, N, d]
        bias = None
        if self.use_rel_pos:
            if hw is None:
                raise ValueError("relative position bias needs the token grid (hw)")
            # SAM / ViTDet add the bias computed from the *unscaled* queries to the scaled logits
            bias = self._rel_pos_bias(q.reshape(b * self.num_heads, n, self.head_dim), hw)
            bias = bias.view(b, self.num_heads, n, n).to(q.dtype)
        if self.fused:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        else:
            attn = (q * self.scale) @ k.transpose(-2, -1)
            if bias is not None:
                attn = attn + bias
            out = attn.softmax(dim=-1) @ v
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class Block(nn.Module):
    """Pre-norm transformer block; global or windowed attention.

    Accepts ``[B, H, W, C]`` grids (needed for windows / rel-pos) or ``[B, N, C]`` token sequences
    (global attention only, e.g. the unmasked tokens of masked-image pretraining).
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, qkv_bias: bool = True,
                 drop_path: float = 0.0, norm_eps: float = 1e-6, act_layer: Type[nn.Module] = nn.GELU,
                 window_size: int = 0, use_rel_pos: bool = False,
                 grid_size: Optional[Tuple[int, int]] = None) -> None:
        super().__init__()
        self.window_size = window_size
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        rel_size = (window_size, window_size) if window_size > 0 else grid_size
        self.attn = Attention(dim, num_heads, qkv_bias=qkv_bias, use_rel_pos=use_rel_pos,
                              rel_pos_size=rel_size)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act_layer)

    def _attend(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 3:
            if self.window_size > 0 or self.attn.use_rel_pos:
                raise ValueError("window attention / relative position bias need a [B, H, W, C] grid input")
            return self.attn(x)
        b, h, w, c = x.shape
        if self.window_size > 0:
            windows, padded = window_partition(x, self.window_size)
            ws = self.window_size
            out = self.attn(windows.reshape(-1, ws * ws, c), (ws, ws)).view(-1, ws, ws, c)
            return window_unpartition(out, ws, padded, (h, w))
        return self.attn(x.reshape(b, h * w, c), (h, w)).view(b, h, w, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self._attend(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class ViT(nn.Module):
    """Plain ViT encoder (see module docstring).

    Args:
        img_size: working input size (1024 for EfficientSAM / ViTDet, 224 for pretraining).
        patch_size, in_chans, embed_dim, depth, num_heads, mlp_ratio, qkv_bias, norm_eps: the usual.
        pretrain_img_size: the grid the absolute position embedding is stored at (224 -> 14x14).
        pretrain_use_cls_token: the stored position embedding has a leading cls slot (``[1,197,C]``).
        drop_path_rate: stochastic depth, linearly increasing over the blocks.
        window_size: window attention size for blocks not in ``global_attn_indexes`` (0: all global).
        global_attn_indexes: blocks that keep global attention when ``window_size > 0``.
        use_rel_pos: add ViTDet's decomposed relative position bias (new parameters, zero-initialised).
        neck_dim: output channels of the SAM neck; ``None`` for no neck.
        out_indices: blocks whose outputs :meth:`forward_features` returns (default: the last one).
        final_norm: apply a LayerNorm after the last block (MAE-style encoders; EfficientSAM has none).
    """

    def __init__(self, img_size: int = 1024, patch_size: int = 16, in_chans: int = 3, embed_dim: int = 192,
                 depth: int = 12, num_heads: int = 3, mlp_ratio: float = 4.0, qkv_bias: bool = True,
                 norm_eps: float = 1e-6, pretrain_img_size: int = 224, pretrain_use_cls_token: bool = True,
                 drop_path_rate: float = 0.0, window_size: int = 0, global_attn_indexes: Sequence[int] = (),
                 use_rel_pos: bool = False, neck_dim: Optional[int] = 256,
                 out_indices: Optional[Sequence[int]] = None, final_norm: bool = False,
                 act_layer: Type[nn.Module] = nn.GELU) -> None:
        super().__init__()
        if img_size % patch_size:
            raise ValueError(f"img_size {img_size} is not a multiple of patch_size {patch_size}")
        self.img_size, self.patch_size, self.embed_dim, self.depth = img_size, patch_size, embed_dim, depth
        self.num_heads = num_heads
        self.pretrain_use_cls_token = pretrain_use_cls_token
        self.grid_size = (img_size // patch_size, img_size // patch_size)
        self.image_embedding_size = self.grid_size[0]
        self.patch_embed = PatchEmbed(patch_size, in_chans, embed_dim)
        pretrain_grid = pretrain_img_size // patch_size
        num_positions = pretrain_grid * pretrain_grid + (1 if pretrain_use_cls_token else 0)
        self.pos_embed = nn.Parameter(torch.zeros(1, num_positions, embed_dim))
        global_set = set(int(i) for i in global_attn_indexes)
        rates = torch.linspace(0, drop_path_rate, depth, device="cpu").tolist() if depth > 0 else []
        self.blocks = nn.ModuleList(
            Block(embed_dim, num_heads, mlp_ratio, qkv_bias, drop_path=rates[i], norm_eps=norm_eps,
                  act_layer=act_layer, window_size=0 if i in global_set else window_size,
                  use_rel_pos=use_rel_pos, grid_size=self.grid_size)
            for i in range(depth)
        )
        self.norm = nn.LayerNorm(embed_dim, eps=norm_eps) if final_norm else nn.Identity()
        self.out_indices = tuple(out_indices) if out_indices is not None else (depth - 1,)
        for i in self.out_indices:
            if not 0 <= i < depth:
                raise ValueError(f"out_indices entry {i} is outside 0..{depth - 1}")
        self.neck_dim = neck_dim
        if neck_dim is not None:
            self.neck = nn.Sequential(
                nn.Conv2d(embed_dim, neck_dim, kernel_size=1, bias=False),
                LayerNorm2d(neck_dim),
                nn.Conv2d(neck_dim, neck_dim, kernel_size=3, padding=1, bias=False),
                LayerNorm2d(neck_dim),
            )
        self.transformer_output_dim = neck_dim if neck_dim is not None else embed_dim

    # -- pieces -----------------------------------------------------------------------------------
    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Image ``[B, 3, H, W]`` -> patch tokens with position embedding, ``[B, H/p, W/p, C]``."""
        if x.ndim != 4:
            raise ValueError(f"expected an image batch [B, C, H, W], got shape {tuple(x.shape)}")
        if x.shape[-2] % self.patch_size or x.shape[-1] % self.patch_size:
            raise ValueError(f"input {tuple(x.shape[-2:])} is not divisible by patch size {self.patch_size}")
        x = self.patch_embed(x).permute(0, 2, 3, 1)
        # The permuted conv output is a channels-first view; without .contiguous() every residual add keeps
        # that layout and each LayerNorm / reshape of every block copies it (~5 % of a CPU forward at 1024²).
        return (x + resize_abs_pos_embed(self.pos_embed, self.pretrain_use_cls_token, x.shape[1:3])).contiguous()

    def forward_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """Run every block (global attention) on a token sequence ``[B, N, C]``, then the final norm."""
        for blk in self.blocks:
            tokens = blk(tokens)
        return self.norm(tokens)

    def forward_features(self, x: torch.Tensor, out_indices: Optional[Sequence[int]] = None) -> list:
        """Outputs of the blocks in ``out_indices`` (default: the constructor's), each ``[B, C, H/p, W/p]``.

        The final norm (if any) is applied to the last block's output only.
        """
        wanted = set(self.out_indices if out_indices is None else out_indices)
        x = self.embed(x)
        outs = []
        for i, blk in enumerate(self.blocks):
            x = blk(x)
            if i in wanted:
                y = self.norm(x) if i == self.depth - 1 else x
                outs.append(y.permute(0, 3, 1, 2).contiguous())
        return outs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Image -> last features through the neck when present (``[B, neck_dim, H/p, W/p]``).

        Any input size divisible by the patch size works (the position embedding and relative
        position tables are resized); EfficientSAM always feeds ``img_size``.
        """
        x = self.embed(x)
        for blk in self.blocks:
            x = blk(x)
        x = self.norm(x).permute(0, 3, 1, 2)
        return self.neck(x) if self.neck_dim is not None else x


def build_vit(arch: str, **overrides) -> ViT:
    """A ViT of one of the paper's sizes (``"vit-ti"``, ``"vit-s"``, ``"vit-b"``); ``overrides`` go to :class:`ViT`
    (``embed_dim`` / ``num_heads`` too, for other widths)."""
    if arch not in VIT_SIZES and not {"embed_dim", "num_heads"} <= set(overrides):
        raise ValueError(f"unknown ViT arch {arch!r}: use one of {sorted(VIT_SIZES)} or give embed_dim and num_heads")
    return ViT(**{**VIT_SIZES.get(arch, {}), **overrides})


def vitdet_vit(arch: str = DEFAULT_ARCH, img_size: int = 1024, **overrides) -> ViT:
    """The one ViTDet backbone factory (MMDetection / MMSegmentation / detectron2 adapters all call it):
    :data:`VITDET_DEFAULTS`, no neck, by default the last block's output (stride 16); ``overrides`` replace any
    setting."""
    return build_vit(arch, **{**VITDET_DEFAULTS, "img_size": img_size, "neck_dim": None, **overrides})
