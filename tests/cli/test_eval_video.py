"""``efficientsam-zoo eval-video``: scores palette-PNG predictions with DAVIS's J and F, and runs an EfficientTAM
through SAM 2's predictor API first when given a checkpoint."""
import json
import shutil

import numpy as np
import pytest
from conftest import tracking_efficienttam
from PIL import Image

from efficientsam_zoo.cli import main
from efficientsam_zoo.cli.eval_video import evaluate_model
from efficientsam_zoo.data.video import DAVIS_PALETTE, DavisVideos, make_moving_shapes_davis
from efficientsam_zoo.integrations.hf.efficienttam_predictor import EfficientTamVideoPredictor


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
    # overlaps settled as SAM 2's vos_inference settles them for one PNG per frame (non_overlap_masks); the control:
    # the lower id winning them scores otherwise on these videos
    source = DavisVideos(str(davis))
    scores = {flag: evaluate_model(EfficientTamVideoPredictor.from_pretrained(str(model_dir), non_overlap_masks=flag),
                                   source, setting, progress=False)["J&F"] for flag in (True, False)}
    assert result["J&F"] == pytest.approx(scores[True], abs=1e-9) and abs(scores[True] - scores[False]) > 1e-3, scores


class _Oracle:
    """A stand-in for the predictor API that tracks perfectly (the annotations, as logits): the protocol around it --
    prompt frames, frame indexing, id maps, scoring -- must then give J&F 1; with ``lose`` it loses every object
    after its prompt frame and J&F must be 0."""

    def __init__(self, source, video, lose=False):
        self.source, self.video, self.lose, self.prompted = source, video, lose, {}

    def init_state(self, frames):
        return {"frames": len(frames)}

    def add_new_mask(self, state, frame, obj, mask):
        assert np.array_equal(mask, self.source.objects(self.video, frame)[obj])  # its own mask on its first frame
        self.prompted[obj] = frame

    def add_new_points_or_box(self, state, frame, obj, points, labels):
        (x, y), = points
        assert self.source.objects(self.video, frame)[obj][int(y), int(x)]  # the click lies on the object
        self.prompted[obj] = frame

    def propagate_in_video(self, state):
        import torch

        objs = sorted(self.prompted)
        for t in range(min(self.prompted.values()), state["frames"]):
            present = self.source.objects(self.video, t)
            masks = [present.get(o, np.zeros((64, 64), bool)) & (not self.lose or t == self.prompted[o]) for o in objs]
            yield t, objs, torch.tensor(np.stack(masks)[:, None], dtype=torch.float32) * 2 - 1


@pytest.mark.parametrize("setting", ["semi-supervised", "interactive"])
def test_the_protocol_scores_a_perfect_tracker_one_and_a_lost_one_zero(davis, setting):
    source = DavisVideos(str(davis))

    class PerVideo:  # a fresh oracle for each video, as evaluate_model asks per video
        def __init__(self, lose):
            self.lose, self.count = lose, -1

        def init_state(self, frames):
            self.count += 1
            self.current = _Oracle(source, self.count, self.lose)
            return self.current.init_state(frames)

        def __getattr__(self, name):
            return getattr(self.current, name)

    assert evaluate_model(PerVideo(False), source, setting, progress=False)["J&F"] == 1.0
    assert evaluate_model(PerVideo(True), source, setting, progress=False)["J&F"] == 0.0
