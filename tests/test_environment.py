"""The stack the integrations need is installed and its compiled ops work: a broken environment fails here
instead of making integration tests skip."""
import importlib

import pytest
import torch


def test_torch_version_supported():
    major, minor = (int(p) for p in torch.__version__.split("+")[0].split(".")[:2])
    assert (2, 11) <= (major, minor) < (3, 0), torch.__version__


def test_torchvision_ops_run():
    import torchvision.ops

    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 10.0, 10.0], [20.0, 20.0, 30.0, 30.0]])
    keep = torchvision.ops.nms(boxes, torch.tensor([0.9, 0.8, 0.7]), 0.5)
    assert keep.tolist() == [0, 2]


def test_mmcv_ops_compiled():
    import mmcv
    import mmcv.ops

    assert mmcv.__version__ == "2.1.0"
    feats = torch.arange(16.0).reshape(1, 1, 4, 4)
    rois = torch.tensor([[0.0, 0.0, 0.0, 3.0, 3.0]])
    out = mmcv.ops.roi_align(feats, rois, (1, 1), 1.0, 2, "avg", True)
    assert out.shape == (1, 1, 1, 1)
    dets, keep = mmcv.ops.nms(torch.tensor([[0.0, 0, 10, 10], [1, 1, 10, 10]]), torch.tensor([0.9, 0.8]), 0.5)
    assert keep.tolist() == [0]


@pytest.mark.parametrize("module", ["mmengine", "mmdet", "mmdet.models", "mmseg", "mmseg.models", "detectron2.modeling",
                                    "detectron2.engine", "transformers", "huggingface_hub", "safetensors",
                                    "pycocotools.mask", "lvis", "onnx", "onnxruntime", "timm"])
def test_imports(module):
    importlib.import_module(module)


def test_detectron2_vitdet_pieces_build():
    from detectron2.config import LazyCall  # noqa: F401
    from detectron2.modeling import SimpleFeaturePyramid, ViT  # noqa: F401
