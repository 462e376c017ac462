"""Video object segmentation data: the layouts SAM 2 trains on, read lazily, and SAM 2's clip sampling.

* :class:`DavisVideos` -- DAVIS / YouTube-VOS / MOSE: ``JPEGImages/<video>/*.jpg`` (DAVIS's ``JPEGImages/480p/`` too)
  and palette PNGs ``Annotations/<video>/<frame>.png`` whose non-zero palette indices are the objects (SAM 2's
  ``PNGRawDataset``); frames without a PNG are not annotated (YouTube-VOS annotates every 5th).
* :class:`SavVideos` -- SA-V: ``<video>.mp4`` with ``<video>_manual.json`` (or ``_auto``), whose ``masklet`` lists,
  per annotated frame, one COCO RLE per object (SAM 2's ``JSONRawDataset``); annotations come every
  ``frames_fps / fps`` frames (SA-V: 24 / 6 = 4); frames are decoded from the mp4 when asked for (OpenCV).
* :class:`ImagesAsVideos` -- an image dataset (COCO / LVIS JSON, mask folder) as one-frame videos, the way SAM 2 mixes
  SA-1B in.
* :class:`VideoClips` -- training samples: ``num_frames`` consecutive annotated frames from a random start, up to
  ``max_objects`` objects visible in the first, resized to a square (SAM 2's ``RandomUniformSampler`` and resize).

Frames and masks are read when a clip needs them (a source holds file names only). Bad input is named: an annotation
without its frame, a PNG of another size than its frame, an object that appears in no annotated frame.
"""
from __future__ import annotations

import json
import logging
import os
from typing import Dict, List, Optional

import numpy as np
import torch
import torch.nn.functional as F

from ..utils.image import load_image_rgb
from ..utils.masks import decode_rle, instance_ids, rle_area
from ..utils.video import VideoFrames
from .instances import InstanceSource

logger = logging.getLogger(__name__)

__all__ = ["VideoSource", "DavisVideos", "SavVideos", "ImagesAsVideos", "VideoClips", "open_video_source",
           "read_palette_png", "write_davis_video", "make_moving_shapes_davis", "DAVIS_PALETTE"]

#: The colours of DAVIS's annotation palette for the first objects (index 0 background, k object k).
DAVIS_PALETTE = [0, 0, 0, 128, 0, 0, 0, 128, 0, 128, 128, 0, 0, 0, 128, 128, 0, 128, 0, 128, 128, 128, 128, 128]


class VideoSource:
    """Videos with object masks on their annotated frames. ``names[i]``; ``annotated(i)`` the frame indices with
    masks, in time order; ``frame(i, t)`` RGB uint8; ``objects(i, t)`` ``{object id: bool mask}`` (objects absent
    from the frame left out)."""

    names: List[str]

    def __len__(self) -> int:
        return len(self.names)

    def annotated(self, i: int) -> List[int]:
        raise NotImplementedError

    def frame(self, i: int, t: int) -> np.ndarray:
        raise NotImplementedError

    def objects(self, i: int, t: int) -> Dict[int, np.ndarray]:
        raise NotImplementedError


def read_palette_png(path: str) -> np.ndarray:
    """A palette (or grey) PNG as its index map ``[H, W]`` (DAVIS: 0 background, k object k, 255 void)."""
    from PIL import Image

    with Image.open(path) as im:
        if im.mode not in ("P", "L", "I", "I;16"):
            raise ValueError(f"{path}: annotations must be palette PNGs (mode P, object k painted with index k), "
                             f"this one is mode {im.mode}")
        return np.asarray(im).astype(np.int64)


