"""CoreML export (``efficientsam-zoo export-coreml``), checked as far as Linux allows: both packages convert and
save; their specs name the ONNX pair's inputs and outputs with the fixed shapes and types asked for, and carry the
model's facts; the decomposed programs coremltools converts hold no bicubic op (which its PyTorch frontend lacks)
and compute what the model computes. Running a CoreML model needs macOS (coremltools has no Linux runtime), so no
CoreML output is compared here."""
import json

import pytest
import torch
from conftest import TINY, randomize_

ct = pytest.importorskip("coremltools", reason="coremltools is not installed (the [coreml] extra)")

from efficientsam_zoo import EfficientSamSpec, build_efficient_sam  # noqa: E402
from efficientsam_zoo.export_coreml import coreml_programs, export_coreml, verify_coreml_programs  # noqa: E402
from efficientsam_zoo.export_onnx import DecoderGraph, EncoderGraph  # noqa: E402
from efficientsam_zoo.utils.onnx_graphs import DECODER_OUTPUTS, METADATA_KEY, decoder_inputs  # noqa: E402

FLOAT32, INT32 = 65568, 131104  # coremltools' ArrayFeatureType data types


@pytest.fixture(scope="module")
def model():
    spec = EfficientSamSpec(**TINY, negative_points=True, mask_prompts=True)
    return randomize_(build_efficient_sam(spec), seed=10).eval()


def test_packages_carry_the_pairs_names_shapes_and_facts(model, tmp_path):
    paths = export_coreml(model, str(tmp_path), image_size=(48, 80), queries=2, points=3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["decoder.mlpackage", "encoder.mlpackage"]  # nothing else
    enc, dec = (ct.utils.load_spec(paths[role]) for role in ("encoder", "decoder"))
    features = lambda fs: [(f.name, list(f.type.multiArrayType.shape), f.type.multiArrayType.dataType)  # noqa: E731
                           for f in fs]
    grid, low = TINY["img_size"] // 16, TINY["img_size"] // 4
    assert features(enc.description.input) == [("batched_images", [1, 3, 48, 80], FLOAT32)]
    assert features(enc.description.output) == [("image_embeddings", [1, TINY["neck_dim"], grid, grid], FLOAT32)]
    assert [f[0] for f in features(dec.description.input)] == list(decoder_inputs(True))
    assert features(dec.description.input)[1:3] == [("batched_point_coords", [1, 2, 3, 2], FLOAT32),
                                                    ("batched_point_labels", [1, 2, 3], INT32)]
    assert features(dec.description.output) == [
        (DECODER_OUTPUTS[0], [1, 2, 3, low, low], FLOAT32), (DECODER_OUTPUTS[1], [1, 2, 3], FLOAT32),
        (DECODER_OUTPUTS[2], [1, 2, 1, low, low], FLOAT32), (DECODER_OUTPUTS[3], [1, 2, 1], FLOAT32)]
    facts = json.loads(dec.description.metadata.userDefined[METADATA_KEY])
    assert facts["mask_prompts"] is True and facts["decoder_max_num_input_points"] == 6


def test_the_programs_coreml_converts_compute_the_model(model):
    """The decomposed programs equal the graphs' eager modules (<= 1e-5) on other inputs of the same shapes; the
    control: before the decomposition the encoder holds the bicubic op coremltools cannot convert."""
    programs = coreml_programs(model, (48, 80), 2, 3)
    for role, (program, args, _, _, _) in programs.items():
        ops = {str(n.target) for n in program.graph.nodes if n.op == "call_function"}
        assert not any("bicubic" in op for op in ops), role
    g = torch.Generator().manual_seed(11)
    images = torch.rand(1, 3, 48, 80, generator=g)
    with torch.no_grad():
        eager = EncoderGraph(model)(images)
        ours = programs["encoder"][0].module()(images)
        assert (ours - eager).abs().max() < 1e-5
        dec_args = (eager.contiguous(),) + tuple(a + 0.5 * torch.rand(a.shape, generator=g) if a.is_floating_point()
                                                 and a.ndim > 1 else a for a in programs["decoder"][1][1:])
        for ours, ref in zip(programs["decoder"][0].module()(*dec_args), DecoderGraph(model)(*dec_args)):
            assert (ours - ref).abs().max() < 1e-5
        raw = torch.export.export(EncoderGraph(model), (images,))
    assert any("bicubic" in str(n.target) for n in raw.graph.nodes if n.op == "call_function")
    diffs = verify_coreml_programs(programs)  # what export-coreml prints and checks
    assert len(diffs) == 5 and max(diffs.values()) < 1e-5


def test_cli_export_coreml(model, tmp_path, capsys):
    from safetensors.torch import save_file

    from efficientsam_zoo.checkpoints import official_to_hf_efficientsam, write_model_spec
    from efficientsam_zoo.cli import main

    (tmp_path / "model").mkdir()
    write_model_spec(EfficientSamSpec(**TINY, negative_points=True, mask_prompts=True), str(tmp_path / "model"))
    save_file(official_to_hf_efficientsam(model.state_dict()), str(tmp_path / "model" / "model.safetensors"))
    assert main(["export-coreml", "--checkpoint", str(tmp_path / "model"), "--out-dir", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "decoder.single_iou_predictions" in out and "needs macOS" in out
    assert (tmp_path / "out" / "encoder.mlpackage").is_dir()
