"""Tables B (pruned ResNets) and C (FP32 vs INT8) from their own interleaved runs.

Full mode measures both (table B needs the MXNet fixtures: without them it is skipped and the
report says which command builds them); quick mode measures one cheap INT8 case. Speed-ups
are printed in the summary, never asserted: whether this CPU reproduces GluonCV's is a finding.
"""
from __future__ import annotations

import json

import pytest

from edgepose.benchmarks.table_b import PUBLISHED as PUB_B
from edgepose.benchmarks.table_b import build_table_b
from edgepose.benchmarks.table_c import build_table_c


def test_table_c_int8(bench_int8_result, bench_note):
    result, paths = bench_int8_result
    table = build_table_c(result)
    int8_rows = [r for r in result.rows if r.variant.endswith("-int8")]
    if not int8_rows:
        pytest.fail(f"no INT8 file could be made or timed; skipped: {result.skipped}")
    assert table is not None and paths["table_c_json"].is_file()
    for row in table.rows:
        assert row.fp32_ms > 0 and row.int8_ms > 0 and row.speedup > 0
        fp32 = result.row(row.model, "mnn-fp32" if row.engine == "mnn" else "ort-fp32")
        int8 = result.row(row.model, "mnn-int8" if row.engine == "mnn" else "ort-int8")
        assert int8.path != fp32.path and ".int8." in int8.path
    data = json.loads(paths["json"].read_text())
    assert len(data["table_c"]["rows"]) == len(table.rows)
    bench_note(table.markdown())


def test_table_b_pruned_resnets(bench_table_b_result, bench_note):
    result, paths = bench_table_b_result
    table = build_table_b(result)
    assert table is not None and paths["table_b_markdown"].is_file()
    if table.skipped:
        assert "edgepose.converters.mxnet.fixtures" in paths["table_b_markdown"].read_text()
        bench_note(f"table B skipped: {table.skipped}")
        pytest.skip(table.skipped)
    assert {r.model for r in table.rows} == set(PUB_B)
    for row in table.rows:
        if not row.note:
            assert all(v is not None and v > 0 for v in row.measured.values())
            assert row.mac_ratio and row.mac_ratio > 1.0  # pruning removes MACs
    bench_note(table.markdown())
