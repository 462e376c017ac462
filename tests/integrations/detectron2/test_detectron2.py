"""detectron2: SAMI backbone in ViTDet LazyConfigs, real detectron2 code (SimpleFeaturePyramid, Mask R-CNN,
SimpleTrainer, COCOEvaluator) on generated COCO-format data."""
import importlib
import json
import os

import pytest
import torch
from conftest import REPO_ROOT as ROOT  # noqa: E402
from detectron2.config import LazyConfig, instantiate
from trainer_utils import mean_box_ap, run  # noqa: E402

from efficientsam_zoo.checkpoints import CheckpointError, save_sami_backbone
from efficientsam_zoo.integrations import detectron2 as d2_adapter
from efficientsam_zoo.modeling.vit import VIT_SIZES, ViT

D2 = os.path.join(ROOT, "d2_configs", "COCO")
DIMS = {"ti": 192, "s": 384, "b": 768}


@pytest.mark.parametrize("size", ["ti", "s", "b"])
def test_lazyconfigs_instantiate_and_match_output_shape(size):
    cfg = LazyConfig.load(os.path.join(D2, f"mask_rcnn_vitdet_sami_{size}_100ep.py"))
    assert cfg.optimizer.lr == 2e-4 and cfg.optimizer.weight_decay == 0.1 and tuple(cfg.optimizer.betas) == (0.9, 0.999)
    assert cfg.train.amp.enabled and cfg.train.max_iter == 184375 and cfg.lr_multiplier.warmup_length == 0.1
    assert cfg.optimizer.params.lr_factor_func("backbone.net.vit.blocks.3.attn.qkv.weight") == pytest.approx(0.7 ** 9)
    assert cfg.optimizer.params.lr_factor_func("roi_heads.box_predictor.cls_score.weight") == 1.0
    assert cfg.dataloader.train.total_batch_size == 64 and cfg.dataloader.evaluator.use_fast_impl is False
    cfg.model.backbone.net.update(img_size=128, window_size=4)
    cfg.model.backbone.square_pad = 128
    backbone = instantiate(cfg.model.backbone).eval()
    assert backbone.net.output_shape()["last_feat"].channels == DIMS[size]
    with torch.no_grad():
        out = backbone(torch.rand(1, 3, 128, 128))
    shapes = backbone.output_shape()
    assert sorted(out) == sorted(shapes) == ["p2", "p3", "p4", "p5", "p6"]
    for name, spec in shapes.items():
        assert out[name].shape[1] == spec.channels == 256
        assert out[name].shape[-1] == 128 // spec.stride


def test_registry_entry_is_idempotent_and_builds():
    from detectron2.config import CfgNode, get_cfg
    from detectron2.layers import ShapeSpec
    from detectron2.modeling import BACKBONE_REGISTRY

    importlib.reload(d2_adapter)  # re-import must not raise
    cfg = get_cfg()
    cfg.MODEL.SAMI = CfgNode(dict(ARCH="vit-ti", IMG_SIZE=64, WINDOW_SIZE=2))
    backbone = BACKBONE_REGISTRY.get("build_sami_vit_fpn_backbone")(cfg, ShapeSpec(channels=3))
    assert backbone.output_shape()["p6"].stride == 64


@pytest.fixture
def exports(tmp_path):
    torch.manual_seed(0)
    paths = {}
    for arch in ("vit-ti", "vit-s"):
        vit = ViT(img_size=224, neck_dim=None, **VIT_SIZES[arch])
        paths[arch] = str(tmp_path / f"{arch}.safetensors")
        save_sami_backbone(vit.state_dict(), paths[arch], dict(VIT_SIZES[arch], depth=12))
        paths[arch + "-sd"] = vit.state_dict()
    return paths


