"""hf/ scripts: conversion with verification, push dry run, model cards."""
import os
import subprocess
import sys

import pytest
import torch
import yaml
from conftest import REPO_ROOT as ROOT  # noqa: E402
from transformers import AutoModel

from efficientsam_zoo import build_efficient_sam
from efficientsam_zoo.integrations.hf.cards import CARD_NAMES, make_model_card

CARDS = os.path.join(ROOT, "hf", "cards")


def _script(name, *args):
    return subprocess.run([sys.executable, os.path.join(ROOT, "hf", name), *args], capture_output=True, text=True,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})


@pytest.mark.slow
def test_convert_official_checkpoint(official_ti_checkpoint, tmp_path):
    out = tmp_path / "efficientsam-ti-hf"
    r = _script("convert_official_checkpoint.py", "--checkpoint", official_ti_checkpoint, "--variant",
                "efficientsam-ti", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert "10,223,204 parameters" in r.stdout
    assert sorted(os.listdir(out)) == ["README.md", "config.json", "model.safetensors", "preprocessor_config.json", "spec.json"]
    import efficientsam_zoo  # noqa: F401  (registers the Auto classes)

    model = AutoModel.from_pretrained(out)
    native = build_efficient_sam("efficientsam-ti", checkpoint=official_ti_checkpoint)
    sd = native.state_dict()
    assert all(torch.equal(sd[k[len("efficientsam."):]], v) for k, v in model.state_dict().items())
    # a second run refuses to overwrite; a wrong variant fails before anything is written
    assert _script("convert_official_checkpoint.py", "--checkpoint", official_ti_checkpoint, "--variant",
                   "efficientsam-ti", "--out", str(out)).returncode == 2
    bad = _script("convert_official_checkpoint.py", "--checkpoint", official_ti_checkpoint, "--variant",
                  "efficientsam-s", "--out", str(tmp_path / "wrong"))
    assert bad.returncode == 2 and "mis-shaped" in bad.stderr and not (tmp_path / "wrong").exists()
    assert [p for p in os.listdir(tmp_path) if p.startswith(".convert-")] == []


def test_push_dry_run(tmp_path, tiny_model):
    from efficientsam_zoo.integrations.hf import EfficientSamModel

    EfficientSamModel.from_native(tiny_model).save_pretrained(tmp_path / "m")
    r = _script("push_to_hub.py", "--folder", str(tmp_path / "m"), "--repo-id", "me/test")
    assert r.returncode == 0, r.stderr
    assert "would upload to me/test: config.json, model.safetensors" in r.stdout and "dry run" in r.stdout
    r = _script("push_to_hub.py", "--folder", str(tmp_path), "--repo-id", "me/test")
    assert r.returncode == 2 and "no config.json" in r.stderr


def _front_matter(path):
    text = open(path).read()
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1]), text


@pytest.mark.parametrize("name", [n for n in CARD_NAMES if not n.startswith("efficienttam")])
def test_model_cards(name):
    meta, text = _front_matter(os.path.join(CARDS, f"{name}.md"))
    assert meta["license"] == "apache-2.0" and meta["library_name"] == "efficientsam-zoo"
    expected_tag = "mask-generation" if name.startswith("efficientsam") else "image-feature-extraction"
    assert meta["pipeline_tag"] == expected_tag
    assert "imagenet-1k" in meta["datasets"]
    results = meta["model-index"][0]["results"]
    assert meta["model-index"][0]["name"] == name and results
    for r in results:
        assert "as reported" in r["source"]["name"] and r["source"]["url"].startswith("https://arxiv.org/")
        assert all(isinstance(m["value"], float) for m in r["metrics"])
    assert "quoted from the paper" in text and "@article{xiong2023efficientsam" in text
    assert "SA-1B" in text
    if name == "efficientsam-s":
        values = {(r["dataset"]["type"], m["name"]): m["value"] for r in results for m in r["metrics"]}
        assert values[("coco", "mIoU (box)")] == 76.9 and values[("lvis", "mask AP")] == 42.3
    if name.startswith("efficientsam"):
        assert "Label 0 adds no label embedding" in text
        assert f'build_efficient_sam("{name}")' in text and "SamAutomaticMaskGenerator(model)" in text
    else:  # every way to load a backbone, each naming something that exists
        import re

        import timm

        from efficientsam_zoo.registry import get_variant
        from efficientsam_zoo.tools.configs import resolve_config

        assert f'timm.create_model("{get_variant(name).timm_name}"' in text and timm.is_model(get_variant(name).timm_name)
        configs = re.findall(r"(?:mm_configs|d2_configs)/([\w/.-]+)\.py", text)
        assert len(configs) == 3
        for c in configs:
            resolve_config(c, "d2" if c.startswith("COCO/") else "mm")
        assert 'init_cfg=dict(type="Pretrained"' in text and "train.init_checkpoint" in text


@pytest.mark.parametrize("name", [n for n in CARD_NAMES if n.startswith("efficienttam")])
def test_efficienttam_cards(name):
    """The video model's card: its paper, its file, its input size, and the paper's numbers where it reports them."""
    from efficientsam_zoo.registry import get_variant

    variant = get_variant(name)
    meta, text = _front_matter(os.path.join(CARDS, f"{name}.md"))
    assert meta["license"] == "apache-2.0" and meta["pipeline_tag"] == "mask-generation"
    assert meta["datasets"] == ["sa-v", "sa-1b"] and "@article{xiong2024efficienttam" in text
    assert f'EfficientTamVideoModel.from_pretrained("{name}")' in text and variant.weights[0].filename in text
    assert f"{variant.tracker.image_size}x{variant.tracker.image_size}" in text
    if variant.results:
        results = meta["model-index"][0]["results"]
        assert "quoted from the paper" in text and all("2411.18933" in r["source"]["url"] for r in results)
        values = {r["dataset"]["type"]: r["metrics"][0]["value"] for r in results}
        assert values == {"efficienttam-s": {"sa-v": 74.5, "davis": 89.2},
                          "efficienttam-ti-2": {"sa-v": 70.8, "davis": 88.4}}[name]
    else:
        assert "model-index" not in meta and "quoted from the paper" not in text


def test_cards_are_generated_from_the_template():
    for name in CARD_NAMES:
        assert open(os.path.join(CARDS, f"{name}.md")).read() == str(make_model_card(name)), \
            f"hf/cards/{name}.md is stale: run python hf/make_cards.py"
