"""EfficientTAM's training forward: SAM 2's ``SAM2Train`` on :class:`EfficientTamVideoModel`.

transformers' ``Sam2VideoModel.forward`` runs under ``torch.inference_mode``; training instead drives the same
building blocks the inference path uses -- ``get_image_features``, ``_prepare_memory_conditioned_features`` (memory
attention over the conditioning frames, the last ``num_maskmem - 1`` frames and the object pointers),
``_single_frame_forward`` (prompt encoder + mask decoder), ``_use_mask_as_output`` and ``_encode_new_memory`` -- with
gradients, on a :class:`MemoryBank` that holds what an inference session holds. A clip's frames go through the
image encoder together; each object is decoded and remembered on its own, as the session tracks it.

The interaction (which frames get clicks, boxes or masks; correction clicks on the previous step's errors, fed back
with the previous low-resolution logits as the mask prompt) and the losses are ``training.video``'s.

One departure from SAM 2's training code: transformers' ``_encode_new_memory`` stores memory features in bfloat16
(SAM 2 does so only in its video predictor), so training backpropagates through that rounding, as the inference path
computes with it.
"""
from __future__ import annotations

import json
import logging
import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Dict, List, Optional

import torch
import torch.nn.functional as F

from ...checkpoints import (CheckpointError, check_state_dict, efficientsam_to_efficienttam, listing,
                            load_pretrained_backbone, read_checkpoint, read_efficienttam_checkpoint, read_model_spec,
                            read_official_state_dict)
from ...training.video import NO_OBJECT_LOGIT, clip_loss, correction_points, first_prompts, plan_clip

logger = logging.getLogger(__name__)
#: The object-score logit of an EfficientSAM start: present (SAM 2 scores a mask prompt's object +10 the same way).
PRESENT_LOGIT = 10.0

__all__ = ["InteractionSettings", "MemoryBank", "clip_features", "track_clip", "clip_losses", "init_from_checkpoint",
           "checkpoint_kind", "sam2_memory_init_"]
#: SAM 2's start for the memory's learned embeddings (``trunc_normal_(std=0.02)``) and its fuser's layer scale.
MEMORY_EMBEDDING_STD, FUSER_LAYER_SCALE = 0.02, 1e-6


@dataclass
class InteractionSettings:
    """SAM 2's simulated interaction (the sam2.1 training recipe's values as defaults)."""

    prob_point: float = 0.5  # clicks / boxes on the prompted frames, else their ground-truth masks
    prob_box: float = 0.5  # a box rather than a click on an initial conditioning frame
    num_init_cond_frames: int = 2  # 1..this many initial conditioning frames (frame 0 always)
    num_frames_to_correct: int = 2  # up to this many frames get correction clicks
    num_correction_points: int = 7  # correction clicks per corrected frame
    prob_from_gt: float = 0.1  # a correction click drawn from the object rather than from the errors
    corrected_frames_as_cond: bool = True  # a corrected frame's memory joins the conditioning frames


class MemoryBank:
    """The part of transformers' ``Sam2VideoInferenceSession`` that the memory methods read: per object, the outputs
    of its conditioning and non-conditioning frames."""

    def __init__(self, num_objects: int, dtype: torch.dtype) -> None:
        self.dtype = dtype
        self.output_dict_per_obj = {j: {"cond_frame_outputs": {}, "non_cond_frame_outputs": {}}
                                    for j in range(num_objects)}

    def store(self, obj: int, frame: int, output: Dict[str, torch.Tensor], cond: bool) -> None:
        key = "cond_frame_outputs" if cond else "non_cond_frame_outputs"
        self.output_dict_per_obj[obj][key][frame] = output


#: What a frame's decoding hands on (to the memory bank and the next correction step).
_OUTPUTS = ("pred_masks", "high_res_masks", "object_pointer", "object_score_logits")


@contextmanager
def _decoder_outputs(model):
    """The mask decoder's raw outputs (every candidate mask, before the model keeps the best)."""
    seen: List = []
    handle = model.mask_decoder.register_forward_hook(lambda module, args, out: seen.append(out))
    try:
        yield seen
    finally:
        handle.remove()