def test_pretrained_changes_weights_and_mismatch_raises(exports, tmp_path):
    fresh = d2_adapter.SamiViTNet(arch="vit-ti", img_size=64, window_size=2)
    loaded = d2_adapter.SamiViTNet(arch="vit-ti", img_size=64, window_size=2, pretrained=exports["vit-ti"])
    sd = exports["vit-ti-sd"]
    assert not torch.equal(fresh.vit.blocks[0].attn.qkv.weight, sd["blocks.0.attn.qkv.weight"])
    assert all(torch.equal(loaded.vit.state_dict()[k], v) for k, v in sd.items())
    with pytest.raises(CheckpointError, match="mis-shaped"):
        d2_adapter.SamiViTNet(arch="vit-ti", img_size=64, window_size=2, pretrained=exports["vit-s"])
    # train.init_checkpoint: backbone files through our loader, a whole-model detectron2 file through d2's
    cfg = LazyConfig.load(os.path.join(D2, "mask_rcnn_vitdet_sami_ti_100ep.py"))
    cfg.model.backbone.net.update(img_size=128, window_size=4)
    cfg.model.backbone.square_pad = 128
    model = instantiate(cfg.model)
    assert d2_adapter.load_init_checkpoint(model, exports["vit-ti"]) == "backbone"
    assert torch.equal(model.backbone.net.vit.blocks[2].mlp.fc1.weight, sd["blocks.2.mlp.fc1.weight"])
    torch.save({"model": model.state_dict()}, tmp_path / "model_final.pth")
    other = instantiate(cfg.model)
    assert d2_adapter.load_init_checkpoint(other, str(tmp_path / "model_final.pth")) == "detectron2"
    assert torch.equal(other.roi_heads.box_predictor.cls_score.weight, model.roi_heads.box_predictor.cls_score.weight)
    with pytest.raises(CheckpointError, match="mis-shaped"):
        d2_adapter.load_init_checkpoint(instantiate(cfg.model), exports["vit-s"])


def _copypaste(log: str, task: str) -> dict:
    """The metrics detectron2's ``print_csv_format`` logs for ``task`` (its ``copypaste:`` lines)."""
    lines = [line.split("copypaste: ", 1)[1].strip() for line in log.splitlines() if "copypaste: " in line]
    i = lines.index(f"Task: {task}")
    return dict(zip(lines[i + 1].split(","), map(float, lines[i + 2].split(","))))


@pytest.mark.learning
def test_vitdet_learns_the_generated_shapes(tmp_path):
    """The shipped tiny-shapes LazyConfig through lazyconfig_train_net-style training (SimpleTrainer) and
    COCOEvaluator on held-out scenes: box and mask AP >= 12, and box AP >= 10 above a detector that puts each class's
    mean training box into every scene (computed here with pycocotools; about 0.3); the training scenes' AP (eval-only)
    is the second line. (This run, from scratch, scored 17.4 box AP on the held-out scenes.)"""
    from efficientsam_zoo.data.synthetic import make_coco_instances

    root = tmp_path / "coco"
    anns = make_coco_instances(str(root), {"train": 32, "val": 16}, size=(128, 128), n_objects=3, seed=2)
    out = str(tmp_path / "out")
    register = ["--register-coco", "shapes_train", anns["train"], str(root / "train2017"),
                "--register-coco", "shapes_val", anns["val"], str(root / "val2017")]
    run(["efficientsam_zoo.tools.d2_train", "--config-file", "COCO/mask_rcnn_vitdet_sami_ti_tiny-shapes", *register,
         "dataloader.train.dataset.names=shapes_train", "dataloader.test.dataset.names=shapes_val",
         f"train.output_dir={out}"])
    rows = [json.loads(line) for line in open(os.path.join(out, "metrics.json"))]
    train = [r for r in rows if "total_loss" in r]
    assert all(k in train[0] for k in ("loss_cls", "loss_box_reg", "loss_mask", "loss_rpn_cls"))
    (ev,) = [r for r in rows if "bbox/AP" in r]
    chance = 100 * mean_box_ap(anns["train"], anns["val"])
    assert ev["bbox/AP"] >= max(12.0, chance + 10.0) and ev["segm/AP"] >= 12.0, (ev, chance)
    log = run(["efficientsam_zoo.tools.d2_train", "--config-file", "COCO/mask_rcnn_vitdet_sami_ti_tiny-shapes",
               "--eval-only", *register, "dataloader.test.dataset.names=shapes_train",
               f"train.init_checkpoint={os.path.join(out, 'model_final.pth')}", f"train.output_dir={out}_train"])
    seen = _copypaste(log, "bbox")["AP"]
    assert seen >= ev["bbox/AP"], (seen, ev)  # the second line: the scenes it trained on
    assert os.path.isfile(os.path.join(out, "model_final.pth"))
