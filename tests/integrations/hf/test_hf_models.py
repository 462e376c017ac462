import json
import os

import numpy as np
import pytest
import torch
from conftest import TINY, randomize_
from transformers import AutoConfig, AutoImageProcessor, AutoModel, AutoModelForImageClassification

import efficientsam_zoo
from efficientsam_zoo import build_efficient_sam
from efficientsam_zoo.integrations.hf import (EfficientSamConfig, EfficientSamImageProcessor, EfficientSamModel,
                                              SamiVisionConfig, SamiViTForImageClassification, SamiViTModel,
                                              efficientsam_config_for, register_auto_classes)

TINY_VIT = dict(image_size=32, hidden_size=32, num_hidden_layers=2, num_attention_heads=2)


def test_auto_classes_build_our_models():
    cfg = AutoConfig.for_model("sami_vit", **TINY_VIT, num_labels=5)
    assert isinstance(cfg, SamiVisionConfig)
    assert type(AutoModel.from_config(cfg)) is SamiViTModel
    assert type(AutoModelForImageClassification.from_config(cfg)) is SamiViTForImageClassification
    ecfg = AutoConfig.for_model("efficientsam", vision_config=dict(image_size=64, hidden_size=32, num_hidden_layers=2,
                                                                   num_attention_heads=2, neck_dim=32),
                                decoder_mlp_dim=64, decoder_num_heads=2, iou_head_hidden_dim=32,
                                upscaling_layer_dims=[16, 8])
    model = AutoModel.from_config(ecfg)
    assert type(model) is EfficientSamModel
    assert model.efficientsam.image_encoder.embed_dim == 32


