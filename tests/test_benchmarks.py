"""benchmarks/throughput.py runs end to end and writes the rows the fast-inference issue asks for.

Timings are not asserted (speed goals live in benchmarks/README.md); the rows' structure and the
arguments' checks are.
"""
import importlib.util
import json
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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
