"""int8 versions of the two ONNX graphs, with ``onnxruntime.quantization`` (no torch needed).

* **dynamic** (no calibration images): int8 weights for every ``MatMul`` / ``Gemm``, activations quantized on the
  fly per call;
* **static** (``calibration`` images given): the encoder's ``MatMul`` / ``Gemm`` / ``Conv`` in QDQ form, int8
  weights per channel and uint8 activations whose ranges come from running the fp32 encoder on the calibration images (min / max); the decoder stays
  dynamic (its inputs are prompts, not images, and it is a small part of the time).

The files keep the fp32 names (``encoder.onnx``, ``decoder.onnx``) and metadata, so any loader of the pair
(``OnnxPredictor``, the labelling-tool bundles) takes either precision.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from typing import Dict, Iterable, Optional, Sequence

from .utils.onnx_graphs import ENCODER_INPUTS, GRAPH_FILES

__all__ = ["quantize_int8", "calibration_images", "DYNAMIC_OPS", "STATIC_OPS"]

DYNAMIC_OPS = ["MatMul", "Gemm"]  # the linear layers: almost all of the weights and of the time
STATIC_OPS = ["MatMul", "Gemm", "Conv"]  # plus the patch embedding and the neck


def calibration_images(folder: str, limit: int = 16) -> list:
    """Up to ``limit`` image files of ``folder`` (sorted), refused by name when there is none."""
    from .utils.image import IMAGE_EXTENSIONS

    if not os.path.isdir(folder):
        raise FileNotFoundError(f"--calibration {folder!r} is not a folder of images")
    files = sorted(f for f in os.listdir(folder) if f.lower().endswith(IMAGE_EXTENSIONS))
    if not files:
        raise ValueError(f"--calibration {folder!r} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
    return [os.path.join(folder, f) for f in files[:limit]]


class _ImageReader:
    """onnxruntime's ``CalibrationDataReader`` protocol over image files, read as the predictors read them."""

    def __init__(self, paths: Iterable[str]) -> None:
        self._paths = iter(list(paths))

    def get_next(self) -> Optional[Dict]:
        from .utils.image import image_to_array, load_image_rgb

        path = next(self._paths, None)
        return None if path is None else {ENCODER_INPUTS[0]: image_to_array(load_image_rgb(path))[None]}


def quantize_int8(fp32_dir: str, out_dir: str, calibration: Optional[Sequence[str]] = None) -> Dict[str, str]:
    """Quantize ``fp32_dir``'s ``encoder.onnx`` / ``decoder.onnx`` into ``out_dir`` under the same names (each file
    written atomically): static for the encoder when ``calibration`` image paths are given, else dynamic."""
    import onnx
    from onnxruntime.quantization import (CalibrationMethod, QuantFormat, QuantType, quant_pre_process,
                                          quantize_dynamic, quantize_static)

    os.makedirs(out_dir, exist_ok=True)
    paths = {}
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".quantize-") as work:
        for role, name in GRAPH_FILES.items():
            source, target = os.path.join(fp32_dir, name), os.path.join(work, name)
            if not os.path.isfile(source):
                raise FileNotFoundError(f"{source!r} does not exist: write the fp32 pair first (export_onnx)")
            if role == "encoder" and calibration:
                prepared = os.path.join(work, "prepared.onnx")
                quant_pre_process(source, prepared, skip_symbolic_shape=True)
                quantize_static(prepared, target, _ImageReader(calibration), quant_format=QuantFormat.QDQ,
                                per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                                calibrate_method=CalibrationMethod.MinMax, op_types_to_quantize=STATIC_OPS)
            else:
                quantize_dynamic(source, target, weight_type=QuantType.QInt8, op_types_to_quantize=DYNAMIC_OPS)
            graph, fp32 = onnx.load(target), onnx.load(source, load_external_data=False)
            onnx.helper.set_model_props(graph, {p.key: p.value for p in fp32.metadata_props})  # the model's facts
            onnx.save(graph, target)
            paths[role] = os.path.join(out_dir, name)
            shutil.move(target, paths[role] + ".tmp")
            os.replace(paths[role] + ".tmp", paths[role])
    return paths
