"""Independent EfficientTAM reference, assembled from Meta's ``sam2`` package.

Tests use this module when the official EfficientTAM code
(``yformer/EfficientTAM``, package ``efficient_track_anything``) cannot be
installed. EfficientTAM is a fork of SAM 2. Almost every module it uses exists
unchanged in ``sam2`` 1.1.0 (Apache-2.0): ``SAM2Base``,
``SAM2VideoPredictor``, ``SAM2ImagePredictor``, ``ImageEncoder``,
``MemoryAttention(Layer)``, ``RoPEAttention``, ``MemoryEncoder``,
``MaskDownSampler``, ``Fuser``, ``CXBlock``, ``PositionEmbeddingSine``,
``PromptEncoder``, ``MaskDecoder`` and ``TwoWayTransformer``. ``SAM2Base``
builds the last three itself.

This file writes only the pieces ``sam2`` lacks, from the official arithmetic:

* ``ViTDetTrunk``: a plain ViTDet backbone (patch 16, 12 blocks). Blocks
  0,1,3,4,6,7,9,10 use 14x14 window attention; the windows are zero-padded
  after ``norm1`` and use no attention mask. Blocks 2,5,8,11 attend globally.
  ``pos_embed`` has shape (1, 197, C); the cls row is dropped and the rest is
  resized bicubically (``align_corners=False``). There is no final norm. The
  trunk returns ``[NCHW map of block 11]``.
* ``ViTDetNeck``: ``convs.0 = conv_1x1 / norm_0 / conv_3x3 / norm_1``, with
  bias-free convs, ``LayerNorm2d`` (eps 1e-6) and a 256-channel sine position
  encoding, for one level. sam2's own ``ImageEncoder`` then returns
  ``{"vision_features", "vision_pos_enc", "backbone_fpn"}`` with a single
  level. The official ``ImageEncoder`` class is the same as sam2's.
* ``EfficientRoPEAttention1`` / ``EfficientRoPEAttention2``: subclasses of
  sam2's ``RoPEAttention`` that pool the spatial memory (2x2 average per memory
  frame, after the projections and after RoPE). The trailing object-pointer
  tokens are not pooled. Pooling is skipped when ``num_k_rope <= nq``. V1 adds
  ``2 ln 2`` to the scaled logits of the pooled keys; V2 adds ``2 ln 2`` to
  the pooled key *vectors*.
* Thin subclasses of ``SAM2Base`` / ``SAM2VideoPredictor`` /
  ``SAM2ImagePredictor`` that reproduce the official differences that matter
  (listed below).

The parameter names are the official ones, so an official EfficientTAM
checkpoint (``torch.load(...)["model"]``) loads with ``strict=True``.

Official vs sam2 1.1.0: every semantic difference
--------------------------------------------------
The files were compared with ``diff``: official repo @ abcd061e vs the
installed ``sam2`` 1.1.0. Apart from renames, imports and comments:

1. ``efficienttam_base.py`` vs ``sam2_base.py``: the only code change is in
   ``__init__``. EfficientTAM hard-codes ``use_high_res_features_in_sam =
   False`` and ``num_feature_levels = 1``, ignoring the constructor argument.
   SAM2Base derives both from the argument. Every yaml passes ``false``, so
   the behaviour is the same. The subclasses here force the argument to
   ``False`` anyway (so ``conv_s0/conv_s1`` never exist). Only the text of the
   ``forward()`` NotImplementedError message differs besides this.
2. ``efficienttam_video_predictor.py`` vs ``sam2_video_predictor.py``: the
   non-VOS predictor is identical. That includes the unconditional
   ``maskmem_features.to(torch.bfloat16)`` storage cast and the
   fill-hole/_C fallback. ``EfficientTAMVideoPredictorVOS._get_image_feature``
   drops the ``conv_s0/conv_s1`` precompute. That branch is guarded by
   ``use_high_res_features_in_sam``, so it changes nothing. The VOS class is
   not reproduced here.
3. ``efficienttam_image_predictor.py`` vs ``sam2_image_predictor.py``: when
   ``model.image_size == 512``, EfficientTAM sets ``_bb_feat_sizes =
   [(128,128),(64,64),(32,32)]``. sam2 hard-codes the 1024-px sizes. With a
   single level at 512 px, ``set_image`` then silently views the (1024 tokens
   x 256) embedding as (1, 64, 64, 64), and ``predict`` fails with a shape
   error. **This matters.** It is reproduced in
   ``EfficientTAMReferenceImagePredictor``, whose sizes come from
   ``image_size // 16``.
4. ``modeling/sam/transformer.py``: ``RoPEAttention`` is identical. The file
   adds ``EfficientRoPEAttention1/2``, which are reimplemented here. Their
   ``feat_sizes`` default is (32, 32) and their ``freqs_cis`` is not moved to
   CUDA at construction. Neither matters: the configs pass ``feat_sizes``, and
   ``freqs_cis`` is recomputed and moved on every forward when needed.
5. ``modeling/memory_attention.py``: the two ``isinstance(...,
   RoPEAttention)`` checks (the assert in ``_forward_ca``, and the one deciding
   whether ``num_k_exclude_rope`` is passed) also accept the two efficient
   classes. Here both classes *subclass* ``RoPEAttention``, so sam2's checks
   accept them unchanged.
6. ``modeling/backbones/image_encoder.py``: ``FpnNeck`` is replaced by
   ``ViTDetNeck`` (reimplemented here). ``ImageEncoder`` is identical.
7. ``modeling/backbones/utils.py`` adds ``get_abs_pos``, and
   ``efficienttam_utils.py`` adds ``LayerScale`` (which is unused:
   ``init_values=None``). ``window_partition``, ``window_unpartition``,
   ``PatchEmbed``, ``MLP``, ``LayerNorm2d``, ``DropPath``, position encodings,
   RoPE helpers, ``MemoryEncoder``, ``PromptEncoder``, ``MaskDecoder``,
   ``utils/misc.py`` and ``utils/transforms.py`` are identical. The only
   change is that the CUDA extension is imported from
   ``efficient_track_anything._C``. Without it, both fall back to skipping
   hole filling, with a warning.
8. ``get_abs_pos`` switches to bilinear on MPS-without-CUDA. That fallback is
   not reproduced here; we always use bicubic.
9. Builder (``build_efficienttam.py``):
   - The image model gets ``dynamic_multimask_via_stability=True``, delta
     0.05 and thresh 0.98.
   - The video model additionally gets
     ``binarize_mask_from_pts_for_mem_enc=True`` and ``fill_hole_area=8``.
     Here the default is ``fill_hole_area=0`` for CPU parity: the official
     path needs the CUDA ``_C`` kernel and skips the step without it.
   - ``compile_image_encoder`` is always False here.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from sam2.modeling.backbones.image_encoder import ImageEncoder
from sam2.modeling.backbones.utils import (
    PatchEmbed,
    window_partition,
    window_unpartition,
)
from sam2.modeling.memory_attention import MemoryAttention, MemoryAttentionLayer
from sam2.modeling.memory_encoder import CXBlock, Fuser, MaskDownSampler, MemoryEncoder
from sam2.modeling.position_encoding import PositionEmbeddingSine, apply_rotary_enc
from sam2.modeling.sam.transformer import RoPEAttention
from sam2.modeling.sam2_base import SAM2Base
from sam2.modeling.sam2_utils import MLP, LayerNorm2d
from sam2.sam2_image_predictor import SAM2ImagePredictor
from sam2.sam2_video_predictor import SAM2VideoPredictor
from torch import nn

__all__ = [
    "VARIANTS",
    "EfficientRoPEAttention1",
    "EfficientRoPEAttention2",
    "EfficientTAMReferenceBase",
    "EfficientTAMReferenceImagePredictor",
    "EfficientTAMReferenceVideoPredictor",
    "ViTDetNeck",
    "ViTDetTrunk",
    "build_reference",
    "build_reference_image",
    "build_reference_model",
    "reference_config",
]


# ---------------------------------------------------------------------------
# (a) ViTDet trunk
# ---------------------------------------------------------------------------
class _ViTAttention(nn.Module):
    """Plain multi-head self-attention over a (B, H, W, C) grid. No relative position bias."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, c = x.shape
        # (B, N, 3, heads, hd) -> (3, B, heads, N, hd)
        qkv = self.qkv(x).reshape(b, h * w, 3, self.num_heads, c // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        out = F.scaled_dot_product_attention(q, k, v)  # (B, heads, N, hd)
        out = out.transpose(1, 2).reshape(b, h, w, c)  # channel = head * hd + j
        return self.proj(out)


class _ViTBlock(nn.Module):
    """Pre-norm ViT block. Window attention when ``window_size > 0``.

    The grid is zero-padded to a multiple of the window *after* ``norm1``, and
    the attention has no mask, so padded zeros act as keys and values.
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, qkv_bias: bool, window_size: int):
        super().__init__()
        self.window_size = window_size
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = _ViTAttention(dim, num_heads, qkv_bias)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = MLP(dim, int(dim * mlp_ratio), dim, num_layers=2, activation=nn.GELU)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm1(x)
        if self.window_size > 0:
            hw = (y.shape[1], y.shape[2])
            y, padded_hw = window_partition(y, self.window_size)
            y = self.attn(y)
            y = window_unpartition(y, self.window_size, padded_hw, hw)
        else:
            y = self.attn(y)
        x = x + y
        return x + self.mlp(self.norm2(x))


class ViTDetTrunk(nn.Module):
    """ViTDet plain backbone with the official EfficientTAM parameter names.

    The state-dict keys match ``efficient_track_anything.modeling.backbones.vitdet.ViT``:
    ``pos_embed``, ``patch_embed.proj.*`` and
    ``blocks.N.{norm1,attn.qkv,attn.proj,norm2,mlp.layers.{0,1}}.*``.
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        depth: int = 12,
        patch_size: int = 16,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        window_size: int = 14,
        window_block_indexes: tuple[int, ...] = (0, 1, 3, 4, 6, 7, 9, 10),
        pretrain_img_size: int = 224,
        in_chans: int = 3,
    ):
        super().__init__()
        self.patch_embed = PatchEmbed(
            kernel_size=(patch_size, patch_size),
            stride=(patch_size, patch_size),
            padding=(0, 0),
            in_chans=in_chans,
            embed_dim=embed_dim,
        )
        grid = pretrain_img_size // patch_size
        # +1: the (unused) cls-token row of the pretraining checkpoint
        self.pos_embed = nn.Parameter(torch.zeros(1, grid * grid + 1, embed_dim))
        self.blocks = nn.ModuleList(
            _ViTBlock(
                embed_dim,
                num_heads,
                mlp_ratio,
                qkv_bias,
                window_size if i in window_block_indexes else 0,
            )
            for i in range(depth)
        )
        global_ids = [i for i in range(depth) if i not in window_block_indexes]
        self.last_global_block = global_ids[-1]
        self.channel_list = [embed_dim]  # checked by sam2's ImageEncoder

    def _abs_pos(self, h: int, w: int) -> torch.Tensor:
        table = self.pos_embed[:, 1:]  # drop cls
        side = math.isqrt(table.shape[1])
        assert side * side == table.shape[1]
        grid = table.reshape(1, side, side, -1)
        if (side, side) == (h, w):
            return grid
        grid = F.interpolate(
            grid.permute(0, 3, 1, 2), size=(h, w), mode="bicubic", align_corners=False
        )
        return grid.permute(0, 2, 3, 1)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.patch_embed(x)  # (B, H, W, C)
        x = x + self._abs_pos(x.shape[1], x.shape[2])
        for i, blk in enumerate(self.blocks):
            x = blk(x)
            if i == self.last_global_block:
                break  # the official trunk discards blocks after the last global one (none here)
        return [x.permute(0, 3, 1, 2)]


