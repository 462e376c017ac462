"""SAMI pretraining through mmengine's Runner from the shipped tiny-shapes config: loss falls, checkpoints, the
exported backbone loads strictly into transformers' SamiViTModel, precomputed teacher targets. (Learning on held-out
scenes is checked by the quickstart test, resume after a kill by tests/tools/test_resume.py.)"""
import glob
import json
import os
import subprocess
import sys

import pytest
import torch
from conftest import REPO_ROOT as ROOT  # noqa: E402
from PIL import Image

from efficientsam_zoo.checkpoints import read_sami_backbone, read_trainer_checkpoint
from efficientsam_zoo.data.synthetic import make_scene

SMOKE = os.path.join(ROOT, "mm_configs", "sami_pretrain_vit-ti_tiny-shapes.py")


def _run(*args):
    r = subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, cwd=ROOT,
                       env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r.stdout + r.stderr


def _scalars(work_dir):
    files = glob.glob(os.path.join(work_dir, "*", "vis_data", "scalars.json"))
    assert len(files) == 1, files
    return [json.loads(line) for line in open(files[0])]


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("imagenet_like")
    for i in range(16):
        img, _ = make_scene(i, 96, 128)
        (root / f"class{i % 2}").mkdir(exist_ok=True)
        Image.fromarray(img).save(root / f"class{i % 2}" / f"{i}.png")
    return str(root)


@pytest.fixture(scope="module")
def trained(image_folder, tmp_path_factory):
    wd = str(tmp_path_factory.mktemp("sami_wd"))
    _run("efficientsam_zoo.tools.train", SMOKE, "--work-dir", wd,  # the recipe cut to 60 iterations
         "--cfg-options", f"train_dataloader.dataset.data_root={image_folder}", "train_cfg.max_iters=60",
         "param_scheduler.1.T_max=50", "param_scheduler.1.end=60", "default_hooks.checkpoint.interval=30")
    return wd


def test_loss_falls_and_checkpoints_are_written(trained):
    rows = [r for r in _scalars(trained) if "loss" in r]
    assert [r["iter"] for r in rows][-1] == 60
    first = sum(r["loss"] for r in rows[:2]) / 2
    last = sum(r["loss"] for r in rows[-2:]) / 2
    assert last < 0.5 * first, (first, last)
    assert os.path.isfile(os.path.join(trained, "iter_30.pth")) and os.path.isfile(os.path.join(trained, "iter_60.pth"))
    sd = read_trainer_checkpoint(os.path.join(trained, "iter_60.pth"))
    assert any(k.startswith("sami.encoder.blocks.5.") for k in sd)
    assert not any("teacher" in k for k in sd)  # the frozen teacher is not saved


def test_export_loads_strictly_into_hf(trained, tmp_path):
    from efficientsam_zoo.integrations.hf import SamiViTModel
    from efficientsam_zoo.modeling.vit import ViT

    out_file, out_dir = str(tmp_path / "sami_vit-ti.safetensors"), str(tmp_path / "hf")
    log = _run("efficientsam_zoo.cli", "export-backbone", os.path.join(trained, "iter_60.pth"), "--out", out_file,
               "--hf-out", out_dir)
    assert "6 blocks, 192-d, 3 heads" in log
    sd, vit_args = read_sami_backbone(out_file)
    assert vit_args["embed_dim"] == 192 and vit_args["pretrain_img_size"] == 224 and vit_args["pretrain_use_cls_token"]
    assert sd["pos_embed"].shape == (1, 197, 192) and not any(k.startswith(("neck", "decoder", "head")) for k in sd)
    model, info = SamiViTModel.from_pretrained(out_dir, output_loading_info=True)
    assert info["missing_keys"] == set() or not info["missing_keys"]
    assert not info["unexpected_keys"] and not info["mismatched_keys"]
    native = ViT(img_size=224, embed_dim=192, depth=6, num_heads=3, neck_dim=None).eval()
    native.load_state_dict(sd, strict=True)
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(model(x).last_hidden_state, native(x).flatten(2).transpose(1, 2))


def test_precomputed_teacher_features_resume_and_train(image_folder, tmp_path):
    import numpy as np

    from efficientsam_zoo.integrations.openmmlab.data import PrecomputedFeatureDataset

    tool = "efficientsam_zoo.tools.precompute_teacher"
    part, whole = str(tmp_path / "part"), str(tmp_path / "whole")
    _run(tool, SMOKE, "--data-root", image_folder, "--out", part, "--batch-size", "4", "--limit", "6")
    assert json.load(open(os.path.join(part, "progress.json"))) == {"done": 6, "total": 16}
    with pytest.raises(RuntimeError, match="incomplete"):
        PrecomputedFeatureDataset(part)
    _run(tool, SMOKE, "--data-root", image_folder, "--out", part, "--batch-size", "4")  # resumes at 6
    _run(tool, SMOKE, "--data-root", image_folder, "--out", whole, "--batch-size", "16")
    a, b = np.load(os.path.join(part, "features.npy")), np.load(os.path.join(whole, "features.npy"))
    assert a.shape == (16, 64, 32) and a.dtype == np.float16  # the 128-px student: an 8x8 grid
    np.testing.assert_allclose(a.astype(np.float32), b.astype(np.float32), atol=2e-3)
    assert np.abs(a).sum() > 0

    # sharded: two processes at once, each its own slice of the one features.npy
    sharded = str(tmp_path / "sharded")
    argv = [sys.executable, "-m", tool, SMOKE, "--data-root", image_folder, "--out", sharded, "--batch-size", "4",
            "--world-size", "2", "--rank"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    _run(tool, SMOKE, "--data-root", image_folder, "--out", sharded, "--batch-size", "4", "--world-size", "2",
         "--rank", "1", "--limit", "4")
    with pytest.raises(RuntimeError, match=r"incomplete \(4/16\)"):
        PrecomputedFeatureDataset(sharded)
    procs = [subprocess.Popen(argv + [str(r)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
             for r in (0, 1)]
    outs = [p.communicate(timeout=600)[0].decode() for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    assert "8/8 images (rank 1 of 2)" in outs[1] and "8/8 images (rank 0 of 2)" in outs[0]  # rank 1 resumed at 4
    assert json.load(open(os.path.join(sharded, "progress.1-of-2.json"))) == {"start": 8, "end": 16, "done": 16}
    np.testing.assert_allclose(np.load(os.path.join(sharded, "features.npy")).astype(np.float32),
                               b.astype(np.float32), atol=2e-3)
    assert len(PrecomputedFeatureDataset(sharded)) == 16

    wd = str(tmp_path / "wd")
    _run("efficientsam_zoo.tools.train", os.path.join(ROOT, "mm_configs", "sami_pretrain_vit-ti_precomputed_smoke.py"),
         "--work-dir", wd, "--cfg-options", f"train_dataloader.dataset.feature_dir={part}", "train_cfg.max_iters=60")
    rows = [r for r in _scalars(wd) if "loss" in r]
    assert rows[-1]["iter"] == 60
    assert sum(r["loss"] for r in rows[-2:]) < 0.5 * sum(r["loss"] for r in rows[:2])
