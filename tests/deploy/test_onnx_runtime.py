"""The torch-free ONNX predictor (``efficientsam_zoo.onnx_runtime.OnnxPredictor``): masks against the torch predictor on
the main job's finetuned model, PyTorch's bicubic upsampling reproduced in numpy, the same refusals with the same
messages, a graph that is not ours named by its input, and a fresh venv without torch running it."""
import json
import os
import subprocess
import sys
import venv

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import REPO_ROOT

from efficientsam_zoo import EfficientSamPredictor
from efficientsam_zoo.cli.common import load_model_from_args
from efficientsam_zoo.data.synthetic import make_scene
from efficientsam_zoo.export_onnx import export_onnx
from efficientsam_zoo.onnx_runtime import OnnxPredictor, bicubic_matrix
from efficientsam_zoo.utils.masks import mask_to_box


@pytest.fixture(scope="module")
def pair(quickstart, tmp_path_factory):
    """The main job's finetuned EfficientSAM, its two graphs, and both predictors."""
    model = load_model_from_args(None, str(quickstart[0] / "model"), "cpu")
    paths = export_onnx(model, str(tmp_path_factory.mktemp("onnx")))
    return model, paths, EfficientSamPredictor(model), OnnxPredictor(paths["encoder"], paths["decoder"])


def _prompts(masks):
    """A click at each object's centre pixel and its box, and both together."""
    for m in masks:
        ys, xs = np.nonzero(m)
        k = np.argmin((xs - xs.mean()) ** 2 + (ys - ys.mean()) ** 2)
        yield dict(point_coords=[[xs[k], ys[k]]], point_labels=[1])
        yield dict(box=mask_to_box(m))
        yield dict(point_coords=[[xs[k], ys[k]]], point_labels=[1], box=mask_to_box(m))


def test_masks_match_the_torch_predictor(pair):
    """Every candidate mask of every prompt on three held-out scenes (one of them not square, one 16-bit): IoU >=
    0.999 with the torch predictor's, scores within 2e-3."""
    _, _, torch_predictor, onnx_predictor = pair
    worst_iou, worst_score, count = 1.0, 0.0, 0
    for seed, (h, w), bits in [(6_000_000, (128, 128), 8), (6_000_001, (96, 150), 8), (6_000_002, (128, 128), 16)]:
        image, masks = make_scene(seed, h, w)
        if bits == 16:
            image = image.astype(np.uint16) * 257
        torch_predictor.set_image(image)
        onnx_predictor.set_image(image)
        for prompt in _prompts(masks):
            ours, scores, low_res = onnx_predictor.predict(**prompt)
            ref, ref_scores, _ = torch_predictor.predict(**prompt)
            assert ours.shape == ref.shape == (3, h, w) and ours.dtype == bool and low_res.shape[0] == 3
            for a, b in zip(ours, ref):
                worst_iou = min(worst_iou, (a & b).sum() / max((a | b).sum(), 1))
            worst_score = max(worst_score, float(np.abs(scores - ref_scores).max()))
            count += 1
    print(f"{count} prompts: worst mask IoU {worst_iou:.5f}, worst score difference {worst_score:.2e}")
    assert worst_iou >= 0.999 and worst_score <= 2e-3


@pytest.mark.parametrize("out_size,in_size", [(150, 32), (96, 32), (31, 64), (64, 64)])
def test_bicubic_matrix_is_pytorchs_bicubic(out_size, in_size):
    """Up, down and same size, against ``F.interpolate`` itself; a kernel with A = -0.5 (Keys') is visibly off."""
    x = torch.randn(2, in_size, in_size)
    ref = F.interpolate(x[None], (out_size, out_size), mode="bicubic")[0].numpy()
    m = bicubic_matrix(out_size, in_size)
    ours = m @ x.numpy() @ m.T
    assert np.abs(ours - ref).max() < 1e-4
    if out_size != in_size:
        import efficientsam_zoo.onnx_runtime as rt

        rt.bicubic_matrix.cache_clear()
        old, rt._A = rt._A, -0.5
        try:
            m = rt.bicubic_matrix(out_size, in_size)
            assert np.abs(m @ x.numpy() @ m.T - ref).max() > 1e-2
        finally:
            rt._A = old
            rt.bicubic_matrix.cache_clear()


