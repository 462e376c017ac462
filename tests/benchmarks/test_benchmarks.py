"""benchmarks/throughput.py runs end to end and writes the rows the fast-inference issue asks for.

Timings are not asserted (speed goals live in benchmarks/README.md); the rows' structure and the
arguments' checks are.
"""
import importlib.util
import json
import os

import pytest
from conftest import REPO_ROOT as ROOT  # noqa: E402


@pytest.fixture(scope="module")
def throughput():
    spec = importlib.util.spec_from_file_location("throughput", os.path.join(ROOT, "benchmarks", "throughput.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_one_run_writes_rows_side_by_side(throughput, tmp_path, capsys):
    out = tmp_path / "rows.json"
    rows = throughput.main(["--models", "efficientsam-ti", "--paths", "fast", "reference", "--dtypes", "fp32",
                            "--warmup", "0", "--repeats", "1", "--decoder-queries", "4", "--device", "cpu",
                            "--json", str(out)])
    assert json.loads(out.read_text()) == rows
    by_kind = {(r["path"], r["scope"]): r for r in rows}
    assert set(by_kind) == {("fast", "model"), ("reference", "model"), ("fast", "prompt_side")}
    for r in rows:
        assert {"model", "path", "device", "dtype", "batch", "peak_mem_mb", "compiled", "cuda_graphs"} <= set(r)
        assert r["model"] == "efficientsam-ti" and r["device"] == "cpu" and r["batch"] == 1
        assert r["compiled"] is False and r["cuda_graphs"] is False
        assert r["peak_mem_mb"] >= 0  # CPU: resident growth during one untimed call
    for key in (("fast", "model"), ("reference", "model")):
        assert by_kind[key]["images_per_s"] == pytest.approx(1 / by_kind[key]["median_s"])
    decoder = by_kind[("fast", "prompt_side")]
    assert decoder["queries"] == 4 and decoder["prompts_per_s"] == pytest.approx(4 / decoder["median_s"])
    printed = capsys.readouterr().out
    assert "x reference (eager fp32)" in printed and "prompts/s" in printed
    ratio = by_kind[("fast", "model")]["images_per_s"] / by_kind[("reference", "model")]["images_per_s"]
    assert f"| efficientsam-ti | fast | fp32 | 1 | {ratio:.2f} |" in printed


@pytest.mark.parametrize("argv,message", [
    (["--cuda-graphs", "--device", "cpu"], "--cuda-graphs needs a CUDA device"),
    (["--paths", "official"], "--paths official needs --official-repo"),
    (["--decoder-queries", "-1"], "--decoder-queries must be >= 0"),
])
def test_bad_arguments_are_refused(throughput, argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        throughput.main(argv)
    assert exc.value.code == 2 and message in capsys.readouterr().err


def test_cpu_peak_memory_sees_a_transient_allocation(throughput):
    import torch

    def step():
        x = torch.ones(50 * 2**20)  # 200 MiB, touched, then freed before step returns
        del x

    assert 190 <= throughput.cpu_peak_mem_mb(step) <= 260
    assert throughput.cpu_peak_mem_mb(lambda: None) < 20


def test_official_path_imports_the_users_clone(throughput, tmp_path, monkeypatch, capsys):
    """--official-repo imports efficient_sam.efficient_sam.build_efficient_sam from the given clone (a stand-in
    package here: the official code is not on any package index) and times it next to the other paths."""
    import sys

    monkeypatch.setattr(sys, "path", list(sys.path))  # the benchmark prepends the clone; undone after the test
    for name in ("efficient_sam", "efficient_sam.efficient_sam"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    with pytest.raises(SystemExit, match="cannot import efficient_sam.efficient_sam"):
        throughput.main(["--models", "efficientsam-ti", "--official-repo", str(tmp_path)])
    pkg = tmp_path / "efficient_sam"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "efficient_sam.py").write_text(
        "from efficientsam_zoo import build_efficient_sam as _build\n"
        "from efficientsam_zoo.modeling import EfficientSamSpec\n"
        "CALLS = []\n"
        "def build_efficient_sam(encoder_patch_embed_dim, encoder_num_heads, checkpoint=None):\n"
        "    CALLS.append((encoder_patch_embed_dim, encoder_num_heads, checkpoint))\n"
        "    return _build(EfficientSamSpec(img_size=64, embed_dim=32, depth=1, num_heads=2, neck_dim=32,\n"
        "                                   decoder_mlp_dim=64, decoder_num_heads=2, iou_head_hidden_dim=32))\n")
    rows = throughput.main(["--models", "efficientsam-ti", "--paths", "official", "--official-repo", str(tmp_path),
                            "--warmup", "0", "--repeats", "1"])
    assert [r["path"] for r in rows] == ["official"] and rows[0]["dtype"] == "fp32"
    assert sys.modules["efficient_sam.efficient_sam"].CALLS == [(192, 3, None)]  # ViT-Ti dims, random weights
    for name in ("efficient_sam", "efficient_sam.efficient_sam"):
        sys.modules.pop(name, None)


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "benchmarks", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sa1b_read_rows(tmp_path, capsys):
    out = tmp_path / "rows.json"
    _load("sa1b_read").main(["--sizes", "5", "20", "--samples", "5", "--json", str(out)])
    rows = json.loads(out.read_text())
    assert [r["images per shard"] for r in rows] == [5, 20]
    assert all(r["read ms"] > 0 and r["sample ms"] >= r["read ms"] for r in rows)
    assert "read ms / smallest" in capsys.readouterr().out


def test_segment_everything_calibration_passes_the_asked_share():
    """Without released weights the benchmark sets pred_iou_thresh so that --keep of the candidates pass."""
    import numpy as np
    import torch
    from conftest import TINY, randomize_

    from efficientsam_zoo import EfficientSamPredictor, EfficientSamSpec, build_efficient_sam
    from efficientsam_zoo.automatic_mask_generator import point_grid
    from efficientsam_zoo.data.synthetic import make_scene

    model = randomize_(build_efficient_sam(EfficientSamSpec(**TINY)), seed=2, scale=0.3)
    image, _ = make_scene(0, 64, 80)
    thr = _load("segment_everything")._calibrated(model, image, 8, keep=0.25)
    p = EfficientSamPredictor(model)
    p.set_image(image)
    pts = torch.as_tensor(point_grid(8) * np.array([80, 64]), dtype=torch.float32)[:, None]
    iou = p.predict_low_res(pts, torch.ones(64, 1, dtype=torch.long))[1]
    assert thr["stability_score_thresh"] == 0.0
    assert abs(float((iou > thr["pred_iou_thresh"]).float().mean()) - 0.25) < 0.02


def test_finetune_recipes_rows_count_the_trainable_parameters(tmp_path, capsys):
    """benchmarks/finetune_recipes.py on Ti (decoder and lora, one mask, one timed iteration): the trainable counts
    are the ones written out by hand from the modules, LoRA's being rank x (in + out) per adapted projection."""
    pytest.importorskip("mmengine", reason="the recipes are built by mmengine (not in the torch 2.11 environment)")
    pytest.importorskip("peft", reason="the lora recipe needs peft")
    spec = importlib.util.spec_from_file_location("finetune_recipes",
                                                  os.path.join(ROOT, "benchmarks", "finetune_recipes.py"))
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    rows = bench.main(["--models", "efficientsam-ti", "--recipes", "decoder", "lora", "--masks", "1", "--repeats",
                       "1", "--json", str(tmp_path / "rows.json")])
    from efficientsam_zoo import build_efficient_sam

    sam = build_efficient_sam("efficientsam-ti", negative_points=True, mask_prompts=True)
    prompt_side = sum(p.numel() for m in (sam.prompt_encoder, sam.mask_decoder) for p in m.parameters())
    dim, depth, rank = sam.image_encoder.patch_embed.proj.out_channels, len(sam.image_encoder.blocks), 8
    adapters = depth * rank * ((dim + 3 * dim) + (dim + dim))  # qkv: dim -> 3 dim; proj: dim -> dim
    by_recipe = {r["recipe"]: r for r in rows}
    assert by_recipe["decoder"]["trainable_params"] == prompt_side
    assert by_recipe["lora"]["trainable_params"] == prompt_side + adapters
    assert by_recipe["lora"]["total_params"] == sum(p.numel() for p in sam.parameters()) + adapters
    assert all(r["s_per_iter"] > 0 and r["rounds"] == 6 for r in rows)
    assert json.loads((tmp_path / "rows.json").read_text()) == rows
    assert "| efficientsam-ti | lora |" in capsys.readouterr().out


@pytest.fixture(scope="module")
def efficienttam_bench():
    spec = importlib.util.spec_from_file_location("efficienttam_bench", os.path.join(ROOT, "benchmarks",
                                                                                   "efficienttam.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_efficienttam_benchmarks_write_their_rows(efficienttam_bench, tmp_path, capsys):
    """The three tables at a tiny size: per-frame time, the memory attention next to full attention (same memory
    tokens), and whole runs in fresh processes on two video lengths with and without released frames."""
    frame = efficienttam_bench.main(["frame", "--models", "efficienttam-ti", "--frames", "3", "--image-size", "128"])
    assert [(r["impl"], r["frames"]) for r in frame] == [("ours", 2)] and frame[0]["median_s_per_frame"] > 0
    out = tmp_path / "attention.json"
    attention = efficienttam_bench.main(["attention", "--models", "efficienttam-ti", "efficienttam-ti-1",
                                         "--image-size", "128", "--memory-frames", "3", "--repeats", "1",
                                         "--json", str(out)])
    assert json.loads(out.read_text()) == attention
    assert [r["pooling"] for r in attention] == ["full (SAM 2)", "logits"]
    assert attention[0]["memory_tokens"] == attention[1]["memory_tokens"] == 3 * 8 * 8 + 16 * 4
    memory = efficienttam_bench.main(["memory", "--lengths", "3", "40", "--image-size", "128"])
    kept = {(r["length"], r["release_old_frames"]): r["kept_outputs"] for r in memory}
    # 40 frames, prompt on 0, at the end frame 39: released keeps frames within 16 of either (1..16, 23..39)
    assert kept == {(3, False): 2, (3, True): 2, (40, False): 39, (40, True): 33}
    assert all(r["peak_rss_mb"] > 100 for r in memory)
    printed = capsys.readouterr().out
    assert "| efficienttam-ti-1 | logits |" in printed and "| on | 40 | 33 |" in printed


def test_efficienttam_official_path_needs_a_clone(efficienttam_bench, tmp_path):
    with pytest.raises(SystemExit, match="cannot import efficient_track_anything from"):
        efficienttam_bench.main(["frame", "--models", "efficienttam-ti", "--frames", "2", "--image-size", "128",
                                 "--official-repo", str(tmp_path)])
    with pytest.raises(SystemExit):
        efficienttam_bench.main(["frame", "--frames", "1"])


def test_demo_latency_benchmark_compares_first_and_later_clicks(tmp_path):
    spec = importlib.util.spec_from_file_location("demo_latency", os.path.join(ROOT, "benchmarks", "demo_latency.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "row.json"
    row = module.main(["--images", "2", "--clicks", "3", "--size", "96", "128", "--img-size", "128",
                       "--json", str(out)])
    assert json.loads(out.read_text()) == row and row["embeddings_computed"] == 2  # one per image, not per click
    assert row["ratio"] == pytest.approx(row["later_click_s"] / row["first_click_s"])
    with pytest.raises(SystemExit):
        module.main(["--clicks", "1"])


def test_deploy_benchmark_rows(tmp_path, capsys):
    """Every backend gets a row with its own process's figures; torch fp32 against itself is IoU 1 (the control).
    The LiteRT row needs litert-torch's own environment: here it is left out by pointing at none."""
    spec = importlib.util.spec_from_file_location("deploy", os.path.join(ROOT, "benchmarks", "deploy.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "rows.json"
    rows = module.main(["--models", "efficientsam-ti", "--img-size", "64", "--repeats", "1", "--queries", "1",
                        "--calibration", "1", "--litert-python", str(tmp_path / "none"), "--json", str(out)])
    expected = [b for b in module.BACKENDS if b != "litert"]
    assert [r["backend"] for r in rows] == expected and json.loads(out.read_text()) == rows
    assert rows[0]["mask_iou"] == 1.0 and all(0 <= r["mask_iou"] <= 1 and r["encoder_ms"] > 0 for r in rows)
    assert rows[1]["backend"] == "torch-compiled" and rows[1]["mask_iou"] > 0.99  # compiled: the same masks
    by = {r["backend"]: r for r in rows}
    assert all(by[b]["encoder_mb"] < by["ort-fp32"]["encoder_mb"] for b in ("ort-int8-dynamic", "ort-int8-static"))
    assert capsys.readouterr().out.count("| efficientsam-ti |") == len(expected)


def test_efficienttam_training_benchmark_writes_its_rows(tmp_path):
    """benchmarks/efficienttam_training.py at a toy size: one row per model, the SA-V arithmetic from its time."""
    import subprocess
    import sys

    out = tmp_path / "rows.json"
    printed = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "efficienttam_training.py"),
                              "--models", "efficienttam-ti", "--img-size", "64", "--frames", "3", "--objects", "2",
                              "--repeats", "1", "--json", str(out)], check=True, capture_output=True, text=True).stdout
    (row,) = json.loads(out.read_text())
    assert row["model"] == "efficienttam-ti" and row["frames"] == 3 and row["s_per_clip"] > 0
    assert row["peak_rss_gib"] > 0.1
    assert row["sa_v_days_8_workers"] == pytest.approx(row["s_per_clip"] * 50_900 * 40 / 8 / 86400)
    assert "| efficienttam-ti | 64 | 3 x 2 |" in printed
