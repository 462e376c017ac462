import pytest
import torch
import torch.nn.functional as F

from efficientsam_zoo.modeling import VIT_SIZES, ViT
from efficientsam_zoo.modeling.vit import resize_abs_pos_embed, window_partition, window_unpartition


def _vit(**kw):
    torch.manual_seed(0)
    cfg = dict(img_size=64, embed_dim=32, depth=4, num_heads=2, neck_dim=None)
    cfg.update(kw)
    m = ViT(**cfg)
    with torch.no_grad():
        m.pos_embed.normal_()
    return m.eval()


@pytest.mark.parametrize("name,dim,heads", [("vit-ti", 192, 3), ("vit-s", 384, 6), ("vit-b", 768, 12)])
def test_paper_sizes(name, dim, heads):
    assert VIT_SIZES[name] == dict(embed_dim=dim, num_heads=heads)
    m = ViT(**VIT_SIZES[name], neck_dim=None)
    assert m.pos_embed.shape == (1, 197, dim)
    assert len(m.blocks) == 12
    assert m.blocks[0].mlp.fc1.out_features == 4 * dim
    assert m.blocks[0].attn.qkv.bias is not None
    assert m.blocks[0].norm1.eps == 1e-6


def test_pos_embed_resize_is_bicubic_from_the_224_grid():
    pos = torch.randn(1, 197, 8)
    out = resize_abs_pos_embed(pos, True, (20, 30))
    grid = pos[:, 1:].reshape(1, 14, 14, 8).permute(0, 3, 1, 2)
    expected = F.interpolate(grid, size=(20, 30), mode="bicubic", align_corners=False).permute(0, 2, 3, 1)
    torch.testing.assert_close(out, expected)
    same = resize_abs_pos_embed(pos, True, (14, 14))
    torch.testing.assert_close(same, pos[:, 1:].reshape(1, 14, 14, 8))
    with pytest.raises(ValueError, match="square"):
        resize_abs_pos_embed(torch.randn(1, 10, 8), False, (3, 3))


def test_window_partition_roundtrip_with_padding():
    x = torch.randn(2, 9, 11, 5)
    windows, padded = window_partition(x, 4)
    assert windows.shape == (2 * 3 * 3, 4, 4, 5) and padded == (12, 12)
    torch.testing.assert_close(window_unpartition(windows, 4, padded, (9, 11)), x)


def test_window_as_large_as_the_grid_equals_global_attention():
    glob = _vit()
    win = _vit(window_size=4, global_attn_indexes=(1,))  # 64 px / 16 = 4x4 grid: one window
    win.load_state_dict(glob.state_dict())
    x = torch.randn(1, 3, 64, 64)
    torch.testing.assert_close(win(x), glob(x), atol=1e-5, rtol=1e-5)
    small = _vit(window_size=2)
    small.load_state_dict(glob.state_dict())
    assert not torch.allclose(small(x), glob(x), atol=1e-3)  # smaller windows really restrict attention


def test_windowed_attention_is_local():
    """With window 2 and no global block, changing one window's pixels leaves other windows untouched."""
    m = _vit(window_size=2, depth=2)
    x = torch.randn(1, 3, 64, 64)
    y = x.clone()
    y[:, :, :32, :32] += 1.0  # the top-left 2x2-token window
    a, b = m.forward_features(x)[0], m.forward_features(y)[0]
    assert not torch.allclose(a[..., :2, :2], b[..., :2, :2])
    torch.testing.assert_close(a[..., 2:, :], b[..., 2:, :])
    torch.testing.assert_close(a[..., :, 2:], b[..., :, 2:])


