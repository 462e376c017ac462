"""The fast inference path (bf16 autocast) against fp32 on random-weight models: mask IoU >= 0.98,
predicted-IoU |diff| <= 0.02."""
import pytest
import torch

from conftest import TINY, randomize_
from efficientsam_zoo import build_efficient_sam
from efficientsam_zoo.modeling import EfficientSamSpec


@pytest.mark.parametrize("seed", [0, 1])
def test_bf16_autocast_matches_fp32(seed):
    spec = EfficientSamSpec(**{**TINY, "img_size": 128, "depth": 4})
    model = randomize_(build_efficient_sam(spec), seed=seed, scale=0.1)
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(2, 3, 96, 128, generator=g)
    pts = torch.rand(2, 4, 2, 2, generator=g) * torch.tensor([128.0, 96.0])
    pts = torch.stack([pts.amin(2), pts.amax(2)], 2)  # boxes as corner pairs
    labels = torch.tensor([2, 3]).expand(2, 4, 2)
    with torch.no_grad():
        ref_logits, ref_iou = model(images, pts, labels)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            fast_logits, fast_iou = model(images, pts, labels)
    a, b = ref_logits > 0, fast_logits.float() > 0
    inter = (a & b).flatten(3).sum(-1).float()
    union = (a | b).flatten(3).sum(-1).float()
    iou = torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))  # both empty: identical
    assert (union > 0).float().mean() >= 0.3  # most masks are not empty, so the IoU says something
    assert iou.min() >= 0.98, iou.min()
    assert (fast_iou.float() - ref_iou).abs().max() <= 0.02


def test_encoder_and_decoder_compile_without_graph_breaks():
    model = build_efficient_sam(EfficientSamSpec(**TINY)).eval()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        explained = torch._dynamo.explain(model.get_image_embeddings)(x)
        assert explained.graph_break_count == 0, explained.break_reasons
        emb = model.get_image_embeddings(x)
        pts, lbl = torch.rand(1, 2, 3, 2) * 64, torch.ones(1, 2, 3, dtype=torch.long)
        explained = torch._dynamo.explain(model.predict_masks)(emb, pts, lbl, True, 64, 64)
        assert explained.graph_break_count == 0, explained.break_reasons
