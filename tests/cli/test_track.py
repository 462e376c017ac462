"""``efficientsam-zoo track``: the command's run (SAM 2's predictor API, old frames released) against transformers'
whole-video session API, lazy frame reading, its outputs, and bad input named before anything is written."""
import json
import re

import numpy as np
import pytest
import torch
from conftest import tracking_efficienttam
from PIL import Image

import efficientsam_zoo  # noqa: F401  (registers the Auto classes)
from efficientsam_zoo.cli import main
from efficientsam_zoo.integrations.hf import EfficientTamVideoModel
from efficientsam_zoo.integrations.hf.efficienttam import efficienttam_processor
from efficientsam_zoo.utils.masks import decode_rle
from efficientsam_zoo.utils.video import VideoFrames, write_video

SIZE, H, W, FRAMES = 128, 96, 144, 6
POINT, BOX = (40, 40), (86, 44, 126, 84)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A random EfficientTAM-Ti/2 at 128 px that tracks something (``conftest.tracking_efficienttam``)."""
    path = tmp_path_factory.mktemp("etam") / "model"
    tracking_efficienttam(SIZE).save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    """Two squares moving on a shaded background: a JPEG frame folder and the same frames as an mp4."""
    root = tmp_path_factory.mktemp("video")
    (root / "frames").mkdir()
    yy, xx = np.mgrid[0:H, 0:W]
    frames = []
    for t in range(FRAMES):
        img = np.stack([100 + 40 * np.sin(xx / 7.0), 90 + 30 * np.cos(yy / 5.0), 120 + 0 * xx], -1)
        img[20 + 2 * t:60 + 2 * t, 20 + 3 * t:60 + 3 * t] = (220, 40, 40)
        img[44:84, 86 - 2 * t:126 - 2 * t] = (40, 60, 220)
        frame = img.astype(np.uint8)
        Image.fromarray(frame).save(root / "frames" / f"{t:05d}.jpg", quality=95)
        frames.append(np.array(Image.open(root / "frames" / f"{t:05d}.jpg").convert("RGB")))
    write_video(str(root / "clip.mp4"), frames, fps=10)
    return root, frames


@torch.inference_mode()
def _session_api(model_dir, frames, non_overlap=True):
    """The same prompts through transformers' whole-video session: object 1 clicked, object 2 boxed, on frame 0; id
    maps with transformers' non-overlapping constraint (SAM 2's ``non_overlap_masks``), or without it, the lower id
    winning."""
    model = EfficientTamVideoModel.from_pretrained(model_dir).eval()
    processor = efficienttam_processor(model.config)
    session = processor.init_video_session(video=frames, inference_device="cpu")
    processor.add_inputs_to_inference_session(session, frame_idx=0, obj_ids=1, input_points=[[[list(POINT)]]],
                                              input_labels=[[[1]]])
    model(inference_session=session, frame_idx=0)
    processor.add_inputs_to_inference_session(session, frame_idx=0, obj_ids=2, input_boxes=[[list(BOX)]])
    model(inference_session=session, frame_idx=0)
    ids = {}
    for out in model.propagate_in_video_iterator(session):
        masks = processor.post_process_masks([out.pred_masks], original_sizes=[[H, W]],
                                             apply_non_overlapping_constraints=non_overlap)[0][:, 0].numpy()
        frame = np.zeros((H, W), np.uint16)
        for obj, mask in zip(out.object_ids, masks):
            frame[mask & (frame == 0)] = obj
        ids[out.frame_idx] = frame
    return ids


def test_track_writes_what_the_session_api_computes(model_dir, video, tmp_path):
    """The id PNGs equal the session's masks with SAM 2's non-overlapping constraint, as SAM 2's ``vos_inference``
    writes one PNG per frame; control: the lower id winning the overlaps differs."""
    root, frames = video
    out = tmp_path / "run"
    assert main(["track", str(root / "frames"), "--point", f"{POINT[0]},{POINT[1]}", "--obj", "2", "--box",
                 ",".join(map(str, BOX)), "--checkpoint", model_dir, "--out-dir", str(out)]) == 0
    expected, lower_id = _session_api(model_dir, frames), _session_api(model_dir, frames, non_overlap=False)
    assert any(not np.array_equal(expected[t], lower_id[t]) for t in range(FRAMES))  # the control
    written = sorted(p.name for p in (out / "masks").iterdir())
    assert written == [f"{t:05d}.png" for t in range(FRAMES)]
    for t in range(FRAMES):
        ids = np.array(Image.open(out / "masks" / f"{t:05d}.png"))
        assert set(np.unique(ids)) <= {0, 1, 2} and 0.02 < (ids > 0).mean() < 0.9, t  # informative masks
        # exact: the command and the whole-video session do the same arithmetic (other prompts move 1e-4 to 0.45
        # of the pixels, frame by frame)
        assert np.array_equal(ids, expected[t]), t
    overlay = VideoFrames(str(out / "overlay.mp4"))
    assert len(overlay) == FRAMES and (overlay.height, overlay.width) == (H, W)


def test_mp4_frames_are_decoded_lazily_once_each(video, model_dir, tmp_path):
    root, frames = video
    clip = VideoFrames(str(root / "clip.mp4"))
    assert (len(clip), clip.height, clip.width) == (FRAMES, H, W)
    seen = [clip[t] for t in range(FRAMES)]
    assert clip.decodes == FRAMES
    assert np.array_equal(clip[3], seen[3]) and clip.decodes == FRAMES + 1  # a seek back re-decodes that one frame
    assert np.abs(seen[2].astype(int) - frames[2]).mean() < 8  # mp4 is lossy, but these are the frames
    out = tmp_path / "rle"
    assert main(["track", str(root / "clip.mp4"), "--box", ",".join(map(str, BOX)) + "@2", "--checkpoint", model_dir,
                 "--out-dir", str(out), "--format", "rle"]) == 0
    result = json.load(open(out / "masks.json"))
    assert (result["frames"], result["height"], result["width"]) == (FRAMES, H, W)
    assert {a["frame"] for a in result["annotations"]} == set(range(2, FRAMES))  # the object enters on frame 2
    assert all(decode_rle(a["segmentation"]).shape == (H, W) and a["obj_id"] == 1 for a in result["annotations"])


def _bad(tmp, frames_dir, model_dir):
    wrong = tmp / "wrong.png"
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(wrong)
    (tmp / "empty").mkdir(exist_ok=True)
    (tmp / "junk.mp4").write_bytes(b"not a video" * 10)
    return [
        (["missing.mp4", "--point", "1,1"], r"video '.*missing\.mp4' does not exist"),
        ([str(tmp / "junk.mp4"), "--point", "1,1"], r"could not read video .*junk\.mp4.*complete video file"),
        ([str(tmp / "empty"), "--point", "1,1"], r"video folder .*empty' holds no frames"),
        ([frames_dir, "--point", "1,1@9"], r"--point for object 1 is on frame 9, but the video has 6 frames \(0\.\.5\)"),
        ([frames_dir, "--obj", "3", "--point", "200,10"], r"--point for object 3: \(200, 10\) lies outside the 144x96"),
        ([frames_dir, "--mask", f"{wrong}@1"], r"mask '.*wrong\.png' is 10x10, the video is 144x96"),
        ([frames_dir, "--point", "1;1"], r"--point '1;1' is not X,Y\[,LABEL\]\[@FRAME\]"),
        ([frames_dir, "--box", "9,9,1,1"], r"x1 must be >= x0"),
        ([frames_dir, "--box", "1,1,9,9", "--box", "2,2,8,8"], r"object 1 has two boxes on frame 0; give one"),
        ([frames_dir], r"give at least one --point, --box or --mask"),
    ]


def test_bad_input_is_named_and_nothing_is_written(video, model_dir, tmp_path, capsys):
    root, _ = video
    for argv, message in _bad(tmp_path, str(root / "frames"), model_dir):
        out = tmp_path / "never"
        try:
            code = main(["track", *argv, "--checkpoint", model_dir, "--out-dir", str(out)])
        except SystemExit as exc:
            code, text = exc.code, str(exc.code)
        else:
            text = capsys.readouterr().err
        assert code not in (0, None) and re.search(message, text), (argv, text)
        assert not out.exists() and not list(tmp_path.glob(".track-*")), argv
