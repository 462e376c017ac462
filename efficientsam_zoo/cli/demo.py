"""``efficientsam-zoo demo``: the interactive page (Gradio) on a local model.

    efficientsam-zoo demo [--model NAME] [--checkpoint FILE | --run DIR] [--port 7860] [--host 127.0.0.1] [--share]
                          [--video-model efficienttam-ti] [--video-checkpoint FILE | DIR]

With no model given it serves the main job's finetuned model (``quickstart_out/model/``, written by
``efficientsam-zoo quickstart``) when that folder exists. ``--run DIR`` takes the ``model/`` folder of a quickstart
or ``finetune`` output. The page binds to 127.0.0.1 unless ``--host`` says otherwise; ``--share`` (a public Gradio
link) is off unless asked for. ``--video-model`` / ``--video-checkpoint`` (what ``efficientsam-zoo track`` takes) add
the video tab, EfficientTAM through SAM 2's video-predictor API.
"""
from __future__ import annotations

import argparse
import os
from typing import List, Tuple

from .common import device, load_model_from_args

__all__ = ["cmd_demo", "add_parsers", "QUICKSTART_MODEL", "demo_model_source", "write_examples",
           "write_video_examples"]

#: Where the main job (``efficientsam-zoo quickstart``, default ``--out-dir``) leaves its finetuned model.
QUICKSTART_MODEL = os.path.join("quickstart_out", "model")
NO_MODEL = ("error: no model to serve: run `efficientsam-zoo quickstart` first (its finetuned model lands in "
            f"{QUICKSTART_MODEL}/), or pass --checkpoint FILE (a released efficient_sam_vitt.pt ... or a model "
            "folder), --run DIR (a quickstart / finetune output) or --model NAME (downloads the released weights)")


def demo_model_source(args: argparse.Namespace) -> Tuple[str, str]:
    """``(checkpoint or "", model name or "")`` the options name, or the main job's model."""
    if args.run:
        model_dir = os.path.join(args.run, "model")
        if not os.path.isdir(model_dir):
            raise SystemExit(f"error: --run {args.run!r} has no model/ folder; give a quickstart or finetune output "
                             "folder")
        return model_dir, args.model or ""
    if args.checkpoint or args.model:
        return args.checkpoint or "", args.model or ""
    if os.path.isdir(QUICKSTART_MODEL):
        return QUICKSTART_MODEL, ""
    raise SystemExit(NO_MODEL)


def write_examples(folder: str, size: int, count: int = 3) -> List[str]:
    """Generated scenes of the kind the main job trains on (shapes on textured backgrounds), as PNGs; seeds far from
    the main job's, so the examples are new to its model."""
    from PIL import Image

    from ..data.synthetic import make_scene

    os.makedirs(folder, exist_ok=True)
    paths = []
    for i in range(count):
        image, _ = make_scene(9_000_000 + i, size, size)
        paths.append(os.path.join(folder, f"example_{i}.png"))
        Image.fromarray(image).save(paths[-1])
    return paths


def write_video_examples(folder: str, size: int, count: int = 1, num_frames: int = 24) -> List[str]:
    """Generated videos of shapes that move, pass in front of each other and leave the frame, as mp4 files."""
    from ..data.synthetic import make_moving_shapes
    from ..utils.video import write_video

    os.makedirs(folder, exist_ok=True)
    paths = []
    for i in range(count):
        frames, _ = make_moving_shapes(9_100_000 + i, num_frames, size, size)
        paths.append(os.path.join(folder, f"example_{i}.mp4"))
        write_video(paths[-1], frames, fps=8)
    return paths


def cmd_demo(args: argparse.Namespace) -> int:
    from importlib.util import find_spec

    if find_spec("gradio") is None:
        raise SystemExit("error: the demo needs Gradio: pip install 'efficientsam-zoo[demo]'")
    from ..demo import DemoBackend, build_demo

    checkpoint, name = demo_model_source(args)
    model = load_model_from_args(name or None, checkpoint or None, device(args.device))
    backend = DemoBackend(model)
    examples = write_examples(os.path.join(backend.work_dir, "examples"), max(128, min(model.img_size, 512)))
    video, video_examples = None, []
    if args.video_model or args.video_checkpoint:
        from ..demo import VideoDemoBackend
        from ..registry import EFFICIENT_TAM_NAMES
        from .track import load_video_model

        video_model = load_video_model(args.video_checkpoint, args.video_model or EFFICIENT_TAM_NAMES[0], args.device)
        video = VideoDemoBackend(video_model, work_dir=os.path.join(backend.work_dir, "video"))
        video_examples = write_video_examples(os.path.join(backend.work_dir, "video_examples"),
                                              max(128, min(video_model.config.image_size, 512)))
    demo = build_demo(backend, examples, title=f"EfficientSAM demo ({checkpoint or name})", video=video,
                      video_examples=video_examples)
    print(f"serving {checkpoint or name} on http://{args.host}:{args.port} (Ctrl+C stops it)")
    demo.queue().launch(server_name=args.host, server_port=args.port, share=args.share,
                        allowed_paths=[backend.work_dir], inbrowser=False)
    return 0


def add_parsers(sub) -> None:
    from ..registry import EFFICIENT_SAM_NAMES, EFFICIENT_TAM_NAMES

    p = sub.add_parser("demo", help="the interactive web page (Gradio)", description=__doc__.split("\n\n")[0])
    src = p.add_mutually_exclusive_group()
    src.add_argument("--checkpoint", help="a released checkpoint file or a model folder")
    src.add_argument("--run", help="a quickstart / finetune output folder (its model/)")
    p.add_argument("--model", choices=EFFICIENT_SAM_NAMES, help="model name (alone: downloads the released weights)")
    vid = p.add_argument_group("video tab (EfficientTAM; absent without one of these)")
    vid.add_argument("--video-model", choices=EFFICIENT_TAM_NAMES,
                     help="which EfficientTAM; alone, its release is fetched (or read from the local cache)")
    vid.add_argument("--video-checkpoint", help="a released EfficientTAM file or a save_pretrained directory")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s, this machine only)")
    p.add_argument("--share", action="store_true", help="also serve through a public gradio.live link")
    p.add_argument("--device", help="torch device (default: cuda if available, else cpu)")
    p.set_defaults(func=cmd_demo)
