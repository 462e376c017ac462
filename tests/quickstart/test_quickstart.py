"""README's main job, run as a new user runs it: every stage learns, the console stays short, the report and
summary hold the numbers. This is also the learning test of three trainers: SAMI pretraining and EfficientSAM
finetuning (mmengine Runner) and ViTDet Mask R-CNN (MMDetection)."""
import json
import os
import sys

import pytest
from trainer_utils import run

from efficientsam_zoo.quickstart.report import TARGETS


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory):
    out = tmp_path_factory.mktemp("quickstart") / "qs"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}  # the user's environment: warnings are the quickstart's to silence
    console = run([sys.executable, "-m", "efficientsam_zoo.cli", "quickstart", "--out-dir", str(out)],
                  cwd=str(out.parent), env=env)
    return out, console, json.load(open(out / "summary.json"))


@pytest.mark.learning
def test_every_stage_learns(quickstart):
    _, _, s = quickstart
    for section, key, op, bar, meaning in TARGETS:
        value = s[section][key]
        assert (value >= bar) if op == ">=" else (value <= bar), (meaning, value)
    # SAMI: the reconstruction loss falls >= 3x, and on unseen scenes the trained student is >= 2x better
    assert s["sami"]["loss_last"] * 3 <= s["sami"]["loss_first"], s["sami"]
    assert s["sami"]["loss_unseen_trained"] * 2 <= s["sami"]["loss_unseen_untrained"], s["sami"]
    # EfficientSAM finetuning: box IoU >= 0.7 on scenes it never trained on (TARGETS asks 0.75)
    assert s["segment"]["box_miou_after"] >= 0.7
    # ViTDet (MMDetection): box and mask AP >= 0.5 on its training scenes, > 0.1 on held-out ones
    assert s["vitdet"]["bbox_ap_train"] >= 0.5 and s["vitdet"]["segm_ap_train"] >= 0.5, s["vitdet"]
    # the zero-shot protocols ran with the finetuned model: its box mIoU is the finetuning stage's
    assert s["zero_shot"]["miou_box"] == pytest.approx(s["segment"]["box_miou_after"])
    assert s["zero_shot"]["instance_ap"] >= 0.3


def test_console_summary_and_report(quickstart):
    out, console, s = quickstart
    assert console.count("\n") <= 60, console
    assert "report -> " in console and "framework logs -> " in console and "mmengine - INFO" not in console
    for key in ("box_miou_before", "box_miou_after", "point_miou_before", "point_miou_after"):
        assert 0.0 <= s["segment"][key] <= 1.0
    assert {"bbox_ap", "segm_ap"} <= set(s["vitdet"]) and {"loss_first", "loss_last"} <= set(s["sami"])
    assert s["seconds"] > 0
    report = open(out / "report.md").read()
    assert "![learning curves](curves.png)" in report and (out / "curves.png").is_file()
    pictures = [line.split("](")[1].rstrip(")") for line in report.splitlines() if line.startswith("![")]
    before = [p for p in pictures if os.path.basename(p).startswith("before_")]
    after = [p for p in pictures if os.path.basename(p).startswith("after_")]
    assert len(before) == len(after) >= 4  # the same scenes, box and point prompts, before and after
    assert all((out / p).is_file() for p in pictures)
    # the stage-2 SAMI export initialised both finetuning stages (their Runner logs say so)
    assert "SamiViT: loaded backbone weights from" in open(out / "logs" / "vitdet.log").read()
    for stage in ("sami", "efficientsam", "vitdet", "zero_shot"):
        assert os.path.getsize(out / "logs" / f"{stage}.log") > 0


@pytest.mark.slow
def test_released_weights_path_segments_without_training(official_ti_checkpoint, tmp_path):
    out = tmp_path / "qs"
    console = run([sys.executable, "-m", "efficientsam_zoo.cli", "quickstart", "--out-dir", str(out),
                   "--checkpoint", official_ti_checkpoint])
    s = json.load(open(out / "summary.json"))
    assert s["mode"] == "released weights" and s["vitdet"] is None and s["sami"] is None
    assert 0.0 <= s["segment"]["box_miou_after"] <= 1.0 and "report -> " in console
    assert not (out / "work_dirs").exists()  # nothing was trained
    assert "Released weights" in open(out / "report.md").read()
