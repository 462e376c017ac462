"""SAM 2's video-predictor API (``init_state`` / ``add_new_points_or_box`` / ``add_new_mask`` / ``propagate_in_video``
/ ``remove_object`` / ``reset_state``) for :class:`EfficientTamVideoModel`, as EfficientTAM's and SAM 2's own
predictors name it, and ``build_efficienttam_video_predictor``, SAM 2's builder.

It is a thin layer over transformers' inference session, which keeps the memory bank and the bookkeeping: this module
checks the inputs -- before anything in the session changes, so a refused call leaves the state usable --, turns SAM
2's arguments into session inputs, and keeps memory flat on long videos: frames are decoded and prepared only when the
model asks for one (nothing is kept), the session's copy of each frame's full-resolution masks is dropped once its
memory is encoded, and with ``release_old_frames`` the outputs no later step can read are let go. Masks come back as
SAM 2 returns them: ``(frame_idx, obj_ids, mask_logits)`` with logits ``[num_objects, 1, H, W]`` at the video's
resolution.
"""
from __future__ import annotations

import os
from collections import OrderedDict
from typing import Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from ...utils.image import load_image_rgb
from ...utils.video import VideoFrames
from .efficienttam import (EfficientTamVideoConfig, EfficientTamVideoModel, build_efficienttam_video_model,
                           efficienttam_processor)

__all__ = ["EfficientTamVideoPredictor", "build_efficienttam_video_predictor"]

Frames = Union[str, os.PathLike, VideoFrames, Sequence[np.ndarray]]
#: SAM 2's ``apply_postprocessing=True`` (the release's ``build_efficienttam_video_predictor``): fill holes up to 8 px.
POSTPROCESSING = {"fill_hole_area": 8}


class _LazyFrames(Mapping):
    """The session's ``processed_frames``: frame index -> the model's input tensor, decoded and prepared when the
    model asks for it; nothing is kept."""

    def __init__(self, frames, prepare) -> None:
        self.frames, self.prepare = frames, prepare

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.prepare(self.frames[index])

    def __len__(self) -> int:
        return len(self.frames)

    def __iter__(self):
        return iter(range(len(self.frames)))


