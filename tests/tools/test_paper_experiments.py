"""The paper's baselines and ablations (issue: MAE rows of Tables 1-4, Tables 6-7, the CLIP target): every shipped
config runs as its CPU smoke variant (``--cpu-smoke``) through mmengine's Runner, and the run keeps the option the
experiment is about."""
import glob
import math
import os

import pytest
from mmengine.config import Config

from efficientsam_zoo.data.synthetic import make_scene
from efficientsam_zoo.tools.configs import resolve_config
from trainer_utils import mm_scalars, run

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


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_paper_config_runs_as_cpu_smoke(name, images, tmp_path):
    full = _options(Config.fromfile(resolve_config(name)).model)
    for key, value in EXPERIMENTS[name].items():
        assert full[key] == value, (key, full[key])
    wd = str(tmp_path / "wd")
    run(["efficientsam_zoo.tools.train", name, "--cpu-smoke", images, "--work-dir", wd,
         "--cfg-options", "train_cfg.max_iters=4", "default_hooks.logger.interval=1"])
    (dumped,) = glob.glob(os.path.join(wd, "*.py"))  # the config the Runner ran
    ran = _options(Config.fromfile(dumped).model)
    assert {k: ran[k] for k in ("target", "loss", "mask_ratio", "decoder_queries")} == \
        {k: full[k] for k in ("target", "loss", "mask_ratio", "decoder_queries")}
    assert (ran["teacher"] is None) == (full["teacher"] is None)
    if full["teacher"] == "hf_clip":
        assert ran["teacher"] == "hf_clip"
    losses = [r["loss"] for r in mm_scalars(wd) if "loss" in r]
    assert len(losses) == 4 and all(math.isfinite(v) and v > 0 for v in losses)


def test_sam_mae_config_differs_from_the_sami_one_only_in_its_encoder():
    mae = Config.fromfile(resolve_config("efficientsam_ti_sa1b_from-mae"))
    sami = Config.fromfile(resolve_config("efficientsam_ti_sa1b"))
    assert "mae" in mae.model.init_checkpoint and "sami" in sami.model.init_checkpoint
    mae.model.init_checkpoint = sami.model.init_checkpoint
    assert mae.to_dict() == sami.to_dict() or mae.pretty_text == sami.pretty_text
