"""SAM 2's video-predictor API on EfficientTAM: the semantics SAM 2 users rely on (propagation order both ways,
``max_frame_num_to_track``, ``reset_state``), its results against transformers' session calls, and bad input refused
with the state left usable."""
import numpy as np
import pytest
import torch

from efficientsam_zoo.integrations.hf import EfficientTamVideoModel, EfficientTamVideoPredictor, efficienttam_config_for
from efficientsam_zoo.integrations.hf.efficienttam import efficienttam_processor

SIZE, H, W, FRAMES = 128, 80, 112, 6


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    model = EfficientTamVideoModel(efficienttam_config_for("efficienttam-ti-1", image_size=SIZE)).eval()
    with torch.no_grad():
        for mlp in model.mask_decoder.output_hypernetworks_mlps:
            mlp.proj_out.weight.mul_(40)
        model.mask_decoder.pred_obj_score_head.proj_out.bias.fill_(4.0)
    return model


@pytest.fixture(scope="module")
def frames():
    yy, xx = np.mgrid[0:H, 0:W]
    out = []
    for t in range(FRAMES):
        img = np.stack([100 + 40 * np.sin(xx / 7.0), 90 + 30 * np.cos(yy / 5.0), 120 + 0 * xx], -1)
        img[15 + t:45 + t, 10 + 4 * t:40 + 4 * t] = (220, 40, 40)
        out.append(img.astype(np.uint8))
    return out


def test_propagation_order_and_range_follow_sam2(model, frames):
    predictor = EfficientTamVideoPredictor(model)
    state = predictor.init_state(frames)
    f, ids, logits = predictor.add_new_points_or_box(state, frame_idx=3, obj_id=5, points=[[30, 30]], labels=[1])
    assert (f, ids, tuple(logits.shape)) == (3, [5], (1, 1, H, W))
    assert [f for f, _, _ in predictor.propagate_in_video(state)] == [3, 4, 5]
    assert [f for f, _, _ in predictor.propagate_in_video(state, reverse=True)] == [3, 2, 1, 0]
    assert [f for f, _, _ in predictor.propagate_in_video(state, start_frame_idx=1, max_frame_num_to_track=2)] == [1, 2, 3]
    predictor.reset_state(state)
    with pytest.raises(ValueError, match="no prompts yet"):
        next(predictor.propagate_in_video(state))


@torch.inference_mode()
def test_results_equal_the_session_calls_they_stand_for(model, frames):
    """A click for object 1 and a box for object 2 on frame 0: the predictor's logits on every frame equal those of
    transformers' processor / session calls made by hand (a box is SAM's corner points, labels 2 and 3)."""
    predictor = EfficientTamVideoPredictor(model)
    state = predictor.init_state(frames)
    predictor.add_new_points_or_box(state, 0, 1, points=[[25, 30]], labels=[1])
    predictor.add_new_points_or_box(state, 0, 2, box=[60, 20, 100, 60])
    ours = {f: logits for f, _, logits in predictor.propagate_in_video(state)}

    processor = efficienttam_processor(model.config)
    session = processor.init_video_session(video=frames, inference_device="cpu")
    processor.add_inputs_to_inference_session(session, frame_idx=0, obj_ids=1, input_points=[[[[25, 30]]]],
                                              input_labels=[[[1]]])
    model(inference_session=session, frame_idx=0)
    processor.add_inputs_to_inference_session(session, frame_idx=0, obj_ids=2, input_boxes=[[[60, 20, 100, 60]]])
    model(inference_session=session, frame_idx=0)
    for out in model.propagate_in_video_iterator(session):
        expected = processor.post_process_masks([out.pred_masks], original_sizes=[[H, W]], binarize=False)[0]
        assert torch.allclose(ours[out.frame_idx], expected, atol=1e-5), out.frame_idx
    assert sorted(ours) == list(range(FRAMES))
    assert all(0.05 < (m > 0).float().mean() < 0.95 and m.std() > 0.05 for m in ours.values())  # informative logits


