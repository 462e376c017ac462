"""int8 graphs (``efficientsam_zoo.onnx_quantize``, ``export-onnx --quantize int8``): the same file names and
metadata, really quantized (int8 operators, smaller files), and masks close to fp32 torch on the main job's finetuned
model. The IoU bars come from this CPU's measurement (README "Deploy": dynamic 0.997, static 0.991 mean IoU on
held-out generated scenes), with a margin."""
import os

import numpy as np
import onnx
import pytest
from PIL import Image

from efficientsam_zoo import EfficientSamPredictor
from efficientsam_zoo.cli import main
from efficientsam_zoo.cli.common import load_model_from_args
from efficientsam_zoo.data.synthetic import make_scene
from efficientsam_zoo.export_onnx import export_onnx
from efficientsam_zoo.onnx_quantize import quantize_int8
from efficientsam_zoo.onnx_runtime import OnnxPredictor
from efficientsam_zoo.utils.onnx_graphs import METADATA_KEY

INT8_OPS = {"MatMulInteger", "DynamicQuantizeLinear", "QuantizeLinear", "DequantizeLinear", "ConvInteger"}


@pytest.fixture(scope="module")
def model_dir(quickstart):
    return str(quickstart[0] / "model")


@pytest.fixture(scope="module")
def fp32(model_dir, tmp_path_factory):
    model = load_model_from_args(None, model_dir, "cpu")
    return model, export_onnx(model, str(tmp_path_factory.mktemp("fp32")))


def _mean_iou(model, predictor):
    """Mean IoU of the best-scoring mask against fp32 torch's, one click per object of five held-out scenes."""
    reference, ious = EfficientSamPredictor(model), []
    for seed in range(6_100_000, 6_100_005):
        image, masks = make_scene(seed, 128, 128)
        reference.set_image(image)
        predictor.set_image(image)
        for gt in masks:
            ys, xs = np.nonzero(gt)
            click = dict(point_coords=[[xs[len(xs) // 2], ys[len(ys) // 2]]], point_labels=[1])
            a, sa, _ = predictor.predict(**click)
            b, sb, _ = reference.predict(**click)
            a, b = a[np.argmax(sa)], b[np.argmax(sb)]
            ious.append((a & b).sum() / max((a | b).sum(), 1))
    return float(np.mean(ious))


def _ops(path):
    return {n.op_type for n in onnx.load(path).graph.node}


def test_dynamic_int8_is_quantized_and_close_to_fp32(fp32, tmp_path):
    model, paths = fp32
    int8 = quantize_int8(os.path.dirname(paths["encoder"]), str(tmp_path / "int8"))
    for role in ("encoder", "decoder"):
        assert int8[role].endswith(f"/{role}.onnx") and _ops(int8[role]) & INT8_OPS and not _ops(paths[role]) & INT8_OPS
        assert METADATA_KEY in {p.key for p in onnx.load(int8[role]).metadata_props}
    assert os.path.getsize(int8["encoder"]) < 0.6 * os.path.getsize(paths["encoder"])
    iou = _mean_iou(model, OnnxPredictor(int8["encoder"], int8["decoder"]))
    print(f"dynamic int8: mean IoU {iou:.4f} against fp32 torch")
    assert iou >= 0.98


def test_static_int8_through_the_cli(model_dir, fp32, tmp_path, capsys):
    calibration = tmp_path / "calibration"
    calibration.mkdir()
    for i in range(8):
        Image.fromarray(make_scene(8_000_000 + i, 128, 128)[0]).save(calibration / f"{i}.png")
    out = tmp_path / "int8"
    assert main(["export-onnx", "--checkpoint", model_dir, "--out-dir", str(out), "--quantize", "int8",
                 "--calibration", str(calibration)]) == 0
    assert "int8 (static encoder (8 calibration images)) written" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["decoder.onnx", "encoder.onnx"]  # nothing half-written left
    assert {"QuantizeLinear", "DequantizeLinear"} <= _ops(str(out / "encoder.onnx"))
    iou = _mean_iou(fp32[0], OnnxPredictor(str(out / "encoder.onnx"), str(out / "decoder.onnx")))
    print(f"static int8: mean IoU {iou:.4f} against fp32 torch")
    assert iou >= 0.95


def test_bad_calibration_is_named_before_the_export(model_dir, tmp_path, capsys):
    with pytest.raises(SystemExit, match="--calibration goes with --quantize int8"):
        main(["export-onnx", "--checkpoint", model_dir, "--out-dir", str(tmp_path / "o"), "--calibration", "x"])
    (tmp_path / "empty").mkdir()
    assert main(["export-onnx", "--checkpoint", model_dir, "--out-dir", str(tmp_path / "o"), "--quantize", "int8",
                 "--calibration", str(tmp_path / "empty")]) == 2
    assert "holds no images" in capsys.readouterr().err and not (tmp_path / "o").exists()
