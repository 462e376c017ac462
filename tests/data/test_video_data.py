"""Video datasets (data.video): the DAVIS and SA-V layouts read back what was written, SAM 2's clip sampling, and
one clear message per kind of bad input."""
import json
import os
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from efficientsam_zoo.data.instances import MaskFolder
from efficientsam_zoo.data.synthetic import make_mask_folder, make_moving_shapes
from efficientsam_zoo.data.video import (DavisVideos, ImagesAsVideos, SavVideos, VideoClips, make_moving_shapes_davis,
                                         write_davis_video)
from efficientsam_zoo.utils.masks import encode_rle
from efficientsam_zoo.utils.video import write_video


@pytest.fixture
def shapes(tmp_path):
    make_moving_shapes_davis(str(tmp_path), 3, num_frames=6, size=48, seed=4)
    return tmp_path


def test_davis_layout_round_trip(shapes):
    source = DavisVideos(str(shapes))
    assert source.names == ["shapes0000", "shapes0001", "shapes0002"] and source.annotated(1) == list(range(6))
    _, masks = make_moving_shapes(4 * 10_000 + 1, 6, 48, 48)
    for t in range(6):
        objects = source.objects(1, t)
        expected = {k + 1: masks[t, k] for k in range(masks.shape[1]) if masks[t, k].any()}
        assert sorted(objects) == sorted(expected)
        for k, m in expected.items():
            assert np.array_equal(objects[k], m)  # palette PNGs are lossless
    assert source.frame(1, 0).shape == (48, 48, 3)


def _hidden_and_back(source, i):
    """Written out here: some object of video ``i`` covers >= half its largest area, later < half, later >= half."""
    areas = {}
    for t in source.annotated(i):
        for k, m in source.objects(i, t).items():
            areas.setdefault(k, {})[t] = int(m.sum())
    for per_frame in areas.values():
        top = max(per_frame.values())
        states = "".join("S" if per_frame.get(t, 0) * 2 >= top else "h" for t in source.annotated(i))
        if "Sh" in states and "S" in states[states.index("Sh") + 1:]:
            return True
    return False


def test_occluded_only_keeps_the_videos_where_an_object_is_lost_and_found(tmp_path):
    """Every video kept with ``occluded_only`` has an object seen, hidden (below half its largest area) and seen
    again, read back from the PNGs; the control: among the same candidates without it, some video has none."""
    kept = make_moving_shapes_davis(str(tmp_path / "occluded"), 3, num_frames=8, size=48, seed=2, occluded_only=True)
    source = DavisVideos(str(tmp_path / "occluded"))
    assert all(_hidden_and_back(source, i) for i in range(len(source)))
    last = int(kept[-1][len("shapes"):])
    make_moving_shapes_davis(str(tmp_path / "all"), last + 1, num_frames=8, size=48, seed=2)
    everything = DavisVideos(str(tmp_path / "all"))
    assert len(everything) > 3 and not all(_hidden_and_back(everything, i) for i in range(len(everything)))
    assert [everything.names[int(n[len("shapes"):])] for n in kept] == kept  # the same videos, the same names


def test_clips_are_consecutive_visible_and_reproducible(shapes):
    source = DavisVideos(str(shapes))
    clips = VideoClips(source, num_frames=4, max_objects=2, img_size=32, seed=7, flip_prob=0.0)
    a = clips[0]
    assert a["frames"].shape == (4, 3, 32, 32) and a["masks"].shape == (4, 2, 32, 32)
    assert a["valid"].sum() >= 1 and all(a["masks"][0, k].any() for k in range(2) if a["valid"][k])
    again = VideoClips(source, num_frames=4, max_objects=2, img_size=32, seed=7, flip_prob=0.0)[0]
    assert all(np.array_equal(a[k], again[k]) for k in ("frames", "masks", "valid"))
    draws = [clips[0]["frames"] for _ in range(6)]  # later visits draw new clips (start, objects)
    assert any(not np.array_equal(draws[0], d) for d in draws[1:])
    with pytest.raises(ValueError, match="no video has num_frames=8 annotated frames"):
        VideoClips(source, num_frames=8)[0]
    os.remove(shapes / "Annotations" / "shapes0000" / "00005.png")  # 5 annotated frames: passed over for the next
    pair = DavisVideos(str(shapes), videos=["shapes0000", "shapes0001"])
    served = VideoClips(pair, num_frames=6, img_size=32, flip_prob=0.0)[0]  # the one 6-frame clip of shapes0001
    alone = VideoClips(DavisVideos(str(shapes), videos=["shapes0001"]), num_frames=6, img_size=32, flip_prob=0.0)[0]
    assert torch.equal(served["frames"], alone["frames"])
    assert not torch.equal(served["frames"][0], VideoClips(pair, num_frames=5, img_size=32, flip_prob=0.0)[0]["frames"][0])


