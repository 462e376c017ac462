"""Our ViT configured as SAM's image encoder must compute what transformers' SamVisionModel computes."""
import pytest
import torch
from conftest import randomize_
from transformers import SamVisionConfig, SamVisionModel

from efficientsam_zoo.checkpoints import CheckpointError, hf_sam_vision_to_segment_anything, segment_anything_to_vit
from efficientsam_zoo.modeling.teachers import SAM_ENCODER_SIZES, build_teacher, sam_image_encoder

TINY_SAM = dict(hidden_size=32, output_channels=16, num_hidden_layers=3, num_attention_heads=2, image_size=96,
                patch_size=16, window_size=4, global_attn_indexes=[1], mlp_dim=128)
OURS = dict(embed_dim=32, depth=3, num_heads=2, global_attn_indexes=(1,), window_size=4, neck_dim=16)


@pytest.fixture(scope="module")
def hf_sam():
    torch.manual_seed(0)
    return randomize_(SamVisionModel(SamVisionConfig(**TINY_SAM)), seed=7, scale=0.1).eval()


def test_sam_encoder_matches_transformers(hf_sam, tmp_path):
    sa_layout = hf_sam_vision_to_segment_anything(hf_sam.state_dict())
    assert "image_encoder.blocks.0.mlp.lin1.weight" in sa_layout and "image_encoder.neck.3.bias" in sa_layout
    assert sa_layout["image_encoder.pos_embed"].shape == (1, 6, 6, 32)
    ours = sam_image_encoder("vit_b", img_size=96, **OURS).eval()
    ours.load_state_dict(segment_anything_to_vit(sa_layout), strict=True)
    x = torch.randn(2, 3, 96, 96)  # 6x6 tokens, window 4 -> padded windows
    with torch.no_grad():
        torch.testing.assert_close(ours(x), hf_sam(pixel_values=x).last_hidden_state, atol=1e-4, rtol=1e-4)

    # the same weights as a segment-anything checkpoint file, through the teacher factory
    path = tmp_path / "sam_tiny.pth"
    torch.save({**sa_layout, "mask_decoder.iou_token.weight": torch.zeros(1, 4)}, path)
    teacher = build_teacher(dict(type="segment_anything", checkpoint=str(path), size="vit_b", img_size=96,
                                 **OURS))
    small = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        up = torch.nn.functional.interpolate(small, (96, 96), mode="bilinear", align_corners=False)
        torch.testing.assert_close(teacher(small), hf_sam(pixel_values=up).last_hidden_state, atol=1e-4, rtol=1e-4)
    assert teacher.out_channels == 16 and not any(p.requires_grad for p in teacher.parameters())


def test_hf_teacher(hf_sam, tmp_path):
    hf_sam.save_pretrained(tmp_path)
    teacher = build_teacher(dict(type="hf_sam", pretrained=str(tmp_path)))
    x = torch.randn(1, 3, 48, 48)
    out = teacher(x)
    assert out.shape == (1, 16, 6, 6) and teacher.input_size == 96
    random_a = build_teacher(dict(type="hf_sam", config=TINY_SAM, seed=3))
    random_b = build_teacher(dict(type="hf_sam", config=TINY_SAM, seed=3))
    torch.testing.assert_close(random_a(x), random_b(x))  # seeded: the same on every rank and resume
    with pytest.raises(ValueError, match="exactly one"):
        build_teacher(dict(type="hf_sam"))


def test_wrong_sam_checkpoint_raises(tmp_path):
    path = tmp_path / "bad.pth"
    torch.save({"image_encoder.patch_embed.proj.weight": torch.zeros(3, 3, 16, 16)}, path)
    with pytest.raises(CheckpointError, match="mis-shaped|missing"):
        build_teacher(dict(type="segment_anything", checkpoint=str(path), size="vit_b", img_size=96, **OURS))
    with pytest.raises(ValueError, match="unknown teacher"):
        build_teacher(dict(type="clip"))


def test_real_sam_sizes():
    assert SAM_ENCODER_SIZES["vit_h"]["embed_dim"] == 1280 and SAM_ENCODER_SIZES["vit_h"]["depth"] == 32
    vit = sam_image_encoder("vit_b")
    assert vit.pos_embed.shape == (1, 4096, 768)
    assert [b.window_size for b in vit.blocks].count(0) == 4
