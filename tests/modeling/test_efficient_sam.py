import pytest
import reference_official as ref
import torch
import torch.nn.functional as F
from conftest import TINY, randomize_

from efficientsam_zoo import build_efficient_sam
from efficientsam_zoo.checkpoints import read_official_state_dict
from efficientsam_zoo.modeling import EfficientSamSpec
from efficientsam_zoo.registry import get_spec


def _prompts(b=1, q=2, n=3, h=48, w=80, seed=0):
    g = torch.Generator().manual_seed(seed)
    pts = torch.rand(b, q, n, 2, generator=g) * torch.tensor([w, h])
    labels = torch.randint(0, 4, (b, q, n), generator=g)
    return pts, labels


@pytest.mark.slow
@pytest.mark.parametrize("name,expected", [("efficientsam-ti", 10_223_204), ("efficientsam-s", 26_413_028)])
def test_parameter_counts_match_release(name, expected):
    model = build_efficient_sam(name)
    assert sum(p.numel() for p in model.parameters()) == expected
    assert not model.training


@pytest.mark.slow
def test_release_key_names():
    keys = set(build_efficient_sam("efficientsam-ti").state_dict())
    for k in ["image_encoder.blocks.3.attn.qkv.weight", "image_encoder.pos_embed", "image_encoder.neck.3.bias",
              "mask_decoder.final_output_upscaling_layers.0.1.weight", "prompt_encoder.invalid_points.weight",
              "prompt_encoder.pe_layer.positional_encoding_gaussian_matrix",
              "mask_decoder.transformer.layers.1.cross_attn_image_to_token.out_proj.weight",
              "mask_decoder.iou_prediction_head.layers.1.0.weight", "mask_decoder.output_hypernetworks_mlps.3.fc.bias"]:
        assert k in keys, k
    assert "pixel_mean" not in keys  # non-persistent, as released
    assert build_efficient_sam("efficientsam-ti").state_dict()["image_encoder.pos_embed"].shape == (1, 197, 192)


@pytest.mark.slow
def test_first_upscaling_norm_is_groupnorm_and_last_is_identity():
    dec = build_efficient_sam("efficientsam-ti").mask_decoder
    assert isinstance(dec.final_output_upscaling_layers[0][1], torch.nn.GroupNorm)
    assert dec.final_output_upscaling_layers[0][1].num_groups == 1
    assert dec.final_output_upscaling_layers[0][1].num_channels == 64
    assert isinstance(dec.final_output_upscaling_layers[1][1], torch.nn.Identity)
    assert dec.num_mask_tokens == 4


#: Architectures compared with the independent recomputation: the tiny test model, and a wider and deeper one at
#: 256 px (window-free global attention over a 16x16 grid, 4 heads, SAM-sized prompt side); real-size Ti is `slow`.
FIDELITY = {
    "tiny": TINY,
    "mid": dict(img_size=256, embed_dim=96, depth=4, num_heads=4, neck_dim=64, decoder_mlp_dim=256,
                decoder_num_heads=4, iou_head_hidden_dim=64, upscaling_layer_dims=(32, 16)),
}


def _fidelity(spec, seed, b=2, q=3, n=4, h=48, w=80, atol=1e-4):
    model = randomize_(build_efficient_sam(spec), seed=seed, scale=0.1)
    images = torch.rand(b, 3, h, w, generator=torch.Generator().manual_seed(seed))
    pts, labels = _prompts(b=b, q=q, n=n, h=h, w=w, seed=seed)
    labels[0, 0, n - 1] = -1  # a padding slot
    with torch.no_grad():
        masks, iou = model(images, pts, labels)
        ref_masks, ref_iou = ref.official_forward(model.state_dict(), spec, images, pts, labels)
    assert masks.shape == (b, q, 3, h, w) and iou.shape == (b, q, 3)
    assert ref_masks.abs().max() > 10 * atol and (ref_iou - ref_iou.mean()).abs().max() > 10 * atol  # not ~0
    torch.testing.assert_close(iou, ref_iou, atol=atol / 10, rtol=1e-4)
    torch.testing.assert_close(masks, ref_masks, atol=atol, rtol=1e-4)


@pytest.mark.parametrize("name", sorted(FIDELITY))
@pytest.mark.parametrize("seed", [0, 1])
def test_forward_matches_independent_recomputation(name, seed):
    _fidelity(EfficientSamSpec(**FIDELITY[name]), seed)


