"""MMDetection (ViTDet Mask R-CNN) and MMSegmentation (Mask2Former) with the SAMI backbone, built from the
shipped configs with the real registries and trained by mmengine's Runner on generated data."""
import os

import pytest
import torch
from conftest import REPO_ROOT as ROOT  # noqa: E402
from mmengine.config import Config
from mmengine.registry import init_default_scope
from trainer_utils import mm_scalars  # noqa: E402

from efficientsam_zoo.tools.configs import resolve_config

from efficientsam_zoo.checkpoints import CheckpointError, save_sami_backbone
from efficientsam_zoo.modeling.vit import VIT_SIZES, ViT

CFG = os.path.join(ROOT, "mm_configs")
DIMS = {"ti": 192, "s": 384, "b": 768}


def _det_registry():
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules

    import efficientsam_zoo.integrations.openmmlab.mmdet  # noqa: F401

    register_all_modules(init_default_scope=False)
    init_default_scope("mmdet")
    return MODELS


def _seg_registry():
    import mmdet.models  # noqa: F401  (Mask2Former's pixel decoder / losses live in mmdet)
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules

    import efficientsam_zoo.integrations.openmmlab.mmseg  # noqa: F401

    register_all_modules(init_default_scope=False)
    init_default_scope("mmseg")
    return MODELS


def _small(cfg, size=128):
    cfg.model.backbone.update(img_size=size, window_size=4, init_cfg=None)
    return cfg


@pytest.mark.parametrize("size", ["ti", "s", "b"])
def test_vitdet_configs_build_and_give_the_pyramid(size):
    cfg = Config.fromfile(os.path.join(CFG, f"vitdet_sami_{size}.py"))
    assert cfg.optim_wrapper.optimizer.lr == 2e-4 and cfg.optim_wrapper.optimizer.weight_decay == 0.1
    assert cfg.optim_wrapper.optimizer.betas == (0.9, 0.999) and cfg.optim_wrapper.paramwise_cfg.decay_rate == 0.7
    assert cfg.optim_wrapper.type == "AmpOptimWrapper" and cfg.auto_scale_lr.base_batch_size == 64
    assert cfg.train_cfg.max_iters == 184375 and cfg.param_scheduler[0].end == 18437
    assert cfg.param_scheduler[1].type == "CosineAnnealingLR" and cfg.param_scheduler[1].eta_min == 0.0
    vit = _det_registry().build(cfg.model.backbone).vit  # ViTDet's settings come from the one factory
    assert [b.window_size for b in vit.blocks].count(0) == 4 and vit.blocks[2].window_size == 0
    assert vit.blocks[0].window_size == 14 and vit.blocks[11].drop_path.drop_prob == pytest.approx(0.1)
    assert vit.blocks[0].attn.use_rel_pos and vit.img_size == 1024
    model = _det_registry().build(_small(cfg).model).eval()
    with torch.no_grad():
        backbone_out = model.backbone(torch.rand(1, 3, 128, 128))
        feats = model.extract_feat(torch.rand(1, 3, 128, 128))
    assert backbone_out[0].shape == (1, DIMS[size], 8, 8)  # stride 16
    assert [tuple(f.shape[1:]) for f in feats] == [(256, 32, 32), (256, 16, 16), (256, 8, 8), (256, 4, 4), (256, 2, 2)]
    assert model.neck.strides == [4, 8, 16, 32, 64]


@pytest.mark.parametrize("size", ["ti", "s", "b"])
def test_mask2former_configs_build_and_give_strides_4_to_32(size):
    cfg = Config.fromfile(os.path.join(CFG, f"mask2former_sami_{size}_8xb2-160k_ade20k-512x512.py"))
    assert cfg.optim_wrapper.optimizer.lr == 2e-4 and cfg.optim_wrapper.optimizer.weight_decay == 0.05
    assert cfg.optim_wrapper.paramwise_cfg.custom_keys.backbone.lr_mult == 0.1
    assert cfg.param_scheduler[0].type == "PolyLR" and cfg.train_cfg.max_iters == 160000
    assert cfg.train_dataloader.batch_size * 8 == 16
    model = _seg_registry().build(_small(cfg).model).eval()
    with torch.no_grad():
        feats = model.extract_feat(torch.rand(1, 3, 128, 128))
    assert [tuple(f.shape[1:]) for f in feats] == [(256, 32, 32), (256, 16, 16), (256, 8, 8), (256, 4, 4)]