class DavisVideos(VideoSource):
    """DAVIS-style folders under ``root`` (see the module docstring); ``videos`` (names, or a text file of names,
    one per line, like DAVIS's ``ImageSets/2017/val.txt``) selects some."""

    def __init__(self, root: str, videos=None, image_dir: str = "JPEGImages", annotation_dir: str = "Annotations"):
        images, annotations = os.path.join(root, image_dir), os.path.join(root, annotation_dir)
        if os.path.isdir(os.path.join(images, "480p")):  # DAVIS's resolution folder
            images, annotations = os.path.join(images, "480p"), os.path.join(annotations, "480p")
        for folder in (images, annotations):
            if not os.path.isdir(folder):
                raise FileNotFoundError(f"{folder} does not exist: a DAVIS-style root holds JPEGImages/<video>/*.jpg "
                                        "and Annotations/<video>/*.png")
        if isinstance(videos, str):
            videos = [line.strip() for line in open(videos) if line.strip()]
        self.names = sorted(videos if videos is not None else
                            (v for v in os.listdir(annotations) if os.path.isdir(os.path.join(annotations, v))))
        absent = [v for v in self.names if not os.path.isdir(os.path.join(images, v))]
        if absent:
            raise FileNotFoundError(f"video {absent[0]!r} has no frame folder {os.path.join(images, absent[0])}")
        self._frames, self._pngs = [], []
        for name in self.names:
            jpgs = sorted((f for f in os.listdir(os.path.join(images, name)) if f.lower().endswith((".jpg", ".jpeg",
                                                                                                   ".png"))))
            pngs = {os.path.splitext(f)[0]: f for f in os.listdir(os.path.join(annotations, name)) if f.endswith(".png")}
            stems = [os.path.splitext(f)[0] for f in jpgs]
            missing = sorted(set(pngs) - set(stems))
            if missing:
                raise ValueError(f"video {name!r}: annotation {missing[0]}.png has no frame {missing[0]}.jpg in "
                                 f"{os.path.join(images, name)}; every annotated frame needs its image")
            self._frames.append([os.path.join(images, name, f) for f in jpgs])
            self._pngs.append([os.path.join(annotations, name, pngs[s]) if s in pngs else None for s in stems])

    def annotated(self, i: int) -> List[int]:
        return [t for t, p in enumerate(self._pngs[i]) if p is not None]

    def frame(self, i: int, t: int) -> np.ndarray:
        return load_image_rgb(self._frames[i][t])

    def annotation_path(self, i: int, t: int) -> Optional[str]:
        """The PNG of frame ``t`` of video ``i`` (``None``: the frame is not annotated)."""
        return self._pngs[i][t]

    def id_map(self, i: int, t: int) -> Optional[np.ndarray]:
        """Frame ``t``'s palette indices (``None``: not annotated), checked against the frame's size."""
        path = self._pngs[i][t]
        if path is None:
            return None
        ids = read_palette_png(path)
        from PIL import Image

        with Image.open(self._frames[i][t]) as im:
            size = im.size[::-1]
        if ids.shape != size:
            raise ValueError(f"{path} is {ids.shape[1]}x{ids.shape[0]} but its frame is {size[1]}x{size[0]}: "
                             "an annotation must have its frame's size")
        return ids

    def objects(self, i: int, t: int) -> Dict[int, np.ndarray]:
        ids = self.id_map(i, t)
        if ids is None:
            return {}
        return {int(k): ids == k for k in np.unique(ids) if 0 < k < 255}


