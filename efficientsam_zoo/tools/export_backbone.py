"""Turn a SAMI training checkpoint into a plain backbone checkpoint (the SAMI export layout).

    python -m efficientsam_zoo.tools.export_backbone work_dirs/sami/iter_400000.pth --out sami_vit-s.safetensors \
        [--hf-out sami-vit-s-hf] [--num-heads 6]

The output is read by every adapter: MMDetection / MMSegmentation / detectron2 backbones
(``init_cfg=dict(type="Pretrained", checkpoint=...)``), ``SamiViTModel`` (``--hf-out`` writes an HF directory),
and ``EfficientSAM``'s image encoder. The key layout is documented in ``efficientsam_zoo/checkpoints.py``.
"""
from __future__ import annotations

import argparse
import sys
from typing import Dict, List, Optional

import torch

from ..checkpoints import CheckpointError, backbone_state_dict, read_trainer_checkpoint, save_sami_backbone
from ..modeling.vit import VIT_SIZES

__all__ = ["vit_args_from_state_dict", "export_backbone", "main"]


def vit_args_from_state_dict(sd: Dict[str, torch.Tensor], num_heads: Optional[int] = None) -> Dict:
    """ViT size from the weights; heads from the paper's sizes unless given."""
    w = sd["patch_embed.proj.weight"]
    embed_dim, patch = int(w.shape[0]), int(w.shape[-1])
    depth = len({k.split(".")[1] for k in sd if k.startswith("blocks.")})
    if num_heads is None:
        by_dim = {v["embed_dim"]: v["num_heads"] for v in VIT_SIZES.values()}
        if embed_dim not in by_dim:
            raise CheckpointError(f"embed dim {embed_dim} is not ViT-Ti/S/B; pass --num-heads")
        num_heads = by_dim[embed_dim]
    mlp_ratio = sd["blocks.0.mlp.fc1.weight"].shape[0] / embed_dim
    n_pos = sd["pos_embed"].shape[1]
    cls = int(round((n_pos - 1) ** 0.5)) ** 2 == n_pos - 1
    grid = int(round((n_pos - int(cls)) ** 0.5))
    return dict(embed_dim=embed_dim, depth=depth, num_heads=num_heads, patch_size=patch, mlp_ratio=mlp_ratio,
                pretrain_img_size=grid * patch, pretrain_use_cls_token=cls, final_norm="norm.weight" in sd)


def export_backbone(checkpoint: str, out: str, hf_out: Optional[str] = None, num_heads: Optional[int] = None) -> Dict:
    sd = backbone_state_dict(read_trainer_checkpoint(checkpoint))
    args = vit_args_from_state_dict(sd, num_heads)
    save_sami_backbone(sd, out, args)
    if hf_out:
        from ..integrations.hf import SamiViTModel, sami_config_from_vit_args

        model = SamiViTModel(sami_config_from_vit_args(args))
        model.vit.load_state_dict(sd, strict=True)
        model.save_pretrained(hf_out)
    return args


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint", help="a SAMI training checkpoint (mmengine .pth written by your own run)")
    ap.add_argument("--out", required=True, help="output .safetensors file")
    ap.add_argument("--hf-out", help="also write a transformers SamiViTModel directory")
    ap.add_argument("--num-heads", type=int, help="attention heads (needed for non-paper sizes)")
    args = ap.parse_args(argv)
    try:
        vit = export_backbone(args.checkpoint, args.out, args.hf_out, args.num_heads)
    except CheckpointError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.out} ({vit['depth']} blocks, {vit['embed_dim']}-d, {vit['num_heads']} heads)"
          + (f" and {args.hf_out}" if args.hf_out else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
