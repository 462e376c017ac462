"""``efficientsam-zoo track``: EfficientTAM on a video, frame by frame.

    efficientsam-zoo track VIDEO (--point X,Y[,LABEL][@FRAME] | --box X0,Y0,X1,Y1[@FRAME] | --mask PNG[@FRAME]) ...
                     [--obj ID] [--model efficienttam-ti] [--checkpoint FILE | DIR] --out-dir DIR [--format png|rle]

VIDEO is an mp4 (any container OpenCV's FFmpeg reads) or a folder of JPEG / PNG frames; frames are decoded one at a
time and dropped (``utils.video``). Each prompt belongs to the object of the last ``--obj`` before it (object 1 before
any). The model runs SAM 2's video-predictor API (``EfficientTamVideoPredictor``, with ``release_old_frames`` so memory
stays flat): every prompt is added first, then the objects are tracked forward from the first prompted frame (an
object prompted later is found on earlier frames from its prompt, as SAM 2 does). Written, atomically:
``masks/NNNNN.png`` (one instance-id PNG per frame: 0 background, else the object id; where objects overlap, the one
with the highest logit, as SAM 2's ``vos_inference`` writes them) or ``masks.json`` (COCO RLE per frame and object,
each object's whole mask), and ``overlay.mp4``.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import tempfile
from typing import Dict, List, Optional

import numpy as np

from ..registry import EFFICIENT_TAM_NAMES, get_variant
from ..utils.image import load_image_rgb
from ..utils.masks import encode_rle, instance_ids
from ..utils.video import VideoFrames, write_video
from ..visualize import overlay_ids
from .common import device

__all__ = ["cmd_track", "add_parsers", "parse_prompt", "load_video_model"]

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)"
_PATTERNS = {"point": rf"^({_NUMBER}),({_NUMBER})(?:,([01]))?(?:@(\d+))?$",
             "box": rf"^({_NUMBER}),({_NUMBER}),({_NUMBER}),({_NUMBER})(?:@(\d+))?$",
             "mask": r"^(.+?)(?:@(\d+))?$"}
_FORMS = {"point": "X,Y[,LABEL][@FRAME]", "box": "X0,Y0,X1,Y1[@FRAME]", "mask": "PNG[@FRAME]"}


def parse_prompt(kind: str, text: str, obj: int) -> Dict:
    """One ``--point`` / ``--box`` / ``--mask`` value -> ``{"obj", "frame", "kind", ...}``."""
    match = re.match(_PATTERNS[kind], text)
    if match is None:
        raise SystemExit(f"error: --{kind} {text!r} is not {_FORMS[kind]}")
    groups = match.groups()
    frame = int(groups[-1]) if groups[-1] is not None else 0
    if kind == "point":
        return dict(obj=obj, frame=frame, kind=kind, xy=(float(groups[0]), float(groups[1])),
                    label=int(groups[2]) if groups[2] is not None else 1)
    if kind == "box":
        box = tuple(float(g) for g in groups[:4])
        if box[2] < box[0] or box[3] < box[1]:
            raise SystemExit(f"error: --box {text!r}: x1 must be >= x0 and y1 >= y0")
        return dict(obj=obj, frame=frame, kind=kind, box=box)
    return dict(obj=obj, frame=frame, kind=kind, path=groups[0])


class _Prompt(argparse.Action):
    """Collects prompts in command-line order, each owned by the current ``--obj``."""

    def __call__(self, parser, namespace, value, option_string=None):
        prompts = getattr(namespace, "prompts", None) or []
        if self.dest == "obj":
            namespace.current_obj = int(value)
            if namespace.current_obj < 1:
                parser.error(f"--obj {value}: object ids are whole numbers from 1")
            return
        prompts.append(parse_prompt(self.dest, value, getattr(namespace, "current_obj", 1)))
        namespace.prompts = prompts


def _check_prompts(prompts: List[Dict], frames: VideoFrames) -> Dict[int, Dict[int, List[Dict]]]:
    """Prompts grouped by frame, then object, each checked against the video; masks read here."""
    if not prompts:
        raise SystemExit("error: give at least one --point, --box or --mask")
    by_frame: Dict[int, Dict[int, List[Dict]]] = {}
    for p in prompts:
        where = f"--{p['kind']} for object {p['obj']}"
        if p["frame"] >= len(frames):
            raise SystemExit(f"error: {where} is on frame {p['frame']}, but the video has {len(frames)} frames "
                             f"(0..{len(frames) - 1})")
        coords = [p["xy"]] if p["kind"] == "point" else [p["box"][:2], p["box"][2:]] if p["kind"] == "box" else []
        for x, y in coords:
            if not (0 <= x <= frames.width and 0 <= y <= frames.height):
                raise SystemExit(f"error: {where}: ({x:g}, {y:g}) lies outside the {frames.width}x{frames.height} "
                                 "(WxH) frame")
        if p["kind"] == "mask":
            if not os.path.isfile(p["path"]):
                raise SystemExit(f"error: {where}: mask {p['path']!r} does not exist")
            mask = load_image_rgb(p["path"]).max(axis=-1) > 0
            if mask.shape != (frames.height, frames.width):
                raise SystemExit(f"error: {where}: mask {p['path']!r} is {mask.shape[1]}x{mask.shape[0]}, the video "
                                 f"is {frames.width}x{frames.height}")
            p = dict(p, mask=mask)
        objects = by_frame.setdefault(p["frame"], {})
        kinds = {q["kind"] == "mask" for q in objects.get(p["obj"], [])} | {p["kind"] == "mask"}
        if len(kinds) > 1:
            raise SystemExit(f"error: object {p['obj']} has a mask and points / a box on frame {p['frame']}; give "
                             "one or the other")
        if p["kind"] == "box" and any(q["kind"] == "box" for q in objects.get(p["obj"], [])):
            raise SystemExit(f"error: object {p['obj']} has two boxes on frame {p['frame']}; give one (SAM 2 takes "
                             "one box per object and frame)")
        objects.setdefault(p["obj"], []).append(p)
    return by_frame


def load_video_model(checkpoint: Optional[str], name: str, device_name: Optional[str] = None):
    """An ``EfficientTamVideoModel`` from a ``save_pretrained`` directory, a released file (variant ``name``) or, with
    no checkpoint, ``name``'s release through the hub sources; in eval mode on the device."""
    from ..integrations.hf import EfficientTamVideoModel

    if checkpoint and os.path.isdir(checkpoint):
        model = EfficientTamVideoModel.from_pretrained(checkpoint)
    elif checkpoint:
        if not os.path.isfile(checkpoint):
            raise SystemExit(f"error: checkpoint {checkpoint!r} does not exist")
        model = EfficientTamVideoModel.from_release(checkpoint, name)
    else:
        model = EfficientTamVideoModel.from_pretrained(name)
    return model.eval().to(device(device_name))


