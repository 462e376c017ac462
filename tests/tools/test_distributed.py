"""Every trainer in two CPU processes (gloo) through its framework's own launcher: torchrun for mmengine /
MMDetection / MMSegmentation and the HF Trainer, detectron2's ``launch`` for detectron2.

Each test checks that the world size is 2, that the ranks trained on different samples (together exactly the
single-process batch), that only rank 0 wrote checkpoints and logs, and that one step with 2 processes x batch b
gives the same weights as one step with 1 process x batch 2b (max |diff| <= TOL). Two controls show that this
comparison can fail: the step moves the weights by at least 100 x TOL from where both runs start, and a wrong run --
1 process x batch b, one rank's share of the data -- differs from the two-process result by more than TOL.

The one-step comparison uses SGD (Adam's first step is lr * sign(gradient), blind to most mistakes) and no random
augmentation. Every loss is on, the mask losses included: Mask R-CNN averages them over each process's positive RoIs,
so the RoI heads here count as positive only the ground-truth boxes themselves (IoU threshold 1.0; every image holds 3
objects), which makes those counts equal on every rank; Mask2Former's random point sampling is replaced by a fixed
draw (a test-only plugin). Everything else is the shipped config."""
import glob
import json
import os
import sys
import textwrap

import pytest
import torch
from trainer_utils import ENV, max_abs_diff, run

pytestmark = pytest.mark.distributed
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
TOL = 1e-5  # two-process step vs one-process step with twice the batch


def _controls(start, one, two, half) -> None:
    """The sensitivity controls: the step moved the weights (>= 100 x TOL), the right runs agree (<= TOL) and the
    wrong one (half the batch) does not (> TOL)."""
    moved = max_abs_diff(start, one)
    assert moved >= 100 * TOL, f"the compared step moved the weights by only {moved:.2e}"
    assert max_abs_diff(one, two) <= TOL
    wrong = max_abs_diff(half, two)
    assert wrong > TOL, f"a half-batch run matches the two-process run ({wrong:.2e}): the comparison cannot fail"


def _samples(directory, rank):
    rows = [json.loads(line) for line in open(os.path.join(directory, f"samples_rank{rank}.jsonl"))]
    return [i for r in rows for i in r["ids"]]


def _check_sharding(single_dir, multi_dir, per_rank):
    """Rank 0 and rank 1 trained on different samples whose union is exactly the single process's first batch."""
    r0, r1 = _samples(multi_dir, 0)[:per_rank], _samples(multi_dir, 1)[:per_rank]
    assert not glob.glob(os.path.join(multi_dir, "samples_rank2*"))
    assert len(r0) == len(r1) == per_rank and not set(r0) & set(r1), (r0, r1)
    assert set(r0) | set(r1) == set(_samples(single_dir, 0)[:2 * per_rank])


def _listing(directory):
    """The files a run wrote (TensorBoard event files named by their kind, not their timestamp)."""
    return sorted("events.out.tfevents" if f.startswith("events.out.tfevents") else f for f in os.listdir(directory))


_SAVE_INITIAL = """
# Test-only: a hook that saves the weights every run starts from (after init, before the first step), as
# <work_dir>/initial_weights.pt, so that the test can measure how far the compared step moved them.
import os

import torch
from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS


@HOOKS.register_module(force=True)
class SaveInitialWeights(Hook):
    def before_train(self, runner):
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if is_main_process():
            torch.save({k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
                       os.path.join(runner.work_dir, "initial_weights.pt"))
"""


def _config(tmp_path, base, extra=""):
    """A config inheriting a shipped config (by absolute path): one SGD step and the initial-weights hook, then
    ``extra``."""
    from mmengine.config import Config

    from efficientsam_zoo.tools.configs import resolve_config

    (tmp_path / "plugins").mkdir(exist_ok=True)
    (tmp_path / "plugins" / "save_initial.py").write_text(_SAVE_INITIAL)
    imports = list(Config.fromfile(resolve_config(base)).custom_imports["imports"]) + ["save_initial"]
    path = tmp_path / f"check_{os.path.basename(base)}.py"
    path.write_text(f"_base_ = [{resolve_config(base)!r}]\n" + _ONE_SGD_STEP
                    + f"custom_imports = dict(imports={imports!r}, allow_failed_imports=False)\n"
                    + 'custom_hooks = [dict(type="SaveInitialWeights")]\n' + textwrap.dedent(extra))
    return str(path)


# -- mmengine Runner paths --------------------------------------------------------------------------------------
_ONE_SGD_STEP = """
optim_wrapper = dict(optimizer=dict(_delete_=True, type="SGD", lr=0.1, weight_decay=0.0), clip_grad=None)
param_scheduler = []
train_cfg = dict(max_iters=1, val_interval=1000)
default_hooks = dict(checkpoint=dict(interval=1), logger=dict(interval=1))
"""


