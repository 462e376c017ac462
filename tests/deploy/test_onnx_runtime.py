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
from conftest import REPO_ROOT, TINY, randomize_

from efficientsam_zoo import AutomaticMaskGenerator, EfficientSamPredictor, EfficientSamSpec, build_efficient_sam
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


def test_single_mask_negative_clicks_and_mask_prompts(tmp_path):
    """``multimask_output=False`` and ``mask_input`` (a model with negative clicks and mask prompts, as
    ``finetune`` makes): the same masks as the torch predictor, a second round fed the first round's low-res logits
    on both; the mask prompt changes the answer (the control), and a wrongly shaped one is refused with the torch
    predictor's message."""
    spec = EfficientSamSpec(**TINY, negative_points=True, mask_prompts=True)
    model = randomize_(build_efficient_sam(spec), seed=5).eval()
    paths = export_onnx(model, str(tmp_path))
    ours, ref = OnnxPredictor(paths["encoder"], paths["decoder"]), EfficientSamPredictor(model)
    image, masks = make_scene(6_000_007, 80, 96)
    for p in (ours, ref):
        p.set_image(image)
    worst, moved = 1.0, 0.0
    for prompt in list(_prompts(masks[:2])) + [dict(point_coords=[[20, 20], [60, 40]], point_labels=[1, 0])]:
        for multimask in (True, False):
            first, first_scores, first_low = ref.predict(**prompt, multimask_output=multimask)
            got, got_scores, got_low = ours.predict(**prompt, multimask_output=multimask)
            assert got.shape == first.shape == (3 if multimask else 1, 80, 96) and got_low.shape == first_low.shape
            prior = first_low[int(np.argmax(first_scores))][None]
            second, second_scores, _ = ref.predict(**prompt, mask_input=prior, multimask_output=multimask)
            again, again_scores, _ = ours.predict(**prompt, mask_input=prior, multimask_output=multimask)
            for a, b in zip((*got, *again), (*first, *second)):
                worst = min(worst, (a & b).sum() / max((a | b).sum(), 1))
            assert np.abs(got_scores - first_scores).max() < 2e-3 and np.abs(again_scores - second_scores).max() < 2e-3
            moved = max(moved, float(np.abs(second_scores - first_scores).max()))
    print(f"single mask and mask prompts on ONNX: worst mask IoU {worst:.5f}; the mask prompt moves scores by "
          f"{moved:.3f}")
    assert worst >= 0.999 and moved > 1e-2
    wrong = np.zeros((1, 8, 8), np.float32)
    with pytest.raises(ValueError) as expected:
        ref.predict(point_coords=[[5, 5]], point_labels=[1], mask_input=wrong)
    with pytest.raises(ValueError) as refused:
        ours.predict(point_coords=[[5, 5]], point_labels=[1], mask_input=wrong)
    assert str(refused.value) == str(expected.value) and "mask_input must be" in str(expected.value)


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
             dict(point_coords=[[1, 2]] * 7, point_labels=[1] * 7), dict(point_coords=[1, 2], point_labels=[1]),
             dict(point_coords=[[5, 5]], point_labels=[1], mask_input=np.zeros((1, 32, 32), np.float32))]
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
    with pytest.raises(ValueError, match=r"'.*decoder\.onnx' is not an efficientsam-zoo encoder graph: its inputs are "
                                         r"\['image_embeddings', .*\(first mismatch: 'batched_images'\)"):
        OnnxPredictor(paths["decoder"], paths["decoder"])
    import onnx

    bare = onnx.load(paths["decoder"])
    del bare.metadata_props[:]
    onnx.save(bare, str(tmp_path / "bare.onnx"))
    with pytest.raises(ValueError, match=r"carries no 'efficientsam_zoo' metadata .* export-onnx"):
        OnnxPredictor(paths["encoder"], str(tmp_path / "bare.onnx"))


def test_segment_everything_runs_on_it(pair):
    """``AutomaticMaskGenerator(OnnxPredictor(...))`` keeps the masks ``AutomaticMaskGenerator(model)`` keeps, on two
    held-out scenes (one cropped into 2x2 more): the same number of records, each matched by its grid point, mask
    IoU >= 0.99, predicted IoU and stability within 2e-3. The filters are lower than SAM's defaults (which keep
    nothing of this 128-px model's masks) and still drop most candidates."""
    model, _, _, onnx_predictor = pair
    total = 0
    for seed, layers in [(6_000_005, 0), (6_000_006, 1)]:
        image, _ = make_scene(seed, 112, 144)
        options = dict(points_per_side=12, crop_n_layers=layers, output_mode="binary_mask", **FILTERS)
        ref = AutomaticMaskGenerator(model, **options).generate(image)
        ours = AutomaticMaskGenerator(onnx_predictor, **options).generate(image)
        assert len(ours) == len(ref) >= 3
        by_point = {(tuple(r["point_coords"][0]), tuple(r["crop_box"])): r for r in ref}
        for r in ours:
            twin = by_point[(tuple(r["point_coords"][0]), tuple(r["crop_box"]))]
            a, b = r["segmentation"], twin["segmentation"]
            assert (a & b).sum() / (a | b).sum() >= 0.99
            assert abs(r["predicted_iou"] - twin["predicted_iou"]) < 2e-3
            assert abs(r["stability_score"] - twin["stability_score"]) < 2e-3
        total += len(ours)
    print(f"segment everything on ONNX: {total} records, each matching the torch generator's")


#: segment everything's filters for the main job's model (its predicted IoUs: median 0.7, 90th percentile 0.89;
#: stability: median 0.5 and below)
FILTERS = dict(pred_iou_thresh=0.8, stability_score_thresh=0.7)

_SCRIPT = """
import json, sys
import numpy as np
from efficientsam_zoo import AutomaticMaskGenerator, OnnxPredictor
predictor = OnnxPredictor(sys.argv[1], sys.argv[2])
image = np.load(sys.argv[3])
predictor.set_image(image)
masks, scores, _ = predictor.predict(point_coords=[[40, 50]], point_labels=[1])
records = AutomaticMaskGenerator(predictor, points_per_side=8, output_mode="uncompressed_rle",
                                 pred_iou_thresh=0.8, stability_score_thresh=0.7).generate(image)
print(json.dumps(dict(torch="torch" in sys.modules, sums=masks.sum((1, 2)).tolist(), scores=scores.tolist(),
                      everything=sorted(r["area"] for r in records))))
"""


def test_a_fresh_venv_without_torch_runs_it(pair, tmp_path):
    """A new venv whose only packages are onnxruntime, numpy and Pillow (and what they need), linked from this one:
    torch cannot be imported there, and the predictor gives the masks it gives here, one prompt and segment
    everything (its uncompressed RLE needs no pycocotools)."""
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
    records = AutomaticMaskGenerator(onnx_predictor, points_per_side=8, **FILTERS).generate(image)
    assert out["everything"] == sorted(r["area"] for r in records) and len(records) >= 2
