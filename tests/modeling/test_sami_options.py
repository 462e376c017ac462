"""The paper's ablations and MAE baseline as options of the one Sami model (section 4.4, Tables 1-7): each loss
against an independent computation, and the decoder's two query modes by what they let change."""
import numpy as np
import pytest
import torch

from efficientsam_zoo.modeling.sami import Sami, patchify
from efficientsam_zoo.modeling.vit import ViT

pytestmark = pytest.mark.paper


def _sami(**kw):
    torch.manual_seed(0)
    enc = ViT(img_size=64, embed_dim=32, depth=2, num_heads=2, neck_dim=None)
    return Sami(enc, **{**dict(teacher_dim=24, decoder_dim=16, decoder_depth=2, decoder_heads=2), **kw})


def test_cosine_loss_equals_an_independent_computation():
    model = _sami(loss="cosine")
    x, teacher = torch.randn(2, 3, 64, 64), torch.randn(2, 24, 4, 4)  # already on the 4x4 student grid
    out = model(x, teacher, generator=torch.Generator().manual_seed(3))
    pred = out["pred"].detach().numpy()
    tgt = teacher.flatten(2).transpose(1, 2).numpy()
    cos = (pred * tgt).sum(-1) / (np.linalg.norm(pred, axis=-1) * np.linalg.norm(tgt, axis=-1))
    np.testing.assert_allclose(out["loss"].item(), (1 - cos).mean(), rtol=1e-5)
    # scale-invariant per token, unlike MSE
    again = model(x, teacher * 3.0, generator=torch.Generator().manual_seed(3))["loss"]
    torch.testing.assert_close(again, out["loss"])


def test_mae_pixel_loss_equals_an_independent_computation():
    model = _sami(target="pixels")
    assert model.head.out_features == 16 * 16 * 3
    x = torch.randn(2, 3, 64, 64)
    out = model(x, generator=torch.Generator().manual_seed(5))
    pred, mask = out["pred"].detach().numpy(), out["mask"].numpy()
    img = x.numpy()
    total, count = 0.0, 0
    for b in range(2):
        for t in range(16):
            i, j = divmod(t, 4)
            patch = img[b, :, 16 * i:16 * i + 16, 16 * j:16 * j + 16].transpose(1, 2, 0).reshape(-1)  # (row, col, ch)
            target = (patch - patch.mean()) / np.sqrt(patch.var(ddof=1) + 1e-6)
            if mask[b, t]:
                total += ((pred[b, t] - target) ** 2).mean()
                count += 1
    assert count == 2 * 12  # masked patches only: 75 % of 16
    np.testing.assert_allclose(out["loss"].item(), total / count, rtol=1e-5)
    np.testing.assert_array_equal(patchify(x, 16)[1, 5].numpy(),
                                  img[1, :, 16:32, 16:32].transpose(1, 2, 0).reshape(-1))
    with pytest.raises(ValueError, match="target must be"):
        _sami(target="clip")


def test_decoder_queries_all_tokens_changes_the_anchors():
    """SAMI's decoder leaves the kept tokens' outputs to the encoder (anchors); MAE's reprocesses every token."""
    x = torch.randn(2, 3, 64, 64)
    masked, every = _sami(), _sami(decoder_queries="all")
    every.load_state_dict(masked.state_dict())  # the same weights: the option adds no parameters
    a = masked.forward_features(x, generator=torch.Generator().manual_seed(1))
    b = every.forward_features(x, generator=torch.Generator().manual_seed(1))
    kept = a["mask"] == 0
    anchors = masked.head(masked.decoder.decoder_embed(masked.encoder.forward_tokens(
        torch.gather(masked.encoder.embed(x).flatten(1, 2), 1, a["ids_keep"][..., None].expand(-1, -1, 32))))
        + torch.gather(masked.decoder.pos_embed.expand(2, -1, -1), 1, a["ids_keep"][..., None].expand(-1, -1, 16)))
    placed = torch.zeros(2, 16, 24).scatter(1, a["ids_keep"][..., None].expand(-1, -1, 24), anchors)
    torch.testing.assert_close(a["pred"][kept], placed[kept], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(b["pred"][kept], a["pred"][kept], atol=1e-3)
    assert not torch.allclose(b["pred"][~kept], a["pred"][~kept], atol=1e-3)
    with pytest.raises(ValueError, match="'masked' \\(SAMI\\) or 'all' \\(MAE\\)"):
        _sami(decoder_queries="some")