class SavVideos(VideoSource):
    """SA-V under ``root``: ``<video>.mp4`` + ``<video>_<annotations>.json`` (``annotations``: ``manual`` or
    ``auto``). A masklet's object id is its index + 1; ``frames_fps`` is the mp4's rate when the JSON gives its
    annotation ``fps`` (else every ``ann_every``-th frame is annotated, SA-V's 4). A video's JSON is read, and checked
    (a masklet empty on every annotated frame is refused, measured with pycocotools' ``area``, no decoding), when a
    clip of it is drawn; one video's JSON and one decoder are kept at a time."""

    def __init__(self, root: str, annotations: str = "manual", ann_every: int = 4, frames_fps: int = 24) -> None:
        self.suffix, self.root, self.ann_every, self.frames_fps = f"_{annotations}.json", root, ann_every, frames_fps
        self.names = sorted(f[:-len(self.suffix)] for f in os.listdir(root) if f.endswith(self.suffix))
        if not self.names:
            raise FileNotFoundError(f"no *{self.suffix} in {root}: SA-V holds <video>.mp4 with <video>{self.suffix}")
        missing = [n for n in self.names if not os.path.isfile(os.path.join(root, n + ".mp4"))]
        if missing:
            raise ValueError(f"{missing[0]}{self.suffix} has no video {missing[0]}.mp4 in {root}")
        self._json = (None, None, None)  # (video index, masklet, frame step) of the last video read
        self._video = (None, None)  # (video index, open decoder)

    def _masklet(self, i: int):
        if self._json[0] != i:
            name = self.names[i] + self.suffix
            with open(os.path.join(self.root, name)) as f:
                meta = json.load(f)
            masklet = meta.get("masklet", meta.get("masks"))
            if masklet is None:
                raise ValueError(f"{name} has no 'masklet' list (per annotated frame, one RLE per object)")
            fps = int(meta.get("fps", 0))
            if "fps" in meta and not 0 < fps <= self.frames_fps:
                raise ValueError(f"{name}: annotation fps {meta['fps']} must be in 1..{self.frames_fps} (the video's)")
            seen = {j for frame in masklet for j, rle in enumerate(frame)
                    if rle is not None and rle_area(rle) > 0}
            absent = sorted(set(range(max((len(frame) for frame in masklet), default=0))) - seen)
            if absent:
                raise ValueError(f"{name}: masklet {absent[0]} is empty on every annotated frame; remove it or fix "
                                 "its RLE")
            self._json = (i, masklet, self.frames_fps // fps if fps else self.ann_every)
        return self._json[1], self._json[2]

    def annotated(self, i: int) -> List[int]:
        masklet, every = self._masklet(i)
        return [k * every for k, frame in enumerate(masklet) if None not in frame]

    def frame(self, i: int, t: int) -> np.ndarray:
        if self._video[0] != i:  # the previous video's decoder is closed: one open file at a time
            if self._video[1] is not None:
                self._video[1].close()
            self._video = (i, VideoFrames(os.path.join(self.root, self.names[i] + ".mp4")))
        return self._video[1][t]

    def objects(self, i: int, t: int) -> Dict[int, np.ndarray]:
        masklet, every = self._masklet(i)
        if t % every:
            return {}
        masks = {j + 1: decode_rle(rle).astype(bool) for j, rle in enumerate(masklet[t // every]) if rle is not None}
        return {j: m for j, m in masks.items() if m.any()}


class ImagesAsVideos(VideoSource):
    """An image dataset (``data.instances``) as one-frame videos; instance ``k`` of an image is object ``k + 1``."""

    def __init__(self, source: InstanceSource) -> None:
        self.source = source
        self.names = [str(source.info(i).get("file_name", i)) for i in range(len(source))]

    def annotated(self, i: int) -> List[int]:
        return [0]

    def frame(self, i: int, t: int) -> np.ndarray:
        return self.source.load(i).image

    def objects(self, i: int, t: int) -> Dict[int, np.ndarray]:
        return {k + 1: m.astype(bool) for k, m in enumerate(self.source.load(i).masks) if m.any()}


def open_video_source(layout: str, root: str, **kwargs) -> VideoSource:
    """``layout``: ``"davis"`` (also YouTube-VOS / MOSE and the generated moving shapes), ``"sa-v"`` or ``"images"``
    (``root`` an image folder; ``annotations=`` a COCO JSON or ``masks=`` a mask folder)."""
    if layout == "davis":
        return DavisVideos(root, **kwargs)
    if layout == "sa-v":
        return SavVideos(root, **kwargs)
    if layout == "images":
        from .instances import open_source

        return ImagesAsVideos(open_source(root, kwargs.get("annotations"), kwargs.get("masks")))
    raise ValueError(f"unknown video layout {layout!r}; choose davis, sa-v or images")


class VideoClips(torch.utils.data.Dataset):
    """Training clips of a :class:`VideoSource`: ``{"frames": uint8 [T, 3, S, S], "masks": bool [T, K, S, S],
    "valid": bool [K], "index": idx}`` with ``K = max_objects`` (unused slots invalid). A clip is ``num_frames``
    consecutive annotated frames (a one-frame video gives ``T = 1``) from a random start whose first frame shows at
    least one object; up to ``max_objects`` of those are kept, in random order; with ``flip_prob`` the whole clip is
    mirrored; a video with fewer annotated frames than a clip is passed over for the next one (logged), as SAM 2
    retries. Draws are seeded by ``seed``, the index and how often this dataset object has served it: the same in one
    process or split over several and after a resume (mmengine replays the batches it skips) when the data is loaded
    in the training process (``num_workers=0``, the tiny config); with loader workers each worker counts its own
    visits, so clips stay varied but are not reproduced."""

    def __init__(self, source: VideoSource, num_frames: int = 8, max_objects: int = 3, img_size: int = 1024,
                 seed: int = 0, flip_prob: float = 0.5) -> None:
        self.source, self.num_frames, self.max_objects = source, num_frames, max_objects
        self.img_size, self.seed, self.flip_prob = img_size, seed, flip_prob
        self._visits: Dict[int, int] = {}
        if len(source) == 0:
            raise ValueError("the video source holds no video")

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, idx: int) -> Dict:
        visit = self._visits.get(idx, 0)
        self._visits[idx] = visit + 1
        rng = np.random.default_rng([self.seed, idx, visit])
        for step in range(len(self.source)):  # too short for a clip: the next video instead, as SAM 2 retries
            frames = self.source.annotated((idx + step) % len(self.source))
            if not 1 < len(frames) < self.num_frames:
                break
            logger.warning(f"video {self.source.names[(idx + step) % len(self.source)]!r} has {len(frames)} annotated "
                           f"frames, fewer than a clip's {self.num_frames}; using the next video")
        else:
            raise ValueError(f"no video has num_frames={self.num_frames} annotated frames; lower num_frames")
        idx = (idx + step) % len(self.source)
        starts = [0] if len(frames) == 1 else list(range(len(frames) - self.num_frames + 1))
        for start in rng.permutation(starts):
            chosen = frames[start:start + (self.num_frames if len(frames) > 1 else 1)]
            first = self.source.objects(idx, chosen[0])
            if first:
                break
        else:
            raise ValueError(f"video {self.source.names[idx]!r}: no object appears in any annotated frame")
        ids = [sorted(first)[j] for j in rng.permutation(len(first))[:self.max_objects]]
        flip = rng.random() < self.flip_prob
        s, k = self.img_size, self.max_objects
        out_frames = torch.empty(len(chosen), 3, s, s, dtype=torch.uint8)
        out_masks = torch.zeros(len(chosen), k, s, s, dtype=torch.bool)
        for n, t in enumerate(chosen):
            image = torch.tensor(self.source.frame(idx, t)).permute(2, 0, 1).float()
            out_frames[n] = F.interpolate(image[None], (s, s), mode="bilinear", antialias=True)[0].round().clamp(
                0, 255).to(torch.uint8)
            present = self.source.objects(idx, t) if n else first
            for j, obj in enumerate(ids):
                if obj in present:
                    m = torch.from_numpy(present[obj].astype(np.float32))[None, None]
                    out_masks[n, j] = F.interpolate(m, (s, s), mode="nearest")[0, 0] > 0.5
        if flip:
            out_frames, out_masks = out_frames.flip(-1), out_masks.flip(-1)
        valid = torch.zeros(k, dtype=torch.bool)
        valid[:len(ids)] = True
        return {"frames": out_frames, "masks": out_masks, "valid": valid, "index": idx}



def write_davis_video(root: str, name: str, frames: np.ndarray, id_maps: np.ndarray) -> None:
    """One video in the DAVIS layout: ``frames [T, H, W, 3]`` as ``JPEGImages/<name>/%05d.jpg`` and instance-id maps
    ``[T, H, W]`` (0 background, k object k) as palette PNGs ``Annotations/<name>/%05d.png``."""
    from PIL import Image

    for sub in ("JPEGImages", "Annotations"):
        os.makedirs(os.path.join(root, sub, name), exist_ok=True)
    for t, (frame, ids) in enumerate(zip(frames, id_maps)):
        Image.fromarray(frame).save(os.path.join(root, "JPEGImages", name, f"{t:05d}.jpg"), quality=95)
        png = Image.fromarray(ids.astype(np.uint8), mode="P")
        png.putpalette(DAVIS_PALETTE)
        png.save(os.path.join(root, "Annotations", name, f"{t:05d}.png"))


def make_moving_shapes_davis(root: str, n_videos: int, num_frames: int = 8, size: int = 128, n_objects: int = 3,
                             seed: int = 0, speed: float = 0.04, occluded_only: bool = False) -> List[str]:
    """Generated videos (``data.synthetic.make_moving_shapes``: shapes that move, pass in front of each other and may
    leave the frame) in the DAVIS layout under ``root``; the ``i``-th candidate is ``make_moving_shapes(seed * 10_000
    + i)``. ``occluded_only``: keep only videos where an object is hidden -- its visible area below half its largest
    -- and seen again afterwards, which a tracker without memory loses. Returns the video names."""
    from .synthetic import make_moving_shapes

    names: List[str] = []
    i = 0
    while len(names) < n_videos:
        if occluded_only and i >= 100 * n_videos:
            raise ValueError(f"only {len(names)} of {i} generated videos have an object hidden and seen again; ask for "
                             f"fewer than {n_videos}, or more frames")
        frames, masks = make_moving_shapes(seed * 10_000 + i, num_frames, size, size, n_objects, speed)
        i += 1
        if occluded_only and not _hidden_then_seen(masks):
            continue
        ids = np.stack([instance_ids(range(1, masks.shape[1] + 1), frame) for frame in masks])
        names.append(f"shapes{i - 1:04d}")
        write_davis_video(root, names[-1], frames, ids)
    return names


def _hidden_then_seen(masks: np.ndarray) -> bool:
    """Whether an object of ``masks [T, N, H, W]`` is seen (at least half its largest visible area), then hidden
    (below half), then seen again."""
    area = masks.sum((2, 3)).astype(np.float64)
    for seen in (area >= 0.5 * area.max(0)).T:
        states = [bool(v) for i, v in enumerate(seen) if i == 0 or v != seen[i - 1]]  # runs of seen / hidden
        if [True, False, True] in [states[i:i + 3] for i in range(len(states) - 2)]:
            return True
    return False