class EfficientTamVideoPredictor:
    """``predictor = EfficientTamVideoPredictor(model)`` (or ``.from_pretrained("efficienttam-ti")``), then SAM 2's
    calls on the state ``init_state`` returns (a transformers ``Sam2VideoInferenceSession``). ``non_overlap_masks``:
    SAM 2's option of the same name -- each pixel is kept by the object with the highest logit there, the others'
    logits there clamped to at most -10 (transformers' ``apply_non_overlapping_constraints``); SAM 2's
    ``vos_inference`` turns it on when all objects go into one palette PNG per frame, as DAVIS scores them. Only the
    returned masks change: the memory is encoded from each object's own output."""

    def __init__(self, model: EfficientTamVideoModel, non_overlap_masks: bool = False) -> None:
        self.model = model.eval()
        self.non_overlap_masks = non_overlap_masks
        self.processor = efficienttam_processor(model.config)
        self.device = next(model.parameters()).device

    @classmethod
    def from_pretrained(cls, name_or_path: str, non_overlap_masks: bool = False, **kwargs
                        ) -> "EfficientTamVideoPredictor":
        return cls(EfficientTamVideoModel.from_pretrained(name_or_path, **kwargs), non_overlap_masks)

    # -- state -----------------------------------------------------------------------------------------------------
    def init_state(self, video_path: Frames, offload_video_to_cpu: bool = False, offload_state_to_cpu: bool = False,
                   release_old_frames: bool = False):
        """A session over an mp4 or a frame folder (read lazily with ``utils.video.VideoFrames``, which may also be
        passed; the state's ``video_frames``), or a list of RGB uint8 frames. Frames are decoded when needed, so
        ``offload_video_to_cpu`` has nothing to move; ``offload_state_to_cpu`` keeps the memory bank on the CPU.
        ``release_old_frames``: drop each object's outputs on frames more than the memory's reach (16 frames) from
        the frame being tracked and from every prompted frame -- memory then stays flat however long the video; one
        pass forward and one in reverse from the prompts compute what they compute without it, but a correction
        click on a released frame starts without that frame's earlier mask and memory."""
        if isinstance(video_path, (str, os.PathLike, VideoFrames)):
            frames = video_path if isinstance(video_path, VideoFrames) else VideoFrames(os.fspath(video_path))
            height, width = frames.height, frames.width
        else:
            frames = [np.asarray(f) for f in video_path]
            if not frames:
                raise ValueError("the video has no frames")
            height, width = frames[0].shape[:2]
            if any(f.shape != frames[0].shape for f in frames):
                raise ValueError(f"every frame must have the first one's shape {frames[0].shape}")
        device = self.device
        state = self.processor.init_video_session(
            inference_device=device, video_storage_device="cpu" if offload_video_to_cpu else device,
            inference_state_device="cpu" if offload_state_to_cpu else device)
        state.processed_frames = _LazyFrames(frames, self._prepare)
        state.video_height, state.video_width = int(height), int(width)
        state.video_frames, state.release_old_frames, state.tracking_has_started = frames, release_old_frames, False
        return state

    def _prepare(self, frame: np.ndarray) -> torch.Tensor:
        """One RGB frame -> the model's input ``[3, S, S]`` (transformers' SAM 2 video processor)."""
        frame = np.array(frame[None])  # a writable copy: frame readers may hand out read-only arrays
        return self.processor.video_processor(videos=[frame], return_tensors="pt").pixel_values_videos[0][0]

    def reset_state(self, state) -> None:
        """Forget every prompt, object and prediction; the frames stay."""
        state.reset_tracking_data()
        state.tracking_has_started = False

    def remove_object(self, state, obj_id: int, strict: bool = False, need_output: bool = True):
        """SAM 2's ``remove_object``: forget ``obj_id``'s prompts and outputs; the other objects keep theirs. Returns
        ``(obj_ids, updated_frames)``, the latter ``(frame_idx, mask_logits)`` of the remaining objects on every frame
        a prompt conditions (with ``need_output``). An unknown id is refused with ``strict``, else ignored."""
        if obj_id not in state.obj_ids:
            if strict:
                raise ValueError(f"object {obj_id} is not in this state; its objects are {list(state.obj_ids)}")
            return list(state.obj_ids), []
        if len(state.obj_ids) == 1:
            self.reset_state(state)
            return [], []
        gone = state.obj_id_to_idx(obj_id)
        kept = [(idx, oid) for idx, oid in state._obj_idx_to_id.items() if idx != gone]
        for table in (state.point_inputs_per_obj, state.mask_inputs_per_obj, state.output_dict_per_obj,
                      state.frames_tracked_per_obj):
            moved = {new: table[old] for new, (old, _) in enumerate(kept)}
            table.clear()
            table.update(moved)
        state._obj_id_to_idx = OrderedDict((oid, new) for new, (_, oid) in enumerate(kept))
        state._obj_idx_to_id = OrderedDict((new, oid) for new, (_, oid) in enumerate(kept))
        state.obj_ids = [oid for _, oid in kept]
        state.obj_with_new_inputs = [o for o in state.obj_with_new_inputs if o != obj_id]
        if not need_output:
            return list(state.obj_ids), []
        frames = sorted({f for per in state.output_dict_per_obj.values() for f in per["cond_frame_outputs"]})
        updated = []
        for f in frames:
            per_obj = [self._stored_mask(state, idx, f) for idx in range(len(state.obj_ids))]
            updated.append((f, self._video_logits(state, torch.cat(per_obj))))
        return list(state.obj_ids), updated

    def _stored_mask(self, state, obj_idx: int, frame_idx: int) -> torch.Tensor:
        for conditioning in (True, False):
            mask = state.get_output(obj_idx, frame_idx, "pred_masks", conditioning)
            if mask is not None:
                return mask
        size = self.model.prompt_encoder.mask_input_size
        return torch.full((1, 1, *size), -1024.0, device=self.device)  # SAM 2's score where there is no object

    # -- prompts ---------------------------------------------------------------------------------------------------
    @torch.inference_mode()
    def add_new_points_or_box(self, state, frame_idx: int, obj_id: int, points=None, labels=None, box=None,
                              clear_old_points: bool = True) -> Tuple[int, List[int], torch.Tensor]:
        """Clicks (``labels`` 1 positive, 0 negative) and / or a box ``[x0, y0, x1, y1]`` in pixels for ``obj_id`` on
        ``frame_idx``; the box goes first, as SAM's corner points (labels 2, 3)."""
        self._check_frame(state, frame_idx)
        self._check_object(state, obj_id)
        coords, codes = [], []
        if box is not None:
            box = np.asarray(box, np.float32).reshape(-1)
            if box.shape != (4,) or box[2] < box[0] or box[3] < box[1]:
                raise ValueError(f"box must be [x0, y0, x1, y1] with x1 >= x0 and y1 >= y0, got {box.tolist()}")
            coords += [box[:2], box[2:]]
            codes += [2, 3]
        if points is not None:
            points = np.asarray(points, np.float32).reshape(-1, 2)
            labels = np.ones(len(points), np.int64) if labels is None else np.asarray(labels).reshape(-1)
            if len(labels) != len(points):
                raise ValueError(f"{len(points)} points but {len(labels)} labels; give one label per point")
            if not set(labels.tolist()) <= {0, 1}:
                raise ValueError(f"point labels must be 1 (positive) or 0 (negative), got {labels.tolist()}")
            coords += list(points)
            codes += labels.tolist()
        if not coords:
            raise ValueError("give points (with labels) or a box")
        height, width = state.video_height, state.video_width
        for x, y in coords:
            if not (np.isfinite(x) and np.isfinite(y) and 0 <= x <= width and 0 <= y <= height):
                raise ValueError(f"point ({x:g}, {y:g}) lies outside the {width}x{height} (WxH) frame")
        self.processor.add_inputs_to_inference_session(
            state, frame_idx=frame_idx, obj_ids=int(obj_id), input_points=[[[list(map(float, c)) for c in coords]]],
            input_labels=[[codes]], clear_old_inputs=clear_old_points)
        return self._run(state, frame_idx)

    @torch.inference_mode()
    def add_new_mask(self, state, frame_idx: int, obj_id: int, mask) -> Tuple[int, List[int], torch.Tensor]:
        """A mask (``[H, W]``, non-zero = object; or a PNG path) for ``obj_id`` on ``frame_idx``."""
        self._check_frame(state, frame_idx)
        self._check_object(state, obj_id)
        mask = load_image_rgb(mask).max(axis=-1) > 0 if isinstance(mask, str) else np.asarray(mask) > 0
        if mask.shape != (state.video_height, state.video_width):
            raise ValueError(f"mask is {mask.shape[1]}x{mask.shape[0]} (WxH), the video is "
                             f"{state.video_width}x{state.video_height}")
        self.processor.add_inputs_to_inference_session(state, frame_idx=frame_idx, obj_ids=int(obj_id),
                                                       input_masks=mask)
        return self._run(state, frame_idx)

    # -- tracking --------------------------------------------------------------------------------------------------
    @torch.inference_mode()
    def propagate_in_video(self, state, start_frame_idx: Optional[int] = None,
                           max_frame_num_to_track: Optional[int] = None,
                           reverse: bool = False) -> Iterator[Tuple[int, List[int], torch.Tensor]]:
        """Every frame from ``start_frame_idx`` (default: the first prompted one), forward or ``reverse``, at most
        ``max_frame_num_to_track`` frames past the start."""
        if start_frame_idx is not None:
            self._check_frame(state, start_frame_idx)
        if not state.get_obj_num():
            raise ValueError("no prompts yet: add points, a box or a mask for an object (add_new_points_or_box / "
                             "add_new_mask) before propagating")
        state.tracking_has_started = True
        for out in self.model.propagate_in_video_iterator(state, start_frame_idx=start_frame_idx,
                                                          max_frame_num_to_track=max_frame_num_to_track,
                                                          reverse=reverse):
            self._trim(state, out.frame_idx)
            yield out.frame_idx, list(out.object_ids), self._video_logits(state, out.pred_masks)

    # -- helpers ---------------------------------------------------------------------------------------------------
    def _check_frame(self, state, frame_idx: int) -> None:
        if not 0 <= int(frame_idx) < state.num_frames:
            raise ValueError(f"frame {frame_idx} is outside the video's {state.num_frames} frames "
                             f"(0..{state.num_frames - 1})")

    def _check_object(self, state, obj_id: int) -> None:
        if obj_id not in state.obj_ids and getattr(state, "tracking_has_started", False):
            raise ValueError(f"cannot add object {obj_id} after tracking has started (objects: {list(state.obj_ids)}); "
                             "call reset_state(state) and prompt every object before propagating, as in SAM 2")

    def _run(self, state, frame_idx: int):
        out = self.model(inference_session=state, frame_idx=frame_idx)
        self._trim(state, frame_idx)
        return frame_idx, list(out.object_ids), self._video_logits(state, out.pred_masks)

    def _trim(self, state, frame_idx: int) -> None:
        """Drop what no later step reads: this frame's full-resolution masks (its memory is encoded), and, with
        ``release_old_frames``, outputs beyond the memory's reach (see ``init_state``)."""
        config = self.model.config
        reach = max(config.num_maskmem - 1, config.max_object_pointers_in_encoder)
        for per in state.output_dict_per_obj.values():
            for outputs in per.values():
                outputs.get(frame_idx, {}).pop("high_res_masks", None)
            if getattr(state, "release_old_frames", False):
                prompted = list(per["cond_frame_outputs"])
                old = [f for f in per["non_cond_frame_outputs"]
                       if abs(f - frame_idx) > reach and all(abs(f - c) > reach for c in prompted)]
                for f in old:
                    del per["non_cond_frame_outputs"][f]

    def _video_logits(self, state, pred_masks: torch.Tensor) -> torch.Tensor:
        return self.processor.post_process_masks([pred_masks], original_sizes=[[state.video_height, state.video_width]],
                                                 binarize=False,
                                                 apply_non_overlapping_constraints=self.non_overlap_masks)[0]


def build_efficienttam_video_predictor(variant_or_config: Union[str, EfficientTamVideoConfig],
                                       ckpt_path: Optional[str] = None, device="cpu", mode: str = "eval",
                                       apply_postprocessing: bool = True, non_overlap_masks: bool = False,
                                       **overrides) -> EfficientTamVideoPredictor:
    """SAM 2's ``build_sam2_video_predictor``: the video model (see ``build_efficienttam_video_model``) in a
    :class:`EfficientTamVideoPredictor`. ``apply_postprocessing`` adds the release's settings (``fill_hole_area=8``)
    under ``overrides``; ``non_overlap_masks`` is SAM 2's ``++model.non_overlap_masks``."""
    settings = {**(POSTPROCESSING if apply_postprocessing else {}), **overrides}
    return EfficientTamVideoPredictor(build_efficienttam_video_model(variant_or_config, ckpt_path, device, mode,
                                                                     **settings), non_overlap_masks)