def clip_features(model, pixel_values: torch.Tensor) -> Dict[str, List[torch.Tensor]]:
    """The image encoder on every frame at once: ``pixel_values [N, 3, S, S]`` -> per level ``[HW, N, C]``."""
    out = model.get_image_features(pixel_values)
    return {"feats": list(out.fpn_hidden_states), "pos": list(out.fpn_position_encoding)}


def _decode(model, pix_feat, high_res, points, labels, mask_input, multimask: bool):
    """One decoder pass per object (transformers' decoder keeps the best candidate only for a batch of one): (the
    model's outputs, concatenated over the objects; all candidates ``[K, M, S, S]`` with SAM 2's absent-object
    logits; their predicted IoUs ``[K, M]``)."""
    outs, highs, ious = [], [], []
    for j in range(pix_feat.shape[0]):
        with _decoder_outputs(model) as seen:
            out = model._single_frame_forward(
                input_points=None if points is None else points[j:j + 1, None],
                input_labels=None if labels is None else labels[j:j + 1, None],
                input_masks=None if mask_input is None else mask_input[j:j + 1],
                image_embeddings=[x[j:j + 1] for x in high_res] + [pix_feat[j:j + 1]], multimask_output=multimask)
        low, iou, _, obj = seen[-1]
        low = torch.where(obj[:, :, :, None, None] > 0, low, NO_OBJECT_LOGIT)[:, 0]
        highs.append(F.interpolate(low.float(), size=(model.image_size,) * 2, mode="bilinear", align_corners=False))
        ious.append(iou[:, 0])
        outs.append(out)
    joined = {name: torch.cat([getattr(o, name) for o in outs]) for name in _OUTPUTS}
    return joined, torch.cat(highs), torch.cat(ious)


def track_clip(model, feats: Dict[str, List[torch.Tensor]], gt: torch.Tensor, generator: torch.Generator,
               settings: Optional[InteractionSettings] = None) -> List[List]:
    """SAM 2's ``forward_tracking`` on one clip: ``feats`` its frames' image features (``clip_features`` of ``T``
    frames), ``gt [T, K, S, S]`` (bool) its objects; prompts from ``generator``. Returns, per frame, the decoding
    steps ``(candidates [K, M, S, S], predicted IoUs [K, M], object logits [K, 1])`` for ``training.video``."""
    s = settings or InteractionSettings()
    num_frames, k = gt.shape[:2]
    plan = plan_clip(num_frames, generator, s.prob_point, s.num_init_cond_frames, s.num_frames_to_correct)
    bank = MemoryBank(k, feats["feats"][-1].dtype)
    steps: List[List] = [[] for _ in range(num_frames)]
    for t in plan.order(num_frames):
        level = [f[:, t:t + 1].expand(-1, k, -1) for f in feats["feats"]]
        pos = [p[:, t:t + 1].expand(-1, k, -1) for p in feats["pos"]]
        high_res = [x.permute(1, 2, 0).reshape(k, x.shape[2], *size)
                    for x, size in zip(level[:-1], model.backbone_feature_sizes[:-1])]
        is_init = t in plan.init_frames
        points = labels = None
        if is_init and not plan.use_points:  # the ground-truth mask as the prompt, output as is (no decoder)
            pix = level[-1].permute(1, 2, 0).reshape(k, -1, *model.backbone_feature_sizes[-1])
            used = [model._use_mask_as_output(pix[j:j + 1], [x[j:j + 1] for x in high_res], gt[t][j:j + 1, None].float())
                    for j in range(k)]  # one object at a time, as transformers' session runs it
            out = {name: torch.cat([getattr(u, name) for u in used]) for name in _OUTPUTS}
            steps[t].append((out["high_res_masks"].float(), torch.cat([u.iou_scores for u in used]),
                             out["object_score_logits"].reshape(k, 1)))
        else:
            pix = torch.cat([model._prepare_memory_conditioned_features(bank, t, j, is_init, level[-1][:, j:j + 1],
                                                                        pos[-1][:, j:j + 1], num_frames)
                             for j in range(k)])
            if is_init:
                points, labels = (x.to(pix.device) for x in first_prompts(gt[t].cpu(), generator, s.prob_box))
            multimask = model._use_multimask(is_init, None if labels is None else {"point_labels": labels[:, None]})
            out, high, iou = _decode(model, pix, high_res, points, labels, None, multimask)
            steps[t].append((high, iou, out["object_score_logits"].reshape(k, 1)))
            for _ in range(s.num_correction_points if t in plan.correct_frames else 0):
                pred = (out["high_res_masks"][:, 0] > 0).detach().cpu()
                new_p, new_l = (x.to(pix.device) for x in correction_points(pred, gt[t].cpu(), generator,
                                                                             s.prob_from_gt))
                points = new_p if points is None else torch.cat([points, new_p], 1)
                labels = new_l if labels is None else torch.cat([labels, new_l], 1)
                multimask = model._use_multimask(is_init, {"point_labels": labels[:, None]})
                out, high, iou = _decode(model, pix, high_res, points, labels, out["pred_masks"], multimask)
                steps[t].append((high, iou, out["object_score_logits"].reshape(k, 1)))
        # a prompted frame's memory: from the binarised mask in eval mode, as the predictor API encodes it
        memory, memory_pos = model._encode_new_memory(level[-1], out["high_res_masks"], out["object_score_logits"],
                                                      is_mask_from_pts=is_init or points is not None)
        cond = is_init or (s.corrected_frames_as_cond and t in plan.correct_frames)
        for j in range(k):
            bank.store(j, t, {"pred_masks": out["pred_masks"][j:j + 1], "object_pointer": out["object_pointer"][j:j + 1],
                              "maskmem_features": memory[:, j:j + 1], "maskmem_pos_enc": memory_pos[:, j:j + 1]}, cond)
    return steps


