"""pytest-benchmark timings of every model x variant, raw session and predict.

These feed pytest-benchmark's own storage (--benchmark-save / --benchmark-compare); the
normalised figure of the same case from the session's interleaved run is attached as
extra_info so saved runs carry a machine-independent number too. Each test also checks what
it timed: a callable that returned garbage (no outputs, NaNs, the wrong keypoint count)
would otherwise be timed as happily as a working one. No timing thresholds here.
"""
from __future__ import annotations

import numpy as np
import pytest

from edgepose.benchmarks.models_source import resolve_for
from edgepose.benchmarks.runners import open_session
from edgepose.benchmarks.variants import parse_variant


def _check_session_outputs(outputs, spec) -> None:
    """The raw run: every named output a finite batch-1 array; with a card, its outputs are all there."""
    assert isinstance(outputs, dict) and outputs, f"the raw run returned {type(outputs).__name__}"
    for name, value in outputs.items():
        value = np.asarray(value)
        assert value.size and value.shape[0] == 1, f"{name}: shape {value.shape}"
        if np.issubdtype(value.dtype, np.floating):
            assert np.isfinite(value).all(), f"{name} has non-finite values"
    if spec is not None and spec.outputs:
        assert set(spec.outputs.values()) <= set(outputs), f"outputs {sorted(outputs)} lack {spec.outputs}"


def _check_prediction(result, spec, boxes) -> None:
    """predict: one instance per box, the card's keypoint count, finite coordinates and scores."""
    n = len(boxes) if boxes else 1
    assert result.keypoints.shape == (n, spec.num_keypoints, 2)
    assert result.scores.shape == (n, spec.num_keypoints)
    assert np.isfinite(result.keypoints).all() and np.isfinite(result.scores).all()


def _check_stats(benchmark, rounds: int) -> None:
    if benchmark.disabled:  # --benchmark-disable: the callable ran once, untimed
        return
    stats = benchmark.stats.stats
    assert stats.rounds == rounds and 0 < stats.min <= stats.median <= stats.max


def test_latency(benchmark, bench_case, bench_result, bench_cache, bench_quick):
    model, variant_name, mode = bench_case
    row = bench_result.row(model, variant_name)
    if row is None:
        pytest.skip(f"{model} has no file for {variant_name}")
    if mode == "predict" and row.predict_ms is None:
        pytest.skip(f"{variant_name} has no Predictor (raw session only)")
    from edgepose.benchmarks.harness import load_bench_image

    variant = parse_variant(variant_name)
    source = resolve_for(model, [variant], cache=bench_cache)
    image, boxes = load_bench_image(bench_result.options.get("image", "astronaut"), None)
    session = open_session(source, variant, image=image, bboxes=boxes)
    fn = session.raw if mode == "session" else session.predict
    benchmark.group = model
    benchmark.extra_info.update(variant=variant_name, mode=mode, threads=1,
                                normalised=row.normalised.median, interleaved_median_ms=row.session.median)
    rounds = 3 if bench_quick else 10
    out = benchmark.pedantic(fn, rounds=rounds, iterations=max(1, row.number // 2), warmup_rounds=1)
    if mode == "session":
        _check_session_outputs(out, session.predictor.spec if session.predictor is not None else None)
    else:
        _check_prediction(out, session.predictor.spec, boxes)
    _check_stats(benchmark, rounds)


def test_reference_workload(benchmark, bench_result, bench_cache):
    """The fixed workload the normalised figures divide by (8 x 1x1 conv, MNN, 1 thread)."""
    from edgepose.benchmarks.reference import CANONICAL_REFERENCE, reference_callables

    fn = reference_callables(bench_cache)[CANONICAL_REFERENCE]
    benchmark.group = "reference"
    out = benchmark.pedantic(fn, rounds=5, iterations=3, warmup_rounds=1)
    _check_session_outputs(out, None)
    _check_stats(benchmark, 5)
