"""The quickstart's "track" stage: EfficientTAM (the shipped ``efficienttam_ti_tiny-moving-shapes`` config, mmengine's
Runner) trained from the EfficientSAM the stage before finetuned, on generated moving-shapes videos; DAVIS's J&F
(semi-supervised: the first frame's masks given) on held-out generated videos where an object is hidden and seen
again, before and after, beside the same model run frame by frame without memory (each object's first mask kept)."""
from __future__ import annotations

import os
from typing import Dict

import numpy as np

from ..cli.eval_video import evaluate_model
from ..data.video import DavisVideos, make_moving_shapes_davis
from ..utils.io import save_png
from ..visualize import overlay_masks
from .console import callback_hook
from .stages import IMG, loss_curve, stage_runner

__all__ = ["TRAIN_VIDEOS", "HELDOUT_VIDEOS", "make_videos", "track_stage"]

#: Generated videos: (videos, frames) for training and for the held-out evaluation.
TRAIN_VIDEOS, HELDOUT_VIDEOS = (48, 6), (8, 8)


def make_videos(root: str, seed: int) -> Dict[str, str]:
    """Training videos and held-out ones (other seeds, only videos where an object is hidden and seen again), in the
    DAVIS layout."""
    out = {"train": os.path.join(root, "train"), "heldout": os.path.join(root, "heldout")}
    make_moving_shapes_davis(out["train"], TRAIN_VIDEOS[0], num_frames=TRAIN_VIDEOS[1], size=IMG, seed=2 * seed + 1)
    make_moving_shapes_davis(out["heldout"], HELDOUT_VIDEOS[0], num_frames=HELDOUT_VIDEOS[1], size=IMG,
                             seed=2 * seed + 2, occluded_only=True)
    return out


def _strip(source: DavisVideos, ids: np.ndarray, path: str) -> str:
    """Held-out video 0's frames side by side, its tracked id maps ``ids`` (one per annotated frame) drawn over them
    (one colour per object prompted on the first frame)."""
    frames = [source.frame(0, t) for t in source.annotated(0)]
    objects = [int(k) for k in np.unique(ids[0]) if k]
    tiles = [overlay_masks(frame, [m == k for k in objects]) for frame, m in zip(frames, ids)]
    save_png(np.repeat(np.repeat(np.concatenate(tiles, axis=1), 2, axis=0), 2, axis=1), path)
    return path


def track_stage(videos: Dict[str, str], efficientsam_dir: str, out: str, bar) -> Dict:
    """Train the tiny EfficientTAM from ``efficientsam_dir``; held-out J&F before and after, and without memory."""
    from ..integrations.hf.efficienttam_predictor import EfficientTamVideoPredictor

    work = os.path.join(out, "work_dirs", "efficienttam")
    heldout = DavisVideos(videos["heldout"])
    result: Dict = {}

    def measure(when):
        def run(runner):
            model = runner.model.model
            was_training = model.training
            predictor = EfficientTamVideoPredictor(model)
            scores = evaluate_model(predictor, heldout, progress=False, keep=True)
            result[f"jf_{when}"], result[f"j_{when}"], result[f"f_{when}"] = scores["J&F"], scores["J"], scores["F"]
            if when == "before":  # the masks are prompts kept as they are: the weights do not enter
                result["jf_no_memory"] = evaluate_model(predictor, heldout, memory=False, progress=False)["J&F"]
            result[f"strip_{when}"] = _strip(heldout, scores["predictions"][heldout.names[0]],
                                             os.path.join(out, "pictures", f"track_{when}.png"))
            model.train(was_training)
        return run

    def edit(cfg):
        cfg.train_dataloader.dataset.data_root = videos["train"]
        cfg.model.init_checkpoint = efficientsam_dir

    runner = stage_runner("track", edit, work, bar, [callback_hook(measure("before"), measure("after"))])
    runner.train()
    result["curve"] = loss_curve(work)
    result["model_dir"] = os.path.join(work, "model")  # the config's SaveVideoModelHook wrote it
    return result
