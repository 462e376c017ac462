import os
import zipfile

import pytest
import torch

from efficientsam_zoo import CheckpointError, build_efficient_sam
from efficientsam_zoo.checkpoints import (load_state_dict_strict, read_official_state_dict,
                                          save_official_checkpoint)

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
