"""Tables B (pruned ResNets) and C (FP32 vs INT8): ratios, missing rows, reports, on chosen samples."""
from __future__ import annotations

import json

import pytest

from edgepose.benchmarks.harness import BenchResult, Row, _unresolved_lines
from edgepose.benchmarks.report import write_reports
from edgepose.benchmarks.table_b import PUBLISHED as PUB_B
from edgepose.benchmarks.table_b import build_table_b
from edgepose.benchmarks.table_c import build_table_c

from .conftest import CPU

LOAD = [1.0, 2.0, 1.0, 3.0, 1.5]  # load swings; per-round ratios are exact


def _rows(ms: dict[tuple[str, str], list[float]], macs: dict[str, int] | None = None) -> list[Row]:
    return [Row(model=m, variant=v, path=f"/x/{m}.{v}", file_mb=1.0, session_ms=list(s), predict_ms=None,
                ref_ms=[10.0] * len(s), macs=(macs or {}).get(m)) for (m, v), s in ms.items()]


def _result(rows, *, sources=(), skipped=()) -> BenchResult:
    return BenchResult(rows=rows, reference={"ref-mnn": [10.0] * len(rows[0].session_ms)} if rows else {},
                       cpu=CPU, env={"cpus": 2}, options={"rounds": 5}, sources=list(sources), skipped=list(skipped))


def test_table_b_speedups_are_paired_ratios_original_over_pruned():
    ms = {("mxnet:resnet50_v1d", "mnn-fp32"): [60 * f for f in LOAD],
          ("mxnet:resnet50_v1d_0.48", "mnn-fp32"): [20 * f for f in LOAD],
          ("mxnet:resnet50_v1d", "ort-fp32"): [50 * f for f in LOAD],
          ("mxnet:resnet50_v1d_0.48", "ort-fp32"): [25 * f for f in LOAD[::-1]]}  # not paired: median of ratios
    table = build_table_b(_result(_rows(ms, {"mxnet:resnet50_v1d": 4000, "mxnet:resnet50_v1d_0.48": 1000})))
    (row,) = table.rows
    assert row.model == "resnet50_v1d_0.48" and row.original == "resnet50_v1d"
    assert row.published_speedup == PUB_B["resnet50_v1d_0.48"][1] == 3.3
    assert row.measured["mnn-fp32"] == pytest.approx(3.0)
    ort = sorted(50 * a / (25 * b) for a, b in zip(LOAD, LOAD[::-1]))
    assert row.measured["ort-fp32"] == pytest.approx(ort[2])
    assert row.mac_ratio == pytest.approx(4.0)
    assert row.ms["mnn-fp32"] == pytest.approx(30.0) and row.original_ms["mnn-fp32"] == pytest.approx(90.0)
    md = table.markdown()
    assert "| resnet50_v1d_0.48 | 74.66 | 3.3x |" in md and "3.00x" in md and "4.00x" in md


def test_table_b_missing_original_and_pair_comparison():
    ms = {("mxnet:resnet101_v1d_0.76", "mnn-fp32"): [100 * f for f in LOAD],
          ("mxnet:resnet101_v1d_0.73", "mnn-fp32"): [80 * f for f in LOAD]}
    table = build_table_b(_result(_rows(ms)))
    assert {r.model for r in table.rows} == {"resnet101_v1d_0.76", "resnet101_v1d_0.73"}
    for r in table.rows:
        assert r.measured == {"mnn-fp32": None} and "not among the MXNet fixtures" in r.note
    (pair,) = table.pairs
    assert pair["published"] == pytest.approx(2.02 / 1.8)
    assert pair["measured"]["mnn-fp32"] == pytest.approx(1.25)
    assert "n/a" in table.markdown() and "published 1.12x" in table.markdown()
    assert table.variants == ["mnn-fp32"]  # ort-fp32 was not measured


