"""Every trainer resumes exactly after a crash. Each test starts a short run in a subprocess, SIGKILLs it once the
first checkpoint exists, and resumes with the documented command (``--resume`` without a path: the latest complete
checkpoint). The resumed trainer's model weights, optimizer state, scheduler position and iteration must equal the
checkpoint's; where the framework allows determinism on CPU (mmengine with a seeded sampler, the HF Trainer), the
final weights must equal an uninterrupted run's (max |diff| <= 1e-6)."""
import glob
import json
import os

import pytest
import torch
from trainer_utils import kill_after, max_abs_diff, nested_equal, run

pytestmark = pytest.mark.resume


class _Stop(Exception):
    """Raised by the capturing hooks once the resumed state is recorded."""


# -- mmengine Runner paths (SAMI, SA-1B finetuning, MMDetection, MMSegmentation, EfficientTAM) ------------------------------------
def _sami_data(root):
    from PIL import Image

    from efficientsam_zoo.data.synthetic import make_scene

    os.makedirs(root / "all")
    for i in range(8):
        Image.fromarray(make_scene(i, 128, 128)[0]).save(root / "all" / f"{i}.png")
    return [f"train_dataloader.dataset.data_root={root}", "train_dataloader.batch_size=2"]


def _sa1b_data(root):
    from efficientsam_zoo.data.synthetic import make_sa1b_shards

    shards = make_sa1b_shards(str(root), n_shards=1, images_per_shard=8, size=(128, 128))
    return [f"train_dataloader.dataset.paths=['{shards[0]}']", "train_dataloader.batch_size=2"]


def _coco_data(root):
    from efficientsam_zoo.data.synthetic import make_coco_instances

    make_coco_instances(str(root), {"train": 4}, size=(128, 128), n_objects=3, seed=2)
    return [f"train_dataloader.dataset.data_root={root}/", f"val_dataloader.dataset.data_root={root}/",
            "val_dataloader.dataset.ann_file=annotations/instances_train2017.json",
            "val_dataloader.dataset.data_prefix.img=train2017/",
            f"val_evaluator.ann_file={root}/annotations/instances_train2017.json", "train_cfg.val_interval=1000"]


def _ade_data(root):
    from efficientsam_zoo.data.synthetic import make_ade20k

    make_ade20k(str(root), {"training": 4}, size=(128, 128), seed=3)
    return [f"train_dataloader.dataset.data_root={root}", "train_dataloader.batch_size=2",
            f"val_dataloader.dataset.data_root={root}", "val_dataloader.dataset.data_prefix.img_path=images/training",
            "val_dataloader.dataset.data_prefix.seg_map_path=annotations/training", "train_cfg.val_interval=1000"]


def _shapes_videos(root):
    from efficientsam_zoo.data.video import make_moving_shapes_davis

    make_moving_shapes_davis(str(root), 4, num_frames=6, size=64, seed=5)
    return [f"train_dataloader.dataset.data_root={root}"]


_WARMUP_THEN = ["param_scheduler.0.end=2", "param_scheduler.1.begin=2", "param_scheduler.1.end=8"]
MM_PATHS = {  # config, data, schedule options (the tiny configs' schedules cut to 8 iterations)
    "sami": ("sami_pretrain_vit-ti_tiny-shapes", _sami_data, _WARMUP_THEN + ["param_scheduler.1.T_max=6"]),
    "sa1b": ("efficientsam_ti_tiny-shapes", _sa1b_data, _WARMUP_THEN),
    "mmdet": ("vitdet_sami_ti_tiny-shapes", _coco_data, _WARMUP_THEN + ["param_scheduler.1.T_max=6"]),
    "mmseg": ("mask2former_sami_ti_tiny-shapes", _ade_data, ["param_scheduler.0.end=8"]),
    "efficienttam": ("efficienttam_ti_tiny-moving-shapes", _shapes_videos, _WARMUP_THEN + ["param_scheduler.1.T_max=6"]),
}


def _mm_capture(argv):
    """Build the Runner of ``tools.train`` in this process and record what it holds right before training."""
    from efficientsam_zoo.tools.train import build_runner

    runner = build_runner(argv)
    seen = {}

    from mmengine.hooks import Hook

    class Capture(Hook):
        priority = "LOWEST"

        def before_train(self, runner):
            seen.update(model=runner.model.state_dict(), optimizer=runner.optim_wrapper.state_dict(),
                        schedulers=[s.state_dict() for s in runner.param_schedulers], iter=runner.iter)
            raise _Stop

    runner.register_hook(Capture())
    with pytest.raises(_Stop):
        runner.train()
    return seen