@torch.inference_mode()
def test_non_overlap_masks_keep_each_pixel_for_the_highest_logit(model, frames):
    """SAM 2's ``non_overlap_masks``: two objects prompted by overlapping boxes; on every frame, each object's logits
    are the plain predictor's where it has the highest logit and at most -10 elsewhere (written out here), so no pixel
    is claimed twice; the tracking itself is unchanged. Control: without it the two masks overlap."""
    runs = {}
    for flag in (False, True):
        predictor = EfficientTamVideoPredictor(model, non_overlap_masks=flag)
        state = predictor.init_state(frames)
        predictor.add_new_points_or_box(state, 0, 1, box=[10, 15, 60, 60])
        predictor.add_new_points_or_box(state, 0, 2, box=[30, 20, 90, 70])
        runs[flag] = {f: logits[:, 0] for f, _, logits in predictor.propagate_in_video(state)}
    assert max(int(((m > 0).sum(0) > 1).sum()) for m in runs[False].values()) > 50  # the control: they overlap
    for f, plain in runs[False].items():
        best = plain.argmax(0)
        expected = torch.stack([torch.where(best == i, plain[i], plain[i].clamp(max=-10.0)) for i in range(2)])
        assert torch.equal(runs[True][f], expected), f
        assert ((runs[True][f] > 0).sum(0) <= 1).all()


def test_bad_input_is_refused_and_the_state_stays_usable(model, frames):
    predictor = EfficientTamVideoPredictor(model)
    state = predictor.init_state(frames)
    with pytest.raises(ValueError, match="no prompts yet"):
        next(predictor.propagate_in_video(state))
    cases = [
        (lambda: predictor.add_new_points_or_box(state, 9, 1, points=[[5, 5]]), r"frame 9 is outside the video's 6 "
                                                                                 r"frames \(0\.\.5\)"),
        (lambda: predictor.add_new_points_or_box(state, 0, 1, points=[[500, 5]]), r"point \(500, 5\) lies outside "
                                                                                   r"the 112x80"),
        (lambda: predictor.add_new_points_or_box(state, 0, 1, points=[[5, 5]], labels=[1, 0]), "1 points but 2 labels"),
        (lambda: predictor.add_new_points_or_box(state, 0, 1, points=[[5, 5]], labels=[3]), "must be 1 .* or 0"),
        (lambda: predictor.add_new_points_or_box(state, 0, 1, box=[50, 50, 10, 10]), "x1 >= x0"),
        (lambda: predictor.add_new_points_or_box(state, 0, 1), "give points .* or a box"),
        (lambda: predictor.add_new_mask(state, 0, 1, np.ones((10, 10))), r"mask is 10x10 \(WxH\), the video is 112x80"),
        (lambda: next(predictor.propagate_in_video(state, start_frame_idx=7)), "frame 7 is outside"),
    ]
    for call, message in cases:
        with pytest.raises(ValueError, match=message):
            call()
        assert state.get_obj_num() == 0, message  # nothing was added
    predictor.add_new_points_or_box(state, 0, 1, points=[[25, 30]])
    assert len(list(predictor.propagate_in_video(state))) == FRAMES
    with pytest.raises(ValueError, match="holds no frames"):
        predictor.init_state(str(__import__("tempfile").mkdtemp()))


def _moving_square(frames: int):
    yy, xx = np.mgrid[0:H, 0:W]
    out = []
    for t in range(frames):
        img = np.stack([100 + 40 * np.sin(xx / 7.0), 90 + 30 * np.cos(yy / 5.0), 120 + 0 * xx], -1)
        x = 10 + (3 * t) % 60
        img[20:50, x:x + 30] = (220, 40, 40)
        out.append(img.astype(np.uint8))
    return out


def _logits(predictor, state, reverse_too: bool = False):
    out = {f: m for f, _, m in predictor.propagate_in_video(state)}
    if reverse_too:
        out.update({(f, "rev"): m for f, _, m in predictor.propagate_in_video(state, reverse=True)})
    return out


def test_remove_object_leaves_the_others_as_if_alone(model, frames):
    """Objects have their own memory: after ``remove_object(2)`` object 1 tracks exactly as in a state that never
    had object 2; an unknown id is ignored, or refused with ``strict``; removing the last object resets."""
    predictor = EfficientTamVideoPredictor(model)
    alone = predictor.init_state(frames)
    predictor.add_new_points_or_box(alone, 0, 1, points=[[25, 30]], labels=[1])
    expected = _logits(predictor, alone)
    state = predictor.init_state(frames)
    predictor.add_new_points_or_box(state, 0, 1, points=[[25, 30]], labels=[1])
    predictor.add_new_points_or_box(state, 0, 2, box=[60, 20, 100, 60])
    both = _logits(predictor, state)
    assert all(m.shape[0] == 2 for m in both.values())
    assert not torch.allclose(both[3][1], expected[3][0])  # object 2's mask is another one
    ids, updated = predictor.remove_object(state, 2)
    assert ids == [1] and [f for f, _ in updated] == [0] and torch.equal(updated[0][1], both[0][:1])
    after = _logits(predictor, state)
    assert sorted(after) == sorted(expected) and all(torch.equal(after[f], expected[f]) for f in expected)
    assert predictor.remove_object(state, 7) == ([1], [])
    with pytest.raises(ValueError, match=r"object 7 is not in this state; its objects are \[1\]"):
        predictor.remove_object(state, 7, strict=True)
    assert predictor.remove_object(state, 1) == ([], []) and state.get_obj_num() == 0