def _add_prompts(predictor, state, by_frame: Dict[int, Dict[int, List[Dict]]]) -> None:
    """Every prompt into the state, as SAM 2's predictor takes them: per frame and object, clicks and a box in one
    call (the box as SAM's corner points), or the mask."""
    for frame_idx, objects in sorted(by_frame.items()):
        for obj, prompts in objects.items():
            if prompts[0]["kind"] == "mask":
                predictor.add_new_mask(state, frame_idx, obj, prompts[-1]["mask"])
                continue
            points = [p["xy"] for p in prompts if p["kind"] == "point"]
            boxes = [p["box"] for p in prompts if p["kind"] == "box"]
            predictor.add_new_points_or_box(state, frame_idx, obj, points=points or None,
                                            labels=[p["label"] for p in prompts if p["kind"] == "point"] or None,
                                            box=boxes[0] if boxes else None)


def cmd_track(args: argparse.Namespace) -> int:
    import torch
    from PIL import Image
    from tqdm import tqdm

    from ..integrations.hf import EfficientTamVideoPredictor

    frames = VideoFrames(args.video)
    by_frame = _check_prompts(getattr(args, "prompts", None) or [], frames)
    predictor = EfficientTamVideoPredictor(load_video_model(args.checkpoint, args.model, args.device),
                                           non_overlap_masks=args.format == "png")
    size = (frames.height, frames.width)
    os.makedirs(os.path.dirname(os.path.abspath(args.out_dir)) or ".", exist_ok=True)
    work = tempfile.mkdtemp(prefix=".track-", dir=os.path.dirname(os.path.abspath(args.out_dir)) or ".")
    try:
        records = []
        if args.format == "png":
            os.makedirs(os.path.join(work, "masks"))

        def overlays(results):  # one frame at a time, straight into the video writer: nothing kept but RLE records
            for t, ids in results:
                image = frames[t]  # the frame the tracker just decoded (VideoFrames keeps the last one)
                if args.format == "png":
                    Image.fromarray(ids if ids.max() > 255 else ids.astype(np.uint8)).save(
                        os.path.join(work, "masks", f"{t:05d}.png"))
                yield overlay_ids(image, ids)

        def results(state):
            start = min(by_frame)
            for t in range(start):  # before the first prompt: no object yet
                yield t, np.zeros(size, np.uint16)
            for t, obj_ids, logits in tqdm(predictor.propagate_in_video(state), total=len(frames) - start,
                                           desc="track", unit="frame"):
                masks = (logits[:, 0] > 0).cpu().numpy()
                if args.format == "rle":
                    records.extend(dict(frame=t, obj_id=int(obj), segmentation=encode_rle(mask))
                                   for obj, mask in zip(obj_ids, masks) if mask.any())
                yield t, instance_ids(obj_ids, masks)

        with torch.inference_mode():
            # one reader: the frame the tracker decodes is the one the overlay shows; memory flat on long videos
            state = predictor.init_state(frames, release_old_frames=True)
            _add_prompts(predictor, state, by_frame)
            write_video(os.path.join(work, "overlay.mp4"), overlays(results(state)), fps=frames.fps)
        if args.format == "rle":
            with open(os.path.join(work, "masks.json"), "w") as f:
                json.dump(dict(video=os.path.abspath(args.video), height=size[0], width=size[1],
                               frames=len(frames), annotations=records), f)
        if os.path.isdir(args.out_dir):
            shutil.rmtree(args.out_dir)
        os.replace(work, args.out_dir)
    finally:
        frames.close()
        shutil.rmtree(work, ignore_errors=True)
    print(f"tracked {len({p['obj'] for ps in by_frame.values() for p in sum(ps.values(), [])})} object(s) over "
          f"{len(frames)} frames -> {args.out_dir}")
    return 0


