"""The package's shape (README "Architecture"): one written layer order that every module belongs to and every import
follows -- imports inside functions included --, no import cycles, adapters that never import each other, one
variant table everything derives from, tests that mirror the package, files short enough to read."""
import ast
import os
from collections import defaultdict

import pytest
from conftest import REPO_ROOT

PKG = os.path.join(REPO_ROOT, "efficientsam_zoo")

#: The layer order, lowest first. A module imports only from its own layer or from layers below it. Entries are the
#: first part of a module's path inside the package (a folder or a top-level module); ``__init__`` is the package's
#: own facade, which re-exports the public names and so sits on top.
LAYERS = (
    ("utils", ("utils", "version")),
    ("modeling", ("modeling",)),
    ("the variant table", ("registry",)),
    ("checkpoint formats", ("checkpoints",)),
    ("builders and released weights", ("build", "hub")),
    ("inference", ("prompts", "predictor", "automatic_mask_generator", "salient", "export_onnx", "export_bundles",
                   "export_litert", "export_coreml", "onnx_runtime", "onnx_quantize", "visualize")),
    ("data, evaluation, training", ("data", "evaluation", "training", "optim")),
    ("integrations", ("integrations",)),
    ("entry points", ("tools", "cli", "quickstart", "demo", "__init__")),
)
LAYER_OF = {part: i for i, (_, parts) in enumerate(LAYERS) for part in parts}
FRAMEWORKS = ("mmengine", "mmcv", "mmdet", "mmseg", "detectron2", "transformers", "timm", "peft", "gradio")
ADAPTERS = ("hf", "openmmlab", "detectron2", "timm")


def _py_files(root):
    for dirpath, _, files in os.walk(root):
        if "/." in dirpath.replace(os.sep, "/"):  # .mim (shipped configs, not package code)
            continue
        for f in sorted(files):
            if f.endswith(".py"):
                yield os.path.join(dirpath, f)


def _module_name(path: str) -> str:
    rel = os.path.relpath(path, REPO_ROOT)[:-3].split(os.sep)
    return ".".join(rel[:-1] if rel[-1] == "__init__" else rel)


MODULES = {_module_name(p): p for p in _py_files(PKG)}


def _resolve(name: str) -> str:
    """The package module an import names (``a.b.c`` may be the attribute ``c`` of module ``a.b``)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name


def _imports(path: str, source: str = None, own: str = None):
    """``(module, line)`` of every import in ``path`` -- at module level or inside functions -- with relative imports
    resolved against the package (``source`` / ``own``: the text and module name, for a file that is not there)."""
    own = own or _module_name(path)
    package = own.split(".") if path.endswith("__init__.py") else own.split(".")[:-1]
    for node in ast.walk(ast.parse(source if source is not None else open(path).read())):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package[:len(package) - node.level + 1])
                mod = f"{base}.{node.module}" if node.module else base
            else:
                mod = node.module
            for a in node.names:  # "from . import data" imports a submodule
                yield (f"{mod}.{a.name}" if f"{mod}.{a.name}" in MODULES else mod), node.lineno


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _adapter(module: str):
    parts = module.split(".")
    return parts[2] if parts[:2] == ["efficientsam_zoo", "integrations"] and len(parts) > 2 else None


def _edges(modules=None):
    """``{module: {imported package module: first line}}``; ``modules`` maps names to ``(path, source)`` (default:
    the package's files)."""
    out = defaultdict(dict)
    for mod, (path, source) in (modules or {m: (p, None) for m, p in MODULES.items()}).items():
        for name, line in _imports(path, source, mod):
            if name.split(".")[0] == "efficientsam_zoo":
                target = _resolve(name)
                if target and target != mod:
                    out[mod].setdefault(target, line)
    return out


def _upward(edges):
    return [f"{m} (layer {LAYER_OF[_part(m)] + 1}, {LAYERS[LAYER_OF[_part(m)]][0]}) line {line} imports {t} "
            f"(layer {LAYER_OF[_part(t)] + 1}, {LAYERS[LAYER_OF[_part(t)]][0]})"
            for m, targets in edges.items() for t, line in targets.items() if LAYER_OF[_part(t)] > LAYER_OF[_part(m)]]


def _cycles(edges):
    seen, stack, cycles = set(), [], []

    def visit(m):
        if m in stack:
            cycles.append(stack[stack.index(m):] + [m])
            return
        if m in seen:
            return
        seen.add(m)
        stack.append(m)
        for t in edges.get(m, {}):
            if not t.startswith(m + "."):  # a package's __init__ importing its own submodules is not a cycle
                visit(t)
        stack.pop()

    for m in sorted(edges):
        visit(m)
    return cycles


EDGES = _edges()


def test_every_module_belongs_to_exactly_one_layer():
    stray = sorted(m for m in MODULES if _part(m) not in LAYER_OF)
    assert not stray, f"modules in no layer of LAYERS (add their folder / file to one): {stray}"
    assert len(LAYER_OF) == sum(len(parts) for _, parts in LAYERS), "a part is listed in two layers"


def test_imports_go_down_the_layers_only():
    up = _upward(EDGES)
    assert not up, "\n".join(up)


def test_no_import_cycles():
    cycles = _cycles(EDGES)
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


def test_the_checks_see_an_upward_import_inside_a_function_and_a_cycle():
    """Sensitivity: a function-level import of a higher layer, and a two-module cycle, are both reported."""
    utils = os.path.join(PKG, "utils", "image.py")
    build = os.path.join(PKG, "build.py")
    fake = {"efficientsam_zoo.utils.image": (utils, "def f():\n    from ..build import build_efficient_sam\n"),
            "efficientsam_zoo.build": (build, "from .utils.image import f\n")}
    edges = _edges(fake)
    assert edges["efficientsam_zoo.utils.image"] == {"efficientsam_zoo.build": 2}
    assert len(_upward(edges)) == 1 and "line 2 imports efficientsam_zoo.build" in _upward(edges)[0]
    assert _cycles(edges) == [["efficientsam_zoo.build", "efficientsam_zoo.utils.image", "efficientsam_zoo.build"]]


def test_core_never_imports_an_adapter_or_a_framework():
    core = [m for m in MODULES if LAYER_OF[_part(m)] < LAYER_OF["integrations"]]
    bad = []
    for m in core:
        for name, line in _imports(MODULES[m]):
            if name.split(".")[0] in FRAMEWORKS or _adapter(name):
                bad.append(f"{m} line {line}: {name}")
    assert not bad, bad


#: The one sanctioned edge between adapters: mmengine's EfficientTAM trainer builds the video model, which exists only
#: as transformers modules (``integrations/hf/efficienttam.py``), through the HF adapter's public builders.
ADAPTER_EDGES = {("efficientsam_zoo.integrations.openmmlab.video", "efficientsam_zoo.integrations.hf.efficienttam"),
                 ("efficientsam_zoo.integrations.openmmlab.video",
                  "efficientsam_zoo.integrations.hf.efficienttam_training")}


def test_adapters_never_import_each_other():
    bad = [f"{m} imports {t}" for m, targets in EDGES.items() for t in targets
           if _adapter(m) in ADAPTERS and _adapter(t) in ADAPTERS and _adapter(t) != _adapter(m)
           and (m, t) not in ADAPTER_EDGES]
    assert not bad, bad
    present = {(m, t) for m, targets in EDGES.items() for t in targets}
    assert ADAPTER_EDGES <= present, f"allowed edges that no longer exist (drop them): {ADAPTER_EDGES - present}"


def test_no_private_name_crosses_a_module():
    """``from .x import _helper`` across modules hides a dependency: shared helpers get public names."""
    bad = []
    for mod, path in MODULES.items():
        for node in ast.walk(ast.parse(open(path).read())):
            if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("efficientsam_zoo")):
                bad += [f"{mod} line {node.lineno}: {a.name}" for a in node.names
                        if a.name.startswith("_") and not a.name.startswith("__")]
    assert not bad, bad


