"""The EfficientTAM release layout (``efficienttam_{ti,s}[_1|_2|_512x512].pt``: ``{"model": state_dict}``, the module
names of ``yformer/EfficientTAM``'s ``EfficientTAMBase``) onto ``EfficientTamVideoModel``'s keys.

The image encoder lands on our one ViT (``mlp.layers.0/1`` -> ``mlp.fc1/fc2``; the neck's ``convs.0.conv_1x1``,
``norm_0``, ``conv_3x3``, ``norm_1`` -> ``neck.0..3``). The rest follows transformers' ``Sam2Video*`` module names:
SAM 2's short names spelled out (``maskmem_tpos_enc`` -> ``memory_temporal_positional_encoding``, ``pix_feat_proj``
-> ``feature_projection`` ...), ``out_proj`` -> ``o_proj``, ``normN`` -> ``layer_normN``, three-layer MLPs as
``proj_in`` / ``layers.0`` / ``proj_out``, the four point embeddings stacked into one table, and the prompt encoder's
random Fourier matrix shared with the model's image-wide positional embedding. Every key must be used and every
target filled: anything else raises one :class:`CheckpointError` listing the keys.
"""
from __future__ import annotations

import re
from typing import Dict, List, Mapping, Optional, Tuple

import torch

from .io import CheckpointError, check_state_dict, listing, read_checkpoint

__all__ = ["official_to_efficienttam", "read_efficienttam_checkpoint", "EFFICIENTTAM_RULES",
           "efficientsam_to_efficienttam"]

