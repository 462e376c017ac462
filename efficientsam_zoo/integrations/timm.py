"""timm names for the SAMI backbones: ``timm.create_model("sami_vit_small_patch16_224", pretrained=...)``.

Registered with timm's ``register_model`` on ``import efficientsam_zoo`` (when timm is installed), one name per
SAMI variant of :mod:`efficientsam_zoo.registry` (``timm_name``). The model is our one :class:`ViT` with timm's
classification-model interface added -- ``num_classes``, ``global_pool`` (``"avg"``: mean of the patch tokens,
then ``fc_norm``, as our HF classifier and MAE's finetuning do; ``""``: every token), ``reset_classifier``,
``forward_features`` / ``forward_head``, ``forward_intermediates`` and ``features_only`` (timm's feature getter
over the blocks, NCHW maps at stride 16).

Weights: a SAMI export (``tools/export_backbone``; the plain ViT keys) loads through ``checkpoint_path=FILE`` or
``pretrained=True, pretrained_cfg_overlay=dict(file=FILE)``; ``pretrained=True`` alone reads the Hub repository
of the variant table. A backbone export has no ``fc_norm`` / ``head``: those keep their initialisation.
"""
from __future__ import annotations

from typing import List, Optional, Tuple, Union

import torch
from torch import nn

from ..checkpoints import backbone_state_dict
from ..modeling.efficient_sam import IMAGENET_MEAN, IMAGENET_STD
from ..modeling.vit import VIT_SIZES, ViT
from ..registry import SAMI_NAMES, get_variant

__all__ = ["SamiTimmViT", "register_timm_models"]

_HEAD = ("fc_norm.", "head.")


