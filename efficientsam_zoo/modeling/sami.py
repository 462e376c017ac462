"""SAMI: SAM-leveraged masked image pretraining (paper section 3.2).

A ViT student sees only the unmasked 25 % of its patch tokens (MAE's per-sample random masking); a
cross-attention decoder reconstructs the masked tokens; a linear head maps every token to the teacher's
channels; the loss is the MSE to the frozen SAM image encoder's feature map over *all* tokens (eq. 1).

Decoder (paper: "queries come from masked tokens, and keys and values derive from both unmasked features
from encoder and masked features"). Each block::

    context = concat(unmasked encoder features, current masked tokens)      # keys / values
    masked  = masked + CrossAttn(LN(masked), LN(context))                   # queries: masked only
    masked  = masked + MLP(LN(masked))

The encoder features enter the decoder width through ``decoder_embed`` and stay fixed across blocks
(anchors); the masked tokens start as a learned ``mask_token``. Every token carries a fixed 2-D sin-cos
position embedding of its original grid position. The output for unmasked tokens is their projected
encoder feature, for masked tokens the decoder output; both are put back into the original token order
and projected by the linear head to the teacher's channel count.

Options (the paper's ablations and its MAE baseline, section 4.4 / Tables 1-7; each a constructor argument):

* ``loss="cosine"``: ``1 - cos`` between predicted and target token, averaged over all tokens (Table 6);
* ``decoder_queries="all"``: every token (kept and masked) goes through the decoder as its queries, with
  self-attention over all of them, MAE-style, instead of the kept tokens serving as fixed anchors;
* ``target="pixels"``: MAE itself -- the target is each patch's pixels, normalised per patch
  (``norm_pix_loss``), the loss the MSE over the *masked* patches only (MAE's eq.), no teacher.

Target grid: the teacher map ``[B, C_t, H_t, W_t]`` (64x64 for SAM on a 1024-px input) is resized to the
student's token grid (14x14 for a 224 crop) with area averaging (``target_resize="area"``; ``"bilinear"``
is the alternative), then flattened in the same row-major token order.
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .layers import Mlp
from .vit import ViT

__all__ = ["random_masking", "sincos_pos_embed_2d", "CrossAttentionBlock", "SamiDecoder", "Sami", "resize_target",
           "patchify"]


def random_masking(n_batch: int, n_tokens: int, mask_ratio: float, device=None,
                   generator: Optional[torch.Generator] = None, noise: Optional[torch.Tensor] = None
                   ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-sample random split of ``n_tokens`` into kept and masked tokens (MAE's shuffle by noise).

    Returns ``ids_keep [B, K]``, ``ids_mask [B, N-K]`` (original token indices, in shuffled order) and
    ``ids_restore [B, N]`` with ``concat(kept, masked)[ids_restore] == original order``.
    ``K = round(N * (1 - mask_ratio))``. ``noise`` (``[B, N]``, e.g. drawn per sample from seeded generators)
    replaces the random draw.
    """
    if not 0.0 <= mask_ratio < 1.0:
        raise ValueError(f"mask_ratio must be in [0, 1), got {mask_ratio}")
    n_keep = int(round(n_tokens * (1.0 - mask_ratio)))
    if noise is None:
        noise = torch.rand(n_batch, n_tokens, device=device, generator=generator)
    elif tuple(noise.shape) != (n_batch, n_tokens):
        raise ValueError(f"masking noise must be [B, N] = {(n_batch, n_tokens)}, got {tuple(noise.shape)}")
    noise = noise.to(device)
    ids_shuffle = torch.argsort(noise, dim=1)
    ids_restore = torch.argsort(ids_shuffle, dim=1)
    return ids_shuffle[:, :n_keep], ids_shuffle[:, n_keep:], ids_restore


def _gather_tokens(x: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    return torch.gather(x, 1, ids[..., None].expand(-1, -1, x.shape[-1]))


def sincos_pos_embed_2d(dim: int, grid: Tuple[int, int]) -> torch.Tensor:
    """Fixed 2-D sin-cos embedding ``[H*W, dim]`` (half the channels for y, half for x)."""
    if dim % 4:
        raise ValueError(f"sin-cos position embedding needs a width divisible by 4, got {dim}")
    h, w = grid
    omega = 1.0 / 10000 ** (torch.arange(dim // 4, dtype=torch.float64) / (dim / 4.0))
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
    parts = []
    for coord in (ys.reshape(-1), xs.reshape(-1)):
        out = coord[:, None] * omega[None, :]
        parts += [torch.sin(out), torch.cos(out)]
    return torch.cat(parts, dim=1).float()


class CrossAttention(nn.Module):
    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"decoder width {dim} is not divisible by {num_heads} heads")
        self.num_heads = num_heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, queries: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        b, nq, c = queries.shape
        h, d = self.num_heads, c // self.num_heads
        q = self.q(queries).reshape(b, nq, h, d).transpose(1, 2)
        k, v = self.kv(context).reshape(b, context.shape[1], 2, h, d).permute(2, 0, 3, 1, 4).unbind(0)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, nq, c))


