"""The paper's baselines and ablations (issue: MAE rows of Tables 1-4, Tables 6-7, the CLIP target): every shipped
config runs as its CPU smoke variant (``--cpu-smoke``) through mmengine's Runner, and the run keeps the option the
experiment is about."""
import glob
import math
import os

import pytest
from mmengine.config import Config
from trainer_utils import mm_scalars, run

import numpy as np
import torch

from efficientsam_zoo.data.synthetic import make_scene
from efficientsam_zoo.tools.configs import SMOKE_ITERS, resolve_config

pytestmark = pytest.mark.paper

#: config -> the model options the experiment is about
EXPERIMENTS = {
    "mae_pretrain_vit-ti_in1k": dict(target="pixels", teacher=None, decoder_queries="all"),
    "ablations/sami_vit-ti_loss-cosine_in1k": dict(loss="cosine"),
    "ablations/sami_vit-ti_decoder-all-tokens_in1k": dict(decoder_queries="all"),
    "ablations/sami_vit-b_mask-50_in1k": dict(mask_ratio=0.5),
    "ablations/sami_vit-b_mask-85_in1k": dict(mask_ratio=0.85),
    "ablations/sami_vit-ti_target-clip_in1k": dict(teacher="hf_clip"),
}


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    from PIL import Image

    root = tmp_path_factory.mktemp("scenes")
    for i in range(8):
        Image.fromarray(make_scene(i, 96, 128)[0]).save(root / f"{i}.png")
    return str(root)


def _options(model) -> dict:
    teacher = model.get("teacher")
    return dict(target=model.get("target", "teacher"), loss=model.get("loss", "mse"),
                mask_ratio=model.get("mask_ratio"), decoder_queries=(model.get("decoder") or {}).get("queries", "masked"),
                teacher=None if teacher is None else teacher["type"])


@pytest.fixture(scope="module")
def smoke_runs(images, tmp_path_factory):
    """Every experiment's ``--cpu-smoke`` run (its schedule cut to SMOKE_ITERS), one after another in this one process:
    ``{name: (the model the Runner trained, the config it dumped, the logged losses)}``."""
    from efficientsam_zoo.tools.train import build_runner

    out = {}
    for name in EXPERIMENTS:
        wd = str(tmp_path_factory.mktemp("smoke"))
        runner = build_runner([name, "--cpu-smoke", images, "--work-dir", wd, "--cfg-options",
                               "default_hooks.logger.interval=1"])
        runner.train()
        (dumped,) = glob.glob(os.path.join(wd, "*.py"))  # the config the Runner ran
        out[name] = (runner.model, Config.fromfile(dumped), [r["loss"] for r in mm_scalars(wd) if "loss" in r])
    return out


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_paper_config_runs_as_cpu_smoke_and_learns(name, smoke_runs):
    """The smoke run keeps the option the experiment is about -- in the config it ran and in the model it trained --
    and its loss falls (the last 10 iterations' mean at most 70 % of the first 5's)."""
    full = _options(Config.fromfile(resolve_config(name)).model)
    for key, value in EXPERIMENTS[name].items():
        assert full[key] == value, (key, full[key])
    model, ran_cfg, losses = smoke_runs[name]
    ran = _options(ran_cfg.model)
    assert {k: ran[k] for k in ("target", "loss", "mask_ratio", "decoder_queries")} == \
        {k: full[k] for k in ("target", "loss", "mask_ratio", "decoder_queries")}
    assert (ran["teacher"] is None) == (full["teacher"] is None)
    if full["teacher"] == "hf_clip":
        assert ran["teacher"] == "hf_clip" and type(model.teacher).__name__ == "HFClipTeacher"
    sami = model.sami
    assert sami.loss_type == full["loss"] and sami.target == full["target"]
    assert sami.decoder.queries == full["decoder_queries"]
    if full["mask_ratio"] is not None:  # the trained model hides that share of the tokens
        n = sami.encoder.grid_size[0] * sami.encoder.grid_size[1]
        with torch.no_grad():
            mask = sami.forward_features(torch.randn(2, 3, sami.encoder.img_size, sami.encoder.img_size))["mask"]
        assert int(mask[0].sum()) == n - round(n * (1 - full["mask_ratio"]))
    assert len(losses) == SMOKE_ITERS and all(math.isfinite(v) and v > 0 for v in losses)
    assert np.mean(losses[-10:]) <= 0.7 * np.mean(losses[:5]), losses