def _sami(tmp_path):
    from PIL import Image

    from efficientsam_zoo.data.synthetic import make_scene

    (tmp_path / "img" / "all").mkdir(parents=True)
    for i in range(8):
        Image.fromarray(make_scene(i, 128, 128)[0]).save(tmp_path / "img" / "all" / f"{i}.png")
    cfg = _config(tmp_path, "sami_pretrain_vit-ti_tiny-shapes", """
        train_dataloader = dict(dataset=dict(pipeline=[dict(type="LoadImageRGB"), dict(
            type="ResizeCenterCrop", size=128, crop_pct=1.0), dict(type="PackImageInputs")]))
        """)
    return cfg, [f"train_dataloader.dataset.data_root={tmp_path / 'img'}"], "train_dataloader.batch_size", 2


def _sa1b(tmp_path):
    from efficientsam_zoo.data.synthetic import make_sa1b_shards

    shards = make_sa1b_shards(str(tmp_path / "sa1b"), n_shards=1, images_per_shard=8, size=(128, 128))
    cfg = _config(tmp_path, "efficientsam_ti_tiny-shapes")
    return cfg, [f"train_dataloader.dataset.paths=['{shards[0]}']"], "train_dataloader.batch_size", 2


def _three_objects_per_image(root):
    """4 generated COCO-format training scenes of 3 objects each (equal GT counts: equal RoI and positive counts per
    image, so per-process loss averages are comparable); returns the annotation file."""
    from efficientsam_zoo.data.synthetic import make_coco_instances

    ann = make_coco_instances(str(root), {"train": 4}, size=(128, 128), n_objects=3, seed=0)["train"]
    data = json.load(open(ann))
    assert all(sum(a["image_id"] == i["id"] for a in data["annotations"]) == 3 for i in data["images"])
    return ann


def _coco(tmp_path):

    root = tmp_path / "coco"
    ann = _three_objects_per_image(root)
    cfg = _config(tmp_path, "vitdet_sami_ti_tiny-shapes", """
        optim_wrapper = dict(optimizer=dict(_delete_=True, type="SGD", lr=0.1, weight_decay=0.0))  # layer decay kept
        model = dict(
            # every anchor and RoI kept (no random sampling), a fixed number of proposals (no suppression)
            # positives = the ground-truth boxes only (3 per image on every rank): the mask loss stays comparable
            train_cfg=dict(rpn=dict(sampler=dict(num=100000)),
                           rcnn=dict(sampler=dict(num=100000), assigner=dict(pos_iou_thr=1.0, min_pos_iou=1.0)),
                           rpn_proposal=dict(nms_pre=256, max_per_img=64, nms=dict(iou_threshold=1.0))))
        train_dataloader = dict(dataset=dict(pipeline=[
            dict(type="LoadImageFromFile"), dict(type="LoadAnnotations", with_bbox=True, with_mask=True),
            dict(type="Resize", scale=(128, 128), keep_ratio=True), dict(type="PackDetInputs")]))
        """)
    opts = [f"train_dataloader.dataset.data_root={root}/", f"val_dataloader.dataset.data_root={root}/",
            "val_dataloader.dataset.ann_file=annotations/instances_train2017.json",
            "val_dataloader.dataset.data_prefix.img=train2017/", f"val_evaluator.ann_file={ann}"]
    return cfg, opts, "train_dataloader.batch_size", 1


def _ade(tmp_path):
    from efficientsam_zoo.data.synthetic import make_ade20k

    root = make_ade20k(str(tmp_path / "ade"), {"training": 4}, size=(128, 128), seed=3, categories=(1, 2, 3))
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "fixed_points.py").write_text(textwrap.dedent("""
        # Test-only: Mask2Former (mmdet) samples random points from each process's global RNG, a batch's masks in
        # one draw; the same fixed points for every mask make 2 x b and 1 x 2b comparable.
        import torch
        import mmdet.models.dense_heads.mask2former_head as head
        import mmdet.models.utils.point_sample as point_sample

        class _FixedRand:
            def __getattr__(self, name):
                return getattr(torch, name)

            @staticmethod
            def rand(*size, device=None, dtype=None, **kwargs):  # one fixed draw per row: the same for every mask
                size = size[0] if len(size) == 1 and isinstance(size[0], (tuple, list)) else size
                row = torch.rand(*size[1:], generator=torch.Generator().manual_seed(0), dtype=dtype)
                return row.expand(*size).contiguous().to(device)

        head.torch = point_sample.torch = _FixedRand()
        """))
    cfg = _config(tmp_path, "mask2former_sami_ti_tiny-shapes", """
        custom_imports = dict(imports=["mmdet.models", "efficientsam_zoo.integrations.openmmlab.mmseg",
                                       "fixed_points", "save_initial"], allow_failed_imports=False)
        optim_wrapper = dict(optimizer=dict(_delete_=True, type="SGD", lr=0.1, weight_decay=0.0), clip_grad=None)
        train_dataloader = dict(dataset=dict(pipeline=[
            dict(type="LoadImageFromFile"), dict(type="LoadAnnotations", reduce_zero_label=True),
            dict(type="Resize", scale=(128, 128), keep_ratio=True), dict(type="PackSegInputs")]))
        """)
    opts = [f"train_dataloader.dataset.data_root={root}", f"val_dataloader.dataset.data_root={root}",
            "val_dataloader.dataset.data_prefix.img_path=images/training",
            "val_dataloader.dataset.data_prefix.seg_map_path=annotations/training"]
    return cfg, opts, "train_dataloader.batch_size", 1