class CrossAttentionBlock(nn.Module):
    """Pre-norm block whose queries are the masked tokens and whose keys / values are ``context``."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, norm_eps: float = 1e-6) -> None:
        super().__init__()
        self.norm_q = nn.LayerNorm(dim, eps=norm_eps)
        self.norm_kv = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = CrossAttention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, queries: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        queries = queries + self.attn(self.norm_q(queries), self.norm_kv(context))
        return queries + self.mlp(self.norm2(queries))


class SamiDecoder(nn.Module):
    """Reconstructs masked tokens from the unmasked encoder features (see module docstring).

    ``queries="masked"`` (SAMI): only the masked tokens are queries; ``"all"`` (MAE): every token is, attending to
    every token (the same blocks with queries and context equal)."""

    def __init__(self, encoder_dim: int, grid: Tuple[int, int], dim: int = 512, depth: int = 8, num_heads: int = 16,
                 mlp_ratio: float = 4.0, queries: str = "masked") -> None:
        super().__init__()
        if queries not in ("masked", "all"):
            raise ValueError(f"decoder queries must be 'masked' (SAMI) or 'all' (MAE), got {queries!r}")
        self.queries = queries
        self.decoder_embed = nn.Linear(encoder_dim, dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.register_buffer("pos_embed", sincos_pos_embed_2d(dim, grid)[None], persistent=False)
        self.blocks = nn.ModuleList(CrossAttentionBlock(dim, num_heads, mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        nn.init.normal_(self.mask_token, std=0.02)

    def forward(self, latent: torch.Tensor, ids_keep: torch.Tensor, ids_mask: torch.Tensor,
                ids_restore: torch.Tensor) -> torch.Tensor:
        """``latent [B, K, C_enc]`` of the kept tokens -> every token at decoder width, original order ``[B, N, D]``."""
        b = latent.shape[0]
        pos = self.pos_embed.expand(b, -1, -1)
        anchors = self.decoder_embed(latent) + _gather_tokens(pos, ids_keep)
        masked = self.mask_token.expand(b, ids_mask.shape[1], -1) + _gather_tokens(pos, ids_mask)
        if self.queries == "all":
            tokens = torch.cat([anchors, masked], dim=1)
            for blk in self.blocks:
                tokens = blk(tokens, tokens)
            merged = self.norm(tokens)
        else:
            for blk in self.blocks:
                masked = blk(masked, torch.cat([anchors, masked], dim=1))
            merged = torch.cat([anchors, self.norm(masked)], dim=1)  # shuffled order: kept first, then masked
        return _gather_tokens(merged, ids_restore)


def _init_from_scratch(module: nn.Module) -> None:
    """MAE / timm initialisation for pretraining from scratch: xavier-uniform linears, zero biases."""
    if isinstance(module, nn.Linear):
        nn.init.xavier_uniform_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def resize_target(features: torch.Tensor, grid: Tuple[int, int], mode: str = "area") -> torch.Tensor:
    """Teacher map ``[B, C, H_t, W_t]`` -> target tokens ``[B, H*W, C]`` on the student grid ``(H, W)``."""
    if tuple(features.shape[-2:]) != tuple(grid):
        if mode == "area":
            features = F.adaptive_avg_pool2d(features, grid)
        elif mode == "bilinear":
            features = F.interpolate(features, size=grid, mode="bilinear", align_corners=False)
        else:
            raise ValueError(f"target_resize must be 'area' or 'bilinear', got {mode!r}")
    return features.flatten(2).transpose(1, 2)


class Sami(nn.Module):
    """Student encoder + cross-attention decoder + linear head, trained to reconstruct teacher features.

    Args:
        encoder: the student :class:`ViT` (no neck; it runs on the kept tokens only).
        teacher_dim: channels of the teacher features (256 for SAM's neck output).
        mask_ratio: share of tokens hidden from the encoder (0.75).
        decoder_dim, decoder_depth, decoder_heads: the decoder (512, 8, 16 as in MAE / the paper).
        target_resize: ``"area"`` or ``"bilinear"`` resizing of the teacher map to the student grid.
        loss: ``"mse"`` (paper eq. 1) or ``"cosine"`` (``1 - cos`` per token).
        decoder_queries: ``"masked"`` (SAMI's cross-attention decoder) or ``"all"`` (MAE's).
        target: ``"teacher"`` (features passed to :meth:`forward`) or ``"pixels"`` (MAE: per-patch normalised
            pixels of the input, loss on masked patches only; ``teacher_dim`` is then ``patch**2 * 3``).
    """

    def __init__(self, encoder: ViT, teacher_dim: int = 256, mask_ratio: float = 0.75, decoder_dim: int = 512,
                 decoder_depth: int = 8, decoder_heads: int = 16, target_resize: str = "area", loss: str = "mse",
                 decoder_queries: str = "masked", target: str = "teacher", norm_pix_loss: bool = True) -> None:
        super().__init__()
        if encoder.neck_dim is not None:
            raise ValueError("the SAMI student is a plain ViT: build it with neck_dim=None")
        if loss not in ("mse", "cosine"):
            raise ValueError(f"loss must be 'mse' or 'cosine', got {loss!r}")
        if target not in ("teacher", "pixels"):
            raise ValueError(f"target must be 'teacher' (SAMI) or 'pixels' (MAE), got {target!r}")
        self.encoder = encoder
        self.mask_ratio = mask_ratio
        self.target_resize = target_resize
        self.loss_type, self.target, self.norm_pix_loss = loss, target, norm_pix_loss
        if target == "pixels":
            teacher_dim = encoder.patch_size ** 2 * 3
        self.decoder = SamiDecoder(encoder.embed_dim, encoder.grid_size, decoder_dim, decoder_depth, decoder_heads,
                                   queries=decoder_queries)
        self.head = nn.Linear(decoder_dim, teacher_dim)
        resize_target(torch.zeros(1, 1, 2, 2), (1, 1), target_resize)  # validate the mode now
        self.apply(_init_from_scratch)
        nn.init.trunc_normal_(self.encoder.pos_embed, std=0.02)
        w = self.encoder.patch_embed.proj.weight
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))  # the patch projection is a linear layer

    def forward_features(self, images: torch.Tensor, generator: Optional[torch.Generator] = None,
                         noise: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        """Normalised images -> ``pred [B, N, teacher_dim]`` plus the masking indices."""
        tokens = self.encoder.embed(images)
        grid = tuple(tokens.shape[1:3])
        if grid != tuple(self.encoder.grid_size):
            raise ValueError(f"SAMI was built for a {self.encoder.grid_size} token grid "
                             f"({self.encoder.img_size} px), got images of {tuple(images.shape[-2:])}")
        tokens = tokens.flatten(1, 2)
        b, n, _ = tokens.shape
        ids_keep, ids_mask, ids_restore = random_masking(b, n, self.mask_ratio, tokens.device, generator, noise)
        latent = self.encoder.forward_tokens(_gather_tokens(tokens, ids_keep))
        merged = self.decoder(latent, ids_keep, ids_mask, ids_restore)
        mask = torch.ones(b, n, device=tokens.device)
        mask.scatter_(1, ids_keep, 0.0)
        return {"pred": self.head(merged), "mask": mask, "ids_keep": ids_keep, "ids_restore": ids_restore,
                "grid": torch.tensor(grid)}

    def loss(self, pred: torch.Tensor, teacher_features: torch.Tensor) -> torch.Tensor:
        """Between ``pred`` and the resized teacher map, over all tokens: MSE over tokens and channels (paper eq. 1)
        or the mean of ``1 - cos`` per token."""
        grid = self.encoder.grid_size
        target = resize_target(teacher_features.to(pred.dtype), grid, self.target_resize)
        if target.shape != pred.shape:
            raise ValueError(f"teacher features give targets {tuple(target.shape)}, predictions are {tuple(pred.shape)}")
        if self.loss_type == "cosine":
            return (1.0 - F.cosine_similarity(pred, target, dim=-1)).mean()
        return F.mse_loss(pred, target)

    def pixel_loss(self, pred: torch.Tensor, images: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """MAE: per-patch normalised pixels as the target, the MSE (or ``1 - cos``) over masked patches only."""
        target = patchify(images, self.encoder.patch_size)
        if self.norm_pix_loss:
            mean, var = target.mean(dim=-1, keepdim=True), target.var(dim=-1, keepdim=True)
            target = (target - mean) / (var + 1e-6) ** 0.5
        if self.loss_type == "cosine":
            per_patch = 1.0 - F.cosine_similarity(pred, target, dim=-1)
        else:
            per_patch = ((pred - target) ** 2).mean(dim=-1)
        return (per_patch * mask).sum() / mask.sum()

    def forward(self, images: torch.Tensor, teacher_features: Optional[torch.Tensor] = None,
                generator: Optional[torch.Generator] = None, noise: Optional[torch.Tensor] = None
                ) -> Dict[str, torch.Tensor]:
        out = self.forward_features(images, generator, noise)
        if self.target == "pixels":
            out["loss"] = self.pixel_loss(out["pred"], images, out["mask"])
        elif teacher_features is None:
            raise ValueError("SAMI with target='teacher' needs the teacher's features")
        else:
            out["loss"] = self.loss(out["pred"], teacher_features)
        return out


def patchify(images: torch.Tensor, patch: int) -> torch.Tensor:
    """Images ``[B, 3, H, W]`` -> patches ``[B, (H/p)*(W/p), p*p*3]`` in row-major token order, each patch's
    pixels ordered (row, column, channel) as MAE's."""
    b, c, h, w = images.shape
    x = images.reshape(b, c, h // patch, patch, w // patch, patch)
    return x.permute(0, 2, 4, 3, 5, 1).reshape(b, (h // patch) * (w // patch), patch * patch * c)
