"""ONNX export: an image-encoder graph and a prompt-decoder graph.

``encoder.onnx``
    ``batched_images`` float ``[B, 3, H, W]`` on a 0..1 scale (any ``H``, ``W``; stretched to 1024 inside)
    -> ``image_embeddings`` ``[B, 256, 64, 64]``.
``decoder.onnx``
    ``image_embeddings`` ``[B, 256, 64, 64]``, ``batched_point_coords`` float ``[B, Q, N, 2]`` (x, y pixels of
    the original image), ``batched_point_labels`` int64 ``[B, Q, N]`` (1 point, 2 / 3 box corners, -1 padding),
    ``orig_im_size`` float ``[2]`` (H, W) and, for a model with mask prompts only, ``mask_input``
    ``[B, Q, 1, 256, 256]`` with ``has_mask_input`` float ``[B, Q]`` (1 / 0) -> ``low_res_logits``
    ``[B, Q, 3, 256, 256]`` and ``iou_predictions`` ``[B, Q, 3]`` (the multimask outputs), then
    ``single_low_res_logits`` ``[B, Q, 1, 256, 256]`` and ``single_iou_predictions`` ``[B, Q, 1]``
    (``multimask_output=False``). Upsample the logits bicubically to ``(H, W)`` and threshold at 0,
    as :meth:`EfficientSam.predict_masks` does.

``B``, ``Q`` and ``N`` are dynamic (``N`` is padded / truncated to 6 inside the graph). Exported with
``torch.onnx.export(..., dynamo=True)``, opset 18 by default, then checked with ``onnx.checker`` and
compared with PyTorch through onnxruntime (:func:`verify_onnx`).
"""
from __future__ import annotations

import json
import os
from typing import Dict, Optional, Sequence, Tuple

import torch
from torch import nn

from .modeling.efficient_sam import EfficientSam
from .utils.io import atomic_path
from .utils.onnx_graphs import (DECODER_OUTPUTS, ENCODER_INPUTS, ENCODER_OUTPUTS, GRAPH_FILES, METADATA_KEY,
                                 decoder_inputs)

__all__ = ["EncoderGraph", "DecoderGraph", "export_onnx", "verify_onnx", "model_facts", "graph_specs",
           "export_programs", "export_graph", "random_inputs", "fixed_shape_inputs", "fixed_shape_graphs"]


class EncoderGraph(nn.Module):
    def __init__(self, model: EfficientSam) -> None:
        super().__init__()
        self.model = model

    def forward(self, batched_images: torch.Tensor) -> torch.Tensor:
        return self.model.get_image_embeddings(batched_images)


class DecoderGraph(nn.Module):
    def __init__(self, model: EfficientSam) -> None:
        super().__init__()
        self.model = model

    def forward(self, image_embeddings, batched_point_coords, batched_point_labels, orig_im_size, mask_input=None,
                has_mask_input=None):
        logits, iou = self.model.predict_masks(image_embeddings, batched_point_coords, batched_point_labels, True,
                                               input_h=orig_im_size[0], input_w=orig_im_size[1], mask_input=mask_input,
                                               has_mask_input=has_mask_input, all_tokens=True)
        multi = slice(1, None) if logits.shape[2] > 1 else slice(None)  # MaskDecoder's rule for a one-token decoder
        return logits[:, :, multi], iou[:, :, multi], logits[:, :, :1], iou[:, :, :1]


def model_facts(model: EfficientSam) -> Dict:
    """What a graph's user needs beyond the graph (stored as the ONNX models' ``metadata_props``, read back by
    ``onnx_runtime.OnnxPredictor``): the point budget, whether label 0 is a negative click, the mask threshold."""
    return dict(decoder_max_num_input_points=model.decoder_max_num_input_points, negative_points=model.negative_points,
                mask_prompts=model.mask_prompts, mask_threshold=model.mask_threshold, img_size=model.img_size)