def test_images_as_one_frame_videos(tmp_path):
    make_mask_folder(str(tmp_path), 2, size=(40, 40), seed=1)
    source = ImagesAsVideos(MaskFolder(str(tmp_path / "images"), str(tmp_path / "masks")))
    clip = VideoClips(source, num_frames=8, img_size=32)[0]
    assert clip["frames"].shape[0] == 1 and clip["valid"].any()


def test_sa_v_layout(tmp_path):
    frames, masks = make_moving_shapes(3, 9, 48, 64)
    write_video(str(tmp_path / "sav_000001.mp4"), list(frames), fps=24)
    annotated = range(0, 9, 4)  # SA-V annotates every 4th frame (6 of 24 fps)
    masklet = [[encode_rle(masks[t, k]) for k in range(masks.shape[1])] for t in annotated]
    (tmp_path / "sav_000001_manual.json").write_text(json.dumps({"masklet": masklet, "video_id": "sav_000001"}))
    source = SavVideos(str(tmp_path))
    assert source.annotated(0) == [0, 4, 8]
    for t in (0, 4, 8):
        objects = source.objects(0, t)
        assert all(np.array_equal(objects[k + 1], masks[t, k]) for k in range(masks.shape[1]) if masks[t, k].any())
    assert source.frame(0, 4).shape == (48, 64, 3)
    masklet[1][0] = encode_rle(np.zeros((48, 64), bool))
    for row in masklet:
        row[0] = encode_rle(np.zeros((48, 64), bool))
    (tmp_path / "sav_000001_manual.json").write_text(json.dumps({"masklet": masklet}))
    with pytest.raises(ValueError, match="masklet 0 is empty on every annotated frame"):
        SavVideos(str(tmp_path)).annotated(0)  # read and checked when a clip of the video is drawn


def test_bad_davis_input_is_named(shapes):
    os.remove(shapes / "JPEGImages" / "shapes0002" / "00003.jpg")
    with pytest.raises(ValueError, match="annotation 00003.png has no frame 00003.jpg"):
        DavisVideos(str(shapes))
    for sub in ("JPEGImages", "Annotations"):
        shutil.rmtree(shapes / sub / "shapes0002")
    frames, masks = make_moving_shapes(0, 2, 40, 40)
    write_davis_video(str(shapes), "shapes0002", frames, masks.argmax(1).astype(np.uint8))
    Image.fromarray(np.zeros((20, 20), np.uint8), mode="P").save(shapes / "Annotations" / "shapes0002" / "00001.png")
    source = DavisVideos(str(shapes), videos=["shapes0002"])
    with pytest.raises(ValueError, match="00001.png is 20x20 but its frame is 40x40"):
        source.objects(0, 1)
    Image.fromarray(np.zeros((40, 40), np.uint8), mode="P").save(shapes / "Annotations" / "shapes0002" / "00000.png")
    Image.fromarray(np.zeros((40, 40), np.uint8), mode="P").save(shapes / "Annotations" / "shapes0002" / "00001.png")
    with pytest.raises(ValueError, match="no object appears in any annotated frame"):
        VideoClips(DavisVideos(str(shapes), videos=["shapes0002"]), num_frames=2)[0]
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(shapes / "Annotations" / "shapes0002" / "00001.png")
    with pytest.raises(ValueError, match="must be palette PNGs"):
        DavisVideos(str(shapes), videos=["shapes0002"]).objects(0, 1)
