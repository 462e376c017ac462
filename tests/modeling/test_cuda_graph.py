"""CUDA-graph replay of the prompt side (modeling/cuda_graph.py).

On a CPU-only machine (CI) only the refusals run; the replay tests run wherever CUDA is available
(`python -m pytest tests/test_cuda_graph.py` on a GPU machine).
"""
import numpy as np
import pytest
import torch
from conftest import randomize_
from torch.utils._python_dispatch import TorchDispatchMode

from efficientsam_zoo import EfficientSamPredictor, build_efficient_sam
from efficientsam_zoo.automatic_mask_generator import AutomaticMaskGenerator
from efficientsam_zoo.cli import main as cli_main
from efficientsam_zoo.modeling.cuda_graph import CUDAGraphDecoder

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA device")


def test_refused_on_cpu_with_the_fix_named(tiny_model):
    for make in (lambda: CUDAGraphDecoder(tiny_model), lambda: EfficientSamPredictor(tiny_model, cuda_graphs=True),
                 lambda: AutomaticMaskGenerator(tiny_model, cuda_graphs=True)):
        with pytest.raises(ValueError, match=r"CUDA graphs need the model on a CUDA device, but it is on cpu.*"
                                             r"model\.cuda\(\)"):
            make()


def test_cli_refuses_cuda_graphs_on_cpu(official_ti_checkpoint, tmp_path, capsys):
    from PIL import Image

    img = tmp_path / "img.png"
    Image.fromarray(np.zeros((32, 48, 3), dtype=np.uint8)).save(img)
    out = tmp_path / "masks.json"
    rc = cli_main(["segment-everything", str(img), "--out", str(out), "--checkpoint", official_ti_checkpoint,
                   "--device", "cpu", "--cuda-graphs"])
    assert rc == 2 and not out.exists()
    assert "CUDA graphs need the model on a CUDA device" in capsys.readouterr().err


class _NoHostData(TorchDispatchMode):
    """Fails on what CUDA-graph capture forbids: a tensor built from host data (``torch.tensor`` /
    ``new_tensor``, a host-to-device copy on a GPU) or a read of a value back to Python (a sync)."""

    FORBIDDEN = {torch.ops.aten.lift_fresh.default, torch.ops.aten.lift_fresh_copy.default,
                 torch.ops.aten._local_scalar_dense.default}

    def __init__(self):
        super().__init__()
        self.ops = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops.add(func)
        if func in self.FORBIDDEN:
            raise AssertionError(f"{func} inside the captured region")
        kwargs = kwargs or {}
        if func is torch.ops.aten._to_copy.default and "device" in kwargs:
            raise AssertionError(f"a device copy inside the captured region ({kwargs['device']})")
        return func(*args, **kwargs)


def test_captured_region_builds_no_tensor_from_host_data(tiny_model):
    """What CUDAGraphDecoder captures (predict_masks), run on the CPU under a mode that fails on host data."""
    model = tiny_model.eval()
    with torch.inference_mode():
        emb = model.get_image_embeddings(torch.rand(2, 3, 64, 64))
        pts = torch.rand(2, 3, 2, 2) * 64
        lbl = torch.randint(0, 2, (2, 3, 2))
        ref = model.predict_masks(emb, pts, lbl, True, 64, 64, 80, 96)
        with _NoHostData() as mode:
            got = model.predict_masks(emb, pts, lbl, True, 64, 64, 80, 96)
    seen = {op.overloadpacket.__name__ for op in mode.ops}
    assert {"cos", "upsample_bicubic2d"} <= seen, seen  # it saw the prompt encoder and the upsampling
    torch.testing.assert_close(got[0], ref[0])
    with _NoHostData(), pytest.raises(AssertionError, match="lift_fresh"):  # the mode does catch a host tensor
        pts.new_tensor([1.0, 2.0])


# -- on a GPU ------------------------------------------------------------------------------------------
@pytest.fixture
def cuda_model(tiny_spec):
    return randomize_(build_efficient_sam(tiny_spec), seed=3).cuda().eval()