def test_table_b_absent_or_skipped_with_the_build_command():
    rows = _rows({("deeppose", "mnn-fp32"): [5.0] * 5})
    assert build_table_b(_result(rows)) is None
    skipped = _unresolved_lines([("mxnet:resnet18_v1b", "MXNet fixtures are not built (looked in /nowhere)"),
                                 ("mxnet:resnet50_v1d", "MXNet fixtures are not built (looked in /nowhere)")])
    assert skipped == ["mxnet:resnet18_v1b, mxnet:resnet50_v1d: MXNet fixtures are not built (looked in /nowhere)"]
    many = _unresolved_lines([(f"mxnet:m{i}", "why") for i in range(9)])
    assert many == ["9 models (mxnet:m0 ... mxnet:m8): why"]
    table = build_table_b(_result(rows, skipped=skipped))
    assert table.rows == [] and "python -m edgepose.converters.mxnet.fixtures" in table.skipped and "edgepose bench table-b" in table.skipped
    assert "Skipped:" in table.markdown()


def test_table_c_rows_per_engine_with_published_ratio_and_int8_accuracy():
    ms = {("mxnet:resnet50_v1", "mnn-fp32"): [40 * f for f in LOAD],
          ("mxnet:resnet50_v1", "mnn-int8"): [20 * f for f in LOAD],
          ("deeppose", "ort-fp32"): [7 * f for f in LOAD],
          ("deeppose", "ort-int8"): [3.5 * f for f in LOAD],
          ("deeppose", "mnn-fp32"): [6 * f for f in LOAD]}  # no mnn-int8: no MNN row
    sources = [{"name": "deeppose", "int8": {"engines": {"onnxruntime": {
        "method": "minmax", "status": "inaccurate", "mean_px_256": 9.9, "pck": 0.65}}}},
        {"name": "mxnet:resnet50_v1", "int8": None}]
    table = build_table_c(_result(_rows(ms), sources=sources))
    by = {(r.model, r.engine): r for r in table.rows}
    assert set(by) == {("mxnet:resnet50_v1", "mnn"), ("deeppose", "onnxruntime")}
    r50 = by[("mxnet:resnet50_v1", "mnn")]
    assert r50.speedup == pytest.approx(2.0) and r50.published_speedup == 2.27
    assert r50.relative == pytest.approx(2.0 / 2.27) and r50.published_fp32_ips == 122.02
    assert "classifier" in r50.status
    dp = by[("deeppose", "onnxruntime")]
    assert dp.speedup == pytest.approx(2.0) and dp.published_speedup is None and dp.relative is None
    assert dp.mean_px_256 == 9.9 and dp.status == "inaccurate" and dp.method == "minmax"
    md = table.markdown()
    assert "2.27x (122.02 -> 276.72)" in md and "| deeppose | onnxruntime |" in md
    assert json.loads(table.to_json())["rows"][0]["relative"] == pytest.approx(2.0 / 2.27)
    assert build_table_c(_result(_rows({("deeppose", "mnn-fp32"): [1.0] * 5}))) is None


def test_reports_write_tables_b_and_c(tmp_path):
    ms = {("mxnet:resnet18_v1b", "mnn-fp32"): [30 * f for f in LOAD],
          ("mxnet:resnet18_v1b_0.89", "mnn-fp32"): [15 * f for f in LOAD],
          ("mxnet:resnet18_v1b", "mnn-int8"): [10 * f for f in LOAD]}
    paths = write_reports(_result(_rows(ms)), tmp_path)
    for key in ("table_b_markdown", "table_b_json", "table_c_markdown", "table_c_json"):
        assert paths[key].is_file()
    data = json.loads(paths["json"].read_text())
    assert data["table_b"]["rows"][0]["measured"]["mnn-fp32"] == pytest.approx(2.0)
    assert data["table_c"]["rows"][0]["speedup"] == pytest.approx(3.0)
    md = paths["markdown"].read_text()
    assert "Table B" in md and "Table C" in md
