"""ONNX export: encoder + prompt-decoder graphs, onnx.checker, onnxruntime vs PyTorch (max |diff| <= 1e-3)."""
import os

import onnx
import pytest
from conftest import TINY, randomize_

from efficientsam_zoo import EfficientSamSpec, build_efficient_sam
from efficientsam_zoo.export_onnx import export_onnx, random_inputs, verify_onnx
from efficientsam_zoo.utils.onnx_graphs import DECODER_OUTPUTS, decoder_inputs


@pytest.fixture(scope="module", params=[False, True], ids=["released", "mask-prompts"])
def exported(request, tmp_path_factory):
    """A model as released, and one with negative clicks and mask prompts (``finetune``'s): its decoder graph takes
    ``mask_input`` / ``has_mask_input`` too."""
    spec = EfficientSamSpec(**TINY, negative_points=request.param, mask_prompts=request.param)
    model = randomize_(build_efficient_sam(spec), seed=4)
    out = tmp_path_factory.mktemp("onnx")
    return model, export_onnx(model, str(out))


def test_graphs_pass_the_checker_with_dynamic_axes(exported):
    model, paths = exported
    assert sorted(paths) == ["decoder", "encoder"]
    for path in paths.values():
        m = onnx.load(path)
        onnx.checker.check_model(m)
        assert max(op.version for op in m.opset_import if op.domain in ("", "ai.onnx")) >= 17
    dec = onnx.load(paths["decoder"])
    coords = next(i for i in dec.graph.input if i.name == "batched_point_coords")
    dims = coords.type.tensor_type.shape.dim
    assert all(d.dim_param for d in dims[:3])  # batch, queries, points are symbolic


@pytest.mark.parametrize("b,q,n,h,w", [(1, 1, 1, 64, 64), (2, 3, 4, 80, 120), (1, 2, 8, 50, 30)])
def test_onnxruntime_matches_pytorch(exported, b, q, n, h, w):
    """Every output (the multimask outputs and the single mask) against ``predict_masks``; with mask prompts, each
    query decoded with or without its mask as ``has_mask_input`` says."""
    model, paths = exported
    diffs = verify_onnx(model, paths, b=b, q=q, n=n, h=h, w=w)
    assert set(diffs) == {"embeddings", *DECODER_OUTPUTS} and max(diffs.values()) <= 1e-3, diffs


def test_the_mask_prompt_inputs_matter(exported):
    """The control for the test above: a mask-prompt graph's outputs move with ``has_mask_input``, and the single
    mask differs from every multimask output."""
    import onnxruntime as ort

    model, paths = exported
    images, *prompts = random_inputs(1, 4, 2, 64, 64, seed=3, model=model)
    emb = model.get_image_embeddings(images).detach()
    dec = ort.InferenceSession(paths["decoder"], providers=["CPUExecutionProvider"])
    names = [i.name for i in dec.get_inputs()]
    assert names == list(decoder_inputs(model.mask_prompts))
    feeds = dict(zip(names, [t.numpy() for t in (emb, *prompts)]))
    multi, _, single, _ = dec.run(None, feeds)
    assert min(abs(single[:, :, 0] - multi[:, :, k]).max() for k in range(3)) > 1e-2
    if model.mask_prompts:
        flipped = dec.run(None, {**feeds, "has_mask_input": 1 - feeds["has_mask_input"]})[0]
        assert abs(flipped - multi).max() > 1e-2


def test_a_single_token_decoder_exports_its_one_mask(tmp_path):
    """A decoder without multimask outputs (num_multimask_outputs=1): both output pairs hold its one mask, as
    ``MaskDecoder`` returns it for either setting of multimask_output."""
    spec = EfficientSamSpec(**TINY, num_multimask_outputs=1)
    model = randomize_(build_efficient_sam(spec), seed=12)
    diffs = verify_onnx(model, export_onnx(model, str(tmp_path)), q=2, n=2)
    assert max(diffs.values()) <= 1e-3, diffs


@pytest.mark.slow
def test_cli_export_real_size(official_ti_checkpoint, tmp_path, capsys):
    import re

    from efficientsam_zoo.cli import main

    assert main(["export-onnx", "--checkpoint", official_ti_checkpoint, "--out-dir", str(tmp_path)]) == 0
    model = build_efficient_sam("efficientsam-ti")
    enc_bytes = 4 * sum(p.numel() for p in model.image_encoder.parameters())
    dec_bytes = 4 * sum(p.numel() for n, p in model.named_parameters() if not n.startswith("image_encoder."))
    assert 0.95 * enc_bytes < os.path.getsize(tmp_path / "encoder.onnx") < 1.2 * enc_bytes  # weights inside
    assert 0.95 * dec_bytes < os.path.getsize(tmp_path / "decoder.onnx") < 1.3 * dec_bytes
    diffs = [float(x) for x in re.findall(r"(?:embeddings|logits|predictions) ([0-9.e+-]+)", capsys.readouterr().out)]
    assert len(diffs) == 5 and max(diffs) <= 1e-3
