"""Regression check: each model x variant's normalised time against the committed baseline.

Normalised = model time / reference-workload time in the same round (median over rounds), so a
baseline saved on another machine still means something. Full runs fail beyond +30 % when the
run was stable (IQR/median <= 10 %) and beyond +60 % when it was not; quick (CI) runs fail only
beyond +100 % and only when the run itself was stable, otherwise they warn.
Save a baseline with `pytest benchmarks/ --bench-save-baseline` (see benchmarks/README.md).
"""
from __future__ import annotations

import warnings

import pytest

from edgepose.benchmarks import baseline as bl


def test_no_slowdown(bench_key, bench_result, bench_baseline, bench_threshold, bench_quick):
    model, variant = bench_key.split("|")
    if bench_result.row(model, variant) is None:
        pytest.skip(f"{bench_key} was not measured (no file for this variant)")
    [c] = bl.compare(bench_result, bench_baseline, threshold=bench_threshold, lenient=bench_quick, keys=[bench_key])
    if c.status == "new":
        pytest.skip(f"{bench_key}: no baseline entry yet (pytest benchmarks/ --bench-save-baseline)")
    if c.status == "warn":
        warnings.warn(f"possible slowdown (noisy or quick run, not failing): {c.describe()}", stacklevel=1)
    assert not c.failed, c.describe()