#: ``(pattern, replacement)`` applied in order, first match wins; ``None`` means handled elsewhere.
EFFICIENTTAM_RULES: List[Tuple[str, Optional[str]]] = [
    # image encoder -> our ViT
    (r"^image_encoder\.trunk\.(.*)\.mlp\.layers\.0\.(.*)$", r"vision_encoder.trunk.\1.mlp.fc1.\2"),
    (r"^image_encoder\.trunk\.(.*)\.mlp\.layers\.1\.(.*)$", r"vision_encoder.trunk.\1.mlp.fc2.\2"),
    (r"^image_encoder\.trunk\.(.*)$", r"vision_encoder.trunk.\1"),
    (r"^image_encoder\.neck\.convs\.0\.conv_1x1\.(.*)$", r"vision_encoder.trunk.neck.0.\1"),
    (r"^image_encoder\.neck\.convs\.0\.norm_0\.(.*)$", r"vision_encoder.trunk.neck.1.\1"),
    (r"^image_encoder\.neck\.convs\.0\.conv_3x3\.(.*)$", r"vision_encoder.trunk.neck.2.\1"),
    (r"^image_encoder\.neck\.convs\.0\.norm_1\.(.*)$", r"vision_encoder.trunk.neck.3.\1"),
    # model-level parameters
    (r"^maskmem_tpos_enc$", "memory_temporal_positional_encoding"),
    (r"^no_mem_embed$", "no_memory_embedding"),
    (r"^no_mem_pos_enc$", "no_memory_positional_encoding"),
    (r"^no_obj_ptr$", "no_object_pointer"),
    (r"^mask_downsample\.(.*)$", r"mask_downsample.\1"),
    (r"^obj_ptr_proj\.layers\.0\.(.*)$", r"object_pointer_proj.proj_in.\1"),
    (r"^obj_ptr_proj\.layers\.1\.(.*)$", r"object_pointer_proj.layers.0.\1"),
    (r"^obj_ptr_proj\.layers\.2\.(.*)$", r"object_pointer_proj.proj_out.\1"),
    # prompt encoder
    (r"^sam_prompt_encoder\.pe_layer\.positional_encoding_gaussian_matrix$", None),
    (r"^sam_prompt_encoder\.point_embeddings\.\d+\.weight$", None),
    (r"^sam_prompt_encoder\.mask_downscaling\.0\.(.*)$", r"prompt_encoder.mask_embed.conv1.\1"),
    (r"^sam_prompt_encoder\.mask_downscaling\.1\.(.*)$", r"prompt_encoder.mask_embed.layer_norm1.\1"),
    (r"^sam_prompt_encoder\.mask_downscaling\.3\.(.*)$", r"prompt_encoder.mask_embed.conv2.\1"),
    (r"^sam_prompt_encoder\.mask_downscaling\.4\.(.*)$", r"prompt_encoder.mask_embed.layer_norm2.\1"),
    (r"^sam_prompt_encoder\.mask_downscaling\.6\.(.*)$", r"prompt_encoder.mask_embed.conv3.\1"),
    (r"^sam_prompt_encoder\.(not_a_point_embed|no_mask_embed)\.(.*)$", r"prompt_encoder.\1.\2"),
    # mask decoder
    (r"^sam_mask_decoder\.output_upscaling\.0\.(.*)$", r"mask_decoder.upscale_conv1.\1"),
    (r"^sam_mask_decoder\.output_upscaling\.1\.(.*)$", r"mask_decoder.upscale_layer_norm.\1"),
    (r"^sam_mask_decoder\.output_upscaling\.3\.(.*)$", r"mask_decoder.upscale_conv2.\1"),
    (r"^sam_mask_decoder\.(output_hypernetworks_mlps\.\d+|iou_prediction_head|pred_obj_score_head)\.layers\.0\.(.*)$",
     r"mask_decoder.\1.proj_in.\2"),
    (r"^sam_mask_decoder\.(output_hypernetworks_mlps\.\d+|iou_prediction_head|pred_obj_score_head)\.layers\.1\.(.*)$",
     r"mask_decoder.\1.layers.0.\2"),
    (r"^sam_mask_decoder\.(output_hypernetworks_mlps\.\d+|iou_prediction_head|pred_obj_score_head)\.layers\.2\.(.*)$",
     r"mask_decoder.\1.proj_out.\2"),
    (r"^sam_mask_decoder\.transformer\.(.*)\.mlp\.layers\.0\.(.*)$", r"mask_decoder.transformer.\1.mlp.proj_in.\2"),
    (r"^sam_mask_decoder\.transformer\.(.*)\.mlp\.layers\.1\.(.*)$", r"mask_decoder.transformer.\1.mlp.proj_out.\2"),
    (r"^sam_mask_decoder\.transformer\.(.*)\.out_proj\.(.*)$", r"mask_decoder.transformer.\1.o_proj.\2"),
    (r"^sam_mask_decoder\.transformer\.(.*)\.norm(\d)\.(.*)$", r"mask_decoder.transformer.\1.layer_norm\2.\3"),
    (r"^sam_mask_decoder\.transformer\.norm_final_attn\.(.*)$", r"mask_decoder.transformer.layer_norm_final_attn.\1"),
    (r"^sam_mask_decoder\.(.*)$", r"mask_decoder.\1"),
    # memory attention
    (r"^memory_attention\.(.*)\.out_proj\.(.*)$", r"memory_attention.\1.o_proj.\2"),
    (r"^memory_attention\.layers\.(\d+)\.norm(\d)\.(.*)$", r"memory_attention.layers.\1.layer_norm\2.\3"),
    (r"^memory_attention\.norm\.(.*)$", r"memory_attention.layer_norm.\1"),
    (r"^memory_attention\.(.*)$", r"memory_attention.\1"),
    # memory encoder
    (r"^memory_encoder\.mask_downsampler\.encoder\.12\.(.*)$", r"memory_encoder.mask_downsampler.final_conv.\1"),
    (r"^memory_encoder\.mask_downsampler\.encoder\.(\d+)\.(.*)$", "DOWNSAMPLER"),
    (r"^memory_encoder\.pix_feat_proj\.(.*)$", r"memory_encoder.feature_projection.\1"),
    (r"^memory_encoder\.out_proj\.(.*)$", r"memory_encoder.projection.\1"),
    (r"^memory_encoder\.fuser\.layers\.(\d+)\.gamma$", r"memory_encoder.memory_fuser.layers.\1.scale"),
    (r"^memory_encoder\.fuser\.layers\.(\d+)\.dwconv\.(.*)$", r"memory_encoder.memory_fuser.layers.\1.depthwise_conv.\2"),
    (r"^memory_encoder\.fuser\.layers\.(\d+)\.norm\.(.*)$", r"memory_encoder.memory_fuser.layers.\1.layer_norm.\2"),
    (r"^memory_encoder\.fuser\.layers\.(\d+)\.pwconv(\d)\.(.*)$",
     r"memory_encoder.memory_fuser.layers.\1.pointwise_conv\2.\3"),
]
_COMPILED = [(re.compile(p), r) for p, r in EFFICIENTTAM_RULES]