def test_sam_mae_config_differs_from_the_sami_one_only_in_its_encoder():
    mae = Config.fromfile(resolve_config("efficientsam_ti_sa1b_from-mae"))
    sami = Config.fromfile(resolve_config("efficientsam_ti_sa1b"))
    assert "mae" in mae.model.init_checkpoint and "sami" in sami.model.init_checkpoint
    mae.model.init_checkpoint = sami.model.init_checkpoint
    assert mae.to_dict() == sami.to_dict() or mae.pretty_text == sami.pretty_text


def test_figure7_hook_scores_prompt_quality_along_finetuning(tmp_path):
    """PromptQualityCurveHook in a real SA-1B finetuning run: rows at the asked fractions of an epoch (0 = before
    the first step), a CSV and a PNG; the last row equals eval-points' code on the final checkpoint's weights."""
    import csv

    import torch

    from efficientsam_zoo import EfficientSamPredictor, build_efficient_sam
    from efficientsam_zoo.data.synthetic import make_coco_instances, make_sa1b_shards
    from efficientsam_zoo.evaluation.common import predictor_segment_fn
    from efficientsam_zoo.evaluation.point_eval import evaluate_points

    (shard,) = make_sa1b_shards(str(tmp_path / "sa1b"), n_shards=1, images_per_shard=8, size=(128, 128))
    ann = make_coco_instances(str(tmp_path / "coco"), {"val": 3}, size=(128, 96), n_objects=2, seed=5)["val"]
    img_dir = str(tmp_path / "coco" / "val2017")
    cfg = tmp_path / "fig7_tiny.py"
    cfg.write_text(f'''_base_ = [{resolve_config("efficientsam_ti_tiny-shapes")!r}]
train_dataloader = dict(batch_size=2, dataset=dict(paths=[{shard!r}]))
custom_hooks = [dict(type="PromptQualityCurveHook", ann_file={ann!r}, img_dir={img_dir!r},
                     fractions=(0, 0.5, 1, 2), prompts=("box", "1pt"), seed=3)]
''')
    wd = tmp_path / "wd"
    run(["efficientsam_zoo.tools.train", str(cfg), "--work-dir", str(wd), "--cfg-options", "train_cfg.max_iters=8",
         "param_scheduler.0.end=2", "param_scheduler.1.begin=2", "param_scheduler.1.end=8",
         "default_hooks.checkpoint.interval=8"])
    rows = list(csv.DictReader(open(wd / "prompt_quality_curve.csv")))
    assert [(float(r["epoch"]), int(r["iter"])) for r in rows] == [(0, 0), (0.5, 2), (1, 4), (2, 8)]  # 8 images / 2
    assert (wd / "prompt_quality_curve.png").stat().st_size > 1000
    sd = torch.load(wd / "iter_8.pth", map_location="cpu", weights_only=False)["state_dict"]
    model = build_efficient_sam("efficientsam-ti", img_size=128, depth=6)
    model.load_state_dict({k[len("sam."):]: v for k, v in sd.items() if k.startswith("sam.")})
    ref = evaluate_points(predictor_segment_fn(EfficientSamPredictor(model.eval())), ann, img_dir,
                          prompt_types=("box", "1pt"), seed=3, progress=False)["summary"]
    assert float(rows[-1]["box_miou"]) == pytest.approx(ref["box"]["all"], abs=1e-6)
    assert float(rows[-1]["1pt_miou"]) == pytest.approx(ref["1pt"]["all"], abs=1e-6)
    assert float(rows[0]["box_miou"]) != float(rows[-1]["box_miou"])  # the weights did change
