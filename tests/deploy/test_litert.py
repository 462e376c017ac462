"""LiteRT export (``efficientsam-zoo export-litert``): both graphs converted by litert-torch and run by the LiteRT
interpreter on this Linux CPU, against PyTorch (max |diff| <= 1e-3, issue #29's bar), for a released-layout model
and one with mask prompts at a non-square image size; the masks the interpreter's outputs give against the torch
predictor's. litert-torch needs numpy 2, so it lives in ``.venv-litert`` (``scripts/setup_env_litert.sh``) and
``.ci/run`` runs this file there; elsewhere it is skipped with that reason."""
import json

import numpy as np
import pytest
import torch
from conftest import TINY, randomize_

pytest.importorskip("litert_torch", reason="litert-torch is not installed here: it runs in .venv-litert "
                                           "(scripts/setup_env_litert.sh; numpy 2, apart from the OpenMMLab stack)")

from efficientsam_zoo import EfficientSamPredictor, EfficientSamSpec, build_efficient_sam  # noqa: E402
from efficientsam_zoo.cli import main  # noqa: E402
from efficientsam_zoo.data.synthetic import make_scene  # noqa: E402
from efficientsam_zoo.export_litert import export_litert, run_litert, verify_litert  # noqa: E402
from efficientsam_zoo.utils.onnx_graphs import DECODER_OUTPUTS  # noqa: E402

TOLERANCE = 1e-3


@pytest.mark.parametrize("mask_prompts,image_size", [(False, None), (True, (48, 80))])
def test_litert_graphs_match_pytorch(tmp_path, mask_prompts, image_size):
    spec = EfficientSamSpec(**TINY, negative_points=mask_prompts, mask_prompts=mask_prompts)
    model = randomize_(build_efficient_sam(spec), seed=6).eval()
    paths = export_litert(model, str(tmp_path), image_size=image_size, queries=2, points=3)
    diffs = verify_litert(model, paths)
    print(f"LiteRT vs PyTorch (mask prompts {mask_prompts}): {diffs}")
    assert set(diffs) == {"embeddings", *DECODER_OUTPUTS} and max(diffs.values()) <= TOLERANCE
    facts = json.loads((tmp_path / "litert.json").read_text())
    h, w = image_size or (TINY["img_size"],) * 2
    assert facts["facts"]["mask_prompts"] is mask_prompts
    assert facts["graphs"]["encoder"]["inputs"]["batched_images"][0] == [1, 3, h, w]
    assert facts["graphs"]["decoder"]["inputs"]["batched_point_labels"] == [[1, 2, 3], "int32"]
    # the control: the check sees a wrong model (other weights, same shapes)
    other = randomize_(build_efficient_sam(spec), seed=7).eval()
    assert max(verify_litert(other, paths).values()) > 1e-2


def test_interpreter_masks_equal_the_torch_predictors(tmp_path):
    """A scene and a click: the interpreter's embedding and decoder outputs, upsampled as the predictor does, give
    the torch predictor's three masks (IoU >= 0.999)."""
    model = randomize_(build_efficient_sam(EfficientSamSpec(**TINY)), seed=8).eval()
    image, masks = make_scene(6_000_008, 64, 64)
    paths = export_litert(model, str(tmp_path), image_size=(64, 64), queries=1, points=1)
    ys, xs = np.nonzero(masks[0])
    click = np.array([[[[xs[len(xs) // 2], ys[len(ys) // 2]]]]], np.float32)
    pixels = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    (embedding,) = run_litert(paths["encoder"], pixels)
    low_res, scores, _, _ = run_litert(paths["decoder"], embedding, click, np.ones((1, 1, 1), np.int64),
                                       np.array([64.0, 64.0], np.float32))
    predictor = EfficientSamPredictor(model)
    predictor.set_image(image)
    ref, ref_scores, _ = predictor.predict(point_coords=click[0, 0], point_labels=[1])
    ours = predictor.upscale(torch.from_numpy(low_res[0]))[0].numpy() > model.mask_threshold
    for a, b in zip(ours, ref):
        assert (a & b).sum() / max((a | b).sum(), 1) >= 0.999
    assert np.abs(scores[0, 0] - ref_scores).max() < 1e-3


def test_cli_export_litert(tmp_path, capsys):
    """The command on a model directory (``spec.json`` + ``model.safetensors``, as ``finetune`` writes)."""
    from safetensors.torch import save_file

    from efficientsam_zoo.checkpoints import official_to_hf_efficientsam, write_model_spec

    model = randomize_(build_efficient_sam(EfficientSamSpec(**TINY)), seed=9)
    (tmp_path / "model").mkdir()
    write_model_spec(EfficientSamSpec(**TINY), str(tmp_path / "model"))
    save_file(official_to_hf_efficientsam(model.state_dict()), str(tmp_path / "model" / "model.safetensors"))
    assert main(["export-litert", "--checkpoint", str(tmp_path / "model"), "--out-dir", str(tmp_path / "out"),
                 "--points", "2"]) == 0
    out = capsys.readouterr().out
    assert "LiteRT interpreter vs PyTorch max |diff|" in out and (tmp_path / "out" / "decoder.tflite").is_file()
