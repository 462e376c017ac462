"""The demo's video tab without the page (``demo.video.VideoDemoBackend``): what it tracks equals SAM 2's predictor
API run by hand on the same frames, its files hold that, one visitor's session is not another's, and bad input is
named with the session left usable. The page itself is driven in test_browser.py."""
import json

import cv2
import numpy as np
import pytest
import torch
from conftest import tracking_efficienttam

from efficientsam_zoo.cli.demo import write_video_examples
from efficientsam_zoo.demo import DemoInputError, VideoDemoBackend
from efficientsam_zoo.integrations.hf import EfficientTamVideoPredictor
from efficientsam_zoo.utils.masks import decode_rle
from efficientsam_zoo.utils.video import VideoFrames

SIZE, FRAMES = 128, 10


@pytest.fixture(scope="module")
def model():
    return tracking_efficienttam(SIZE)


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    """The demo's own generated example (shapes that move, cross and leave), as the page offers it."""
    return write_video_examples(str(tmp_path_factory.mktemp("videos")), SIZE, num_frames=FRAMES)[0]


@pytest.fixture
def backend(model, tmp_path):
    return VideoDemoBackend(model, work_dir=str(tmp_path / "work"))


@torch.inference_mode()
def _by_hand(model, path, clicks):
    """SAM 2's calls on the predictor, as its demo makes them: each click ``(frame, obj, x, y, label)`` sends the
    object's clicks on that frame so far (a refining click starts from the object's previous mask there); then
    forward, then reverse from the first prompted frame -> ``{(frame, obj): mask}``."""
    predictor = EfficientTamVideoPredictor(model)
    state = predictor.init_state(path)
    sent = {}
    for frame, obj, x, y, label in clicks:
        points = sent.setdefault((frame, obj), [])
        points.append((x, y, label))
        predictor.add_new_points_or_box(state, frame, obj, points=[p[:2] for p in points],
                                        labels=[p[2] for p in points])
    out = {}
    for reverse in (False, True):
        for t, obj_ids, logits in predictor.propagate_in_video(state, reverse=reverse):
            for obj, mask in zip(obj_ids, (logits[:, 0] > 0).numpy()):
                out[(t, int(obj))] = mask
    return out


def test_tracking_equals_the_predictor_api_by_hand(backend, model, video):
    token = backend.open(video)
    assert backend.num_frames(token) == FRAMES
    picture = backend.click(token, 3, 40, 40, 1, obj_id=1)
    backend.click(token, 3, 90, 70, 0, obj_id=1)  # a background click refines object 1 on the same frame
    backend.click(token, 3, 100, 30, 1, obj_id=2)
    assert picture.shape == (SIZE, SIZE, 3) and picture.dtype == np.uint8
    progress = []
    overlay, masks_file = backend.propagate(token, lambda done, total: progress.append((done, total)))
    records = json.load(open(masks_file))
    assert (records["frames"], records["height"], records["width"]) == (FRAMES, SIZE, SIZE)
    ours = {(r["frame"], r["obj_id"]): decode_rle(r["segmentation"]) for r in records["annotations"]}
    expected = _by_hand(model, video, [(3, 1, 40, 40, 1), (3, 1, 90, 70, 0), (3, 2, 100, 30, 1)])
    expected = {k: m for k, m in expected.items() if m.any()}  # the JSON leaves empty masks out
    assert set(ours) == set(expected) and len({t for t, _ in ours}) == FRAMES  # every frame, forward and back
    assert all(np.array_equal(ours[k], expected[k]) for k in expected)
    assert progress[-1] == (FRAMES, FRAMES)
    # the played overlay: one browser-playable (VP8 WebM) frame per video frame, coloured where the objects are
    capture, shown = cv2.VideoCapture(overlay), 0
    while capture.read()[0]:
        shown += 1
    assert shown == FRAMES
    # the page's frame view after tracking shows the tracked masks
    plain = VideoFrames(video)[7]
    view = backend.frame(token, 7)
    changed = np.abs(view.astype(int) - plain.astype(int)).sum(-1) > 0
    tracked = ours.get((7, 1), np.zeros_like(changed)) | ours.get((7, 2), np.zeros_like(changed))
    assert changed[tracked].mean() > 0.99 and changed[~tracked].mean() < 0.01


def test_sessions_are_separate_and_bad_input_is_named(backend, video, tmp_path):
    a, b = backend.open(video), backend.open(video)
    backend.click(token=a, frame_idx=0, x=40, y=40, label=1, obj_id=1)
    with pytest.raises(DemoInputError, match="no object yet"):
        backend.propagate(b)  # b has no clicks: a's are not b's
    for call, message in [
        (lambda: backend.click(a, 0, 500, 40), r"outside the 128x128"),
        (lambda: backend.click(a, FRAMES, 40, 40), r"frame 10 is outside"),
        (lambda: backend.click(a, 0, 40, 40, obj_id=0), r"object ids are whole numbers from 1 to 255"),
        (lambda: backend.click(a, 0, 40, 40, obj_id=5000), r"object ids are whole numbers from 1 to 255"),
        (lambda: backend.frame(a, -1), r"frame -1 is outside"),
        (lambda: backend.open(None), r"no video: upload one"),
        (lambda: backend.session("gone"), r"no video in this session"),
    ]:
        with pytest.raises(DemoInputError, match=message):
            call()
    backend.propagate(a)
    with pytest.raises(DemoInputError, match="cannot add object 2 after tracking"):
        backend.click(a, 0, 100, 30, 1, obj_id=2)
    backend.reset(a)  # after a reset new objects are welcome again
    backend.click(a, 0, 100, 30, 1, obj_id=2)
    assert json.load(open(backend.propagate(a)[1]))["annotations"][0]["obj_id"] == 2
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all")
    with pytest.raises(DemoInputError, match="could not read video .* Upload an mp4"):
        backend.open(str(broken))
    short = VideoDemoBackend(backend.predictor.model, work_dir=str(tmp_path / "short"), max_frames=4)
    with pytest.raises(DemoInputError, match=r"has 10 frames, more than this demo's 4.*efficientsam-zoo track"):
        short.open(video)