@pytest.mark.slow
def test_forward_matches_independent_recomputation_at_real_size():
    """The released ViT-Ti architecture at 1024 px, one image, two queries."""
    _fidelity(get_spec("efficientsam-ti"), seed=3, b=1, q=2, n=3, h=600, w=800, atol=1e-3)


def test_image_encoder_matches_reference(tiny_model, tiny_spec):
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        ours = tiny_model.image_encoder(x)
    theirs = ref.encoder(x, tiny_model.state_dict(), tiny_spec.num_heads, tiny_spec.depth)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-4)


def test_prompt_embeddings_of_points_and_boxes(tiny_model, tiny_spec):
    sd = tiny_model.state_dict()
    pts = torch.tensor([[[3.0, 7.0], [10.5, 60.0], [20.0, 30.0], [50.0, 40.0], [-1.0, -1.0], [12.0, 13.0]]])
    labels = torch.tensor([[1, 0, 2, 3, -1, 1]])
    ours = tiny_model.prompt_encoder(pts, labels)
    theirs = ref.prompt_embeddings(pts.clone(), labels, sd, tiny_spec.img_size)
    torch.testing.assert_close(ours, theirs)
    # label 0: position encoding only, no label embedding (release semantics)
    pe_only = ref.pe_encode((pts[0, 1] + 0.5) / tiny_spec.img_size, sd["prompt_encoder.pe_layer.positional_encoding_gaussian_matrix"])
    torch.testing.assert_close(ours[0, 1], pe_only)
    torch.testing.assert_close(tiny_model.prompt_encoder.get_dense_pe(), ref.dense_pe(sd, 4))


def test_rescaling_of_points_keeps_padding(tiny_spec):
    model = build_efficient_sam(tiny_spec.replace(img_size=1024))
    pts = torch.tensor([[[[100.0, 50.0], [-1.0, -1.0], [0.0, 200.0]]]])
    out = model.get_rescaled_pts(pts, input_h=200, input_w=400)
    expected = torch.tensor([[[[100 * 1024 / 400, 50 * 1024 / 200], [-1.0, -1.0], [0.0, 1024.0]]]])
    torch.testing.assert_close(out, expected)


def test_padding_to_six_points_and_truncation(tiny_model):
    emb = torch.randn(1, 32, 4, 4)
    pts, labels = _prompts(q=1, n=8, h=64, w=64)
    labels[..., :] = 1
    with torch.no_grad():
        full = tiny_model.predict_masks(emb, pts, labels, True, 64, 64)
        first6 = tiny_model.predict_masks(emb, pts[:, :, :6], labels[:, :, :6], True, 64, 64)
        # two points explicitly padded with (-1, -1) / label -1 == two points padded by the model
        two = tiny_model.predict_masks(emb, pts[:, :, :2], labels[:, :, :2], True, 64, 64)
        padded = tiny_model.predict_masks(
            emb, torch.cat([pts[:, :, :2], torch.full((1, 1, 4, 2), -1.0)], 2),
            torch.cat([labels[:, :, :2], torch.full((1, 1, 4), -1)], 2), True, 64, 64)
    torch.testing.assert_close(full, first6)
    torch.testing.assert_close(two, padded)
    p6, l6 = tiny_model.pad_prompts(pts[:, :, :2], labels[:, :, :2])
    assert p6.shape == (1, 1, 6, 2) and (p6[:, :, 2:] == -1).all() and (l6[:, :, 2:] == -1).all()


