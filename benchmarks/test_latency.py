"""pytest-benchmark timings of every model x variant, raw session and predict.

These feed pytest-benchmark's own storage (--benchmark-save / --benchmark-compare); the
normalised figure of the same case from the session's interleaved run is attached as
extra_info so saved runs carry a machine-independent number too.
"""
from __future__ import annotations

import pytest

from edgepose.benchmarks.models_source import resolve_for
from edgepose.benchmarks.runners import open_session
from edgepose.benchmarks.variants import parse_variant


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
    benchmark.pedantic(fn, rounds=3 if bench_quick else 10, iterations=max(1, row.number // 2),
                       warmup_rounds=1)


def test_reference_workload(benchmark, bench_result, bench_cache):
    """The fixed workload the normalised figures divide by (8 x 1x1 conv, MNN, 1 thread)."""
    from edgepose.benchmarks.reference import CANONICAL_REFERENCE, reference_callables

    fn = reference_callables(bench_cache)[CANONICAL_REFERENCE]
    benchmark.group = "reference"
    benchmark.pedantic(fn, rounds=5, iterations=3, warmup_rounds=1)