def clip_losses(model, pixel_values: torch.Tensor, gt: torch.Tensor, valid: torch.Tensor,
                generators: List[torch.Generator], settings: Optional[InteractionSettings] = None
                ) -> Dict[str, torch.Tensor]:
    """A batch of clips: ``pixel_values [B, T, 3, S, S]`` (normalised), ``gt [B, T, K, S, S]`` (bool), ``valid
    [B, K]`` (the objects each clip really has), one generator per clip. The image encoder runs on all frames at
    once; each clip is tracked on its own; the loss is the mean over clips of ``training.video.clip_loss``."""
    b, num_frames = pixel_values.shape[:2]
    feats = clip_features(model, pixel_values.flatten(0, 1))
    totals: Dict[str, torch.Tensor] = {}
    for i in range(b):
        frames = slice(i * num_frames, (i + 1) * num_frames)
        mine = {name: [f[:, frames] for f in levels] for name, levels in feats.items()}
        objects = gt[i][:, valid[i]]
        if objects.shape[1] == 0:
            raise ValueError(f"clip {i} of the batch has no object; the dataset must give each clip at least one")
        losses = clip_loss(track_clip(model, mine, objects, generators[i], settings), objects)
        totals = {k: totals.get(k, 0) + v / b for k, v in losses.items()}
    return totals


def sam2_memory_init_(model, readout_gain: float = 1.0) -> None:
    """Start the memory parts (memory encoder and attention, object-pointer projections, mask downsampler, the
    no-memory and temporal embeddings) as SAM 2's code starts them: PyTorch's default layer initialisation, learned
    embeddings ``trunc_normal_(std=0.02)``, the fuser's layer scale 1e-6. ``readout_gain`` multiplies the initial
    output projection of each memory-attention layer's cross-attention (what the memory adds to the image features).

    transformers initialises every linear layer ``normal_(std=0.02)`` and these embeddings at zero; through the memory
    encoder's output projection and the attention's value and output projections that leaves the memory's
    contribution at ~1e-4 of the image features, and a model trained from that start never learns to use its memory
    (measured: held-out moving-shapes J&F 0.01 after 200 iterations; from this start 0.61 / 0.62 / 0.03 in three runs)."""
    from transformers.models.sam2_video.modeling_sam2_video import Sam2VideoMemoryFuserCXBlock

    for part in (model.memory_attention, model.memory_encoder, model.object_pointer_proj,
                 model.temporal_positional_encoding_projection_layer, model.mask_downsample):
        for module in part.modules():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
            if isinstance(module, Sam2VideoMemoryFuserCXBlock) and module.scale is not None:
                with torch.no_grad():
                    module.scale.fill_(FUSER_LAYER_SCALE)
    with torch.no_grad():
        for layer in model.memory_attention.layers:
            layer.cross_attn_image.o_proj.weight.mul_(readout_gain)
        for p in (model.no_memory_embedding, model.no_memory_positional_encoding, model.memory_temporal_positional_encoding,
                  model.no_object_pointer, model.occlusion_spatial_embedding_parameter):
            if p is not None:
                torch.nn.init.trunc_normal_(p, std=MEMORY_EMBEDDING_STD)