@pytest.mark.parametrize("path", sorted(MM_PATHS))
def test_mmengine_runner_resumes_exactly(path, tmp_path):
    config, make_data, schedule = MM_PATHS[path]
    options = make_data(tmp_path / "data") + schedule + [
        "train_cfg.max_iters=8", "default_hooks.checkpoint.interval=2", "default_hooks.logger.interval=1"]

    def argv(work_dir, *extra):
        return [config, "--work-dir", str(work_dir), *extra, "--cfg-options", *options]

    run(["efficientsam_zoo.tools.train", *argv(tmp_path / "whole")])
    killed = tmp_path / "killed"
    kill_after(["efficientsam_zoo.tools.train", *argv(killed)], str(killed / "iter_*.pth"))
    # a checkpoint cut short by a kill during a save is never picked up: fake one, newer and tagged as the last
    (killed / "iter_7.pth").write_bytes(b"PK\x03\x04 half of a torch zip archive")
    (killed / "last_checkpoint").write_text(str(killed / "iter_7.pth"))
    latest = max(glob.glob(str(killed / "iter_[0-6].pth")), key=os.path.getmtime)
    ckpt = torch.load(latest, map_location="cpu", weights_only=False)

    seen = _mm_capture(argv(killed, "--resume"))
    assert seen["iter"] == ckpt["meta"]["iter"] and 0 < seen["iter"] < 8
    assert max_abs_diff(seen["model"], ckpt["state_dict"]) == 0.0
    nested_equal(seen["optimizer"], ckpt["optimizer"])
    nested_equal(seen["schedulers"], ckpt["param_schedulers"])

    log = run(["efficientsam_zoo.tools.train", *argv(killed, "--resume")])
    assert f"resuming from {latest}" in log
    final = torch.load(killed / "iter_8.pth", map_location="cpu", weights_only=False)["state_dict"]
    whole = torch.load(tmp_path / "whole" / "iter_8.pth", map_location="cpu", weights_only=False)["state_dict"]
    assert max_abs_diff(final, whole) <= 1e-6


# -- detectron2 -------------------------------------------------------------------------------------------------
def test_detectron2_resumes_the_checkpoint_state(tmp_path):
    """detectron2's trainer restarts its data stream on resume (no exact continuation by design): the resumed
    model and optimizer must equal the checkpoint's, and the resumed run's learning rates and final scheduler state
    must equal an uninterrupted run's (the schedule continues where it stopped)."""
    from efficientsam_zoo.data.synthetic import make_coco_instances

    root = tmp_path / "coco"
    make_coco_instances(str(root), {"train": 4}, size=(128, 128), n_objects=3, seed=2)
    out = tmp_path / "out"
    name = f"resume_shapes_{os.getpid()}"
    common = ["--config-file", "COCO/mask_rcnn_vitdet_sami_ti_tiny-shapes", "--register-coco", name,
              str(root / "annotations/instances_train2017.json"), str(root / "train2017")]
    opts = [f"dataloader.train.dataset.names={name}", f"dataloader.test.dataset.names={name}",
            f"train.output_dir={out}", "train.max_iter=8", "train.checkpointer.period=2", "train.eval_period=1000",
            "train.log_period=1"]
    kill_after(["efficientsam_zoo.tools.d2_train", *common, *opts], str(out / "model_000000[0-9].pth"))
    (out / "model_0000007.pth").write_bytes(b"PK\x03\x04 half of a torch zip archive")
    (out / "last_checkpoint").write_text("model_0000007.pth")
    latest = max(glob.glob(str(out / "model_000000[0-6].pth")), key=os.path.getmtime)
    ckpt = torch.load(latest, map_location="cpu", weights_only=False)

    from detectron2.config import LazyConfig

    from efficientsam_zoo.tools import d2_train
    from efficientsam_zoo.tools.configs import resolve_config

    args = d2_train.build_parser().parse_args([*common, "--resume", *opts])
    d2_train.register_datasets(args.register_coco)
    cfg = LazyConfig.apply_overrides(LazyConfig.load(resolve_config(args.config_file, kind="d2")), args.opts)
    trainer, checkpointer, start_iter = d2_train.build_training(args, cfg)
    assert start_iter == ckpt["iteration"] + 1 and trainer.iter == ckpt["trainer"]["iteration"] == ckpt["iteration"]
    assert max_abs_diff(trainer.model.state_dict(), ckpt["model"]) == 0.0
    nested_equal(trainer.optimizer.state_dict(), ckpt["optimizer"])
    nested_equal(trainer.state_dict()["optimizer"], ckpt["trainer"]["optimizer"])

    log = run(["efficientsam_zoo.tools.d2_train", *common, "--resume", *opts])
    assert f"resuming from {latest}" in log and f"Starting training from iteration {start_iter}" in log
    whole = tmp_path / "whole"
    run(["efficientsam_zoo.tools.d2_train", *common, *opts, f"train.output_dir={whole}"])

    def lrs(folder):  # the last logged lr of every iteration (a resumed run appends to metrics.json)
        return {r["iteration"]: r["lr"] for r in map(json.loads, open(folder / "metrics.json")) if "lr" in r}

    resumed, uninterrupted = lrs(out), lrs(whole)
    assert max(resumed) == max(uninterrupted) == 7
    assert {i: resumed[i] for i in range(start_iter, 8)} == {i: uninterrupted[i] for i in range(start_iter, 8)}
    assert len(set(uninterrupted.values())) > 2  # the lr changes over these iterations: the check can fail
    final = [torch.load(f / "model_final.pth", map_location="cpu", weights_only=False)["trainer"]["hooks"]
             for f in (out, whole)]
    assert final[0]["LRScheduler"] == final[1]["LRScheduler"]