def test_tests_mirror_the_package():
    """A test folder for every package folder (``tests/<same path>``); top-level modules are tested in tests/core."""
    missing = []
    for dirpath, _, files in os.walk(PKG):
        rel = os.path.relpath(dirpath, PKG)
        if rel == "." or "__pycache__" in rel or rel.startswith("."):
            continue
        folder = os.path.join(REPO_ROOT, "tests", rel)
        if not any(f.startswith("test_") and f.endswith(".py") for _, _, fs in os.walk(folder) for f in fs):
            missing.append(f"tests/{rel}")
    assert not missing, missing


def test_no_package_file_is_longer_than_350_lines():
    long = {os.path.relpath(p, REPO_ROOT): n for p in MODULES.values() if (n := len(open(p).readlines())) > 350}
    assert not long, long


def test_variant_names_are_written_only_in_the_table():
    """Model names, sizes and Hub files live in registry.py; everything else derives them."""
    from efficientsam_zoo.registry import VARIANTS

    facts = set(VARIANTS) | {w.filename for v in VARIANTS.values() for w in v.weights}
    for path in MODULES.values():
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
    import torch

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
        fake = {"image_encoder.patch_embed.proj.weight": torch.zeros(spec.embed_dim, 3, 16, 16)}
        assert guess_efficientsam_variant(fake) == name
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices
    for command in ("segment", "eval-points", "eval-instances", "segment-everything", "export-onnx"):
        model_opt = next(a for a in sub[command]._actions if a.dest == "model")
        assert list(model_opt.choices) == EFFICIENT_SAM_NAMES, command


def test_defaults_are_derived_from_one_place():
    """The facts that used to be written several times: each now has one home, and its other users read it."""
    pytest.importorskip("transformers")
    from efficientsam_zoo import automatic_mask_generator as amg
    from efficientsam_zoo.cli import build_parser
    from efficientsam_zoo.integrations.hf import EfficientSamConfig, EfficientSamImageProcessor, spec_from_config
    from efficientsam_zoo.registry import DEFAULT_MODEL, get_spec

    assert spec_from_config(EfficientSamConfig()) == get_spec(DEFAULT_MODEL)
    assert EfficientSamImageProcessor().max_points == get_spec(DEFAULT_MODEL).decoder_max_num_input_points
    sub = next(a for a in build_parser()._actions if a.dest == "command").choices["segment-everything"]
    defaults = {a.dest: a.default for a in sub._actions}
    assert (defaults["pred_iou_thresh"], defaults["stability_score_thresh"], defaults["box_nms_thresh"]) == (
        amg.PRED_IOU_THRESH, amg.STABILITY_SCORE_THRESH, amg.BOX_NMS_THRESH)
    import inspect

    proc = inspect.signature(EfficientSamImageProcessor.filter_masks).parameters
    assert (proc["pred_iou_thresh"].default, proc["stability_score_thresh"].default) == (
        amg.PRED_IOU_THRESH, amg.STABILITY_SCORE_THRESH)


def test_hf_config_fields_are_documented():
    """transformers documents every field of every config in its docstring's Args section."""
    pytest.importorskip("transformers")
    from efficientsam_zoo.integrations.hf import EfficientSamConfig, SamiVisionConfig

    for cls in (SamiVisionConfig, EfficientSamConfig):
        fields = [k for k in cls.__annotations__ if not k.startswith("_")]
        undocumented = [f for f in fields if f"    {f} (`" not in cls.__doc__]
        assert fields and not undocumented, (cls.__name__, undocumented)