def checkpoint_kind(path: str) -> str:
    """``"efficienttam"`` (a release file or ``save_pretrained`` directory), ``"efficientsam"`` (a release file or
    model directory) or ``"backbone"`` (anything else: a SAMI export, an HF ``SamiViTModel`` ...)."""
    if os.path.isdir(path):
        config = os.path.join(path, "config.json")
        if os.path.isfile(config):
            with open(config) as f:
                if json.load(f).get("model_type") == "efficienttam_video":
                    return "efficienttam"
        return "efficientsam" if read_model_spec(path) is not None else "backbone"
    if path.endswith(".safetensors"):
        return "backbone"
    obj = read_checkpoint(path)
    if isinstance(obj, dict) and "state_dict" in obj and "meta" in obj:
        raise CheckpointError(f"{path!r} is an mmengine training checkpoint; start from the trained model it saved "
                              "(<work_dir>/model, written after training) or continue the run with --resume")
    keys = list(obj.get("model", obj)) if isinstance(obj, dict) else []
    if any(k.startswith("memory_attention.") for k in keys):
        return "efficienttam"
    return "efficientsam" if any(k.startswith("mask_decoder.") for k in keys) else "backbone"


def init_from_checkpoint(model, path: str, kind: Optional[str] = None) -> str:
    """Start ``model`` (an ``EfficientTamVideoModel``) from ``path``: an EfficientTAM release file or directory loads
    everything, strictly; an EfficientSAM checkpoint or model directory the image encoder (with its neck), the prompt
    encoder and the mask decoder (``checkpoints.efficientsam_to_efficienttam``; the memory parts and the object-score
    head start fresh, the latter saying "present" for every mask, as EfficientSAM assumes) -- the same decoder
    function only with ``config.efficientsam_decoder`` (else a starting point, logged); a backbone (SAMI export ...)
    the image encoder's ViT only. ``kind``: ``checkpoint_kind(path)`` when the caller has it. Returns which of the
    three."""
    kind = kind or checkpoint_kind(path)
    if kind == "efficienttam":
        if os.path.isdir(path):
            from safetensors.torch import load_file

            state = load_file(os.path.join(path, "model.safetensors"))
        else:
            state = read_efficienttam_checkpoint(path, {k: v.shape for k, v in model.state_dict().items()})
        model.load_state_dict(state, strict=True)
    elif kind == "efficientsam":
        if not model.config.efficientsam_decoder:
            logger.warning("%s: an EfficientSAM decoder copied into SAM 2's decoder (ReLU, LayerNorm) is not the same "
                           "function; set efficientsam_decoder=True in the config to keep it", path)
        state = efficientsam_to_efficienttam(read_official_state_dict(path))
        own = model.state_dict()
        embed = own["prompt_encoder.point_embed.weight"].clone()
        for key in [k for k in state if k.startswith("prompt_encoder.point_embed.weight.")]:
            embed[int(key.rsplit(".", 1)[1])] = state.pop(key)[0]
        state["prompt_encoder.point_embed.weight"] = embed
        _, unexpected, misshaped = check_state_dict(model, state)
        if unexpected or misshaped:
            raise CheckpointError(f"EfficientSAM checkpoint {path!r} does not fit this EfficientTAM:\n"
                                  + "\n".join(listing(t, k) for t, k in (("unexpected", unexpected),
                                                                         ("wrong shape", misshaped)) if k))
        model.load_state_dict(state, strict=False)
        head = model.mask_decoder.pred_obj_score_head.proj_out  # EfficientSAM has none: "present", as it assumes
        with torch.no_grad():
            head.weight.zero_()
            head.bias.fill_(PRESENT_LOGIT)
    else:
        load_pretrained_backbone(model.vision_encoder.trunk, path, allow_missing=("rel_pos_", "neck."))
    return kind