def _backbone_cfg(checkpoint):
    return dict(type="SamiViT", arch="vit-ti", img_size=64, window_size=2, init_cfg=dict(type="Pretrained",
                                                                                           checkpoint=checkpoint))


@pytest.fixture
def sami_export(tmp_path):
    torch.manual_seed(3)
    vit = ViT(img_size=224, neck_dim=None, **VIT_SIZES["vit-ti"])
    with torch.no_grad():
        vit.pos_embed.normal_()
    path = str(tmp_path / "sami_vit-ti.safetensors")
    save_sami_backbone(vit.state_dict(), path, dict(embed_dim=192, depth=12, num_heads=3))
    return path, vit.state_dict()


@pytest.mark.parametrize("registry", ["mmdet", "mmseg"])
def test_pretrained_checkpoint_changes_the_backbone(registry, sami_export, tmp_path):
    models = _det_registry() if registry == "mmdet" else _seg_registry()
    path, sd = sami_export
    backbone = models.build(_backbone_cfg(path))
    before = backbone.vit.blocks[0].attn.qkv.weight.clone()
    backbone.init_weights()
    assert not torch.equal(before, backbone.vit.blocks[0].attn.qkv.weight)
    for k, v in sd.items():
        assert torch.equal(backbone.vit.state_dict()[k], v), k
    assert torch.count_nonzero(backbone.vit.blocks[0].attn.rel_pos_h) == 0  # new ViTDet tables start at zero

    # an official EfficientSAM checkpoint (image_encoder.*, SAM neck dropped) and an HF SamiViTModel dir load too
    official = tmp_path / "efficient_sam_vitt.pt"
    torch.save({"model": {**{"image_encoder." + k: v for k, v in sd.items()},
                          "image_encoder.neck.0.weight": torch.zeros(256, 192, 1, 1),
                          "mask_decoder.iou_token.weight": torch.zeros(1, 256)}}, official)
    b2 = models.build(_backbone_cfg(str(official)))
    b2.init_weights()
    assert torch.equal(b2.vit.pos_embed, sd["pos_embed"])
    from efficientsam_zoo.integrations.hf import SamiVisionConfig, SamiViTModel

    hf = SamiViTModel(SamiVisionConfig())
    hf.vit.load_state_dict(sd)
    hf.save_pretrained(tmp_path / "hf")
    b3 = models.build(_backbone_cfg(str(tmp_path / "hf")))
    b3.init_weights()
    assert torch.equal(b3.vit.blocks[5].mlp.fc2.weight, sd["blocks.5.mlp.fc2.weight"])


def test_mismatched_checkpoints_raise(sami_export, tmp_path):
    models = _det_registry()
    small = ViT(img_size=224, neck_dim=None, **VIT_SIZES["vit-s"])
    path = str(tmp_path / "sami_vit-s.safetensors")
    save_sami_backbone(small.state_dict(), path, dict(embed_dim=384, depth=12, num_heads=6))
    with pytest.raises(CheckpointError, match="mis-shaped"):
        models.build(_backbone_cfg(path)).init_weights()
    other = tmp_path / "resnet.pth"
    torch.save({"state_dict": {"conv1.weight": torch.zeros(64, 3, 7, 7)}}, other)
    with pytest.raises(CheckpointError, match="no ViT backbone found"):
        models.build(_backbone_cfg(str(other))).init_weights()


