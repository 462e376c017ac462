import os
import zipfile

import pytest
import torch

from efficientsam_zoo import CheckpointError, build_efficient_sam
from efficientsam_zoo.checkpoints import load_state_dict_strict, read_official_state_dict, save_official_checkpoint

pytestmark = pytest.mark.slow  # real-size ViT-Ti / ViT-S checkpoints


def test_pt_zip_form_loads_like_the_pt(official_ti_checkpoint, tmp_path):
    zpath = tmp_path / "efficient_sam_vitt.pt.zip"
    with zipfile.ZipFile(zpath, "w") as z:
        z.write(official_ti_checkpoint, "efficient_sam_vitt.pt")
    a = read_official_state_dict(official_ti_checkpoint)
    b = read_official_state_dict(str(zpath))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    build_efficient_sam("efficientsam-ti", checkpoint=str(zpath))


def test_wrong_variant_names_the_variant_and_the_keys(tmp_path):
    path = tmp_path / "efficient_sam_vits.pt"
    save_official_checkpoint(build_efficient_sam("efficientsam-s"), str(path))
    with pytest.raises(CheckpointError) as info:
        build_efficient_sam("efficientsam-ti", checkpoint=str(path))
    msg = str(info.value)
    assert "mis-shaped" in msg and "image_encoder.patch_embed.proj.weight" in msg
    assert "efficientsam-s" in msg and "name='efficientsam-s'" in msg


def test_truncated_file(official_ti_checkpoint, tmp_path):
    data = open(official_ti_checkpoint, "rb").read()
    bad = tmp_path / "truncated.pt"
    bad.write_bytes(data[: len(data) // 3])
    with pytest.raises(CheckpointError, match="truncated, corrupt"):
        build_efficient_sam("efficientsam-ti", checkpoint=str(bad))
    with pytest.raises(CheckpointError, match="does not exist"):
        read_official_state_dict(str(tmp_path / "missing.pt"))


def test_not_a_state_dict(tmp_path):
    path = tmp_path / "x.pt"
    torch.save({"model": {"a": 1}}, path)
    with pytest.raises(CheckpointError, match="no state dict"):
        read_official_state_dict(str(path))


def test_missing_and_unexpected_keys_are_listed(tiny_model):
    sd = dict(tiny_model.state_dict())
    sd.pop("mask_decoder.iou_token.weight")
    sd["image_encoder.extra"] = torch.zeros(1)
    with pytest.raises(CheckpointError) as info:
        load_state_dict_strict(tiny_model, sd, source="test")
    msg = str(info.value)
    assert "missing (1): mask_decoder.iou_token.weight" in msg
    assert "unexpected (1): image_encoder.extra" in msg


def test_refuses_a_partial_load_and_leaves_weights_untouched(tiny_model):
    before = {k: v.clone() for k, v in tiny_model.state_dict().items()}
    sd = {k: torch.zeros_like(v) for k, v in before.items() if k.startswith("image_encoder.")}
    with pytest.raises(CheckpointError):
        load_state_dict_strict(tiny_model, sd)
    assert all(torch.equal(before[k], v) for k, v in tiny_model.state_dict().items())


def test_save_is_atomic(tiny_model, tmp_path, monkeypatch):
    path = tmp_path / "out.pt"

    def broken(obj, f):
        open(f, "wb").write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken)
    with pytest.raises(OSError):
        save_official_checkpoint(tiny_model, str(path))
    assert not path.exists() and os.listdir(tmp_path) == []


def test_released_weights_source_chain_offline(tmp_path, fake_hf_cache, monkeypatch):
    """efficientsam-s: the Hub state dict, else the official .pt.zip asset, else the TorchScript export (its
    state_dict loaded strictly, the conversion cached); with none reachable the error lists every attempt."""
    from efficientsam_zoo import hub
    from efficientsam_zoo.registry import get_variant

    monkeypatch.setenv("ESZ_CACHE_DIR", str(tmp_path / "esz"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    sources = get_variant("efficientsam-s").weights
    assert [s.kind for s in sources] == ["state_dict", "zip", "torchscript"]

    with pytest.raises(hub.WeightsUnavailable) as info:
        hub.fetch_official_checkpoint("efficientsam-s")
    tried = str(info.value)
    assert all(s.filename in tried for s in sources) and "--checkpoint PATH" in tried

    model = build_efficient_sam("efficientsam-s")
    with torch.no_grad():
        model.image_encoder.patch_embed.proj.weight.normal_()  # weights to recognise
    # the TorchScript export: a scripted module whose state_dict has the release's keys
    scripted = torch.jit.trace_module(model, {"preprocess": torch.rand(1, 3, 16, 16)})
    jit_file = tmp_path / "efficient_sam_s_cpu.jit"
    torch.jit.save(scripted, str(jit_file))
    fake_hf_cache(sources[2].repo_id, sources[2].filename, str(jit_file))
    converted = hub.fetch_official_checkpoint("efficientsam-s")
    assert converted.startswith(str(tmp_path / "esz")) and converted.endswith(".pt")
    got = build_efficient_sam("efficientsam-s", checkpoint=converted)
    assert torch.equal(got.image_encoder.patch_embed.proj.weight, model.image_encoder.patch_embed.proj.weight)
    monkeypatch.setattr(torch.jit, "load", lambda *a, **k: pytest.fail("converted again instead of cached"))
    assert hub.fetch_official_checkpoint("efficientsam-s") == converted

    # the zipped official asset, as torch.hub would have left it in the URL cache
    zpath = os.path.join(hub.cache_dir(), sources[1].filename)
    os.makedirs(os.path.dirname(zpath), exist_ok=True)
    save_official_checkpoint(model, str(tmp_path / "efficient_sam_vits.pt"))
    with zipfile.ZipFile(zpath, "w") as z:
        z.write(tmp_path / "efficient_sam_vits.pt", "efficient_sam_vits.pt")
    assert hub.fetch_official_checkpoint("efficientsam-s") == zpath
    # and the state dict on the Hub comes first
    fake_hf_cache(sources[0].repo_id, sources[0].filename, str(tmp_path / "efficient_sam_vits.pt"))
    first = hub.fetch_official_checkpoint("efficientsam-s")
    assert first.endswith(sources[0].filename) and "hf_hub_cache" in first
