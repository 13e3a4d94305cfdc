"""Predict overhead: Predictor.predict beyond the raw session run, for a 256x256 model.

Target: <= 5 % of the model time. Measured as the median over interleaved rounds of
predict / raw - 1 on the same loaded session (MNN FP16 file, edgepose's default precision),
with a person box on a 512x512 photo. The check is ratio-based with a generous tolerance
(the machine is shared and noisy): it fails only when the overhead is clearly far off target.
"""
from __future__ import annotations

import warnings

import pytest

from edgepose.benchmarks.harness import load_bench_image
from edgepose.benchmarks.models_source import resolve
from edgepose.benchmarks.runners import open_session
from edgepose.benchmarks.stats import relative_overhead, summarize
from edgepose.benchmarks.timing import interleave
from edgepose.benchmarks.variants import parse_variant

TARGET = 0.05
TOLERANCE = {"full": 0.15, "quick": 0.30}
MODEL = "deeppose"


def test_predict_overhead(bench_cache, bench_quick, pytestconfig):
    from edgepose.benchmarks.cli import pin_single_thread

    pin_single_thread()
    source = resolve(MODEL, cache=bench_cache, weights=("fp16",))
    assert source.spec.input_size == (256, 256)
    image, boxes = load_bench_image("astronaut", None)
    session = open_session(source, parse_variant("mnn-fp16"), image=image, bboxes=boxes)
    rounds = 11 if bench_quick else 31
    t = interleave({"raw": session.raw, "predict": session.predict}, rounds=rounds, warmup=3,
                   target_ms=40.0 if bench_quick else 100.0)
    overhead = relative_overhead(t["predict"].samples, t["raw"].samples)
    raw = summarize(t["raw"].samples)
    note = (f"predict overhead ({MODEL}, mnn-fp16, 256x256, box on a 512x512 photo): {overhead:+.1%} of "
            f"the {raw.median:.2f} ms session run (target <= {TARGET:.0%}; median of {rounds} interleaved rounds)")
    state = getattr(pytestconfig, "_edgepose_bench", None)
    if state is not None:
        state.setdefault("notes", []).append(note)
    print(note)
    if overhead > TARGET:
        warnings.warn(f"above the {TARGET:.0%} target: {note}", stacklevel=1)
    limit = TARGET + TOLERANCE["quick" if bench_quick else "full"]
    assert overhead <= limit, f"{note}; fails only beyond {limit:.0%}"


def test_predict_overhead_in_run(bench_result):
    """The same figure from the session's big interleaved run, reported for every measured row."""
    rows = [r for r in bench_result.rows if r.predict_ms]
    if not rows:
        pytest.skip("no predict measurements in this run")
    for r in rows:
        assert r.predict_overhead is not None and r.predict_overhead > -0.5, r.key  # predict includes the run