# ---------------------------------------------------------------------------
# (b) ViTDet neck (single level)
# ---------------------------------------------------------------------------
class ViTDetNeck(nn.Module):
    """One-level neck: bias-free 1x1 conv, LN2d, bias-free 3x3 conv, LN2d, and a sine position encoding."""

    def __init__(self, position_encoding: nn.Module, d_model: int, backbone_channel_list: list[int]):
        super().__init__()
        assert len(backbone_channel_list) == 1, "EfficientTAM's neck has exactly one level"
        self.backbone_channel_list = list(backbone_channel_list)
        self.position_encoding = position_encoding
        self.d_model = d_model
        level = nn.Sequential()
        level.add_module("conv_1x1", nn.Conv2d(backbone_channel_list[0], d_model, 1, bias=False))
        level.add_module("norm_0", LayerNorm2d(d_model, eps=1e-6))
        level.add_module("conv_3x3", nn.Conv2d(d_model, d_model, 3, padding=1, bias=False))
        level.add_module("norm_1", LayerNorm2d(d_model, eps=1e-6))
        self.convs = nn.ModuleList([level])

    def forward(self, xs: list[torch.Tensor]):
        assert len(xs) == 1
        feat = self.convs[0](xs[0])
        pos = self.position_encoding(feat).to(feat.dtype)
        return [feat], [pos]


