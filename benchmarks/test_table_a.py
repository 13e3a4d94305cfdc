"""Table A reproduction from the session's run: report, JSON, chart, headline claims.

The claims are printed, not asserted: whether a CPU reproduces another CPU's ratios is a
finding, not a bug. What is asserted is that the report is complete and self-consistent.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgepose.benchmarks.table_a import BASELINE_MODEL, CLAIMS, build_table_a


def test_table_a_report(bench_result, pytestconfig, tmp_path):
    table = build_table_a(bench_result)
    if table is None:
        pytest.skip(f"{BASELINE_MODEL} was not measured: no table A")
    base = next(r for r in table.rows if r.model == BASELINE_MODEL)
    assert base.measured_ratio == pytest.approx(1.0) and base.published_ratio == pytest.approx(1.0)
    measured = {r.model for r in bench_result.rows if r.published_ms and r.variant == table.variant}
    assert {r.model for r in table.rows} == measured
    assert len(table.claims) == len(CLAIMS)
    png = table.plot(tmp_path / "table_a.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads(table.to_json())
    assert data["variant"] == table.variant
    out = Path(pytestconfig.getoption("--bench-output")) / "table_a.md"
    assert out.is_file()
    state = getattr(pytestconfig, "_edgepose_bench", None)
    verdicts = [f"  {c.id}: {'holds' if c.holds else 'not measured' if c.holds is None else 'DOES NOT hold'}"
                f" (ours {c.measured:.2f}, published {c.published:.2f})" if c.measured is not None and c.published
                else f"  {c.id}: not measured" for c in table.claims]
    if state is not None:
        state.setdefault("notes", []).append(f"table A claims ({table.variant}):\n" + "\n".join(verdicts))
