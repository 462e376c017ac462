"""Shared fixtures: tiny configs, random-weight models, official-layout checkpoints (all built, none stored)."""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never touch the network from tests
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
if "ESZ_CACHE_DIR" not in os.environ:  # caches the tests write (SA-1B indexes ...) stay out of the home directory
    import tempfile

    os.environ["ESZ_CACHE_DIR"] = tempfile.mkdtemp(prefix="esz-test-cache-")

import pytest  # noqa: E402
import torch  # noqa: E402

from efficientsam_zoo import build_efficient_sam  # noqa: E402
from efficientsam_zoo.checkpoints import save_official_checkpoint  # noqa: E402
from efficientsam_zoo.modeling import EfficientSamSpec  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytest_plugins = ["demo_fixtures"]  # the demo's fixtures (the main job's model behind the page, scenes, server)
TINY = dict(img_size=64, embed_dim=32, depth=2, num_heads=2, neck_dim=32, decoder_mlp_dim=64,
            decoder_num_heads=2, iou_head_hidden_dim=32, upscaling_layer_dims=(16, 8))


def randomize_(model: torch.nn.Module, seed: int = 0, scale: float = 0.2) -> torch.nn.Module:
    """Give every parameter and buffer non-trivial random values (pos-embeds, norms and biases included)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in list(model.named_parameters()) + list(model.named_buffers()):
            if name.endswith(("pixel_mean", "pixel_std")):
                continue
            noise = torch.randn(t.shape, generator=g) * scale
            if "norm" in name and name.endswith("weight") or name.endswith(("neck.1.weight", "neck.3.weight")):
                t.copy_(1.0 + noise)
            elif name.endswith("positional_encoding_gaussian_matrix"):
                t.copy_(noise / scale)
            else:
                t.copy_(noise)
    return model


def tracking_efficienttam(image_size: int = 128, seed: int = 0):
    """A random EfficientTAM-Ti/2 video model at ``image_size`` px whose heads are scaled so that masks are neither
    empty nor full and objects count as present: random weights that still track something."""
    from efficientsam_zoo.integrations.hf import EfficientTamVideoModel, efficienttam_config_for

    torch.manual_seed(seed)
    model = EfficientTamVideoModel(efficienttam_config_for("efficienttam-ti-2", image_size=image_size)).eval()
    with torch.no_grad():
        for mlp in model.mask_decoder.output_hypernetworks_mlps:
            mlp.proj_out.weight.mul_(40)
        model.mask_decoder.pred_obj_score_head.proj_out.bias.fill_(4.0)  # objects present
    return model


@pytest.fixture
def tiny_spec() -> EfficientSamSpec:
    return EfficientSamSpec(**TINY)


@pytest.fixture
def tiny_model(tiny_spec):
    return randomize_(build_efficient_sam(tiny_spec), seed=1)


@pytest.fixture(scope="session")
def official_ti_checkpoint(tmp_path_factory):
    """A random-weight ViT-Ti checkpoint in the release layout ``{"model": state_dict}``."""
    torch.manual_seed(0)
    model = randomize_(build_efficient_sam("efficientsam-ti"), seed=2, scale=0.02)
    path = tmp_path_factory.mktemp("ckpt") / "efficient_sam_vitt.pt"
    save_official_checkpoint(model, str(path))
    return str(path)


@pytest.fixture
def fake_hf_cache(tmp_path, monkeypatch):
    """An empty Hugging Face hub cache; ``add(repo_id, filename, source_path_or_bytes)`` puts a file in it.

    The cache layout is huggingface_hub's (``models--org--name/refs/main`` -> ``snapshots/<sha>/...``), so
    ``hf_hub_download`` in offline mode finds the files exactly as it finds really downloaded ones.
    """
    import shutil

    import huggingface_hub.constants as hf_constants

    cache = tmp_path / "hf_hub_cache"
    cache.mkdir()
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(cache))
    sha = "0123456789abcdef0123456789abcdef01234567"

    def add(repo_id: str, filename: str, source) -> str:
        repo_dir = cache / ("models--" + repo_id.replace("/", "--"))
        (repo_dir / "refs").mkdir(parents=True, exist_ok=True)
        (repo_dir / "refs" / "main").write_text(sha)
        target = repo_dir / "snapshots" / sha / filename
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(source, bytes):
            target.write_bytes(source)
        else:
            shutil.copy(source, target)
        return str(target)

    add.cache = cache
    return add


@pytest.fixture(scope="session")
def quickstart(tmp_path_factory):
    """README's main job run once per session as a user runs it: ``(out_dir, console, summary)``. Its learning tests
    read it (tests/quickstart), and the finetuning tests start from the EfficientSAM it trained (``out_dir/model``).
    ``ESZ_TEST_QUICKSTART=DIR`` reuses a finished run (``DIR/console.txt`` holding its console) while working on
    those tests."""
    import json
    import sys
    from pathlib import Path

    from trainer_utils import run

    if os.environ.get("ESZ_TEST_QUICKSTART"):
        out = Path(os.environ["ESZ_TEST_QUICKSTART"])
        with open(out / "console.txt", newline="") as f:  # "\r" kept, as the run returns it
            return out, f.read(), json.load(open(out / "summary.json"))
    out = tmp_path_factory.mktemp("quickstart") / "qs"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}  # the user's environment: warnings are the quickstart's to silence
    console = run([sys.executable, "-m", "efficientsam_zoo.cli", "quickstart", "--out-dir", str(out)],
                  cwd=str(out.parent), env=env)
    return out, console, json.load(open(out / "summary.json"))