# ---------------------------------------------------------------------------
# (c) pooled memory cross-attention
# ---------------------------------------------------------------------------
class _PooledMemoryRoPEAttention(RoPEAttention):
    """sam2 RoPEAttention with 2x2 average pooling of the spatial memory tokens.

    Keys are ``[M spatial frames x Nq tokens (RoPE'd) | object-pointer tokens]``.
    After the projections and RoPE, each head's frame grid (sqrt(Nq) x sqrt(Nq),
    row-major) is average-pooled 2x2, for keys and values alike. Pointer tokens
    pass through unchanged. With at most one spatial frame
    (``num_k_rope <= Nq``) the attention is the plain one.
    """

    POOL = 2
    LOG_BIAS = 2 * math.log(2)  # 2 * ln(kernel): each landmark stands for 4 tokens

    def _pool(self, x: torch.Tensor, nq: int) -> torch.Tensor:
        # x: (B, heads, M*nq, d) -> (B, heads, M*nq/4, d)
        b, nh, n, d = x.shape
        side = math.isqrt(nq)
        assert side * side == nq and n % nq == 0
        grids = x.reshape(b * nh * (n // nq), side, side, d).permute(0, 3, 1, 2)
        grids = F.avg_pool2d(grids, self.POOL, stride=self.POOL)
        return grids.flatten(2).transpose(1, 2).reshape(b, nh, -1, d)

    def _pooled_attention(self, q, k_pool, v_pool, k_ptr, v_ptr, dropout_p):
        raise NotImplementedError

    def forward(self, q, k, v, num_k_exclude_rope: int = 0):
        q = self._separate_heads(self.q_proj(q), self.num_heads)
        k = self._separate_heads(self.k_proj(k), self.num_heads)
        v = self._separate_heads(self.v_proj(v), self.num_heads)

        # RoPE, same as sam2's RoPEAttention
        side = math.sqrt(q.shape[-2])
        self.freqs_cis = self.freqs_cis.to(q.device)
        if self.freqs_cis.shape[0] != q.shape[-2]:
            self.freqs_cis = self.compute_cis(end_x=side, end_y=side).to(q.device)
        if q.shape[-2] != k.shape[-2]:
            assert self.rope_k_repeat
        n_rope = k.shape[-2] - num_k_exclude_rope
        q, k_rot = apply_rotary_enc(
            q, k[:, :, :n_rope], freqs_cis=self.freqs_cis, repeat_freqs_k=self.rope_k_repeat
        )
        dropout_p = self.dropout_p if self.training else 0.0
        nq = q.shape[-2]

        if not self.rope_k_repeat or n_rope <= nq:
            k = torch.cat([k_rot, k[:, :, n_rope:]], dim=-2)
            out = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p)
        else:
            out = self._pooled_attention(
                q,
                self._pool(k_rot, nq),
                self._pool(v[:, :, :n_rope], nq),
                k[:, :, n_rope:],
                v[:, :, n_rope:],
                dropout_p,
            )
        return self.out_proj(self._recombine_heads(out))


class EfficientRoPEAttention1(_PooledMemoryRoPEAttention):
    """V1: ``+2 ln 2`` is added to the scaled *logits* of the pooled keys (explicit softmax)."""

    def _pooled_attention(self, q, k_pool, v_pool, k_ptr, v_ptr, dropout_p):
        scale = 1.0 / math.sqrt(q.shape[-1])
        logits_pool = q @ k_pool.transpose(-2, -1) * scale + self.LOG_BIAS
        logits_ptr = q @ k_ptr.transpose(-2, -1) * scale
        weights = torch.softmax(torch.cat([logits_pool, logits_ptr], dim=-1), dim=-1)
        weights = torch.dropout(weights, dropout_p, train=self.training)
        return weights @ torch.cat([v_pool, v_ptr], dim=-2)


class EfficientRoPEAttention2(_PooledMemoryRoPEAttention):
    """V2: ``+2 ln 2`` is added element-wise to the pooled key *vectors*; then SDPA."""

    def _pooled_attention(self, q, k_pool, v_pool, k_ptr, v_ptr, dropout_p):
        keys = torch.cat([k_pool + self.LOG_BIAS, k_ptr], dim=-2)
        values = torch.cat([v_pool, v_ptr], dim=-2)
        return F.scaled_dot_product_attention(q, keys, values, dropout_p=dropout_p)


# ---------------------------------------------------------------------------
# model classes: single feature level forced, as in efficienttam_base.py
# ---------------------------------------------------------------------------
def _force_single_level(kwargs: dict) -> dict:
    kwargs = dict(kwargs)
    kwargs["use_high_res_features_in_sam"] = False
    return kwargs


class EfficientTAMReferenceBase(SAM2Base):
    """SAM2Base with ``use_high_res_features_in_sam=False`` / ``num_feature_levels=1`` forced."""

    def __init__(self, **kwargs):
        super().__init__(**_force_single_level(kwargs))
        assert self.num_feature_levels == 1 and not self.use_high_res_features_in_sam


class EfficientTAMReferenceVideoPredictor(SAM2VideoPredictor):
    """SAM2VideoPredictor with a single feature level forced. Otherwise identical to the official predictor."""

    def __init__(self, **kwargs):
        super().__init__(**_force_single_level(kwargs))
        assert self.num_feature_levels == 1 and not self.use_high_res_features_in_sam


class EfficientTAMReferenceImagePredictor(SAM2ImagePredictor):
    """SAM2ImagePredictor with backbone feature sizes that follow ``model.image_size``.

    The official predictor uses [(128,128),(64,64),(32,32)] at 512 px and
    sam2's defaults at 1024 px. Here the sizes are ``image_size // 16`` and
    its 2x and 4x multiples, which gives the same values.
    """

    def __init__(self, sam_model: SAM2Base, **kwargs):
        super().__init__(sam_model, **kwargs)
        s = sam_model.image_size // 16
        self._bb_feat_sizes = [(4 * s, 4 * s), (2 * s, 2 * s), (s, s)]


# ---------------------------------------------------------------------------
# configs and builders
# ---------------------------------------------------------------------------
# variant -> (trunk embed_dim, trunk heads, cross-attention class)
VARIANTS = {
    "ti": (192, 3, RoPEAttention),
    "ti_1": (192, 3, EfficientRoPEAttention1),
    "ti_2": (192, 3, EfficientRoPEAttention2),
    "s": (384, 6, RoPEAttention),
    "s_1": (384, 6, EfficientRoPEAttention1),
    "s_2": (384, 6, EfficientRoPEAttention2),
}
_ALIASES = {"ti_512x512": ("ti", 512), "s_512x512": ("s", 512)}


def _resolve(variant: str, image_size: int) -> tuple[str, int]:
    v = variant.lower().replace("efficienttam_", "")
    if v in _ALIASES:
        return _ALIASES[v]
    if v not in VARIANTS:
        raise ValueError(f"unknown EfficientTAM variant {variant!r}; choose from {sorted(VARIANTS)}")
    return v, image_size


def reference_config(variant: str, image_size: int = 1024, video: bool = True, fill_hole_area: int = 0) -> dict:
    """Plain-python settings of the official yaml plus the builder overrides (see module docstring)."""
    variant, image_size = _resolve(variant, image_size)
    if image_size % 16:
        raise ValueError("image_size must be a multiple of 16")
    embed_dim, heads, cross_cls = VARIANTS[variant]
    cfg = {
        "variant": variant,
        "embed_dim": embed_dim,
        "num_heads": heads,
        "cross_attention": cross_cls.__name__,
        "rope_feat_sizes": (image_size // 16, image_size // 16),
        "base_kwargs": {
            "num_maskmem": 7,
            "image_size": image_size,
            "sigmoid_scale_for_mem_enc": 20.0,
            "sigmoid_bias_for_mem_enc": -10.0,
            "use_mask_input_as_output_without_sam": True,
            "directly_add_no_mem_embed": True,
            "use_high_res_features_in_sam": False,
            "multimask_output_in_sam": True,
            "iou_prediction_use_sigmoid": True,
            "use_obj_ptrs_in_encoder": True,
            "add_tpos_enc_to_obj_ptrs": False,
            "only_obj_ptrs_in_the_past_for_eval": True,
            "pred_obj_scores": True,
            "pred_obj_scores_mlp": True,
            "fixed_no_obj_ptr": True,
            "multimask_output_for_tracking": True,
            "use_multimask_token_for_obj_ptr": True,
            "multimask_min_pt_num": 0,
            "multimask_max_pt_num": 1,
            "use_mlp_for_obj_ptr_proj": True,
            "compile_image_encoder": False,
            "sam_mask_decoder_extra_args": {
                "dynamic_multimask_via_stability": True,
                "dynamic_multimask_stability_delta": 0.05,
                "dynamic_multimask_stability_thresh": 0.98,
            },
        },
    }
    if video:
        cfg["base_kwargs"]["binarize_mask_from_pts_for_mem_enc"] = True
        cfg["base_kwargs"]["fill_hole_area"] = fill_hole_area
    return cfg


def _build_components(cfg: dict) -> dict[str, nn.Module]:
    cross_cls = {c.__name__: c for _, _, c in VARIANTS.values()}[cfg["cross_attention"]]
    feat_sizes = list(cfg["rope_feat_sizes"])
    image_encoder = ImageEncoder(
        trunk=ViTDetTrunk(embed_dim=cfg["embed_dim"], num_heads=cfg["num_heads"]),
        neck=ViTDetNeck(
            position_encoding=PositionEmbeddingSine(
                num_pos_feats=256, normalize=True, scale=None, temperature=10000
            ),
            d_model=256,
            backbone_channel_list=[cfg["embed_dim"]],
        ),
        scalp=0,
    )
    layer = MemoryAttentionLayer(
        activation="relu",
        cross_attention=cross_cls(
            rope_theta=10000.0,
            feat_sizes=feat_sizes,
            rope_k_repeat=True,
            embedding_dim=256,
            num_heads=1,
            downsample_rate=1,
            dropout=0.1,
            kv_in_dim=64,
        ),
        d_model=256,
        dim_feedforward=2048,
        dropout=0.1,
        pos_enc_at_attn=False,
        pos_enc_at_cross_attn_keys=True,
        pos_enc_at_cross_attn_queries=False,
        self_attention=RoPEAttention(
            rope_theta=10000.0,
            feat_sizes=feat_sizes,
            embedding_dim=256,
            num_heads=1,
            downsample_rate=1,
            dropout=0.1,
        ),
    )
    memory_attention = MemoryAttention(d_model=256, pos_enc_at_input=True, layer=layer, num_layers=4)
    memory_encoder = MemoryEncoder(
        out_dim=64,
        position_encoding=PositionEmbeddingSine(
            num_pos_feats=64, normalize=True, scale=None, temperature=10000
        ),
        mask_downsampler=MaskDownSampler(kernel_size=3, stride=2, padding=1),
        fuser=Fuser(
            CXBlock(dim=256, kernel_size=7, padding=3, layer_scale_init_value=1e-6, use_dwconv=True),
            num_layers=2,
        ),
    )
    return {
        "image_encoder": image_encoder,
        "memory_attention": memory_attention,
        "memory_encoder": memory_encoder,
    }


def _finish(model: nn.Module, state_dict: dict[str, torch.Tensor] | None, device) -> nn.Module:
    if state_dict is not None:
        model.load_state_dict(state_dict, strict=True)
    return model.to(device).eval()


def build_reference(
    variant: str,
    image_size: int = 1024,
    state_dict: dict[str, torch.Tensor] | None = None,
    device: str = "cpu",
    fill_hole_area: int = 0,
) -> SAM2VideoPredictor:
    """EfficientTAM video predictor (a ``sam2.sam2_video_predictor.SAM2VideoPredictor``) in eval mode.

    ``variant`` is one of ti, s, ti_1, ti_2, s_1 or s_2; ``ti_512x512`` and
    ``s_512x512`` imply ``image_size=512``. ``state_dict`` is an optional
    official state dict, loaded strictly.
    """
    cfg = reference_config(variant, image_size, video=True, fill_hole_area=fill_hole_area)
    model = EfficientTAMReferenceVideoPredictor(**_build_components(cfg), **cfg["base_kwargs"])
    return _finish(model, state_dict, device)


def build_reference_model(
    variant: str,
    image_size: int = 1024,
    state_dict: dict[str, torch.Tensor] | None = None,
    device: str = "cpu",
) -> SAM2Base:
    """EfficientTAM image model (a ``SAM2Base``) with the image-builder overrides only."""
    cfg = reference_config(variant, image_size, video=False)
    model = EfficientTAMReferenceBase(**_build_components(cfg), **cfg["base_kwargs"])
    return _finish(model, state_dict, device)


def build_reference_image(
    variant: str,
    image_size: int = 1024,
    state_dict: dict[str, torch.Tensor] | None = None,
    device: str = "cpu",
    **predictor_kwargs,
) -> SAM2ImagePredictor:
    """EfficientTAM image predictor (a ``sam2.sam2_image_predictor.SAM2ImagePredictor``)."""
    model = build_reference_model(variant, image_size, state_dict=state_dict, device=device)
    return EfficientTAMReferenceImagePredictor(model, **predictor_kwargs)


# ---------------------------------------------------------------------------
# test helpers
# ---------------------------------------------------------------------------
def random_release_weights(variant: str, image_size: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Official-layout weights that make every output informative: the default init, noise on the tensors that
    start constant, and the heads' last layers scaled up (else mask logits have std ~0.05 and scores ~0.2)."""
    import re

    torch.manual_seed(seed)
    sd = {k: v.detach().clone() for k, v in build_reference(variant, image_size).state_dict().items()}
    g = torch.Generator().manual_seed(seed + 1)
    for k, v in sd.items():
        if v.is_floating_point() and v.numel() > 1 and bool((v == v.flatten()[0]).all()):
            sd[k] = v + 0.02 * torch.randn(v.shape, generator=g)
    for k in sd:
        if re.fullmatch(r"sam_mask_decoder\.output_hypernetworks_mlps\.\d+\.layers\.2\.weight", k):
            sd[k] = sd[k] * 40
    sd["sam_mask_decoder.iou_prediction_head.layers.2.weight"] *= 10
    sd["sam_mask_decoder.pred_obj_score_head.layers.2.weight"] *= 20
    return sd


def scipy_connected_components(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """sam2's ``get_connected_components`` (a CUDA kernel: 8-connected labels and each pixel's region area, for
    ``[N, 1, H, W]`` masks) computed with scipy, so the reference's hole filling runs on the CPU, independently of
    ``efficientsam_zoo.utils.masks.small_regions``. Patch it over ``sam2.utils.misc.get_connected_components``."""
    import numpy as np
    from scipy import ndimage

    planes = mask.to(torch.uint8).cpu().numpy()
    labels, areas = np.zeros(planes.shape, np.int32), np.zeros(planes.shape, np.int32)
    for i in range(planes.shape[0]):
        lab, _ = ndimage.label(planes[i, 0], structure=np.ones((3, 3)))
        labels[i, 0], areas[i, 0] = lab, np.where(lab > 0, np.bincount(lab.ravel())[lab], 0)
    return torch.from_numpy(labels), torch.from_numpy(areas)