def _example_inputs(model: EfficientSam, b: int = 2, q: int = 3, n: int = 4):
    g = torch.Generator().manual_seed(0)
    size = model.img_size
    images = torch.rand(b, 3, 96, 128, generator=g)
    emb = torch.randn(b, model.prompt_encoder.embed_dim, size // 16, size // 16, generator=g)
    coords = torch.rand(b, q, n, 2, generator=g) * torch.tensor([128.0, 96.0])
    labels = torch.randint(1, 4, (b, q, n), generator=g)
    return images, (emb, coords, labels, torch.tensor([96.0, 128.0])) + _mask_inputs(model, b, q, g)


def _mask_inputs(model: EfficientSam, b: int, q: int, g: torch.Generator) -> tuple:
    """``(mask_input, has_mask_input)`` for a model with mask prompts (every other query has one), else ``()``."""
    if not model.mask_prompts:
        return ()
    masks = torch.randn(b, q, 1, *model.prompt_encoder.mask_input_size, generator=g) * 4
    return masks, (torch.arange(b * q).reshape(b, q) % 2 == 0).float()


def graph_specs(model: EfficientSam) -> Dict[str, tuple]:
    """``{file name: (module, example args, names and dynamic shapes)}`` of the two graphs: what ``torch.onnx.export``
    and :func:`export_programs` (``torch.export``) both trace."""
    images, dec_args = _example_inputs(model)
    batch, queries, points = torch.export.Dim("batch"), torch.export.Dim("queries"), torch.export.Dim("points")
    height, width = torch.export.Dim("height", min=16), torch.export.Dim("width", min=16)
    return {
        GRAPH_FILES["encoder"]: (EncoderGraph(model), (images,), dict(
            input_names=list(ENCODER_INPUTS), output_names=list(ENCODER_OUTPUTS),
            dynamic_shapes={"batched_images": {0: batch, 2: height, 3: width}})),
        GRAPH_FILES["decoder"]: (DecoderGraph(model), dec_args, dict(
            input_names=list(decoder_inputs(model.mask_prompts)), output_names=list(DECODER_OUTPUTS),
            dynamic_shapes={"image_embeddings": {0: batch}, "batched_point_coords": {0: batch, 1: queries, 2: points},
                            "batched_point_labels": {0: batch, 1: queries, 2: points}, "orig_im_size": None,
                            **({"mask_input": {0: batch, 1: queries}, "has_mask_input": {0: batch, 1: queries}}
                               if model.mask_prompts else {})})),
    }


def fixed_shape_inputs(model: EfficientSam, image_size: Optional[Sequence[int]] = None, queries: int = 1,
                          points: Optional[int] = None, seed: int = 0) -> Tuple[tuple, tuple]:
    """Seeded inputs at the fixed shapes the LiteRT and CoreML graphs are converted at: ``(images,)``
    ``[1, 3, H, W]`` (``image_size``, default the model's square) and the decoder's ``(embeddings, coords
    [1, Q, N, 2], labels [1, Q, N], orig_im_size [, mask_input, has_mask_input])`` (``N`` default: the model's point
    budget)."""
    h, w = image_size or (model.img_size, model.img_size)
    images, *prompts = random_inputs(1, queries, points or model.decoder_max_num_input_points, h, w, seed, model)
    with torch.no_grad():
        embeddings = model.get_image_embeddings(images)
    return (images,), (embeddings, *prompts)


def fixed_shape_graphs(model: EfficientSam, image_size: Optional[Sequence[int]] = None, queries: int = 1,
                       points: Optional[int] = None) -> Dict[str, tuple]:
    """``{role: (graph module, example args, input names, output names)}`` of both graphs at the fixed shapes of
    :func:`fixed_shape_inputs`: what the LiteRT and CoreML exports convert."""
    enc_args, dec_args = fixed_shape_inputs(model, image_size, queries, points)
    return {"encoder": (EncoderGraph(model), enc_args, ENCODER_INPUTS, ENCODER_OUTPUTS),
            "decoder": (DecoderGraph(model), dec_args, decoder_inputs(model.mask_prompts), DECODER_OUTPUTS)}


def export_programs(model: EfficientSam) -> Dict[str, "torch.export.ExportedProgram"]:
    """Both graphs as ``torch.export`` programs with the ONNX graphs' dynamic axes (images of any size; any number
    of images, queries and points): ``{"encoder": ..., "decoder": ...}``; run with ``program.module()(*args)``."""
    model = model.eval()
    with torch.no_grad():
        return {name.split(".")[0]: torch.export.export(module, args, dynamic_shapes=kw["dynamic_shapes"])
                for name, (module, args, kw) in graph_specs(model).items()}


def export_onnx(model: EfficientSam, out_dir: str, opset: int = 18) -> Dict[str, str]:
    """Write ``encoder.onnx`` and ``decoder.onnx`` for ``model`` into ``out_dir`` (atomically, each file)."""
    model = model.eval()
    os.makedirs(out_dir, exist_ok=True)
    jobs = graph_specs(model)
    paths = {}
    for name, (module, args, kw) in jobs.items():
        paths[name.split(".")[0]] = os.path.join(out_dir, name)
        export_graph(model, module, args, paths[name.split(".")[0]], opset, **kw)
    return paths


def export_graph(model: EfficientSam, module: nn.Module, args, path: str, opset: int = 18, **export_kwargs) -> None:
    """One graph of ``model`` (``module`` traced on ``args``; ``export_kwargs``: names and dynamic shapes) to ``path``
    with ``torch.onnx.export(dynamo=True)``, the model's facts as metadata, checked with ``onnx.checker``; atomically.
    The pair above and the labelling-tool bundles are written through it."""
    import onnx

    with torch.no_grad():
        program = torch.onnx.export(module, args, dynamo=True, opset_version=opset, external_data=False,
                                    **export_kwargs)
    with atomic_path(path) as tmp:
        program.save(tmp)
        graph = onnx.load(tmp)
        onnx.helper.set_model_props(graph, {METADATA_KEY: json.dumps(model_facts(model))})
        onnx.save(graph, tmp)
        onnx.checker.check_model(tmp, full_check=True)


def random_inputs(b: int, q: int, n: int, h: int, w: int, seed: int = 1, model: Optional[EfficientSam] = None):
    """Seeded random graph inputs: images ``[b, 3, h, w]`` (0..1), then the decoder's: points ``[b, q, n, 2]`` inside
    them, labels 1..3, ``orig_im_size`` ``(h, w)`` and, for a ``model`` with mask prompts, ``mask_input`` and
    ``has_mask_input`` (every other query)."""
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(b, 3, h, w, generator=g)
    coords = torch.rand(b, q, n, 2, generator=g) * torch.tensor([float(w), float(h)])
    labels = torch.randint(1, 4, (b, q, n), generator=g)
    masks = _mask_inputs(model, b, q, g) if model is not None else ()
    return (images, coords, labels, torch.tensor([float(h), float(w)])) + masks


def verify_onnx(model: EfficientSam, paths: Dict[str, str], b: int = 1, q: int = 2, n: int = 3,
                h: int = 80, w: int = 120, seed: int = 1) -> Dict[str, float]:
    """Max |difference| between onnxruntime and PyTorch on fresh random inputs (other sizes than export's)."""
    import onnxruntime as ort

    images, *prompts = random_inputs(b, q, n, h, w, seed, model)
    coords, labels = prompts[:2]
    expected = []
    with torch.no_grad():
        emb = model.get_image_embeddings(images)
        for multimask in (True, False):  # each query with its mask prompt or without one, as has_mask_input says
            logits, iou = model.predict_masks(emb, coords, labels, multimask, h, w)
            if model.mask_prompts:
                with_mask, iou_with = model.predict_masks(emb, coords, labels, multimask, h, w, mask_input=prompts[3])
                has = prompts[4].bool()
                logits, iou = torch.where(has[..., None, None, None], with_mask, logits), torch.where(has[..., None],
                                                                                                        iou_with, iou)
            expected += [logits, iou]
    enc = ort.InferenceSession(paths["encoder"], providers=["CPUExecutionProvider"])
    dec = ort.InferenceSession(paths["decoder"], providers=["CPUExecutionProvider"])
    (emb_ort,) = enc.run(None, {ENCODER_INPUTS[0]: images.numpy()})
    got = dec.run(None, dict(zip(decoder_inputs(model.mask_prompts), [t.numpy() for t in (emb, *prompts)])))
    diffs = {"embeddings": float((torch.from_numpy(emb_ort) - emb).abs().max())}
    for name, ours, ref in zip(DECODER_OUTPUTS, got, expected):
        diffs[name] = float((torch.from_numpy(ours) - ref).abs().max())
    return diffs


def export_and_verify(model: EfficientSam, out_dir: str, opset: int = 18, tolerance: float = 1e-3,
                      verify_kwargs: Optional[dict] = None) -> Dict[str, float]:
    paths = export_onnx(model, out_dir, opset)
    diffs = verify_onnx(model, paths, **(verify_kwargs or {}))
    worst = max(diffs.values())
    if not worst <= tolerance:
        raise RuntimeError(f"ONNX outputs differ from PyTorch by {worst:.3g} (> {tolerance}): {diffs}")
    return diffs