def test_output_sizes(tiny_model, tiny_spec):
    images = torch.rand(1, 3, 37, 91)
    pts, labels = _prompts(q=2, n=2, h=37, w=91)
    with torch.no_grad():
        masks, iou = tiny_model(images, pts, labels)
        low, iou2 = tiny_model(images, pts, labels, scale_to_original_image_size=False)
    assert masks.shape == (1, 2, 3, 37, 91)
    assert low.shape == (1, 2, 3, tiny_spec.img_size // 4, tiny_spec.img_size // 4)
    torch.testing.assert_close(F.interpolate(low[0], (37, 91), mode="bicubic"), masks[0])
    torch.testing.assert_close(iou, iou2)


def test_batched_queries_equal_single_queries(tiny_model):
    """The shared image tokens of the first decoder block must give each query's own result."""
    emb = torch.randn(2, 32, 4, 4)
    pts, labels = _prompts(b=2, q=5, n=3, h=64, w=64)
    with torch.no_grad():
        batched, biou = tiny_model.predict_masks(emb, pts, labels, True, 64, 64)
        for b in range(2):
            for q in range(5):
                one, oiou = tiny_model.predict_masks(emb[b:b + 1], pts[b:b + 1, q:q + 1], labels[b:b + 1, q:q + 1],
                                                     True, 64, 64)
                torch.testing.assert_close(batched[b, q], one[0, 0], atol=1e-5, rtol=1e-4)
                torch.testing.assert_close(biou[b, q], oiou[0, 0], atol=1e-5, rtol=1e-4)


def test_single_mask_output_is_the_first_token(tiny_model, tiny_spec):
    """multimask_output=False returns mask token 0; True returns tokens 1..3 (checked against the reference)."""
    sd = tiny_model.state_dict()
    emb = torch.randn(1, 32, 4, 4)
    pts, labels = _prompts(q=2, n=2, h=64, w=64)
    with torch.no_grad():
        single, s_iou = tiny_model.predict_masks(emb, pts, labels, False, 64, 64)
        multi, m_iou = tiny_model.predict_masks(emb, pts, labels, True, 64, 64)
    p6, l6 = tiny_model.pad_prompts(pts, labels)
    sparse = ref.prompt_embeddings(p6.reshape(2, 6, 2), l6.reshape(2, 6), sd, 64)
    out_tokens = torch.cat([sd["mask_decoder.iou_token.weight"], sd["mask_decoder.mask_tokens.weight"]], 0)
    tokens = torch.cat([out_tokens[None].expand(2, -1, -1), sparse], 1)
    all_masks, all_iou = ref.decoder(emb.expand(2, -1, -1, -1), ref.dense_pe(sd, 4), tokens, sd, 2, 2, 2, 4, (16, 8))
    assert single.shape == (1, 2, 1, 16, 16) and multi.shape == (1, 2, 3, 16, 16)
    torch.testing.assert_close(single[0, :, 0], all_masks[:, 0], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(multi[0], all_masks[:, 1:], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(s_iou[0, :, 0], all_iou[:, 0], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(m_iou[0], all_iou[:, 1:], atol=1e-5, rtol=1e-4)


def test_fast_path_and_reference_arithmetic_agree(tiny_model):
    from efficientsam_zoo.modeling.efficient_sam import use_reference_arithmetic

    images = torch.rand(1, 3, 64, 64)
    pts, labels = _prompts(q=3, n=2, h=64, w=64)
    with torch.no_grad():
        fused = tiny_model(images, pts, labels)
        use_reference_arithmetic(tiny_model)
        assert tiny_model.mask_decoder.transformer.tile_per_query
        assert not tiny_model.image_encoder.blocks[0].attn.fused
        plain = tiny_model(images, pts, labels)
        use_reference_arithmetic(tiny_model, False)
        torch.testing.assert_close(tiny_model(images, pts, labels)[0], fused[0])
    torch.testing.assert_close(fused[0], plain[0], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(fused[1], plain[1], atol=1e-5, rtol=1e-4)


def test_bad_prompt_shapes_raise(tiny_model):
    emb = torch.randn(1, 32, 4, 4)
    with pytest.raises(ValueError, match=r"\[B, Q, N, 2\]"):
        tiny_model.predict_masks(emb, torch.zeros(1, 2, 2), torch.zeros(1, 2), True, 64, 64)
    with pytest.raises(ValueError, match="labels"):
        tiny_model.predict_masks(emb, torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 3), True, 64, 64)
    with pytest.raises(ValueError, match="empty prompt"):
        tiny_model.predict_masks(emb, torch.zeros(1, 1, 0, 2), torch.zeros(1, 1, 0), True, 64, 64)
    with pytest.raises(ValueError, match="RGB images"):
        tiny_model.get_image_embeddings(torch.rand(1, 2, 64, 64))


@pytest.mark.slow
def test_official_layout_roundtrip_full_size(official_ti_checkpoint):
    sd = read_official_state_dict(official_ti_checkpoint)
    model = build_efficient_sam("efficientsam-ti", checkpoint=official_ti_checkpoint)
    for k, v in model.state_dict().items():
        assert torch.equal(v, sd[k]), k
    other = randomize_(build_efficient_sam("efficientsam-ti"), seed=5)
    assert not torch.equal(other.state_dict()["image_encoder.blocks.0.attn.qkv.weight"],
                           sd["image_encoder.blocks.0.attn.qkv.weight"])
