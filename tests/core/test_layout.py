"""The package's shape (DESIGN.md): one variant table everything derives from, core layers that never import an
adapter, adapters that never import each other, files short enough to read."""
import ast
import os

import pytest

from conftest import REPO_ROOT

PKG = os.path.join(REPO_ROOT, "efficientsam_zoo")
CORE = ("modeling", "evaluation", "data", "training", "utils", "predictor.py", "checkpoints.py", "registry.py",
        "hub.py", "build.py", "automatic_mask_generator.py", "export_onnx.py", "visualize.py", "optim.py")
ADAPTERS = ("hf", "openmmlab", "detectron2.py", "timm.py")


def _py_files(root):
    for dirpath, _, files in os.walk(root):
        for f in files:
            if f.endswith(".py"):
                yield os.path.join(dirpath, f)


def _imports(path):
    """Absolute module names imported by ``path`` (relative imports resolved against the package)."""
    rel = os.path.relpath(path, REPO_ROOT)[:-3].split(os.sep)
    package = rel[:-1] if rel[-1] != "__init__" else rel[:-1]
    out = set()
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
                out.add(mod)
                out.update(f"{mod}.{a.name}" for a in node.names)  # "from . import data" imports a submodule
            else:
                out.add(node.module)
    return out


def _adapter_of(module: str):
    parts = module.split(".")
    if parts[:2] == ["efficientsam_zoo", "integrations"] and len(parts) > 2:
        return parts[2]
    return None


@pytest.mark.parametrize("part", CORE)
def test_core_never_imports_an_adapter_or_a_framework(part):
    frameworks = ("mmengine", "mmcv", "mmdet", "mmseg", "detectron2", "transformers", "timm")
    paths = [os.path.join(PKG, part)] if part.endswith(".py") else list(_py_files(os.path.join(PKG, part)))
    for path in paths:
        for mod in _imports(path):
            assert _adapter_of(mod) is None, f"{os.path.relpath(path, REPO_ROOT)} imports the adapter {mod}"
            assert mod.split(".")[0] not in frameworks, f"{os.path.relpath(path, REPO_ROOT)} imports {mod}"


def test_adapters_never_import_each_other():
    names = {a[:-3] if a.endswith(".py") else a for a in ADAPTERS}
    root = os.path.join(PKG, "integrations")
    for path in _py_files(root):
        own = os.path.relpath(path, root).split(os.sep)[0]
        own = own[:-3] if own.endswith(".py") else own
        for mod in _imports(path):
            other = _adapter_of(mod)
            assert other in (None, own, "__init__") or other not in names, f"{path} imports {mod}"


def test_no_package_file_is_longer_than_350_lines():
    long = {os.path.relpath(p, REPO_ROOT): n for p in _py_files(PKG) if (n := len(open(p).readlines())) > 350}
    assert not long, long


def test_variant_names_are_written_only_in_the_table():
    """Model names, sizes and Hub files live in registry.py; everything else derives them."""
    from efficientsam_zoo.registry import VARIANTS

    facts = set(VARIANTS) | {w.filename for v in VARIANTS.values() for w in v.weights}
    for path in _py_files(PKG):
        if path.endswith("registry.py"):
            continue
        tree = ast.parse(open(path).read())
        docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                      if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef)) and n.body
                      and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
        found = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
                 and id(n) not in docstrings and n.value in facts]
        assert not found, f"{os.path.relpath(path, REPO_ROOT)} spells out {found}"


def test_everything_derives_from_the_table():
    from efficientsam_zoo.build import efficient_sam_model_registry
    from efficientsam_zoo.checkpoints import guess_efficientsam_variant
    from efficientsam_zoo.cli import build_parser
    from efficientsam_zoo.modeling.vit import VIT_SIZES
    from efficientsam_zoo.registry import EFFICIENT_SAM_NAMES, SAMI_NAMES, VARIANTS, get_spec

    assert EFFICIENT_SAM_NAMES == ["efficientsam-ti", "efficientsam-s"]
    assert SAMI_NAMES == ["sami-vit-ti", "sami-vit-s", "sami-vit-b"]
    assert sorted(efficient_sam_model_registry) == sorted(EFFICIENT_SAM_NAMES)
    for name in EFFICIENT_SAM_NAMES:
        spec = get_spec(name)
        assert (spec.embed_dim, spec.num_heads) == tuple(VIT_SIZES[VARIANTS[name].backbone].values())
        import torch

        fake = {"image_encoder.patch_embed.proj.weight": torch.zeros(spec.embed_dim, 3, 16, 16)}
        assert guess_efficientsam_variant(fake) == name
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices
    for command in ("segment", "eval-points", "eval-instances", "segment-everything", "export-onnx"):
        model_opt = next(a for a in sub[command]._actions if a.dest == "model")
        assert list(model_opt.choices) == EFFICIENT_SAM_NAMES, command