def test_rel_pos_starts_neutral_and_then_matters():
    plain = _vit()
    rel = _vit(use_rel_pos=True)
    missing = rel.load_state_dict(plain.state_dict(), strict=False).missing_keys
    assert all("rel_pos" in k for k in missing) and len(missing) == 2 * 4
    x = torch.randn(1, 3, 64, 64)
    torch.testing.assert_close(rel(x), plain(x), atol=1e-5, rtol=1e-5)
    with torch.no_grad():
        rel.blocks[0].attn.rel_pos_h.normal_()
    assert not torch.allclose(rel(x), plain(x), atol=1e-3)
    rel(torch.randn(1, 3, 96, 96))  # other input sizes interpolate the tables


def test_intermediate_outputs_and_final_norm():
    m = _vit(out_indices=(0, 2, 3), final_norm=True)
    feats = m.forward_features(torch.randn(2, 3, 64, 64))
    assert [f.shape for f in feats] == [(2, 32, 4, 4)] * 3
    tokens = m.embed(torch.randn(2, 3, 64, 64))
    assert tokens.shape == (2, 4, 4, 32)
    seq = m.forward_tokens(tokens.reshape(2, 16, 32))
    grid = m.forward(torch.randn(2, 3, 64, 64))
    assert seq.shape == (2, 16, 32) and grid.shape == (2, 32, 4, 4)
    with pytest.raises(ValueError, match="out_indices"):
        _vit(out_indices=(7,))


def test_token_sequence_path_equals_grid_path():
    m = _vit()
    x = torch.randn(2, 3, 64, 64)
    tokens = m.embed(x).reshape(2, 16, 32)
    torch.testing.assert_close(m.forward_tokens(tokens).reshape(2, 4, 4, 32).permute(0, 3, 1, 2), m(x))


def test_drop_path_only_in_training():
    m = _vit(drop_path_rate=0.5)
    x = torch.randn(4, 3, 64, 64)
    torch.testing.assert_close(m(x), m(x))
    m.train()
    torch.manual_seed(1)
    a = m(x)
    torch.manual_seed(2)
    assert not torch.allclose(a, m(x))
    rates = [b.drop_path.drop_prob if hasattr(b.drop_path, "drop_prob") else 0.0 for b in m.blocks]
    assert rates[0] == 0.0 and abs(rates[-1] - 0.5) < 1e-6


def test_bad_inputs():
    m = _vit()
    with pytest.raises(ValueError, match="patch size"):
        m(torch.randn(1, 3, 60, 64))
    with pytest.raises(ValueError, match="divisible"):
        ViT(embed_dim=30, num_heads=4)
    with pytest.raises(ValueError, match="grid"):
        _vit(window_size=2).blocks[0](torch.randn(1, 16, 32))


def test_residual_stream_is_row_major():
    """embed() hands the blocks a contiguous [B, H, W, C] grid (not the conv's channels-first view), so
    the blocks' LayerNorms / reshapes do not copy it; every block keeps it that way."""
    m = _vit()
    with torch.no_grad():
        x = m.embed(torch.rand(2, 3, 64, 48))
        assert x.shape == (2, 4, 3, 32) and x.is_contiguous()
        assert m.blocks[0](x).is_contiguous()


def test_layernorm2d_statistics_in_fp32_for_low_precision_inputs():
    from efficientsam_zoo.modeling.vit import LayerNorm2d

    ln = LayerNorm2d(256)
    with torch.no_grad():
        ln.weight.uniform_(0.5, 1.5)
        ln.bias.uniform_(-0.5, 0.5)

    def float64_ln(x):
        x = x.double()
        y = (x - x.mean(1, keepdim=True)) / torch.sqrt(x.var(1, unbiased=False, keepdim=True) + 1e-6)
        return ln.weight.double()[:, None, None] * y + ln.bias.double()[:, None, None]

    x = (100 + torch.randn(2, 256, 5, 7)).bfloat16()  # a large mean: bf16 statistics would be off by ~0.25 std
    out = ln(x)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.double(), float64_ln(x), atol=0.03, rtol=0.01)  # only the output's rounding
    xf = torch.randn(2, 256, 5, 7)
    torch.testing.assert_close(ln(xf).double(), float64_ln(xf), atol=1e-5, rtol=1e-5)