def test_registration_is_idempotent():
    register_auto_classes()
    register_auto_classes()
    assert AutoConfig.for_model("efficientsam").model_type == "efficientsam"
    # re-importing the module (a fresh interpreter, so class identities here stay intact) must not raise
    import subprocess
    import sys

    code = ("import importlib, efficientsam_zoo.integrations.hf as m; importlib.reload(m); "
            "from transformers import AutoConfig; print(type(AutoConfig.for_model('sami_vit')).__name__)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "SamiVisionConfig"


def test_backbone_outputs_and_hidden_states():
    model = SamiViTModel(SamiVisionConfig(**TINY_VIT)).eval()
    x = torch.randn(2, 3, 32, 32)
    out = model(x, output_hidden_states=True)
    assert out.last_hidden_state.shape == (2, 4, 32)
    assert len(out.hidden_states) == 3  # embeddings + 2 blocks
    torch.testing.assert_close(out.hidden_states[-1], out.last_hidden_state)
    native = model.vit(x)  # [B, C, H, W], same module
    torch.testing.assert_close(native.flatten(2).transpose(1, 2), out.last_hidden_state)


def test_classifier_mean_pools_and_trains():
    model = SamiViTForImageClassification(SamiVisionConfig(**TINY_VIT, num_labels=3))
    x = torch.randn(4, 3, 32, 32)
    out = model(x, labels=torch.tensor([0, 1, 2, 1]))
    tokens = model.sami_vit(x).last_hidden_state
    torch.testing.assert_close(out.logits, model.classifier(model.fc_norm(tokens.mean(1))))
    torch.testing.assert_close(out.loss, torch.nn.functional.cross_entropy(out.logits, torch.tensor([0, 1, 2, 1])))
    out.loss.backward()
    assert model.sami_vit.vit.blocks[0].attn.qkv.weight.grad is not None


@pytest.mark.parametrize("kind", ["backbone", "classifier", "efficientsam"])
def test_save_load_roundtrip(kind, tmp_path, tiny_model):
    if kind == "backbone":
        model = randomize_(SamiViTModel(SamiVisionConfig(**TINY_VIT)), seed=3)
    elif kind == "classifier":
        model = randomize_(SamiViTForImageClassification(SamiVisionConfig(**TINY_VIT, num_labels=4)), seed=3)
    else:
        model = EfficientSamModel.from_native(tiny_model)
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists() and (tmp_path / "config.json").exists()
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["model_type"] == model.config.model_type
    loader = AutoModelForImageClassification if kind == "classifier" else AutoModel
    loaded = loader.from_pretrained(tmp_path)
    assert type(loaded) is type(model)
    a, b = model.state_dict(), loaded.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    if kind == "efficientsam":  # non-persistent buffers are rebuilt, not loaded
        torch.testing.assert_close(loaded.efficientsam.pixel_mean, tiny_model.pixel_mean)
        torch.testing.assert_close(loaded.efficientsam.pixel_std, tiny_model.pixel_std)


def test_backbone_checkpoint_loads_into_classifier(tmp_path):
    backbone = randomize_(SamiViTModel(SamiVisionConfig(**TINY_VIT)), seed=4)
    backbone.save_pretrained(tmp_path)
    clf = SamiViTForImageClassification.from_pretrained(tmp_path, num_labels=7)
    torch.testing.assert_close(clf.sami_vit.vit.pos_embed, backbone.vit.pos_embed)
    assert clf.classifier.out_features == 7
    assert torch.isfinite(clf.classifier.weight).all() and clf.classifier.weight.abs().sum() > 0


def test_hf_model_equals_native(tiny_model):
    hf = EfficientSamModel.from_native(tiny_model).eval()
    proc = EfficientSamImageProcessor(size=64)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (40, 56, 3), dtype=np.uint8), rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)]
    points = [[[[10.0, 12.0]], [[30.0, 5.0]]], [[[50.0, 39.0]], [[0.0, 0.0]]]]
    labels = [[[1], [1]], [[1], [1]]]
    boxes = [[[2.0, 3.0, 40.0, 30.0], [10.0, 1.0, 50.0, 20.0]], [[0.0, 0.0, 55.0, 39.0], [5.0, 5.0, 6.0, 6.0]]]
    inputs = proc(images, input_points=points, input_labels=labels, input_boxes=boxes)
    with torch.no_grad():
        out = hf(pixel_values=inputs["pixel_values"], input_points=inputs["input_points"],
                 input_labels=inputs["input_labels"], input_boxes=inputs["input_boxes"])
        logits = proc.post_process_masks(out.pred_masks, inputs["original_sizes"], binarize=False)
        x = torch.stack([torch.from_numpy(im).permute(2, 0, 1).float() / 255 for im in images])
        pts = torch.cat([torch.tensor(points), torch.tensor(boxes).reshape(2, 2, 2, 2)], 2)
        lbl = torch.cat([torch.tensor(labels), torch.tensor([2, 3]).expand(2, 2, 2)], 2)
        native_logits, native_iou = tiny_model(x, pts, lbl)
    assert out.pred_masks.shape == (2, 2, 3, 16, 16)
    torch.testing.assert_close(out.iou_scores, native_iou, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(torch.stack(logits), native_logits, atol=1e-4, rtol=1e-4)
    with torch.no_grad():
        torch.testing.assert_close(hf(**inputs).pred_masks, out.pred_masks)  # the README's one-liner
    masks = proc.post_process_masks(out.pred_masks, inputs["original_sizes"])
    assert masks[0].dtype == torch.bool and masks[0].shape == (2, 3, 40, 56)


def test_negative_clicks_and_mask_prompts_equal_native_and_are_refused_by_the_release(tiny_spec, tiny_model):
    """A model with both switches on (a finetuned one): label 0 and ``input_masks`` (a previous output's low-res
    ``pred_masks``) give what the native model computes; the release-layout model refuses each, by name."""
    from dataclasses import replace

    torch.manual_seed(0)
    native = randomize_(build_efficient_sam(replace(tiny_spec, negative_points=True, mask_prompts=True)), seed=3).eval()
    hf = EfficientSamModel.from_native(native).eval()
    assert hf.config.negative_points and hf.config.mask_prompts
    proc = EfficientSamImageProcessor(size=64)
    image = np.random.default_rng(1).integers(0, 256, (40, 56, 3), dtype=np.uint8)
    inputs = proc(image, input_points=[[[[10.0, 12.0], [30.0, 20.0]]]], input_labels=[[[1, 0]]])
    with torch.no_grad():
        first = hf(**inputs)
        masks_in = first.pred_masks[:, :, :1]  # [B, Q, 1, h, w]: the first output of each query
        out = hf(**inputs, input_masks=masks_in)
        emb = first.image_embeddings  # the processor's pixel_values are already normalised
        ref, ref_iou = native.predict_masks(emb, inputs["input_points"], inputs["input_labels"], True, 64, 64,
                                            mask_input=masks_in)
    torch.testing.assert_close(out.pred_masks, ref, rtol=0, atol=1e-6)
    torch.testing.assert_close(out.iou_scores, ref_iou, rtol=0, atol=1e-6)
    assert (out.pred_masks - first.pred_masks).abs().max() > 1e-3  # the mask prompt changed the answer
    release = EfficientSamModel.from_native(tiny_model)
    with torch.no_grad(), pytest.raises(ValueError, match="label 0 is a negative click, and this model has none"):
        release(**inputs)
    with torch.no_grad(), pytest.raises(ValueError, match=r"this model takes no mask prompts \(mask_input\)"):
        release(**proc(image, input_points=[[[[10.0, 12.0]]]], input_labels=[[[1]]]), input_masks=masks_in)


_FORWARDS = """
import sys, warnings
import numpy as np, torch
sys.path.insert(0, {tests!r})
from conftest import TINY
from efficientsam_zoo import build_efficient_sam
from efficientsam_zoo.modeling.efficient_sam import EfficientSamSpec
from efficientsam_zoo.integrations.hf import (EfficientSamImageProcessor, EfficientSamModel, SamiVisionConfig,
                                             SamiViTForImageClassification, SamiViTModel)
warnings.simplefilter("always")
vit = dict(image_size=32, hidden_size=32, num_hidden_layers=2, num_attention_heads=2)
inputs = EfficientSamImageProcessor(size=64)(np.zeros((40, 56, 3), np.uint8), input_points=[[[[10.0, 12.0]]]],
                                             input_labels=[[[1]]])
x = {{"pixel_values": torch.randn(1, 3, 32, 32)}}
print("forwards", flush=True)
with torch.no_grad():
    for model, kwargs in [(EfficientSamModel.from_native(build_efficient_sam(EfficientSamSpec(**TINY))), inputs),
                          (SamiViTModel(SamiVisionConfig(**vit)), x),
                          (SamiViTForImageClassification(SamiVisionConfig(**vit, num_labels=2)), x)]:
        model.eval()(**kwargs)
        model(**kwargs, return_dict=False)
"""


def test_forwards_print_no_warning():
    """transformers 5 warns on every read of ``config.use_return_dict``; our forwards read ``return_dict``."""
    import subprocess
    import sys

    tests = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    r = subprocess.run([sys.executable, "-c", _FORWARDS.format(tests=tests)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    after = (r.stdout + r.stderr).split("forwards", 1)[1]
    assert "deprecated" not in after and "Warning" not in after, after


def test_processor_is_registered_and_roundtrips(tmp_path, tiny_model):
    hf = EfficientSamModel.from_native(tiny_model)
    hf.save_pretrained(tmp_path)
    EfficientSamImageProcessor(size=64).save_pretrained(tmp_path)
    proc = AutoImageProcessor.from_pretrained(tmp_path)
    assert type(proc) is EfficientSamImageProcessor and proc.size == {"height": 64, "width": 64}


def test_processor_errors():
    proc = EfficientSamImageProcessor(size=64)
    img = np.zeros((10, 10, 3), np.uint8)
    with pytest.raises(ValueError, match="input_labels"):
        proc(img, input_points=[[[[1.0, 1.0]]]])
    with pytest.raises(ValueError, match=r"\[B=1, Q, N, 2\]"):
        proc(img, input_points=[[1.0, 1.0]], input_labels=[[1]])
    with pytest.raises(ValueError, match="2-channel"):
        proc(np.zeros((10, 10, 2), np.uint8))


def test_forward_errors(tiny_model):
    hf = EfficientSamModel.from_native(tiny_model)
    with pytest.raises(ValueError, match="exactly one"):
        hf(input_boxes=torch.zeros(1, 1, 4))
    with pytest.raises(ValueError, match="empty prompt"):
        hf(pixel_values=torch.zeros(1, 3, 64, 64))


def test_alias_local_dir_and_org_name(tmp_path, tiny_model, fake_hf_cache):
    hf = EfficientSamModel.from_native(tiny_model)
    hf.save_pretrained(tmp_path / "local")
    a = EfficientSamModel.from_pretrained(str(tmp_path / "local"))
    for f in ["config.json", "model.safetensors"]:
        fake_hf_cache("someone/tiny-efficientsam", f, str(tmp_path / "local" / f))
    b = EfficientSamModel.from_pretrained("someone/tiny-efficientsam")
    sd = hf.state_dict()
    for m in (a, b):
        assert all(torch.equal(sd[k], v) for k, v in m.state_dict().items())
    # a SAMI alias resolves to its Hub id
    backbone = SamiViTModel(SamiVisionConfig(**TINY_VIT))
    backbone.save_pretrained(tmp_path / "sami")
    for f in ["config.json", "model.safetensors"]:
        fake_hf_cache("efficientsam-zoo/sami-vit-ti", f, str(tmp_path / "sami" / f))
    assert isinstance(SamiViTModel.from_pretrained("sami-vit-ti"), SamiViTModel)


@pytest.mark.slow
def test_alias_converts_official_pt_on_the_fly(official_ti_checkpoint, fake_hf_cache):
    fake_hf_cache("merve/EfficientSAM", "efficient_sam_vitt.pt", official_ti_checkpoint)
    model = efficientsam_zoo.EfficientSamModel.from_pretrained("efficientsam-ti")
    native = build_efficient_sam("efficientsam-ti", checkpoint=official_ti_checkpoint)
    sd = native.state_dict()
    assert all(torch.equal(sd[k[len("efficientsam."):]], v) for k, v in model.state_dict().items())
    assert model.config.vision_config.hidden_size == 192


def test_offline_error_names_the_download(fake_hf_cache):
    with pytest.raises(OSError) as info:
        EfficientSamModel.from_pretrained("efficientsam-s")
    msg = str(info.value)
    assert "HF_HUB_OFFLINE" in msg and "huggingface-cli download merve/EfficientSAM efficient_sam_vits.pt" in msg
    assert "convert_official_checkpoint.py" in msg
    with pytest.raises(OSError, match="sami-vit-b"):
        SamiViTModel.from_pretrained("sami-vit-b")


def test_config_of_released_variants():
    for name, dim in [("efficientsam-ti", 192), ("efficientsam-s", 384)]:
        from efficientsam_zoo.registry import get_spec

        cfg = efficientsam_config_for(get_spec(name))
        assert cfg.vision_config.hidden_size == dim and cfg.vision_config.image_size == 1024
        d = cfg.to_dict()
        assert d["vision_config"]["model_type"] == "sami_vit" and d["model_type"] == "efficientsam"
        assert EfficientSamConfig(**{k: v for k, v in d.items() if k not in ("model_type", "transformers_version")}
                                  ).vision_config.hidden_size == dim
    assert TINY["embed_dim"] == 32 and os.environ.get("HF_HUB_OFFLINE") == "1"
