"""Video frames, decoded lazily: an mp4 (or any container OpenCV's FFmpeg reads) or a folder of JPEG / PNG frames.

:class:`VideoFrames` decodes a frame when it is asked for and keeps only the last one, so memory does not grow with
the video; reading in order costs one decode per frame (``decodes`` counts them), and asking for the same frame twice
in a row costs one. :func:`write_video` writes frames to an
mp4 atomically.
"""
from __future__ import annotations

import os
import re
from typing import Iterable, List, Optional

import numpy as np

from .image import load_image_rgb
from .io import atomic_path

__all__ = ["VideoFrames", "write_video", "FRAME_EXTENSIONS"]

#: Frame files read from a folder, sorted by the number in their name (``00012.jpg``), else by name.
FRAME_EXTENSIONS = (".jpg", ".jpeg", ".png")


def _frame_order(name: str):
    digits = re.findall(r"\d+", os.path.splitext(name)[0])
    return (0, int(digits[-1]), name) if digits else (1, 0, name)


class VideoFrames:
    """``len(frames)`` and ``frames[i]`` (RGB uint8 ``[H, W, 3]``) of a video file or a frame folder.

    Raises ``ValueError`` naming the problem for a missing path, a file OpenCV cannot open, a video or folder without
    frames, and a frame index outside ``0..len-1``.
    """

    def __init__(self, path: str) -> None:
        self.path = os.fspath(path)
        self.decodes = 0
        self._capture = None
        self._next = 0  # the frame the open capture reads next
        self._last = None  # (index, frame): the last frame read, returned again without decoding
        if os.path.isdir(self.path):
            self._files: Optional[List[str]] = sorted(
                (f for f in os.listdir(self.path) if f.lower().endswith(FRAME_EXTENSIONS)), key=_frame_order)
            if not self._files:
                raise ValueError(f"video folder {self.path!r} holds no frames ({', '.join(FRAME_EXTENSIONS)} files)")
            self._count = len(self._files)
            first = load_image_rgb(os.path.join(self.path, self._files[0]))
            self.height, self.width = first.shape[:2]
            self.fps = 24.0
            return
        if not os.path.isfile(self.path):
            raise ValueError(f"video {self.path!r} does not exist")
        import cv2

        self._files = None
        capture = cv2.VideoCapture(self.path)
        ok, frame = capture.read() if capture.isOpened() else (False, None)
        if not ok:
            capture.release()
            raise ValueError(f"could not read video {self.path!r}: OpenCV (FFmpeg) decodes no frame from it; is it a "
                             "complete video file (mp4, avi, mov ...)?")
        self._count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        self.fps = float(capture.get(cv2.CAP_PROP_FPS)) or 24.0
        self.height, self.width = frame.shape[:2]
        capture.release()
        if self._count <= 0:
            raise ValueError(f"video {self.path!r} reports no frames")

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, index: int) -> np.ndarray:
        if not 0 <= index < self._count:
            raise ValueError(f"frame {index} is outside the video's {self._count} frames (0..{self._count - 1})")
        if self._last is not None and self._last[0] == index:  # the tracker and the overlay writer both ask for it
            return self._last[1]
        frame = self._read(index)
        self._last = (index, frame)
        return frame

    def _read(self, index: int) -> np.ndarray:
        self.decodes += 1
        if self._files is not None:
            frame = load_image_rgb(os.path.join(self.path, self._files[index]))
        else:
            frame = self._decode(index)
        if frame.shape[:2] != (self.height, self.width):
            raise ValueError(f"frame {index} of {self.path!r} is {frame.shape[1]}x{frame.shape[0]}, the first is "
                             f"{self.width}x{self.height}: every frame must have one size")
        return frame

    def _decode(self, index: int) -> np.ndarray:
        import cv2

        if self._capture is None or index != self._next:  # sequential reads keep the capture; others seek
            if self._capture is None:
                self._capture = cv2.VideoCapture(self.path)
            self._capture.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, frame = self._capture.read()
        if not ok:
            raise ValueError(f"could not decode frame {index} of {self.path!r} (the file may be truncated)")
        self._next = index + 1
        return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None


#: The codec ``write_video`` uses per file ending: MPEG-4 Part 2 in mp4 (what every player reads) and VP8 in WebM
#: (what browsers play without extra codecs; the demo's overlay). OpenCV's wheels carry no H.264 encoder.
VIDEO_CODECS = {".mp4": "mp4v", ".webm": "VP80"}


def write_video(path: str, frames: Iterable[np.ndarray], fps: float = 24.0) -> int:
    """Write RGB uint8 frames to an ``.mp4`` or ``.webm`` file (``VIDEO_CODECS``), atomically; returns the number
    written."""
    import cv2

    ext = os.path.splitext(path)[1].lower()
    if ext not in VIDEO_CODECS:
        raise ValueError(f"cannot write video {path!r}: name it .mp4 or .webm")
    count = 0
    with atomic_path(path) as tmp:  # keeps the file's ending, from which OpenCV picks the container
        writer = None
        try:
            for frame in frames:
                if writer is None:
                    h, w = frame.shape[:2]
                    writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*VIDEO_CODECS[ext]), fps, (w, h))
                    if not writer.isOpened():
                        raise RuntimeError(f"OpenCV cannot write {VIDEO_CODECS[ext]} into {path!r} (its FFmpeg has "
                                           "no such encoder); write .mp4 instead")
                writer.write(cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2BGR))
                count += 1
        finally:
            if writer is not None:
                writer.release()
        if not count:
            raise ValueError(f"no frames to write to {path!r}")
    return count