def test_frames_are_decoded_lazily_and_offloading_changes_nothing(model, frames, tmp_path):
    """A frame folder is read when the model needs a frame, once per frame for a prompt and one propagation; the
    state holds no frame. ``offload_video_to_cpu`` / ``offload_state_to_cpu`` give the same logits."""
    from PIL import Image

    for t, frame in enumerate(frames):
        Image.fromarray(frame).save(tmp_path / f"{t:05d}.png")
    predictor = EfficientTamVideoPredictor(model)
    state = predictor.init_state(str(tmp_path))
    assert state.video_frames.decodes == 0 and (state.video_height, state.video_width) == (H, W)
    predictor.add_new_points_or_box(state, 0, 1, points=[[25, 30]], labels=[1])
    plain = _logits(predictor, state)
    assert state.video_frames.decodes == FRAMES
    offloaded = predictor.init_state(str(tmp_path), offload_video_to_cpu=True, offload_state_to_cpu=True)
    predictor.add_new_points_or_box(offloaded, 0, 1, points=[[25, 30]], labels=[1])
    assert all(torch.equal(m, plain[f]) for f, m in _logits(predictor, offloaded).items())
    listed = predictor.init_state(frames)  # PNG frames are lossless: the same pixels as a list
    predictor.add_new_points_or_box(listed, 0, 1, points=[[25, 30]], labels=[1])
    assert all(torch.equal(m, plain[f]) for f, m in _logits(predictor, listed).items())


def test_released_frames_keep_memory_flat_and_results_equal(model):
    """``release_old_frames`` on a 60-frame video prompted on frame 20, one pass forward and one in reverse: the logits
    equal those of a state that keeps everything; after every frame the outputs kept are only those within the
    memory's reach (16 frames) of the tracked frame or of the prompt, where the other state keeps one per tracked
    frame. Neither keeps full-resolution masks."""
    frames, prompt = _moving_square(60), 20
    predictor = EfficientTamVideoPredictor(model)
    reach = max(model.config.num_maskmem - 1, model.config.max_object_pointers_in_encoder)
    runs = {}
    for release in (False, True):
        state = predictor.init_state(frames, release_old_frames=release)
        predictor.add_new_points_or_box(state, prompt, 1, points=[[25, 35]], labels=[1])
        out = {}
        for reverse in (False, True):
            for f, _, m in predictor.propagate_in_video(state, reverse=reverse):
                out[(f, reverse)] = m
                kept = set(state.output_dict_per_obj[0]["non_cond_frame_outputs"])
                if release:
                    assert all(abs(k - f) <= reach or abs(k - prompt) <= reach for k in kept), (f, sorted(kept))
        stored = [o for per in state.output_dict_per_obj[0].values() for o in per.values()]
        assert not any("high_res_masks" in o for o in stored)
        runs[release] = out, len(kept)
    (full, full_kept), (released, released_kept) = runs[False], runs[True]
    assert sorted(full, key=str) == sorted(released, key=str)
    assert all(torch.equal(full[k], released[k]) for k in full)
    assert full_kept == 59  # every tracked frame
    assert released_kept == len(range(1, prompt + reach + 1))  # at the end, frame 0's reach and the prompt's


def test_objects_cannot_join_after_tracking_starts(model, frames):
    """SAM 2's rule: a new object id after propagation is refused (the state stays as it was); reset_state lifts it."""
    predictor = EfficientTamVideoPredictor(model)
    state = predictor.init_state(frames)
    predictor.add_new_points_or_box(state, 0, 1, points=[[25, 30]], labels=[1])
    list(predictor.propagate_in_video(state))
    with pytest.raises(ValueError, match=r"cannot add object 2 after tracking has started \(objects: \[1\]\)"):
        predictor.add_new_points_or_box(state, 0, 2, points=[[70, 40]], labels=[1])
    assert state.obj_ids == [1]
    predictor.add_new_points_or_box(state, 2, 1, points=[[40, 30]], labels=[1])  # a known object may be corrected
    predictor.reset_state(state)
    predictor.add_new_points_or_box(state, 0, 2, points=[[70, 40]], labels=[1])
    assert state.obj_ids == [2]
