"""What the demo's video tab computes, without the page: EfficientTAM through SAM 2's video-predictor API
(``EfficientTamVideoPredictor``) on an uploaded video, one session per visitor.

A session holds the visitor's video (decoded lazily, one frame at a time), the predictor's state, the clicks and the
masks shown so far (COCO RLE per frame and object, so a long video costs little memory). Model calls are serialised
by one lock; a handful of sessions are kept, the least recently used closed first. Every problem with the input raises
:class:`DemoInputError` with the message the page shows, and leaves the session as it was.
"""
from __future__ import annotations

import os
import tempfile
import threading
import uuid
from collections import OrderedDict
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from ..utils.io import write_json
from ..utils.masks import decode_rle, encode_rle, instance_ids
from ..utils.video import VideoFrames, write_video
from ..visualize import overlay_ids
from .backend import DemoInputError, OutputFolders

__all__ = ["VideoDemoBackend", "MAX_VIDEO_FRAMES", "SESSIONS_KEPT", "MAX_OBJECT_ID"]

#: The longest upload the video tab tracks (frames); longer ones are refused by name (`efficientsam-zoo track` takes
#: any length).
MAX_VIDEO_FRAMES = 600
SESSIONS_KEPT = 4
MAX_OBJECT_ID = 255  # object ids in the masks' id maps (uint16) and their colours; more objects than a page shows


class _Session:
    def __init__(self, frames: VideoFrames, state) -> None:
        self.frames, self.state = frames, state
        self.clicks: Dict[Tuple[int, int], List[Tuple[float, float, int]]] = {}  # (frame, object) -> clicks
        self.masks: Dict[int, Dict[int, Dict]] = {}  # frame -> object -> COCO RLE (objects present only)

    def ids(self, frame_idx: int) -> np.ndarray:
        """The object-id map shown on ``frame_idx`` (0 where no object is)."""
        objects = sorted(self.masks.get(frame_idx, {}).items())
        if not objects:
            return np.zeros((self.frames.height, self.frames.width), np.uint16)
        return instance_ids([o for o, _ in objects], [decode_rle(r) for _, r in objects])