def add_parsers(sub) -> None:
    p = sub.add_parser("track", help="track objects through a video with EfficientTAM",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("video", help="an mp4 (or other video file) or a folder of JPEG / PNG frames")
    p.add_argument("--point", action=_Prompt, metavar=_FORMS["point"],
                   help="a click in pixels, label 1 (default) or 0 (negative), on frame FRAME (default 0); repeatable")
    p.add_argument("--box", action=_Prompt, metavar=_FORMS["box"], help="a box in pixels; repeatable")
    p.add_argument("--mask", action=_Prompt, metavar=_FORMS["mask"], help="a mask PNG (non-zero = object)")
    p.add_argument("--obj", action=_Prompt, metavar="ID", help="the object id the following prompts belong to")
    names = ", ".join(get_variant(n).weights[0].filename for n in EFFICIENT_TAM_NAMES[:2])
    p.add_argument("--model", choices=EFFICIENT_TAM_NAMES, default=EFFICIENT_TAM_NAMES[0],
                   help="which EfficientTAM (default: %(default)s); without --checkpoint its release is fetched")
    p.add_argument("--checkpoint", help=f"a released file ({names}, ...) or a save_pretrained directory")
    p.add_argument("--out-dir", required=True, help="folder to write (replaced if it exists)")
    p.add_argument("--format", choices=("png", "rle"), default="png",
                   help="masks as one instance-id PNG per frame (default) or COCO RLE in masks.json")
    p.add_argument("--device", help="torch device (default: cuda if available, else cpu)")
    p.set_defaults(func=cmd_track, prompts=None, current_obj=1)