def _downsampler(match: "re.Match") -> str:
    """``encoder.{3i}`` is stage i's conv, ``encoder.{3i+1}`` its LayerNorm (``3i+2`` is a GELU, no weights)."""
    index, rest = int(match.group(1)), match.group(2)
    stage, part = divmod(index, 3)
    if part == 2:
        raise CheckpointError(f"unexpected key memory_encoder.mask_downsampler.encoder.{index}.{rest} (an activation)")
    return f"memory_encoder.mask_downsampler.layers.{stage}.{('conv', 'layer_norm')[part]}.{rest}"


def read_efficienttam_checkpoint(path: str, target_keys: Mapping[str, torch.Size]) -> Dict[str, torch.Tensor]:
    """A release file (``{"model": state_dict}``) -> ``EfficientTamVideoModel`` keys (see
    :func:`official_to_efficienttam`)."""
    obj = read_checkpoint(path)
    if isinstance(obj, Mapping) and isinstance(obj.get("model"), Mapping):
        obj = obj["model"]
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{path!r} holds no state dict: expected {{'model': state_dict}} as EfficientTAM releases it")
    try:
        return official_to_efficienttam(obj, target_keys)
    except CheckpointError as exc:
        raise CheckpointError(f"{path!r}: {exc}") from None


def official_to_efficienttam(state_dict: Mapping[str, torch.Tensor],
                             target_keys: Mapping[str, torch.Size]) -> Dict[str, torch.Tensor]:
    """A release ``state_dict`` -> ``EfficientTamVideoModel`` keys; ``target_keys`` (name -> shape) are the model's,
    and the result fills exactly those, with the same shapes."""
    out, unknown = _translate(state_dict)
    _check(out, target_keys, unknown)
    return out


def _translate(state_dict: Mapping[str, torch.Tensor]) -> Tuple[Dict[str, torch.Tensor], List[str]]:
    """Release keys -> model keys by :data:`EFFICIENTTAM_RULES`; returns the result and the keys no rule takes."""
    out: Dict[str, torch.Tensor] = {}
    unknown: List[str] = []
    for key, value in state_dict.items():
        for pattern, replacement in _COMPILED:
            match = pattern.match(key)
            if match is None:
                continue
            if replacement == "DOWNSAMPLER":
                out[_downsampler(match)] = value
            elif replacement is not None:
                out[match.expand(replacement)] = value
            break
        else:
            unknown.append(key)
    points = sorted((k for k in state_dict if k.startswith("sam_prompt_encoder.point_embeddings.")),
                    key=lambda k: int(k.split(".")[2]))
    if points:
        out["prompt_encoder.point_embed.weight"] = torch.cat([state_dict[k] for k in points], dim=0)
    fourier = state_dict.get("sam_prompt_encoder.pe_layer.positional_encoding_gaussian_matrix")
    if fourier is not None:
        for name in ("prompt_encoder.shared_embedding.positional_embedding", "shared_image_embedding.positional_embedding"):
            out[name] = fourier
    return out, unknown


