"""timm's registry: the SAMI backbones by name, built on our one ViT, loading a SAMI export either way timm loads
weights, and behaving as timm models do (num_classes, global_pool, features_only)."""
import pytest
import timm
import torch

import efficientsam_zoo  # noqa: F401  (registers the names)
from efficientsam_zoo.checkpoints import save_sami_backbone
from efficientsam_zoo.integrations.hf import SamiVisionConfig, SamiViTModel
from efficientsam_zoo.modeling.vit import VIT_SIZES, ViT
from efficientsam_zoo.registry import SAMI_NAMES, get_variant


def test_names_come_from_the_variant_table():
    names = timm.list_models("sami_vit_*")
    assert sorted(names) == sorted(get_variant(n).timm_name for n in SAMI_NAMES) and len(names) == 3
    for n in SAMI_NAMES:
        v = get_variant(n)
        model = timm.create_model(v.timm_name, num_classes=0)
        assert isinstance(model, ViT) and model.embed_dim == VIT_SIZES[v.backbone]["embed_dim"]
        assert model.pretrained_cfg["hf_hub_id"] == v.hub_repo


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    torch.manual_seed(0)
    vit = ViT(img_size=224, neck_dim=None, **VIT_SIZES["vit-ti"])
    for p in vit.parameters():
        torch.nn.init.normal_(p, std=0.05)
    path = str(tmp_path_factory.mktemp("export") / "sami_vit-ti.safetensors")
    save_sami_backbone(vit.state_dict(), path, dict(VIT_SIZES["vit-ti"], img_size=224))
    return path, vit.state_dict()


def test_export_loads_both_ways_and_features_equal_the_hf_model(export, tmp_path):
    path, sd = export
    x = torch.randn(2, 3, 224, 224)
    hf = SamiViTModel(SamiVisionConfig(image_size=224, hidden_size=192, num_hidden_layers=12,
                                       num_attention_heads=3)).eval()
    hf.vit.load_state_dict(sd)
    by_path = timm.create_model("sami_vit_tiny_patch16_224", checkpoint_path=path, num_classes=10).eval()
    by_cfg = timm.create_model("sami_vit_tiny_patch16_224", pretrained=True, num_classes=10,
                               pretrained_cfg_overlay=dict(file=path)).eval()
    hf.save_pretrained(str(tmp_path / "hf"))  # what the Hub repositories hold: an HF directory, vit.* keys
    from_hf = timm.create_model("sami_vit_tiny_patch16_224", pretrained=True, num_classes=0,
                                pretrained_cfg_overlay=dict(file=str(tmp_path / "hf" / "model.safetensors"))).eval()
    with torch.no_grad():
        ref = hf(x).last_hidden_state
        torch.testing.assert_close(from_hf.forward_features(x), ref)
        final, inter = by_path.forward_intermediates(x, indices=[3, 11])
        torch.testing.assert_close(final, ref)
        torch.testing.assert_close(inter[1].flatten(2).transpose(1, 2), ref)
        for model in (by_path, by_cfg):
            torch.testing.assert_close(model.forward_features(x), ref)
            assert model(x).shape == (2, 10)


def test_timm_behaviour(export):
    x = torch.randn(1, 3, 224, 224)
    model = timm.create_model("sami_vit_tiny_patch16_224", num_classes=7).eval()
    with torch.no_grad():
        tokens = model.forward_features(x)
        torch.testing.assert_close(model(x), model.head(model.fc_norm(tokens.mean(1))))
        model.reset_classifier(0)
        assert model(x).shape == (1, 192)
        every = timm.create_model("sami_vit_tiny_patch16_224", num_classes=0, global_pool="")
        assert every(x).shape == (1, 196, 192)
        # (as for timm's own models, features_only wraps the model before checkpoint_path would load: the
        # weights come through the pretrained config instead)
        feats = timm.create_model("sami_vit_tiny_patch16_224", features_only=True, out_indices=(2, 5, 11),
                                  pretrained=True, pretrained_cfg_overlay=dict(file=export[0]))
        maps = feats(x)
        assert feats.feature_info.channels() == [192] * 3 and feats.feature_info.reduction() == [16] * 3
        full = timm.create_model("sami_vit_tiny_patch16_224", checkpoint_path=export[0]).eval()
        ref = ViT.forward_features(full, x, out_indices=(2, 5, 11))
        for got, want in zip(maps, ref):
            torch.testing.assert_close(got, want)
    with pytest.raises(ValueError, match="global_pool"):
        timm.create_model("sami_vit_tiny_patch16_224", global_pool="token")


def test_classification_recipe_runs_from_a_timm_name(export, tmp_path):
    """``train_cls --model <timm name> --pretrained-path EXPORT``: the HF classifier it trains holds the timm
    model's weights (logits equal at the recipe's 64 px), and the recipe runs through the HF Trainer."""
    import json
    import os

    from conftest import REPO_ROOT  # noqa: F401  (tests/ on the path)
    from trainer_utils import run

    from efficientsam_zoo.data.synthetic import make_classification_folders
    from efficientsam_zoo.tools import train_cls

    path, sd = export
    recipe = train_cls.load_recipe("vit-ti_tiny-shapes")
    torch.manual_seed(1)
    model = train_cls.build_model("sami_vit_tiny_patch16_224", 10, recipe, pretrained_path=path).eval()
    torch.manual_seed(1)  # the same fresh head
    net = timm.create_model("sami_vit_tiny_patch16_224", pretrained=True, num_classes=10,
                            pretrained_cfg_overlay=dict(file=path)).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(x).logits, net(x))
    assert all(torch.equal(model.sami_vit.vit.state_dict()[k], v) for k, v in sd.items())
    with pytest.raises(ValueError, match="timm model name"):
        train_cls.build_model("scratch", 10, recipe, pretrained=True)

    dirs = make_classification_folders(str(tmp_path / "shapes"), {"train": 2}, size=64, seed=0)
    out = str(tmp_path / "out")
    run(["efficientsam_zoo.tools.train_cls", "--recipe", "vit-ti_tiny-shapes", "--model", "sami_vit_tiny_patch16_224",
         "--pretrained-path", path, "--train-dir", dirs["train"], "--output-dir", out, "--max-steps", "2"])
    final = os.path.join(out, "final")
    assert json.load(open(os.path.join(final, "config.json")))["num_hidden_layers"] == 12  # the timm model's depth
    from safetensors.torch import load_file

    trained = load_file(os.path.join(final, "model.safetensors"))
    diff = {k: float((trained[f"sami_vit.vit.{k}"] - v).abs().max()) for k, v in sd.items()}
    # two AdamW steps (each moves a weight by at most ~lr = 2e-3) from the export (std 0.05): moved, but near it
    assert sum(d > 0 for d in diff.values()) > len(sd) // 2 and max(diff.values()) < 0.01, diff
