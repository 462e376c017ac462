"""DAVIS's J and F (evaluation.video) against hand-counted masks and a brute-force boundary match."""
import math

import numpy as np
import pytest

from efficientsam_zoo.evaluation.video import (boundary_map, f_measure, first_appearances, jaccard, score_video,
                                               summarize)


def _block(h, w, y0, y1, x0, x1):
    m = np.zeros((h, w), bool)
    m[y0:y1, x0:x1] = True
    return m


def test_jaccard_by_hand():
    a, b = _block(4, 4, 0, 2, 0, 2), _block(4, 4, 1, 3, 1, 3)  # 4 and 4 pixels, 1 shared, 7 in the union
    assert jaccard(a, b) == pytest.approx(1 / 7)
    assert jaccard(np.zeros((3, 3)), np.zeros((3, 3))) == 1.0
    assert jaccard(a, np.zeros_like(a)) == 0.0


def test_boundary_map_by_hand():
    """A 2x2 block at rows / columns 1-2 of a 4x4 image: DAVIS's seg2bmap marks the 8 pixels whose right, lower or
    lower-right neighbour differs (counted by hand), none in the last row or column."""
    b = boundary_map(_block(4, 4, 1, 3, 1, 3))
    expected = {(0, 0), (0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1), (2, 2)}
    assert {tuple(p) for p in np.argwhere(b)} == expected


def _brute_f(pred, gt, radius):
    """F from the boundaries by direct distance checks (no dilation)."""
    fp, gp = np.argwhere(boundary_map(pred)), np.argwhere(boundary_map(gt))
    near = lambda p, pts: any(math.dist(p, q) <= radius for q in pts)  # noqa: E731
    precision = np.mean([near(p, gp) for p in fp])
    recall = np.mean([near(q, fp) for q in gp])
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


@pytest.mark.parametrize("shift", [0, 1, 2, 4])
def test_f_measure_matches_a_brute_force_boundary_match(shift):
    gt = _block(40, 50, 10, 25, 10, 30)
    pred = _block(40, 50, 10 + shift, 25 + shift, 12, 30 + shift)
    radius = math.ceil(0.008 * math.hypot(40, 50))  # DAVIS's tolerance: 1 px here
    assert radius == 1
    assert f_measure(pred, gt) == pytest.approx(_brute_f(pred, gt, radius))
    assert f_measure(pred, gt, bound_th=3) == pytest.approx(_brute_f(pred, gt, 3))
    if shift >= 2:  # a control: the tolerance matters, so the comparison can fail
        assert f_measure(pred, gt, bound_th=3) > f_measure(pred, gt) + 0.1


def test_f_measure_empty_cases():
    gt = _block(10, 10, 2, 5, 2, 5)
    empty = np.zeros_like(gt)
    assert f_measure(gt, gt) == 1.0
    assert f_measure(empty, gt) == 0.0 and f_measure(gt, empty) == 0.0
    assert f_measure(empty, empty) == 1.0


def test_score_video_skips_the_first_and_last_frames_and_averages_rows():
    gt = np.zeros((4, 10, 10), np.uint8)
    gt[:, 2:6, 2:6] = 1
    gt[:, 6:9, 6:9] = 2
    pred = gt.copy()
    pred[0] = 0  # the prompted first and the last frame are not scored (davis2017-evaluation's [1:-1])
    pred[3] = 0
    rows = score_video(pred, gt, {1: 0, 2: 0})
    assert [r["J&F"] for r in rows] == [1.0, 1.0] and rows[0]["frames"] == 2
    pred[1][gt[1] == 2] = 0  # object 2 lost on a scored frame: J 0.5, F 0.5 over the two frames
    rows = score_video(pred, gt, {1: 0, 2: 0})
    assert rows[1]["J"] == pytest.approx(0.5) and rows[1]["F"] == pytest.approx(0.5)
    out = summarize({"a": rows, "b": score_video(gt, gt, {1: 0})})
    assert out["J"] == pytest.approx((1 + 0.5 + 1) / 3) and out["J&F"] == pytest.approx((out["J"] + out["F"]) / 2)
    assert out["videos"]["a"]["J"] == pytest.approx(0.75)
    with pytest.raises(ValueError, match="differ in size"):
        score_video(pred[:, :5], gt, {1: 0})


def test_an_object_is_scored_from_the_frame_after_its_first_appearance():
    """An object appearing on frame 2 of 6 is scored on frames 3-4 only: its empty frames before, and the frame it is
    prompted on, would score 1 for free."""
    gt = np.zeros((6, 10, 10), np.uint8)
    gt[:, 1:4, 1:4] = 1
    gt[2:, 5:9, 5:9] = 2
    assert first_appearances(gt) == {1: 0, 2: 2}
    pred = gt.copy()
    pred[3][gt[3] == 2] = 0  # object 2 missed on frame 3 of its scored frames 3 and 4
    rows = {r["object"]: r for r in score_video(pred, gt, first_appearances(gt))}
    assert rows[2]["frames"] == 2 and rows[2]["J"] == pytest.approx(0.5) and rows[1]["frames"] == 4
    assert score_video(pred, gt, {1: 5}) == []  # prompted on the last frame: nothing to score