#: EfficientSAM's module names -> SAM 2's release names (then :data:`EFFICIENTTAM_RULES`). The two decoders have the
#: same parameters (SAM 2's adds the object-score token and head) but EfficientSAM's MLPs use GELU and its upscaling
#: a GroupNorm where SAM 2's use ReLU and a per-pixel LayerNorm: ``EfficientTamVideoConfig.efficientsam_decoder``
#: makes the EfficientTAM decoder compute EfficientSAM's way (without it, one click on a generated scene gave mask IoU
#: 0.0 right after the copy against 0.855 for the EfficientSAM it came from).
_EFFICIENTSAM_TO_RELEASE = [(re.compile(p), r) for p, r in [
    (r"^image_encoder\.neck\.0\.(.*)$", r"image_encoder.neck.convs.0.conv_1x1.\1"),
    (r"^image_encoder\.neck\.1\.(.*)$", r"image_encoder.neck.convs.0.norm_0.\1"),
    (r"^image_encoder\.neck\.2\.(.*)$", r"image_encoder.neck.convs.0.conv_3x3.\1"),
    (r"^image_encoder\.neck\.3\.(.*)$", r"image_encoder.neck.convs.0.norm_1.\1"),
    (r"^image_encoder\.(.*)$", r"image_encoder.trunk.\1"),
    (r"^prompt_encoder\.pe_layer\.(.*)$", r"sam_prompt_encoder.pe_layer.\1"),
    (r"^prompt_encoder\.invalid_points\.(.*)$", r"sam_prompt_encoder.not_a_point_embed.\1"),
    (r"^prompt_encoder\.negative_point_embeddings\.(.*)$", r"sam_prompt_encoder.point_embeddings.0.\1"),
    (r"^prompt_encoder\.point_embeddings\.(.*)$", r"sam_prompt_encoder.point_embeddings.1.\1"),
    (r"^prompt_encoder\.bbox_top_left_embeddings\.(.*)$", r"sam_prompt_encoder.point_embeddings.2.\1"),
    (r"^prompt_encoder\.bbox_bottom_right_embeddings\.(.*)$", r"sam_prompt_encoder.point_embeddings.3.\1"),
    (r"^prompt_encoder\.(mask_downscaling|no_mask_embed)\.(.*)$", r"sam_prompt_encoder.\1.\2"),
    (r"^mask_decoder\.transformer\.(.*)\.mlp\.layers\.0\.0\.(.*)$", r"sam_mask_decoder.transformer.\1.mlp.layers.0.\2"),
    (r"^mask_decoder\.transformer\.(.*)\.mlp\.fc\.(.*)$", r"sam_mask_decoder.transformer.\1.mlp.layers.1.\2"),
    (r"^mask_decoder\.final_output_upscaling_layers\.0\.0\.(.*)$", r"sam_mask_decoder.output_upscaling.0.\1"),
    (r"^mask_decoder\.final_output_upscaling_layers\.0\.1\.(.*)$", r"sam_mask_decoder.output_upscaling.1.\1"),
    (r"^mask_decoder\.final_output_upscaling_layers\.1\.0\.(.*)$", r"sam_mask_decoder.output_upscaling.3.\1"),
    (r"^mask_decoder\.(.*)\.layers\.(\d)\.0\.(.*)$", r"sam_mask_decoder.\1.layers.\2.\3"),
    (r"^mask_decoder\.(output_hypernetworks_mlps\.\d+|iou_prediction_head)\.fc\.(.*)$", r"sam_mask_decoder.\1.layers.2.\2"),
    (r"^mask_decoder\.(.*)$", r"sam_mask_decoder.\1"),
]]


def efficientsam_to_efficienttam(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """An EfficientSAM state dict (release layout) -> the ``EfficientTamVideoModel`` keys it fills: the image encoder
    with its neck, the prompt encoder and the mask decoder (the memory parts, SAM 2's object-score head and any point
    embedding the file lacks are not in it). The point embeddings come as single rows
    (``prompt_encoder.point_embed.weight.<label>``) for the caller to place."""
    release, rows, unmatched = {}, {}, []
    for key, value in state_dict.items():
        for pattern, replacement in _EFFICIENTSAM_TO_RELEASE:
            match = pattern.match(key)
            if match is not None:
                release[match.expand(replacement)] = value
                break
        else:
            unmatched.append(key)
    for key in [k for k in release if k.startswith("sam_prompt_encoder.point_embeddings.")]:
        rows[f"prompt_encoder.point_embed.weight.{key.split('.')[2]}"] = release.pop(key)
    out, unknown = _translate(release)
    unknown = unmatched + unknown
    if unknown:
        raise CheckpointError(listing("EfficientSAM keys without an EfficientTAM counterpart", unknown))
    return {**out, **rows}


def _check(out: Mapping[str, torch.Tensor], target: Mapping[str, torch.Size], unknown: List[str]) -> None:
    missing, unexpected, misshaped = check_state_dict(target, out)
    unexpected = unknown + unexpected
    if missing or unexpected or misshaped:
        found = [listing(title, keys) for title, keys in
                 (("missing", missing), ("unexpected", unexpected), ("wrong shape", misshaped)) if keys]
        raise CheckpointError("this is not an EfficientTAM checkpoint of the chosen variant:\n" + "\n".join(found))
