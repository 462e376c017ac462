"""``torch.export``: both graphs (``export_onnx.export_programs``, the ONNX graphs' modules and dynamic axes) export,
and their programs run at shapes other than the example's with outputs equal to eager."""
import pytest
import torch
from conftest import TINY, randomize_

from efficientsam_zoo import EfficientSamSpec, build_efficient_sam
from efficientsam_zoo.export_onnx import export_programs, random_inputs


@pytest.fixture(scope="module")
def model_and_programs():
    model = randomize_(build_efficient_sam(EfficientSamSpec(**TINY)), seed=5)
    return model, export_programs(model)


@pytest.mark.parametrize("b,q,n,h,w", [(1, 1, 1, 64, 64), (2, 3, 5, 80, 120), (1, 2, 8, 50, 30)])
def test_programs_equal_eager_at_other_shapes(model_and_programs, b, q, n, h, w):
    model, programs = model_and_programs
    images, coords, labels, size = random_inputs(b, q, n, h, w, seed=b * 100 + n)
    with torch.no_grad():
        embeddings = model.get_image_embeddings(images)
        expected = model.predict_masks(embeddings, coords, labels, True, h, w) + model.predict_masks(
            embeddings, coords, labels, False, h, w)  # the multimask outputs, then the single mask
        exported_embeddings = programs["encoder"].module()(images)
        exported = programs["decoder"].module()(embeddings, coords, labels, size)
        logits = expected[0]
    assert torch.equal(exported_embeddings, embeddings) or (exported_embeddings - embeddings).abs().max() < 1e-5
    assert len(exported) == len(expected) == 4
    assert all((ours - ref).abs().max() < 1e-5 for ours, ref in zip(exported, expected))
    # the comparison can fail: another image's embedding gives other masks
    other, _ = model.predict_masks(embeddings.flip(0).roll(1, -1), coords, labels, True, h, w)
    assert (other - logits).abs().max() > 1e-2


def test_the_programs_keep_the_dynamic_axes(model_and_programs):
    _, programs = model_and_programs
    names = {str(s) for p in programs.values() for s in p.range_constraints}
    assert len(names) >= 5, names  # batch, height, width (encoder); batch, queries, points (decoder)