def test_layer_decay_groups_match_a_hand_computation():
    from mmengine.optim import build_optim_wrapper

    cfg = _small(Config.fromfile(os.path.join(CFG, "vitdet_sami_ti.py")))
    cfg.optim_wrapper.type = "OptimWrapper"  # the recipe's AMP wrapper needs a GPU; the groups are the same
    model = _det_registry().build(cfg.model)
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    lr, wd, rate = cfg.optim_wrapper.optimizer.lr, cfg.optim_wrapper.optimizer.weight_decay, 0.7
    named = dict(model.named_parameters())

    def group_of(name):
        p = named[name]
        (g,) = [g for g in wrapper.optimizer.param_groups if any(q is p for q in g["params"])]
        return g

    expect = {
        "backbone.vit.pos_embed": (lr * rate ** 13, 0.0),
        "backbone.vit.patch_embed.proj.weight": (lr * rate ** 13, wd),
        "backbone.vit.blocks.0.attn.qkv.weight": (lr * rate ** 12, wd),
        "backbone.vit.blocks.3.attn.qkv.weight": (lr * rate ** 9, wd),
        "backbone.vit.blocks.3.norm1.weight": (lr * rate ** 9, 0.0),
        "backbone.vit.blocks.11.mlp.fc2.bias": (lr * rate ** 1, 0.0),
        "backbone.vit.blocks.2.attn.rel_pos_h": (lr * rate ** 10, 0.0),
        "neck.fpn.stages.0.4.weight": (lr, wd),
        "roi_head.bbox_head.fc_cls.weight": (lr, wd),
    }
    for name, (want_lr, want_wd) in expect.items():
        g = group_of(name)
        assert g["lr"] == pytest.approx(want_lr, rel=1e-9), name
        assert g["weight_decay"] == pytest.approx(want_wd), name
    assert sum(len(g["params"]) for g in wrapper.optimizer.param_groups) == len(named)
    # the number of layers is the backbone's depth; a config that says otherwise is refused
    cfg.optim_wrapper.paramwise_cfg.num_layers = 6
    with pytest.raises(ValueError, match="num_layers=6 but the backbone ViT has \\[12\\] blocks"):
        build_optim_wrapper(model, cfg.optim_wrapper)


def _majority_miou(label_dir: str, train_label_dir: str) -> float:
    """mIoU (in %) of predicting every pixel as the most frequent training label, scored as mmseg's IoUMetric
    scores (labels reduced by one, 0 ignored; classes with an empty union left out): the chance-level baseline."""
    import glob

    import numpy as np
    from PIL import Image

    def labels(folder):
        return [np.asarray(Image.open(p)).astype(np.int64) - 1 for p in sorted(glob.glob(os.path.join(folder, "*.png")))]

    train = np.concatenate([m.ravel() for m in labels(train_label_dir)])
    majority = np.bincount(train[train >= 0]).argmax()
    gt = np.concatenate([m.ravel() for m in labels(label_dir)])
    gt = gt[gt >= 0]
    ious = [float(np.mean(gt == majority)) if c == majority else 0.0 for c in np.unique(gt)]
    return 100.0 * float(np.mean(ious))


@pytest.mark.learning
def test_mask2former_learns_the_generated_classes(tmp_path):
    """The shipped tiny-shapes config (from scratch, its own 300 iterations) through mmengine's Runner and mmseg's
    IoUMetric on held-out scenes: mIoU >= 30 % and >= 12 points above predicting the most frequent class everywhere
    (computed here, ~20 %); the training scenes' mIoU (the same Runner's test loop) is the second line. (This run
    scored 39.3 % held out, 40.2 % on its training scenes.)"""
    from efficientsam_zoo.data.synthetic import make_ade20k
    from efficientsam_zoo.tools.train import build_runner

    root = make_ade20k(str(tmp_path / "ade"), {"training": 128, "validation": 16}, size=(128, 128), seed=3)
    wd = str(tmp_path / "wd")
    cfg = Config.fromfile(resolve_config("mask2former_sami_ti_tiny-shapes"))
    for loader in (cfg.train_dataloader, cfg.val_dataloader):
        loader.dataset.data_root = root
    cfg.test_dataloader = dict(cfg.val_dataloader, dataset=dict(
        cfg.val_dataloader.dataset, data_prefix=dict(img_path="images/training", seg_map_path="annotations/training")))
    runner = build_runner(["(test)", "--work-dir", wd], cfg=cfg)  # in this process: the Runner then tests on its
    runner.train()  # training scenes too
    seen = runner.test()
    rows = mm_scalars(wd)
    train = [r for r in rows if "loss" in r]
    assert all("decode.loss_mask" in r and "decode.loss_dice" in r and "decode.loss_cls" in r for r in train)
    (val,) = [r for r in rows if "mIoU" in r]
    chance = _majority_miou(os.path.join(root, "annotations", "validation"), os.path.join(root, "annotations", "training"))
    assert val["mIoU"] >= max(30.0, chance + 12.0), (val, chance)
    assert seen["mIoU"] >= val["mIoU"] - 5.0, (seen, val)  # the second line: the scenes it trained on
    assert os.path.isfile(tmp_path / "wd" / "iter_200.pth")
