"""LiteRT (TensorFlow Lite) export for phones: ``encoder.tflite`` and ``decoder.tflite``.

The graphs are the ONNX pair's own modules (``export_onnx.EncoderGraph`` / ``DecoderGraph``: same inputs, same
outputs, same order), converted by ``litert-torch`` (formerly ai-edge-torch) at fixed shapes, as a phone app runs
them: one image of ``image_size`` (H, W; stretched to the model's square inside, as everywhere) and ``queries``
queries of ``points`` points (pad unused ones with label -1). LiteRT has no 64-bit integers at its boundary, so
``batched_point_labels`` is int32 there. ``litert.json`` beside them holds the model's facts (``model_facts``) and
each graph's input / output names and shapes.

Install: ``pip install 'efficientsam-zoo[litert]'`` (litert-torch pulls in jax, torchao and numpy 2; here it
lives in its own environment, ``scripts/setup_env_litert.sh``).
"""
from __future__ import annotations

import json
import os
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import torch

from .export_onnx import DecoderGraph, fixed_shape_graphs, fixed_shape_inputs, model_facts
from .modeling.efficient_sam import EfficientSam
from .utils.io import atomic_path, write_json
from .utils.onnx_graphs import DECODER_OUTPUTS, ENCODER_INPUTS

__all__ = ["LITERT_FILES", "export_litert", "LiteRTGraph", "run_litert", "verify_litert"]

LITERT_FILES = {"encoder": "encoder.tflite", "decoder": "decoder.tflite", "facts": "litert.json"}


def _as_litert(value: torch.Tensor) -> np.ndarray:
    """A torch input as the interpreter takes it: int64 -> int32 (LiteRT's boundary has no 64-bit integers)."""
    array = value.detach().cpu().numpy()
    return array.astype(np.int32) if array.dtype == np.int64 else array


def export_litert(model: EfficientSam, out_dir: str, image_size: Optional[Sequence[int]] = None, queries: int = 1,
                  points: Optional[int] = None) -> Dict[str, str]:
    """Write ``encoder.tflite``, ``decoder.tflite`` and ``litert.json`` for ``model`` into ``out_dir`` (each
    atomically); shapes as :func:`fixed_shape_inputs`. Returns their paths by role."""
    try:
        import litert_torch
    except ImportError as exc:
        raise ImportError("the LiteRT export needs litert-torch: pip install 'efficientsam-zoo[litert]' (it brings "
                          "jax, torchao and numpy 2; scripts/setup_env_litert.sh makes an environment for it)") from exc
    model = model.eval()
    os.makedirs(out_dir, exist_ok=True)
    paths = {role: os.path.join(out_dir, name) for role, name in LITERT_FILES.items()}
    shapes = {}
    for role, (module, args, inputs, outputs) in fixed_shape_graphs(model, image_size, queries, points).items():
        with torch.no_grad():
            edge = litert_torch.convert(module.eval(), args)
            results = module(*args)
        results = results if isinstance(results, tuple) else (results,)
        with atomic_path(paths[role]) as tmp:
            edge.export(tmp)
        shapes[role] = dict(inputs={n: [list(a.shape), str(_as_litert(a).dtype)] for n, a in zip(inputs, args)},
                            outputs={n: list(r.shape) for n, r in zip(outputs, results)})
    write_json(dict(facts=model_facts(model), graphs=shapes), paths["facts"])
    return paths


class LiteRTGraph:
    """A ``.tflite`` graph loaded once into the LiteRT interpreter (``ai_edge_litert``; ``threads``: default every
    core); call it with its inputs in the graph's order (numpy or torch; int64 as int32) for its outputs in order."""

    def __init__(self, path: str, threads: Optional[int] = None) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.runner = Interpreter(model_path=path, num_threads=threads or os.cpu_count()).get_signature_runner()

    def __call__(self, *inputs) -> Tuple[np.ndarray, ...]:
        out = self.runner(**{f"args_{i}": _as_litert(torch.as_tensor(x)) for i, x in enumerate(inputs)})
        return tuple(out[f"output_{i}"] for i in range(len(out)))


def run_litert(path: str, *inputs) -> Tuple[np.ndarray, ...]:
    """One call of a ``.tflite`` graph (:class:`LiteRTGraph`)."""
    return LiteRTGraph(path)(*inputs)


def verify_litert(model: EfficientSam, paths: Dict[str, str], seed: int = 1) -> Dict[str, float]:
    """Max |difference| between the LiteRT interpreter and PyTorch on fresh seeded inputs of the files' shapes,
    for the embeddings and each decoder output (by ``DECODER_OUTPUTS`` name)."""
    with open(paths["facts"]) as f:
        graphs = json.load(f)["graphs"]
    (h, w) = graphs["encoder"]["inputs"][ENCODER_INPUTS[0]][0][2:]
    _, q, n, _ = graphs["decoder"]["inputs"]["batched_point_coords"][0]
    (images,), dec_args = fixed_shape_inputs(model, (h, w), q, n, seed)
    with torch.no_grad():
        expected = (dec_args[0],) + DecoderGraph(model.eval())(*dec_args)
    got = run_litert(paths["encoder"], images) + run_litert(paths["decoder"], *dec_args)
    names = ("embeddings",) + DECODER_OUTPUTS
    return {name: float(np.abs(ours - ref.numpy()).max()) for name, ours, ref in zip(names, got, expected)}
