"""The engine x model matrix and the backend="auto" pick (issue 13, item 7).

Quick (--bench-quick, CI): two small models (deeppose from the zoo, MediaPipe's hand_landmark_lite),
few rounds; only structural facts are asserted: every engine that reads a model's files is a column,
the fastest has ratio 1, auto picked one of the timed candidates and probed it now (fresh choice
cache), the report names the CPU and its class.

Full (--bench-full, the default outside CI): every table-A model and the MediaPipe models; the
engine `Predictor(path, backend="auto")` picks must be within 5 % of the fastest engine for that
model, judged on the same interleaved run (auto's candidate median vs the fastest one's, as the
median of per-round ratios) and, if it misses there, on one re-measurement of the two alone with
twice the rounds (engine_matrix.measure_model). The matrix goes to <bench-output>/engines/.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgepose.benchmarks.engine_matrix import (QUICK_MODELS, TOLERANCE, expand_matrix_names, run_engine_matrix,
                                               write_matrix)


@pytest.fixture(scope="module")
def engine_matrix(pytestconfig, bench_quick, bench_cache):
    from edgepose.benchmarks.cli import pin_single_thread

    pin_single_thread()
    if bench_quick:
        matrix = run_engine_matrix(QUICK_MODELS, rounds=5, warmup=2, target_ms=30.0, cache=bench_cache)
    else:
        rounds = pytestconfig.getoption("--bench-rounds") or 11
        matrix = run_engine_matrix(None, rounds=rounds, cache=bench_cache)
    out = Path(pytestconfig.getoption("--bench-output")) / "engines"
    write_matrix(matrix, out)
    state = getattr(pytestconfig, "_edgepose_bench", None)
    if state is None:
        state = pytestconfig._edgepose_bench = {"notes": []}
    state.setdefault("notes", []).append(matrix.markdown())
    return matrix


def test_matrix_structure(engine_matrix, bench_quick):
    m = engine_matrix
    expected = list(QUICK_MODELS) if bench_quick else expand_matrix_names(None)
    assert sorted([r.model for r in m.rows] + list(m.unresolved)) == sorted(expected)
    assert not m.unresolved, m.unresolved
    for r in m.rows:
        labels = [c.label for c in r.candidates]
        assert len(labels) >= 2, f"{r.model}: only {labels} could run"
        assert set(r.samples) == set(labels)
        assert all(len(s) == m.options["rounds"] for s in r.samples.values())
        assert r.ratio(r.fastest) == pytest.approx(1.0)
        assert all(r.medians[k] >= r.medians[r.fastest] for k in labels)
        assert r.auto is not None, f"{r.model}: backend='auto' failed: {r.auto_error}"
        assert r.auto_label in labels, f"{r.model}: auto picked {r.auto_label}, not a timed candidate"
        assert set(r.auto["median_ms"]) <= set(labels) | set(r.skipped)  # auto probed the same candidates
        assert r.auto.get("cached") is False, f"{r.model}: the pick came from a cache, not a probe"
        engines = {c.engine for c in r.candidates}
        assert "mnn" in engines
    hand = next((r for r in m.rows if r.model == "hand_landmark_lite"), None)
    if hand is not None:  # a .tflite source: LiteRT and OpenVINO read it directly
        assert {"litert", "openvino"} <= {c.engine for c in hand.candidates}
    zoo = next((r for r in m.rows if r.model == "deeppose"), None)
    if zoo is not None:  # an ONNX sibling: ONNX Runtime and OpenVINO read it
        assert {"onnxruntime", "openvino"} <= {c.engine for c in zoo.candidates}


def test_matrix_report(engine_matrix, pytestconfig):
    from edgepose.cpu import cpu_info

    m = engine_matrix
    info = cpu_info()
    md = m.markdown()
    assert info.cpu_class in md and info.model_name in md
    for r in m.rows:
        assert f"| {r.model} |" in md
    data = json.loads(m.to_json())
    assert data["schema"] == "edgepose.bench.engines/1"
    assert data["cpu"]["class"] == info.cpu_class
    assert [row["model"] for row in data["rows"]] == [r.model for r in m.rows]
    for row in data["rows"]:
        assert min(c["ratio_to_fastest"] for c in row["candidates"]) == pytest.approx(1.0)
    out = Path(pytestconfig.getoption("--bench-output")) / "engines"
    assert (out / "engines.md").read_text() == md


def test_auto_within_tolerance_of_fastest(engine_matrix, bench_quick):
    """Issue 13's goal: auto's engine within 5 % of the fastest engine for every model (full mode)."""
    if bench_quick:
        pytest.skip("the 5 % goal is judged in full mode (--bench-full): quick rounds are too short to tell")
    m = engine_matrix
    lines = [f"{r.model}: auto {r.auto_label} at {r.auto_ratio:.3f} of the fastest {r.fastest}"
             + (f", re-measured {r.remeasure['ratio']:.3f}" if r.remeasure else "") for r in m.misses]
    assert not m.misses, f"backend='auto' more than {TOLERANCE:.0%} slower than the fastest engine on " \
                         f"{m.cpu['model_name']} ({m.cpu['class']}):\n" + "\n".join(lines)


def test_mnn_levers_structure(bench_cache):
    """`edgepose bench levers` on a small model with a few levers: every lever timed against its reference,
    the converter flag against the re-made control, the report names the CPU class. No speed asserted."""
    import math

    from edgepose.benchmarks.cli import pin_single_thread
    from edgepose.benchmarks.mnn_levers import BASELINE, CONVERTER_CONTROL, run_levers
    from edgepose.cpu import cpu_info

    pin_single_thread()
    only = ["module replica (edgepose settings)", "precision normal", "session API",
            "converter --optimizePrefer 2 (fastest)", "baseline, re-opened last"]
    res = run_levers(["hand_landmark_lite"], rounds=3, warmup=1, target_ms=10.0, cache=bench_cache, only=only)
    assert not res.unresolved, res.unresolved
    (row,) = res.rows
    assert set(row.names) == set(only) | {BASELINE, CONVERTER_CONTROL}, (row.names, row.skipped)
    for name in row.names:
        assert len(row.samples[name]) == 3 and math.isfinite(row.ratio(name))
    assert row.reference["converter --optimizePrefer 2 (fastest)"] == CONVERTER_CONTROL
    assert row.reference["session API"] == BASELINE
    assert row.diffs["module replica (edgepose settings)"] == 0.0  # the same settings run the same kernels
    md = res.markdown()
    assert cpu_info().cpu_class in md and "| session API |" in md
    assert json.loads(res.to_json())["schema"] == "edgepose.bench.levers/1"
