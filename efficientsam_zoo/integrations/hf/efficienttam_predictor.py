"""SAM 2's video-predictor API (``init_state`` / ``add_new_points_or_box`` / ``add_new_mask`` / ``propagate_in_video``
/ ``reset_state``) for :class:`EfficientTamVideoModel`, as EfficientTAM's and SAM 2's own predictors name it.

It is a thin layer over transformers' inference session, which keeps the memory bank and the bookkeeping: this module
only checks the inputs -- before anything in the session changes, so a refused call leaves the state usable -- and
turns SAM 2's arguments into session inputs. Masks come back as SAM 2 returns them: ``(frame_idx, obj_ids,
mask_logits)`` with logits ``[num_objects, 1, H, W]`` at the video's resolution.
"""
from __future__ import annotations

from typing import Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from ...utils.image import load_image_rgb
from ...utils.video import VideoFrames
from .efficienttam import EfficientTamVideoModel, efficienttam_processor

__all__ = ["EfficientTamVideoPredictor"]

Frames = Union[str, Sequence[np.ndarray]]


class EfficientTamVideoPredictor:
    """``predictor = EfficientTamVideoPredictor(model)`` (or ``.from_pretrained("efficienttam-ti")``), then SAM 2's
    calls on the state ``init_state`` returns (a transformers ``Sam2VideoInferenceSession``)."""

    def __init__(self, model: EfficientTamVideoModel) -> None:
        self.model = model.eval()
        self.processor = efficienttam_processor(model.config)
        self.device = next(model.parameters()).device

    @classmethod
    def from_pretrained(cls, name_or_path: str, **kwargs) -> "EfficientTamVideoPredictor":
        return cls(EfficientTamVideoModel.from_pretrained(name_or_path, **kwargs))

    # -- state -----------------------------------------------------------------------------------------------------
    def init_state(self, video: Frames):
        """A session over ``video``: an mp4 or a frame folder (read with ``utils.video.VideoFrames``) or a list of
        RGB uint8 frames."""
        frames = list(VideoFrames(video)) if isinstance(video, str) else [np.asarray(f) for f in video]
        if not frames:
            raise ValueError("the video has no frames")
        return self.processor.init_video_session(video=frames, inference_device=self.device)

    def reset_state(self, state) -> None:
        """Forget every prompt, object and prediction; the frames and their cached features stay."""
        state.reset_tracking_data()

    # -- prompts ---------------------------------------------------------------------------------------------------
    @torch.inference_mode()
    def add_new_points_or_box(self, state, frame_idx: int, obj_id: int, points=None, labels=None, box=None,
                              clear_old_points: bool = True) -> Tuple[int, List[int], torch.Tensor]:
        """Clicks (``labels`` 1 positive, 0 negative) and / or a box ``[x0, y0, x1, y1]`` in pixels for ``obj_id`` on
        ``frame_idx``; the box goes first, as SAM's corner points (labels 2, 3)."""
        self._check_frame(state, frame_idx)
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
        for out in self.model.propagate_in_video_iterator(state, start_frame_idx=start_frame_idx,
                                                          max_frame_num_to_track=max_frame_num_to_track,
                                                          reverse=reverse):
            yield out.frame_idx, list(out.object_ids), self._video_logits(state, out.pred_masks)

    # -- helpers ---------------------------------------------------------------------------------------------------
    def _check_frame(self, state, frame_idx: int) -> None:
        if not 0 <= int(frame_idx) < state.num_frames:
            raise ValueError(f"frame {frame_idx} is outside the video's {state.num_frames} frames "
                             f"(0..{state.num_frames - 1})")

    def _run(self, state, frame_idx: int):
        out = self.model(inference_session=state, frame_idx=frame_idx)
        return frame_idx, list(out.object_ids), self._video_logits(state, out.pred_masks)

    def _video_logits(self, state, pred_masks: torch.Tensor) -> torch.Tensor:
        return self.processor.post_process_masks([pred_masks], original_sizes=[[state.video_height, state.video_width]],
                                                 binarize=False)[0]