def _efficienttam(tmp_path):
    from efficientsam_zoo.data.video import make_moving_shapes_davis

    make_moving_shapes_davis(str(tmp_path / "videos"), 4, num_frames=6, size=64, seed=6)
    cfg = _config(tmp_path, "efficienttam_ti_tiny-moving-shapes", """
        # the memory attention's dropout draws from each process's global RNG: off, so 2 x b and 1 x 2b compare
        model = dict(config=dict(memory_attention_dropout=0.0, memory_attention_rope_dropout=0.0))
        """)
    return cfg, [f"train_dataloader.dataset.data_root={tmp_path / 'videos'}"], "train_dataloader.batch_size", 1


MM_PATHS = {"sami": _sami, "sa1b": _sa1b, "mmdet": _coco, "mmseg": _ade, "efficienttam": _efficienttam}


@pytest.mark.parametrize("path", sorted(MM_PATHS))
def test_mmengine_two_processes_equal_one_with_twice_the_batch(path, tmp_path):
    cfg, opts, batch_key, b = MM_PATHS[path](tmp_path)
    env = {**ENV, "PYTHONPATH": os.pathsep.join([str(tmp_path / "plugins"), ENV.get("PYTHONPATH", "")])}

    def argv(work_dir, batch):
        return [cfg, "--work-dir", str(work_dir), "--record-samples", str(work_dir) + "_samples",
                "--cfg-options", *opts, f"{batch_key}={batch}"]

    single, multi, half = tmp_path / "single", tmp_path / "multi", tmp_path / "half"
    run(["efficientsam_zoo.tools.train", *argv(single, 2 * b)], env=env)
    run(["efficientsam_zoo.tools.train", *argv(half, b)], env=env)  # the control: one rank's share of the batch
    log = run([*TORCHRUN, "-m", "efficientsam_zoo.tools.train", *argv(multi, b), "--launcher", "pytorch"], env=env)
    assert "Distributed training: True" in log and "launcher: pytorch" in log
    _check_sharding(str(single) + "_samples", str(multi) + "_samples", b)
    # only rank 0 wrote: one log file, one scalars file, the checkpoint once; no rank-suffixed files
    assert len(glob.glob(str(multi / "*" / "*.log"))) == 1 and len(glob.glob(str(multi / "*" / "vis_data" / "scalars.json"))) == 1
    assert sorted(os.path.basename(p) for p in glob.glob(str(multi / "*.pth"))) == ["iter_1.pth"]
    assert not glob.glob(str(multi / "**" / "*rank*"), recursive=True)
    one, two, wrong = (torch.load(d / "iter_1.pth", map_location="cpu", weights_only=False) for d in (single, multi, half))
    assert one["meta"]["iter"] == two["meta"]["iter"] == 1
    start = torch.load(single / "initial_weights.pt", map_location="cpu", weights_only=True)
    assert max_abs_diff(start, torch.load(multi / "initial_weights.pt", map_location="cpu", weights_only=True)) == 0.0
    _controls(start, one["state_dict"], two["state_dict"], wrong["state_dict"])


