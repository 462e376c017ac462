"""Every released file format loads from a local path through the one reader (``checkpoints.io.read_checkpoint``)
that the Hub source chain also uses: the ``{"model": state_dict}`` .pt, its .pt.zip, and TorchScript exports."""
import zipfile

import pytest
import torch

from efficientsam_zoo import CheckpointError, build_efficient_sam
from efficientsam_zoo.checkpoints import read_checkpoint, read_official_state_dict, save_official_checkpoint
from efficientsam_zoo.checkpoints.official import NON_PERSISTENT_BUFFERS


def _scripted(model, path):
    """A TorchScript export of ``model`` as the release's ``export_to_torchscript.py`` writes one: its
    ``state_dict()`` holds the model's own keys plus the non-persistent pixel-normalisation buffers."""
    scripted = torch.jit.trace_module(model, {"preprocess": torch.rand(1, 3, 16, 16)})
    torch.jit.save(scripted, str(path))
    return scripted


def test_local_torchscript_file_loads_with_its_weights(tiny_model, tiny_spec, tmp_path):
    jit = tmp_path / "efficient_sam_s_cpu.jit"
    scripted = _scripted(tiny_model, jit)
    assert NON_PERSISTENT_BUFFERS == {"pixel_mean", "pixel_std"} <= set(scripted.state_dict())
    got = build_efficient_sam(tiny_spec, checkpoint=str(jit))  # used to fail: weights_only with a TorchScript archive
    for k, v in tiny_model.state_dict().items():
        assert torch.equal(got.state_dict()[k], v), k
    x = torch.rand(1, 3, 64, 64)
    pts, lbl = torch.tensor([[[[10.0, 20.0]]]]), torch.ones(1, 1, 1, dtype=torch.long)
    with torch.no_grad():
        torch.testing.assert_close(got(x, pts, lbl)[0], tiny_model(x, pts, lbl)[0], rtol=0, atol=0)


def test_torchscript_of_another_model_is_refused_by_name(tiny_model, tmp_path):
    jit = tmp_path / "other.jit"
    _scripted(tiny_model, jit)
    with pytest.raises(CheckpointError, match=r"(?s)other\.jit.*does not fit EfficientSam.*mis-shaped"):
        build_efficient_sam("efficientsam-ti", checkpoint=str(jit))


def test_pt_and_pt_zip_read_through_the_same_reader(tiny_model, tiny_spec, tmp_path):
    pt = tmp_path / "efficient_sam_vitt.pt"
    save_official_checkpoint(tiny_model, str(pt))
    zpath = tmp_path / "efficient_sam_vitt.pt.zip"
    with zipfile.ZipFile(zpath, "w") as z:
        z.write(pt, "efficient_sam_vitt.pt")
    a, b = read_official_state_dict(str(pt)), read_official_state_dict(str(zpath))
    assert a.keys() == b.keys() == tiny_model.state_dict().keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert set(read_checkpoint(str(pt))) == {"model"}
