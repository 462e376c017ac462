import importlib.util
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from efficientsam_zoo import EfficientSamPredictor, build_efficient_sam
from efficientsam_zoo.cli import main
from efficientsam_zoo.data.synthetic import make_scene

pytestmark = pytest.mark.slow  # real-size (1024 px) ViT-Ti checkpoints


@pytest.fixture(scope="module")
def scene_file(tmp_path_factory):
    image, masks = make_scene(3, height=96, width=128)
    path = tmp_path_factory.mktemp("img") / "scene.png"
    Image.fromarray(image).save(path)
    return str(path)


@pytest.mark.parametrize("prompts", [(["--point", "40", "30"], [[40.0, 30.0]], None),
                                     (["--point", "40", "30", "--box", "10", "10", "90", "70"], [[40.0, 30.0]],
                                      [10.0, 10.0, 90.0, 70.0])], ids=["point", "point+box"])
def test_segment_writes_the_predictors_mask_and_an_overlay(prompts, scene_file, official_ti_checkpoint, tmp_path,
                                                           capsys):
    """The CLI's mask is the most confident mask EfficientSamPredictor.predict gives for the same prompts (the
    random-weight checkpoint's point-only mask is a partial one, so the comparison is not between empty masks)."""
    argv, points, box = prompts
    out, overlay = tmp_path / "mask.png", tmp_path / "overlay.png"
    rc = main(["segment", scene_file, *argv, "--checkpoint", official_ti_checkpoint, "--out", str(out), "--overlay",
               str(overlay), "--device", "cpu"])
    assert rc == 0
    mask = np.asarray(Image.open(out))
    assert mask.shape == (96, 128) and set(np.unique(mask)) <= {0, 255}
    predictor = EfficientSamPredictor(build_efficient_sam("efficientsam-ti", checkpoint=official_ti_checkpoint))
    predictor.set_image(np.asarray(Image.open(scene_file).convert("RGB")))
    masks, scores, _ = predictor.predict(np.array(points), np.ones(len(points)), None if box is None else np.array(box))
    best = int(np.argmax(scores))
    np.testing.assert_array_equal(mask == 255, masks[best])
    if box is None:
        assert 0 < masks[best].sum() < masks[best].size  # a real partial mask
    printed = capsys.readouterr().out
    assert f"mask {best} of 3 (predicted IoU {scores[best]:.3f}, {int(masks[best].sum())} px)" in printed
    pic = np.asarray(Image.open(overlay))
    assert pic.shape == (96, 128, 3)
    assert not np.array_equal(pic, np.asarray(Image.open(scene_file).convert("RGB")))  # something was drawn


def test_segment_console_script_errors(scene_file, official_ti_checkpoint, tmp_path):
    exe = [sys.executable, "-m", "efficientsam_zoo.cli"]
    r = subprocess.run(exe + ["segment", scene_file, "--checkpoint", official_ti_checkpoint],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "--point X Y or a --box" in r.stderr
    r = subprocess.run(exe + ["segment", scene_file, "--point", "1", "1", "--label", "1", "--label", "1",
                              "--checkpoint", official_ti_checkpoint], capture_output=True, text=True)
    assert r.returncode != 0 and "one label per point" in r.stderr


def test_segment_point_outside_and_bad_checkpoint(scene_file, official_ti_checkpoint, tmp_path, capsys):
    rc = main(["segment", scene_file, "--point", "500", "3", "--checkpoint", official_ti_checkpoint,
               "--out", str(tmp_path / "m.png")])
    assert rc == 2 and "outside the 128x96" in capsys.readouterr().err
    assert not (tmp_path / "m.png").exists()
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    rc = main(["segment", scene_file, "--point", "5", "3", "--checkpoint", str(bad), "--out", str(tmp_path / "m.png")])
    assert rc == 2 and "corrupt" in capsys.readouterr().err


def test_model_download_offline_error(scene_file, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty_hf_home"))
    rc = main(["segment", scene_file, "--point", "5", "3", "--model", "efficientsam-s"])
    err = capsys.readouterr().err
    assert rc == 2 and "efficient_sam_vits.pt" in err and "--checkpoint PATH" in err


@pytest.mark.parametrize("command,first_option", [("finetune", "--images"), ("finetune-cls", "--recipe")])
def test_tool_commands_hand_every_option_to_their_tool(command, first_option, capsys):
    """`efficientsam-zoo finetune --images ...`: options that start the line reach the tool (argparse's REMAINDER
    alone would reject them), and the tool's own parser answers --help and a missing option. Without mmengine (the
    torch 2.11 environment) finetune says what to install."""
    if command == "finetune" and importlib.util.find_spec("mmengine") is None:
        with pytest.raises(SystemExit, match=r"finetune trains with mmengine's Runner, which is not installed: pip "
                                             r"install 'efficientsam-zoo\[mmdet\]'"):
            main([command, "--help"])
        return
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0 and first_option in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        main([command, first_option])
    assert exc.value.code == 2 and "unrecognized arguments" not in capsys.readouterr().err
