"""`edgepose bench` end to end on a small registry model: real conversion, real runtimes, files written.

No timing is asserted here (speed targets live in benchmarks/): only that the command runs,
writes complete reports, reproduces the write-up's output format and fails clearly on bad input.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

pytest.importorskip("torch")


def _bench(*args, cache, timeout=600):
    env = {**os.environ, "EDGEPOSE_BENCH_QUICK": "0"}
    return subprocess.run([sys.executable, "-m", "edgepose", "bench", "--cache-dir", str(cache), "--no-progress", *args],
                          capture_output=True, text=True, timeout=timeout, env=env, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("bench-cache")


def test_bench_writes_reports(cache, tmp_path):
    out = tmp_path / "out"
    proc = _bench("heatmap_128", "-V", "mnn-fp32,mnn-fp16@low,ort-fp32,tflite", "--rounds", "2", "--warmup", "1",
                  "--sample-ms", "5", "-o", str(out), "--save-baseline", str(tmp_path / "base.json"), cache=cache)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "The device supports" not in proc.stdout  # MNN's banner stays off stdout
    data = json.loads((out / "report.json").read_text())
    rows = {r["variant"]: r for r in data["rows"]}
    assert set(rows) == {"mnn-fp32", "mnn-fp16@low", "ort-fp32"}  # no .tflite for a registry model
    assert any("tflite" in s for s in data["skipped"])
    for r in rows.values():
        assert len(r["session"]["samples"]) == 2 and len(r["predict"]["samples"]) == 2
        assert r["macs"] > 0 and r["params"] > 0 and r["file_mb"] > 0
        assert r["rss"]["peak_mb"] >= r["rss"]["baseline_mb"] > 0
        assert 0 < r["fraction_of_peak"]
    assert rows["mnn-fp16@low"]["file_mb"] < rows["mnn-fp32"]["file_mb"]  # FP16 weights are stored smaller
    assert rows["mnn-fp32"]["macs"] == rows["ort-fp32"]["macs"]
    assert data["cpu"]["peak_gflops"] > 0 and set(data["reference"]["timings"]) == {"ref-mnn", "ref-ort"}
    assert "| heatmap_128 |" in proc.stdout and (out / "report.md").is_file()
    baseline = json.loads((tmp_path / "base.json").read_text())
    assert set(baseline["entries"]) == {f"heatmap_128|{v}" for v in rows}
    # the same run compared with the baseline it saved: the command exits 0 or 3, never crashes
    again = _bench("heatmap_128", "-V", "mnn-fp32", "--rounds", "2", "--sample-ms", "5", "--no-memory",
                   "--no-predict", "-o", str(out), "--compare-baseline", str(tmp_path / "base.json"), cache=cache)
    assert again.returncode in (0, 3), again.stderr[-2000:]
    assert "heatmap_128|mnn-fp32:" in again.stdout


def test_writeup_method_prints_elapse_lines(cache):
    proc = _bench("heatmap_128", "--writeup", "--calls", "3", "--repeats", "4", cache=cache)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("elapse")]
    assert len(lines) == 4 and all(re.fullmatch(r"elapse \d+\.\d\d ms", ln) for ln in lines)


def test_json_output_is_clean(cache, tmp_path):
    proc = _bench("heatmap_128", "-V", "ort-fp32", "--rounds", "1", "--sample-ms", "5", "--no-memory", "--json",
                  "-o", str(tmp_path), cache=cache)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout)["rows"][0]["variant"] == "ort-fp32"


def test_help_names_the_extras():
    proc = subprocess.run([sys.executable, "-m", "edgepose", "bench", "--help"], capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0 and '.[bench,convert,torch]"' in proc.stdout


def test_every_missing_module_maps_to_an_extra_that_installs_it():
    """EXTRAS against pyproject.toml: each module's distribution is listed in the extra the error names."""
    import tomllib
    from pathlib import Path

    from edgepose.benchmarks.cli import EXTRAS, MissingExtraError, missing_extra
    from edgepose.errors import EdgePoseError

    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    extras = tomllib.loads(pyproject.read_text())["project"]["optional-dependencies"]
    for module, extra in EXTRAS.items():
        dist = module.replace("_", "-")
        assert any(re.match(rf"{re.escape(dist)}\b", req) for req in extras[extra]), (module, extra)
    error = missing_extra(ModuleNotFoundError("No module named 'onnxsim'", name="onnxsim"))
    assert isinstance(error, MissingExtraError) and isinstance(error, EdgePoseError)
    assert 'pip install -e ".[convert]"' in str(error)
    assert missing_extra(ModuleNotFoundError("x", name="edgepose.not_a_module")) is None  # a bug, not an extra


@pytest.mark.parametrize("args,message", [
    (["heatmap_128", "-V", "cuda-fp16"], "cannot read variant 'cuda-fp16'"),
    (["no_such_model"], "unknown model 'no_such_model'"),
    (["missing.onnx"], "model file not found"),
])
def test_bad_input_is_one_clear_line(cache, args, message):
    proc = _bench(*args, cache=cache)
    assert proc.returncode == 1
    assert message in proc.stderr and "Traceback" not in proc.stderr