# -- detectron2 -------------------------------------------------------------------------------------------------
def test_detectron2_launch_two_processes_equal_one_with_twice_the_batch(tmp_path):
    from efficientsam_zoo.tools.configs import resolve_config

    root = tmp_path / "coco"
    _three_objects_per_image(root)
    check = tmp_path / "check_d2.py"
    check.write_text(textwrap.dedent(f"""
        import torch
        from detectron2.config import LazyCall as L, LazyConfig

        _base = LazyConfig.load({resolve_config("COCO/mask_rcnn_vitdet_sami_ti_tiny-shapes", kind="d2")!r})
        dataloader, model, train, lr_multiplier = _base.dataloader, _base.model, _base.train, _base.lr_multiplier
        optimizer = L(torch.optim.SGD)(params=_base.optimizer.params, lr=0.1)  # layer decay kept
        dataloader.train.mapper.augmentations = []  # no random flip
        model.proposal_generator.update(batch_size_per_image=100000, nms_thresh=1.0)  # every anchor, 64 proposals
        model.roi_heads.batch_size_per_image = 100000  # every RoI
        # positives = the ground-truth boxes only (3 per image on every rank): the mask loss stays comparable
        model.roi_heads.proposal_matcher.thresholds = [1.0]
        lr_multiplier.warmup_length = 0.0
        train.update(max_iter=1, checkpointer=dict(period=1), eval_period=1000, log_period=1)
        """))
    start = _d2_initial_weights(check, tmp_path / "initial.pth")  # every run starts from these
    name = "dist_shapes"
    common = ["--config-file", str(check), "--register-coco", name, str(root / "annotations/instances_train2017.json"),
              str(root / "train2017"), f"dataloader.train.dataset.names={name}", f"dataloader.test.dataset.names={name}",
              f"train.init_checkpoint={tmp_path / 'initial.pth'}"]
    single, multi, half = tmp_path / "single", tmp_path / "multi", tmp_path / "half"
    run(["efficientsam_zoo.tools.d2_train", "--record-samples", str(single) + "_samples", *common,
         f"train.output_dir={single}"])
    run(["efficientsam_zoo.tools.d2_train", *common, f"train.output_dir={half}",  # the control: one rank's share
         "dataloader.train.total_batch_size=1"])
    log = run(["efficientsam_zoo.tools.d2_train", "--num-gpus", "2", "--record-samples", str(multi) + "_samples",
               *common, f"train.output_dir={multi}"])
    assert "World size: 2" in log
    _check_sharding(str(single) + "_samples", str(multi) + "_samples", 1)
    assert _listing(multi) == _listing(single)  # rank 1 wrote nothing of its own (no log.txt.rank1)
    one, two, wrong = (torch.load(d / "model_final.pth", map_location="cpu", weights_only=False)["model"]
                       for d in (single, multi, half))
    _controls(start, one, two, wrong)


def _d2_initial_weights(config, path):
    """A randomly initialised model of ``config`` saved as a detectron2 checkpoint (``train.init_checkpoint``)."""
    from detectron2.config import LazyConfig, instantiate

    torch.manual_seed(0)
    model = instantiate(LazyConfig.load(str(config)).model)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    torch.save({"model": state}, path)
    return state


# -- Hugging Face Trainer -----------------------------------------------------------------------------------------
def test_hf_trainer_torchrun_two_processes_equal_one_with_twice_the_batch(tmp_path):
    from safetensors.torch import load_file

    from efficientsam_zoo.data.synthetic import make_classification_folders

    from efficientsam_zoo.data.synthetic import CLASSIFICATION_CLASSES
    from efficientsam_zoo.tools.train_cls import build_model, load_recipe

    dirs = make_classification_folders(str(tmp_path / "shapes"), {"train": 3}, size=64, seed=0)
    initial = build_model("scratch", len(CLASSIFICATION_CLASSES), load_recipe("vit-ti_tiny-shapes"),
                          dict(enumerate(sorted(CLASSIFICATION_CLASSES))))
    initial.save_pretrained(tmp_path / "initial")  # every run starts from these weights

    def argv(out, batch):
        return ["-m", "efficientsam_zoo.tools.train_cls", "--recipe", "vit-ti_tiny-shapes", "--model",
                str(tmp_path / "initial"),
                "--train-dir", dirs["train"], "--output-dir", str(out), "--record-samples", str(out) + "_samples",
                "--max-steps", "1", "--set", "optimizer=sgd", "lr=0.1", "warmup_epochs=0", "crop_scale=[1.0,1.0]",
                "hflip=0", f"per_device_batch_size={batch}", "batch_size=16"]

    single, multi, half = tmp_path / "single", tmp_path / "multi", tmp_path / "half"
    out = run([sys.executable, *argv(single, 16)])
    assert "world size 1, 16 images per process" in out
    run([sys.executable, *argv(half, 8)])  # the control: one rank's share of the batch
    log = run([*TORCHRUN, *argv(multi, 8)])
    assert "world size 2, 8 images per process" in log
    _check_sharding(str(single) + "_samples", str(multi) + "_samples", 8)
    assert _listing(multi) == _listing(single)
    one, two, wrong = (load_file(str(d / "final" / "model.safetensors")) for d in (single, multi, half))
    _controls(load_file(str(tmp_path / "initial" / "model.safetensors")), one, two, wrong)
