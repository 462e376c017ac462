"""ImageNet-style classification finetuning with the HF Trainer: timm layer decay, timm mixup / label
smoothing, a CPU run that learns, checkpoints that reload with AutoModelForImageClassification."""
import json
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import REPO_ROOT as ROOT  # noqa: E402
from trainer_utils import run  # noqa: E402
from transformers import AutoModelForImageClassification

import efficientsam_zoo  # noqa: F401  (registers the Auto classes)
from efficientsam_zoo.integrations.hf import SamiVisionConfig, SamiViTForImageClassification
from efficientsam_zoo.tools import train_cls

RECIPE = os.path.join(ROOT, "hf", "recipes", "vit-s_in1k.yaml")
TINY = dict(image_size=32, hidden_size=32, num_hidden_layers=4, num_attention_heads=2, pretrain_image_size=32)


def test_shipped_recipes_follow_the_paper():
    for size, decay in (("ti", 1.0), ("s", 0.75), ("b", 0.75)):
        r = train_cls.load_recipe(os.path.join(ROOT, "hf", "recipes", f"vit-{size}_in1k.yaml"))
        assert (r["lr"], r["batch_size"], r["epochs"], r["warmup_epochs"]) == (1e-3, 1024, 100, 5)
        assert (r["weight_decay"], r["label_smoothing"], r["mixup"], r["cutmix"]) == (0.05, 0.1, 0.8, 1.0)
        assert r["layer_decay"] == decay and r["betas"] == [0.9, 0.999] and r["auto_augment"].startswith("rand-")
    with pytest.raises(ValueError, match="unknown recipe key"):
        train_cls.load_recipe(RECIPE, ["lrr=1"])


def _trainer(tmp_path, recipe_overrides=(), n=8):
    recipe = train_cls.load_recipe(RECIPE, ["image_size=32", "per_device_batch_size=4", "batch_size=4",
                                            "num_workers=0", *recipe_overrides])
    model = SamiViTForImageClassification(SamiVisionConfig(**TINY, num_labels=3))
    data = [{"pixel_values": torch.randn(3, 32, 32), "labels": i % 3} for i in range(n)]
    return train_cls.build_trainer(recipe, model, data, None, str(tmp_path)), recipe, model


def test_layer_decay_groups_equal_a_hand_computation(tmp_path):
    trainer, recipe, model = _trainer(tmp_path)
    opt = trainer.create_optimizer()
    lr = recipe["lr"] * 4 / 4  # linear scaling: real batch 4 / recipe batch 4
    named = dict(model.named_parameters())

    def group(name):
        (g,) = [g for g in opt.param_groups if any(p is named[name] for p in g["params"])]
        return g

    top = 4 + 1  # stem 0, blocks 1..4, head 5
    cases = {"sami_vit.vit.pos_embed": (0.75 ** top, 0.0), "sami_vit.vit.patch_embed.proj.weight": (0.75 ** top, 0.05),
             "sami_vit.vit.blocks.1.attn.qkv.weight": (0.75 ** (top - 2), 0.05),
             "sami_vit.vit.blocks.3.norm2.weight": (0.75 ** (top - 4), 0.0),
             # timm's rule: the final norm shares the last block's layer; the unmatched head is the top layer
             "fc_norm.weight": (0.75 ** (top - 4), 0.0), "classifier.weight": (1.0, 0.05)}
    for name, (scale, wd) in cases.items():
        assert group(name)["lr"] == pytest.approx(lr * scale), name
        assert group(name)["weight_decay"] == pytest.approx(wd), name
    assert opt.defaults["betas"] == (0.9, 0.999)


def test_label_smoothing_and_mixup_losses_equal_independent_computations(tmp_path):
    torch.manual_seed(0)
    x = torch.randn(4, 3, 32, 32)
    y = torch.tensor([0, 2, 1, 1])
    trainer, _, model = _trainer(tmp_path, ["mixup=0.0", "cutmix=0.0"])
    model.train()
    model.config.drop_path_rate = 0.0
    loss = trainer.compute_loss(model, {"pixel_values": x, "labels": y})
    logits = model(pixel_values=x).logits
    target = torch.full((4, 3), 0.1 / 3)
    target[torch.arange(4), y] = 1 - 0.1 + 0.1 / 3
    torch.testing.assert_close(loss, -(target * F.log_softmax(logits, -1)).sum(-1).mean())

    trainer, _, model = _trainer(tmp_path, ["mixup=0.8", "cutmix=0.0"])
    model.train()
    np.random.seed(3)
    mixed_x, soft = trainer.mixup(x.clone(), y.clone())
    lam = float(((mixed_x - x.flip(0)) / (x - x.flip(0)))[0, 0, 0, 0])  # mixed = lam * x + (1 - lam) * x.flip(0)
    torch.testing.assert_close(mixed_x, lam * x + (1 - lam) * x.flip(0), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(soft, lam * target + (1 - lam) * target.flip(0), atol=1e-6, rtol=1e-5)
    out = model(pixel_values=mixed_x, labels=soft)
    torch.testing.assert_close(out.loss, -(soft * F.log_softmax(out.logits, -1)).sum(-1).mean())


@pytest.mark.learning
def test_cls_recipe_learns_the_generated_classes(tmp_path):
    """The shipped tiny-shapes recipe through the HF Trainer: top-1 >= 90 % on held-out images of the 10 generated
    classes, beside the baseline of always answering the most frequent class (counted here on the held-out folders:
    10 %); the checkpoint reloads with AutoModelForImageClassification."""
    from efficientsam_zoo.data.synthetic import CLASSIFICATION_CLASSES, make_classification_folders

    dirs = make_classification_folders(str(tmp_path / "shapes"), {"train": 30, "val": 10}, size=64, seed=0)
    out = str(tmp_path / "out")
    run(["efficientsam_zoo.tools.train_cls", "--recipe", "vit-ti_tiny-shapes", "--model", "scratch", "--train-dir",
         dirs["train"], "--val-dir", dirs["val"], "--output-dir", out])
    last = train_cls.latest_complete_checkpoint(out)
    state = json.load(open(os.path.join(last, "trainer_state.json")))
    evals = [h for h in state["log_history"] if "eval_top1" in h]
    counts = [len(os.listdir(os.path.join(dirs["val"], c))) for c in os.listdir(dirs["val"])]
    chance = 100.0 * max(counts) / sum(counts)
    assert evals[-1]["eval_top1"] >= max(90.0, chance + 50.0), (evals, chance)
    assert evals[0]["eval_top1"] < evals[-1]["eval_top1"]
    model = AutoModelForImageClassification.from_pretrained(os.path.join(out, "final"))
    assert type(model) is SamiViTForImageClassification and model.config.num_labels == 10
    assert [model.config.id2label[i] for i in range(10)] == sorted(CLASSIFICATION_CLASSES)