class SamiTimmViT(ViT):
    """Our :class:`ViT` (no neck, no final norm: the SAMI export's layout) with timm's model interface."""

    def __init__(self, img_size: int = 224, patch_size: int = 16, in_chans: int = 3, num_classes: int = 1000,
                 global_pool: str = "avg", embed_dim: int = 192, depth: int = 12, num_heads: int = 3,
                 drop_path_rate: float = 0.0, **kwargs) -> None:
        super().__init__(img_size=img_size, patch_size=patch_size, in_chans=in_chans, embed_dim=embed_dim,
                         depth=depth, num_heads=num_heads, drop_path_rate=drop_path_rate, neck_dim=None,
                         pretrain_img_size=img_size, **kwargs)
        if global_pool not in ("avg", ""):
            raise ValueError(f"global_pool must be 'avg' or '' (every token), got {global_pool!r}")
        self.num_classes, self.global_pool = num_classes, global_pool
        self.num_features = self.head_hidden_size = embed_dim
        self.fc_norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.head = nn.Linear(embed_dim, num_classes) if num_classes > 0 else nn.Identity()
        self.feature_info = [dict(module=f"blocks.{i}", num_chs=embed_dim, reduction=patch_size) for i in range(depth)]
        self._register_load_state_dict_pre_hook(self._keep_head_if_absent)

    # -- timm's classifier interface ----------------------------------------------------------------------------
    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int, global_pool: Optional[str] = None) -> None:
        self.num_classes = num_classes
        if global_pool is not None:
            self.global_pool = global_pool
        self.head = nn.Linear(self.embed_dim, num_classes) if num_classes > 0 else nn.Identity()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Tokens ``[B, N, C]`` after the last block (timm's contract)."""
        return ViT.forward_features(self, x, out_indices=[len(self.blocks) - 1])[0].flatten(2).transpose(1, 2)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        if self.global_pool == "avg":
            x = x.mean(dim=1)
        x = self.fc_norm(x)
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def forward_intermediates(self, x: torch.Tensor, indices: Optional[Union[int, List[int]]] = None,
                              norm: bool = False, stop_early: bool = False, output_fmt: str = "NCHW",
                              intermediates_only: bool = False, **kwargs
                              ) -> Union[List[torch.Tensor], Tuple[torch.Tensor, List[torch.Tensor]]]:
        """Block outputs (``indices``: the last n blocks, or a list of block numbers) as NCHW maps or NLC tokens."""
        from timm.models._features import feature_take_indices

        if output_fmt not in ("NCHW", "NLC"):
            raise ValueError(f"output_fmt must be 'NCHW' or 'NLC', got {output_fmt!r}")
        take, _ = feature_take_indices(len(self.blocks), indices)
        last = len(self.blocks) - 1
        maps = ViT.forward_features(self, x, out_indices=sorted(set(take) | {last}))  # one pass
        by_block = dict(zip(sorted(set(take) | {last}), maps))
        feats = [by_block[i] for i in take]
        if output_fmt == "NLC":
            feats = [m.flatten(2).transpose(1, 2) for m in feats]
        if intermediates_only:
            return feats
        return by_block[last].flatten(2).transpose(1, 2), feats

    def prune_intermediate_layers(self, indices: Union[int, List[int]] = 1, prune_norm: bool = False,
                                  prune_head: bool = True) -> List[int]:
        from timm.models._features import feature_take_indices

        take, max_index = feature_take_indices(len(self.blocks), indices)
        self.blocks = self.blocks[:max_index + 1]
        self.depth = len(self.blocks)
        if prune_head:
            self.fc_norm = nn.Identity()
            self.reset_classifier(0, "")
        return take

    def group_matcher(self, coarse: bool = False) -> dict:
        """timm's layer grouping (layer-wise lr decay): embeddings, each block, then the head."""
        return dict(stem=r"^pos_embed|^patch_embed", blocks=[(r"^blocks\.(\d+)", None), (r"^fc_norm", (99999,))])

    def no_weight_decay(self) -> set:
        return {"pos_embed"}

    # -- loading a backbone export --------------------------------------------------------------------------------
    def _keep_head_if_absent(self, state_dict, prefix, *args) -> None:
        """A backbone export has no fc_norm / head: keep this model's own (initialised) ones, strictly otherwise."""
        if not any(k.startswith(prefix + h) for k in state_dict for h in _HEAD):
            for name, t in self.state_dict().items():
                if name.startswith(_HEAD):
                    state_dict[prefix + name] = t


def _backbone_keys(state_dict, model):
    """Pretrained files in any layout we publish -- a SAMI export, an HF ``SamiViTModel`` (``vit.*``), a training
    checkpoint -- as the plain ViT keys of this model (a head, if present, is kept)."""

    head = {k: v for k, v in state_dict.items() if k.startswith(_HEAD)}
    return {**backbone_state_dict(state_dict), **head}


def _cfg(name: str) -> dict:
    variant = get_variant(name)
    return dict(hf_hub_id=variant.hub_repo, num_classes=0, input_size=(3, 224, 224), pool_size=None,
                crop_pct=0.875, interpolation="bicubic", mean=IMAGENET_MEAN, std=IMAGENET_STD,
                first_conv="patch_embed.proj", classifier="head", license="apache-2.0",
                paper_ids="arXiv:2312.00863", paper_name="EfficientSAM", origin_url="https://github.com/yformer/EfficientSAM")


def _builder(name: str):
    variant = get_variant(name)

    def create(pretrained: bool = False, **kwargs) -> SamiTimmViT:
        from timm.models import build_model_with_cfg

        args = dict(VIT_SIZES[variant.backbone], patch_size=16, img_size=224)
        args.update(kwargs)
        return build_model_with_cfg(SamiTimmViT, variant.timm_name, pretrained,
                                    feature_cfg=dict(out_indices=3, feature_cls="getter"),
                                    pretrained_filter_fn=_backbone_keys, **args)

    create.__name__ = variant.timm_name
    create.__doc__ = f"{variant.description} (efficientsam-zoo's ViT; a SAMI export loads via checkpoint_path)."
    return create


def register_timm_models() -> List[str]:
    """Register every SAMI variant's ``timm_name`` with timm (idempotent); returns the names."""
    from timm.models import generate_default_cfgs, is_model, register_model

    global default_cfgs  # timm's register_model reads the pretrained configs from the builder's module
    default_cfgs = generate_default_cfgs({f"{get_variant(n).timm_name}.sami_in1k": _cfg(n) for n in SAMI_NAMES})
    names = []
    for name in SAMI_NAMES:
        timm_name = get_variant(name).timm_name
        if not is_model(timm_name):
            globals()[timm_name] = register_model(_builder(name))  # register_model lists it in __all__
        names.append(timm_name)
    return names


default_cfgs: dict = {}