# -- Hugging Face Trainer -----------------------------------------------------------------------------------------
def test_hf_trainer_resumes_exactly(tmp_path):
    from safetensors.torch import load_file

    from efficientsam_zoo.data.synthetic import make_classification_folders
    from efficientsam_zoo.tools import train_cls

    dirs = make_classification_folders(str(tmp_path / "shapes"), {"train": 3}, size=64, seed=0)

    def argv(out, *extra):
        return ["--recipe", "vit-ti_tiny-shapes", "--model", "scratch", "--train-dir", dirs["train"],
                "--output-dir", str(out), *extra, "--set", "epochs=4", "keep_checkpoints=10"]

    run(["efficientsam_zoo.tools.train_cls", *argv(tmp_path / "whole")])
    killed = tmp_path / "killed"
    kill_after(["efficientsam_zoo.tools.train_cls", *argv(killed)], str(killed / "checkpoint-*" / "trainer_state.json"))
    half = killed / "checkpoint-99"  # a save the kill interrupted: model written, trainer_state.json not yet
    half.mkdir()
    (half / "model.safetensors").write_bytes(b"half")
    latest = train_cls.latest_complete_checkpoint(str(killed))
    assert latest != str(half)
    ckpt_state = json.load(open(os.path.join(latest, "trainer_state.json")))

    from transformers import TrainerCallback

    seen = {}

    class Capture(TrainerCallback):
        def on_train_begin(self, args, state, control, model=None, optimizer=None, lr_scheduler=None, **kw):
            seen.update(model=model.state_dict(), optimizer=optimizer.state_dict(),
                        scheduler=lr_scheduler.state_dict(), step=state.global_step)
            raise _Stop

    orig = train_cls.build_trainer

    def with_capture(*a, **kw):
        trainer = orig(*a, **kw)
        trainer.add_callback(Capture())
        return trainer

    train_cls.build_trainer = with_capture
    try:
        with pytest.raises(_Stop):
            train_cls.main(argv(killed, "--resume"))
    finally:
        train_cls.build_trainer = orig
    assert seen["step"] == ckpt_state["global_step"] > 0
    assert max_abs_diff({k: v for k, v in seen["model"].items()}, load_file(os.path.join(latest, "model.safetensors"))) == 0
    nested_equal(seen["optimizer"], torch.load(os.path.join(latest, "optimizer.pt"), weights_only=True))
    assert seen["scheduler"] == torch.load(os.path.join(latest, "scheduler.pt"), weights_only=True)

    log = run(["efficientsam_zoo.tools.train_cls", *argv(killed, "--resume")])
    assert f"resuming from {latest}" in log
    final = load_file(str(killed / "final" / "model.safetensors"))
    assert max_abs_diff(final, load_file(str(tmp_path / "whole" / "final" / "model.safetensors"))) <= 1e-6
