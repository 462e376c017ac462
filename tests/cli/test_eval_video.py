"""``efficientsam-zoo eval-video``: scores palette-PNG predictions with DAVIS's J and F, and runs an EfficientTAM
through SAM 2's predictor API first when given a checkpoint."""
import json
import shutil

import numpy as np
import pytest
from conftest import tracking_efficienttam
from PIL import Image

from efficientsam_zoo.cli import main
from efficientsam_zoo.data.video import DAVIS_PALETTE, make_moving_shapes_davis


@pytest.fixture
def davis(tmp_path):
    make_moving_shapes_davis(str(tmp_path / "davis"), 2, num_frames=5, size=64, seed=8)
    return tmp_path / "davis"


def test_predictions_equal_to_the_annotations_score_one_and_an_erased_object_less(davis, tmp_path, capsys):
    preds = tmp_path / "preds"
    shutil.copytree(davis / "Annotations", preds)
    out = tmp_path / "r.json"
    assert main(["eval-video", "--davis-root", str(davis), "--predictions", str(preds), "--out", str(out)]) == 0
    result = json.load(open(out))
    assert result["J&F"] == result["J"] == result["F"] == 1.0 and "J&F 1.000" in capsys.readouterr().out
    n_rows = len(result["rows"])
    ids = np.asarray(Image.open(preds / "shapes0001" / "00002.png"))
    erased = ids.copy()
    erased[ids == 1] = 0  # object 1 lost on one of the 3 scored frames (1..3; the first and last are not scored)
    png = Image.fromarray(erased, mode="P")
    png.putpalette(DAVIS_PALETTE)
    png.save(preds / "shapes0001" / "00002.png")
    main(["eval-video", "--davis-root", str(davis), "--predictions", str(preds), "--out", str(out)])
    result = json.load(open(out))
    row = next(r for r in result["rows"] if r["video"] == "shapes0001" and r["object"] == 1)
    assert row["J"] == pytest.approx(2 / 3) and row["F"] == pytest.approx(2 / 3) and row["frames"] == 3
    assert len(result["rows"]) == n_rows and result["J"] == pytest.approx(1 - (1 / 3) / n_rows)
    (preds / "shapes0000" / "00004.png").unlink()
    capsys.readouterr()
    assert main(["eval-video", "--davis-root", str(davis), "--predictions", str(preds), "--out", str(out)]) == 2
    assert "00004.png: predictions are laid out like Annotations/" in capsys.readouterr().err


@pytest.mark.parametrize("setting", ["semi-supervised", "interactive"])
def test_a_checkpoint_is_run_then_scored(davis, tmp_path, setting):
    model_dir = tmp_path / "etam"
    tracking_efficienttam(64).save_pretrained(str(model_dir))
    out = tmp_path / "r.json"
    assert main(["eval-video", "--davis-root", str(davis), "--checkpoint", str(model_dir), "--setting", setting,
                 "--device", "cpu", "--out", str(out)]) == 0
    result = json.load(open(out))
    objects = sum(len(np.unique(np.asarray(Image.open(davis / "Annotations" / v / "00000.png")))) - 1
                  for v in ("shapes0000", "shapes0001"))
    assert result["setting"] == setting and len(result["rows"]) == objects
    assert 0.0 <= result["J&F"] <= 1.0 and set(result["videos"]) == {"shapes0000", "shapes0001"}