def _prompts(q: int, n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    pts = (torch.rand(2, q, n, 2, generator=g) * 64).cuda()
    lbl = torch.randint(0, 2, (2, q, n), generator=g).cuda()
    return pts, lbl


@needs_cuda
def test_replay_equals_eager_and_graphs_are_reused(cuda_model):
    decode = CUDAGraphDecoder(cuda_model)
    with torch.inference_mode():
        emb = cuda_model.get_image_embeddings(torch.rand(2, 3, 64, 64, device="cuda"))
        first = None
        for seed, (q, n) in enumerate([(4, 3), (4, 3), (7, 2), (4, 3)]):
            pts, lbl = _prompts(q, n, seed)
            ref = cuda_model.predict_masks(emb, pts, lbl, True, 64, 64, 80, 96)
            got = decode(emb, pts, lbl, True, 64, 64, 80, 96)
            assert got[0].shape == (2, q, 3, 80, 96)
            torch.testing.assert_close(got[0], ref[0], atol=1e-4, rtol=1e-4)
            torch.testing.assert_close(got[1], ref[1], atol=1e-5, rtol=1e-5)
            if first is None:
                first, first_ref = got, ref
        assert decode.num_graphs == 2  # (4, 3) captured once, replayed twice; (7, 2) captured once
        # results handed out earlier are copies: later replays did not overwrite them
        torch.testing.assert_close(first[0], first_ref[0], atol=1e-4, rtol=1e-4)


@needs_cuda
def test_signature_includes_multimask_sizes_and_autocast(cuda_model):
    decode = CUDAGraphDecoder(cuda_model, max_graphs=3)
    pts, lbl = _prompts(3, 2, 0)
    with torch.inference_mode():
        emb = cuda_model.get_image_embeddings(torch.rand(2, 3, 64, 64, device="cuda"))
        single = decode(emb, pts, lbl, False, 64, 64)
        assert single[0].shape[2] == 1
        torch.testing.assert_close(single[0], cuda_model.predict_masks(emb, pts, lbl, False, 64, 64)[0],
                                   atol=1e-4, rtol=1e-4)
        decode(emb, pts, lbl, True, 64, 64)
        decode(emb, pts, lbl, True, 32, 64)  # another input frame rescales the points differently
        assert decode.num_graphs == 3
        with torch.autocast("cuda", dtype=torch.bfloat16):
            low, iou = decode(emb, pts, lbl, True, 64, 64)
            ref_low, ref_iou = cuda_model.predict_masks(emb, pts, lbl, True, 64, 64)
        assert low.dtype == ref_low.dtype
        torch.testing.assert_close(low.float(), ref_low.float(), atol=2e-2, rtol=2e-2)
        assert decode.num_graphs == 3  # least recently used graph dropped


@needs_cuda
def test_predictor_with_cuda_graphs_equals_eager_predictor(cuda_model):
    image = np.random.default_rng(0).integers(0, 256, size=(40, 56, 3), dtype=np.uint8)
    eager, graphed = EfficientSamPredictor(cuda_model), EfficientSamPredictor(cuda_model, cuda_graphs=True)
    for p in (eager, graphed):
        p.set_image(image)
    box = np.array([5.0, 6.0, 40.0, 33.0])
    m_e, s_e, l_e = eager.predict(np.array([[10.0, 12.0]]), np.array([1]), box)
    m_g, s_g, l_g = graphed.predict(np.array([[10.0, 12.0]]), np.array([1]), box)
    np.testing.assert_allclose(s_g, s_e, atol=1e-5)
    np.testing.assert_allclose(l_g, l_e, atol=1e-4)


@needs_cuda
def test_inputs_on_another_device_are_refused(cuda_model):
    decode = CUDAGraphDecoder(cuda_model)
    emb = torch.zeros(1, 32, 4, 4, device="cuda")
    with pytest.raises(ValueError, match="batched_points is on cpu but the model is on cuda"):
        decode(emb, torch.zeros(1, 1, 1, 2), torch.ones(1, 1, 1, dtype=torch.long).cuda(), True, 64, 64)