def test_bad_input_is_refused_with_the_torch_predictors_messages(pair, tmp_path):
    _, paths, torch_predictor, onnx_predictor = pair
    image, _ = make_scene(6_000_003, 64, 80)
    for p in (torch_predictor, onnx_predictor):
        p.set_image(image)
    cases = [dict(point_coords=[[np.nan, 3]], point_labels=[1]), dict(point_coords=[[200, 10]], point_labels=[1]),
             dict(box=[50, 40, 10, 5]), dict(point_coords=[[5, 5]], point_labels=[0]),
             dict(point_coords=[[1, 2]] * 7, point_labels=[1] * 7), dict(point_coords=[1, 2], point_labels=[1])]
    for prompt in cases:
        with pytest.raises(ValueError) as ref:
            torch_predictor.predict(**prompt)
        with pytest.raises(ValueError) as ours:
            onnx_predictor.predict(**prompt)
        assert str(ours.value) == str(ref.value), prompt
    for image in (np.full((8, 8, 3), np.nan, np.float32), np.zeros((8, 8, 3), np.int32), np.zeros((8, 8, 2), np.uint8)):
        with pytest.raises(ValueError) as ref:
            torch_predictor.set_image(image)
        with pytest.raises(ValueError) as ours:
            onnx_predictor.set_image(image)
        assert str(ours.value) == str(ref.value)
    with pytest.raises(ValueError, match="multimask_output=True"):
        onnx_predictor.predict(point_coords=[[5, 5]], point_labels=[1], multimask_output=False)
    with pytest.raises(ValueError, match=r"'.*decoder\.onnx' is not an efficientsam-zoo encoder graph: its inputs are "
                                         r"\['image_embeddings', .*\(first mismatch: 'batched_images'\)"):
        OnnxPredictor(paths["decoder"], paths["decoder"])
    import onnx

    bare = onnx.load(paths["decoder"])
    del bare.metadata_props[:]
    onnx.save(bare, str(tmp_path / "bare.onnx"))
    with pytest.raises(ValueError, match=r"carries no 'efficientsam_zoo' metadata .* export-onnx"):
        OnnxPredictor(paths["encoder"], str(tmp_path / "bare.onnx"))


_SCRIPT = """
import json, sys
import numpy as np
from efficientsam_zoo import OnnxPredictor
predictor = OnnxPredictor(sys.argv[1], sys.argv[2])
image = np.load(sys.argv[3])
predictor.set_image(image)
masks, scores, _ = predictor.predict(point_coords=[[40, 50]], point_labels=[1])
print(json.dumps(dict(torch="torch" in sys.modules, sums=masks.sum((1, 2)).tolist(), scores=scores.tolist())))
"""


def test_a_fresh_venv_without_torch_runs_it(pair, tmp_path):
    """A new venv whose only packages are onnxruntime, numpy and Pillow (and what they need), linked from this one:
    torch cannot be imported there, and the predictor gives the masks it gives here."""
    _, paths, _, onnx_predictor = pair
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    here = next(p for p in sys.path if p.endswith("site-packages") and os.path.isdir(os.path.join(p, "onnxruntime")))
    wanted = ("numpy", "onnxruntime", "PIL", "pillow", "flatbuffers", "packaging", "google", "protobuf", "coloredlogs",
              "humanfriendly", "sympy", "mpmath")
    linked = tmp_path / "only"
    linked.mkdir()
    for name in os.listdir(here):
        if name.split("-")[0].split(".")[0] in wanted or name.lower().startswith(("numpy", "pillow")):
            os.symlink(os.path.join(here, name), linked / name)
    site = next((env_dir / "lib").glob("python3*/site-packages"))
    (site / "only.pth").write_text(f"{linked}\n{REPO_ROOT}\n")
    image, _ = make_scene(6_000_004, 96, 128)
    np.save(tmp_path / "image.npy", image)
    python = str(env_dir / "bin" / "python")
    probe = subprocess.run([python, "-c", "import importlib.util as u; print(u.find_spec('torch') is None)"],
                           capture_output=True, text=True, check=True)
    assert probe.stdout.strip() == "True"  # the control: torch really is absent there
    run = subprocess.run([python, "-c", _SCRIPT, paths["encoder"], paths["decoder"], str(tmp_path / "image.npy")],
                         capture_output=True, text=True, cwd=str(tmp_path))
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    onnx_predictor.set_image(image)
    masks, scores, _ = onnx_predictor.predict(point_coords=[[40, 50]], point_labels=[1])
    assert out["torch"] is False
    assert out["sums"] == masks.sum((1, 2)).tolist() and np.allclose(out["scores"], scores, atol=1e-6)
