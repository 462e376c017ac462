import math

import pytest
import torch
import torch.nn.functional as F

from efficientsam_zoo.modeling.sami import Sami, random_masking, resize_target, sincos_pos_embed_2d
from efficientsam_zoo.modeling.teachers import ViTTeacher
from efficientsam_zoo.modeling.vit import ViT


def _sami(**kw):
    torch.manual_seed(0)
    enc = ViT(img_size=64, embed_dim=32, depth=2, num_heads=2, neck_dim=None)
    cfg = dict(teacher_dim=24, decoder_dim=16, decoder_depth=2, decoder_heads=2)
    cfg.update(kw)
    return Sami(enc, **cfg)


def test_masking_keeps_a_quarter_and_restore_is_the_inverse():
    g = torch.Generator().manual_seed(0)
    ids_keep, ids_mask, ids_restore = random_masking(3, 196, 0.75, generator=g)
    assert ids_keep.shape == (3, 49) and ids_mask.shape == (3, 147)
    x = torch.randn(3, 196, 5)
    shuffled = torch.cat([torch.gather(x, 1, ids_keep[..., None].expand(-1, -1, 5)),
                          torch.gather(x, 1, ids_mask[..., None].expand(-1, -1, 5))], 1)
    restored = torch.gather(shuffled, 1, ids_restore[..., None].expand(-1, -1, 5))
    torch.testing.assert_close(restored, x)
    for b in range(3):
        assert sorted(torch.cat([ids_keep[b], ids_mask[b]]).tolist()) == list(range(196))
    assert not torch.equal(ids_keep[0], ids_keep[1])  # per-sample masks
    with pytest.raises(ValueError):
        random_masking(1, 4, 1.0)


def test_encoder_sees_only_kept_tokens_and_decoder_queries_only_masked():
    model = _sami()
    seen = {}

    def record(key):
        def hook(module, inputs, output):
            seen[key] = tuple(tuple(t.shape) for t in inputs)  # returns None: leaves the output alone
        return hook

    model.encoder.blocks[0].register_forward_hook(record("enc"))
    model.decoder.blocks[0].attn.register_forward_hook(record("dec"))
    out = model.forward_features(torch.randn(2, 3, 64, 64))
    n, keep = 16, 4
    assert seen["enc"] == ((2, keep, 32),)
    assert seen["dec"] == ((2, n - keep, 16), (2, n, 16))  # queries: masked; keys/values: kept + masked
    assert out["pred"].shape == (2, n, 24)
    assert out["mask"].sum(1).tolist() == [n - keep] * 2


def test_kept_tokens_come_from_the_encoder_masked_from_the_decoder():
    model = _sami()
    x = torch.randn(2, 3, 64, 64)
    a = model.forward_features(x, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        model.decoder.mask_token.add_(1.0)
    b = model.forward_features(x, generator=torch.Generator().manual_seed(1))
    kept = a["mask"] == 0
    torch.testing.assert_close(a["pred"][kept], b["pred"][kept])
    assert not torch.allclose(a["pred"][~kept], b["pred"][~kept])


def test_loss_equals_an_independent_mse():
    model = _sami()
    x = torch.randn(2, 3, 64, 64)
    teacher = torch.randn(2, 24, 8, 8)
    out = model(x, teacher, generator=torch.Generator().manual_seed(3))
    pred = model.forward_features(x, generator=torch.Generator().manual_seed(3))["pred"]
    target = torch.stack([torch.stack([teacher[b, :, 2 * i:2 * i + 2, 2 * j:2 * j + 2].mean((1, 2))
                                       for i in range(4) for j in range(4)]) for b in range(2)])
    torch.testing.assert_close(out["loss"], ((pred - target) ** 2).mean())
    bil = resize_target(teacher, (4, 4), "bilinear")
    torch.testing.assert_close(bil, F.interpolate(teacher, (4, 4), mode="bilinear").flatten(2).transpose(1, 2))


def test_gradients_reach_student_parts_but_never_the_teacher():
    model = _sami(teacher_dim=32)
    teacher = ViTTeacher(ViT(img_size=64, embed_dim=32, depth=1, num_heads=2, neck_dim=32))
    teacher.train()
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())
    x = torch.randn(2, 3, 32, 32, requires_grad=False)
    x = F.interpolate(x, (64, 64))
    loss = model(x, teacher(x))["loss"]
    loss.backward()
    for name, part in [("encoder", model.encoder.blocks[0].attn.qkv), ("decoder", model.decoder.blocks[1].mlp.fc2),
                       ("embed", model.decoder.decoder_embed), ("head", model.head)]:
        assert part.weight.grad is not None and part.weight.grad.abs().sum() > 0, name
    assert model.decoder.mask_token.grad is not None
    assert all(p.grad is None for p in teacher.parameters())


def test_sincos_embedding_values():
    pe = sincos_pos_embed_2d(8, (3, 4))
    y, x = 2, 1
    omega = [1.0, 1.0 / 100.0]
    expected = [math.sin(y * omega[0]), math.sin(y * omega[1]), math.cos(y * omega[0]), math.cos(y * omega[1]),
                math.sin(x * omega[0]), math.sin(x * omega[1]), math.cos(x * omega[0]), math.cos(x * omega[1])]
    torch.testing.assert_close(pe[y * 4 + x], torch.tensor(expected))


def test_wrong_sizes_raise():
    model = _sami()
    with pytest.raises(ValueError, match="token grid"):
        model.forward_features(torch.randn(1, 3, 96, 96))
    with pytest.raises(ValueError, match="neck_dim=None"):
        Sami(ViT(img_size=64, embed_dim=32, depth=1, num_heads=2, neck_dim=32))
    with pytest.raises(ValueError, match="target_resize"):
        _sami(target_resize="nearest")