class VideoDemoBackend:
    """``VideoDemoBackend(model)``: an ``EfficientTamVideoModel`` behind the video tab's calls."""

    def __init__(self, model, work_dir: Optional[str] = None, max_frames: int = MAX_VIDEO_FRAMES) -> None:
        from ..integrations.hf import EfficientTamVideoPredictor

        self.predictor = EfficientTamVideoPredictor(model)
        self.max_frames = max_frames
        self.lock = threading.Lock()
        self.work_dir = work_dir or tempfile.mkdtemp(prefix="efficientsam-demo-video-")
        self.outputs = OutputFolders(self.work_dir, keep=16)
        self._sessions: "OrderedDict[str, _Session]" = OrderedDict()

    # -- sessions ---------------------------------------------------------------------------------------------------
    def open(self, path: Optional[str]) -> str:
        """A new session on the video at ``path`` (an mp4 or any file OpenCV's FFmpeg decodes); its token."""
        if not path or not os.path.isfile(path):
            raise DemoInputError("no video: upload one (mp4, avi, mov ...) or pick an example")
        try:
            frames = VideoFrames(path)
        except ValueError as exc:
            raise DemoInputError(f"{exc} Upload an mp4 (H.264 or MPEG-4) or another video FFmpeg reads.") from None
        if len(frames) > self.max_frames:
            frames.close()
            raise DemoInputError(f"the video has {len(frames)} frames, more than this demo's {self.max_frames}: cut it "
                                 "shorter, or track it with `efficientsam-zoo track` (any length)")
        with self.lock:
            try:
                state = self.predictor.init_state(frames)
            except Exception:
                frames.close()
                raise
            token = uuid.uuid4().hex
            self._sessions[token] = _Session(frames, state)
            while len(self._sessions) > SESSIONS_KEPT:
                self._sessions.popitem(last=False)[1].frames.close()
        return token

    def session(self, token: Optional[str]) -> _Session:
        with self.lock:  # open() may close the oldest session meanwhile
            found = self._sessions.get(token) if token else None
            if found is None:
                raise DemoInputError("no video in this session (or it was closed to make room for others): upload "
                                     "one")
            self._sessions.move_to_end(token)
            return found

    def num_frames(self, token: str) -> int:
        return len(self.session(token).frames)

    def reset(self, token: str) -> None:
        """Forget the session's clicks, objects and masks; the video stays."""
        s = self.session(token)
        with self.lock:
            self.predictor.reset_state(s.state)
        s.clicks.clear()
        s.masks.clear()

    # -- clicks and tracking ----------------------------------------------------------------------------------------
    def click(self, token: str, frame_idx: int, x: float, y: float, label: int = 1, obj_id: int = 1) -> np.ndarray:
        """A click (label 1 = object, 0 = background) for object ``obj_id`` on ``frame_idx``; returns that frame's
        picture with every object's mask. The object's earlier clicks on the frame are sent again with it (SAM 2's
        ``add_new_points_or_box`` replaces a frame's clicks)."""
        s = self.session(token)
        frame_idx, obj_id = int(frame_idx), int(obj_id)
        if not 1 <= obj_id <= MAX_OBJECT_ID:
            raise DemoInputError(f"object ids are whole numbers from 1 to {MAX_OBJECT_ID}, got {obj_id}")
        clicks = s.clicks.get((frame_idx, obj_id), []) + [(float(x), float(y), int(label))]
        with self.lock:
            try:
                _, obj_ids, logits = self.predictor.add_new_points_or_box(
                    s.state, frame_idx, obj_id, points=[c[:2] for c in clicks], labels=[c[2] for c in clicks])
            except ValueError as exc:  # outside the frame, frame out of range, a new object after tracking ...
                raise DemoInputError(str(exc)) from None
        s.clicks[(frame_idx, obj_id)] = clicks
        s.masks[frame_idx] = _frame_masks(obj_ids, logits)
        return self.frame(token, frame_idx)

    def frame(self, token: str, frame_idx: int) -> np.ndarray:
        """Frame ``frame_idx`` with the masks known for it and its clicks."""
        s = self.session(token)
        if not 0 <= int(frame_idx) < len(s.frames):
            raise DemoInputError(f"frame {frame_idx} is outside the video's {len(s.frames)} frames "
                                 f"(0..{len(s.frames) - 1})")
        frame_idx = int(frame_idx)
        clicks = [c for (t, _), cs in s.clicks.items() if t == frame_idx for c in cs]
        with self.lock:
            image = s.frames[frame_idx]
        return overlay_ids(image, s.ids(frame_idx), points=np.array([c[:2] for c in clicks]) if clicks else None,
                           labels=np.array([c[2] for c in clicks]) if clicks else None)

    def propagate(self, token: str, progress: Optional[Callable[[int, int], None]] = None) -> Tuple[str, str]:
        """Track every object through the video (forward from the first prompted frame, then back to frame 0, as SAM
        2's demo does); returns ``(overlay WebM, masks JSON)``: the JSON holds the fields ``efficientsam-zoo track
        --format rle`` writes."""
        s = self.session(token)
        if not s.clicks:
            raise DemoInputError("no object yet: click on one in a frame first")
        total, done = len(s.frames), 0
        with self.lock:
            for reverse in (False, True):
                for t, obj_ids, logits in self.predictor.propagate_in_video(s.state, reverse=reverse):
                    s.masks[t] = _frame_masks(obj_ids, logits)
                    done = min(done + 1, total)
                    if progress is not None:
                        progress(done, total)
            folder = self.outputs.new()
            video = os.path.join(folder, "overlay.webm")  # VP8: browsers play it as it is
            write_video(video, (overlay_ids(s.frames[t], s.ids(t)) for t in range(total)), fps=s.frames.fps)
        records = [dict(frame=t, obj_id=o, segmentation=rle) for t in sorted(s.masks)
                   for o, rle in sorted(s.masks[t].items())]
        masks = os.path.join(folder, "masks.json")
        write_json(dict(video=os.path.basename(s.frames.path), height=s.frames.height, width=s.frames.width,
                        frames=total, annotations=records), masks)
        return video, masks


def _frame_masks(obj_ids, logits) -> Dict[int, Dict]:
    """The predictor's output for one frame -> ``{object id: COCO RLE}`` of the objects present (empty masks are
    left out: nothing to draw or download)."""
    return {int(o): encode_rle(m) for o, m in zip(obj_ids, (logits[:, 0] > 0).cpu().numpy()) if m.any()}
