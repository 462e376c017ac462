"""CoreML export for Apple devices: ``encoder.mlpackage`` and ``decoder.mlpackage`` (ML programs).

The graphs are the ONNX pair's own modules (``export_onnx.EncoderGraph`` / ``DecoderGraph``) at fixed shapes, as
with ``export_litert`` (``export_onnx.fixed_shape_inputs``). coremltools' TorchScript frontend has no conversion for
``upsample_bicubic2d`` (the release resizes its position embedding bicubically on every forward), so the modules go
through ``torch.export`` and PyTorch's own decompositions first (:func:`coreml_programs`): bicubic becomes gathers,
products and sums, which coremltools converts. Those decomposed programs are what CoreML receives; on Linux they
can be run with PyTorch and compared with the model (:func:`verify_coreml_programs`; a CoreML model itself runs only
on macOS). Input and output names are the ONNX pair's; the model's facts are in each package's user metadata under
``efficientsam_zoo``.

Install: ``pip install 'efficientsam-zoo[coreml]'`` (coremltools).
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from typing import Dict, Optional, Sequence, Tuple

import torch

from .export_onnx import fixed_shape_graphs, model_facts
from .modeling.efficient_sam import EfficientSam
from .utils.onnx_graphs import METADATA_KEY

__all__ = ["COREML_FILES", "coreml_programs", "export_coreml", "verify_coreml_programs"]

COREML_FILES = {"encoder": "encoder.mlpackage", "decoder": "decoder.mlpackage"}


def coreml_programs(model: EfficientSam, image_size: Optional[Sequence[int]] = None, queries: int = 1,
                    points: Optional[int] = None) -> Dict[str, Tuple]:
    """``{role: (decomposed ExportedProgram, example args, input names, output names, graph module)}`` at fixed
    shapes (one image of ``image_size``; ``queries`` x ``points`` prompts): what :func:`export_coreml` converts and
    :func:`verify_coreml_programs` checks."""
    out = {}
    for role, (module, args, inputs, outputs) in fixed_shape_graphs(model.eval(), image_size, queries, points).items():
        args = tuple(a.contiguous() for a in args)  # coremltools takes inputs in the default memory order only
        with torch.no_grad():
            program = torch.export.export(module.eval(), args).run_decompositions()
        out[role] = (program, args, tuple(inputs), tuple(outputs), module)
    return out


def verify_coreml_programs(programs: Dict[str, Tuple]) -> Dict[str, float]:
    """Max |difference| between the decomposed programs CoreML receives (:func:`coreml_programs`) and the model's
    graph modules, per output (``encoder.image_embeddings``, ``decoder.low_res_logits`` ...): the part of a CoreML
    export Linux can check."""
    diffs = {}
    with torch.no_grad():
        for role, (program, args, _, outputs, module) in programs.items():
            ours, ref = program.module()(*args), module(*args)
            ours, ref = (ours,) if torch.is_tensor(ours) else ours, (ref,) if torch.is_tensor(ref) else ref
            diffs.update({f"{role}.{name}": float((a - b).abs().max()) for name, a, b in zip(outputs, ours, ref)})
    return diffs


def export_coreml(model: EfficientSam, out_dir: str, image_size: Optional[Sequence[int]] = None, queries: int = 1,
                  points: Optional[int] = None, programs: Optional[Dict[str, Tuple]] = None) -> Dict[str, str]:
    """Write ``encoder.mlpackage`` and ``decoder.mlpackage`` (iOS 17 / macOS 14 ML programs, fp32) into ``out_dir``;
    each package is written beside its place and moved there whole. ``programs``: :func:`coreml_programs` already
    made (its shapes then rule); else made here. Returns their paths by role."""
    try:
        import coremltools as ct
    except ImportError as exc:
        raise ImportError("the CoreML export needs coremltools: pip install 'efficientsam-zoo[coreml]'") from exc
    os.makedirs(out_dir, exist_ok=True)
    paths = {}
    for role, (program, _, _, outputs, _) in (programs or coreml_programs(model, image_size, queries, points)).items():
        mlmodel = ct.convert(program, convert_to="mlprogram", minimum_deployment_target=ct.target.iOS17,
                             compute_precision=ct.precision.FLOAT32)
        spec = mlmodel.get_spec()
        for old, new in zip([o.name for o in spec.description.output], outputs):
            ct.utils.rename_feature(spec, old, new)
        spec.description.metadata.userDefined[METADATA_KEY] = json.dumps(model_facts(model))
        mlmodel = ct.models.MLModel(spec, weights_dir=mlmodel.weights_dir, skip_model_load=True)
        paths[role] = os.path.join(out_dir, COREML_FILES[role])
        work = tempfile.mkdtemp(prefix=f".{role}-", dir=out_dir)
        try:
            mlmodel.save(os.path.join(work, COREML_FILES[role]))
            if os.path.exists(paths[role]):
                shutil.rmtree(paths[role])
            os.replace(os.path.join(work, COREML_FILES[role]), paths[role])
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return paths
