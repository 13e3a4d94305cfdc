"""Table C from the INT8 step's own report (was converters/quantize/bench.py): one table type either way."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgepose.benchmarks.table_c import TableC, int8_report_for, table_c_from_int8_report
from edgepose.converters.quantize import Int8Options, Int8Report
from edgepose.converters.quantize.evaluate import Accuracy, Speed
from edgepose.converters.quantize.report import EngineResult


def _report(model: str) -> Int8Report:
    acc = Accuracy(samples=4, keypoints=16, mean_px=1.0, max_px=3.0, mean_px_256=1.5, max_px_256=4.5, pck=0.9,
                   worst_sample="a.png")
    return Int8Report(model=model, output_dir=Path("/x"), stem=model, threshold_px_256=3.0, strict=False, engines=[
        EngineResult(engine="mnn", artifact=Path("/x/m.int8.mnn"), status="ok", details={"method": "EMA"},
                     accuracy=acc, speed=Speed(fp32_ms=8.0, int8_ms=4.0, speedup=2.0, rounds=3, calls_per_round=5)),
        EngineResult(engine="onnxruntime", status="failed", details={"method": "minmax"}, error="no QDQ kernel"),
    ])


def test_rows_per_engine_from_an_int8_report():
    table = table_c_from_int8_report(_report("resnet50_v1"))
    assert isinstance(table, TableC)
    mnn, ort = table.rows
    assert (mnn.engine, mnn.method, mnn.fp32_ms, mnn.int8_ms, mnn.speedup) == ("mnn", "EMA", 8.0, 4.0, 2.0)
    assert mnn.max_px_256 == 4.5 and mnn.pck == 0.9 and mnn.status == "ok"
    assert mnn.published_speedup == 2.27 and mnn.relative == pytest.approx(2.0 / 2.27)  # GluonCV's figure beside
    assert ort.status == "failed: no QDQ kernel" and ort.fp32_ms is None and ort.speedup is None
    md = table.markdown()
    assert "| resnet50_v1 | mnn | 8.00 | 4.00 | 2.00x |" in md and "| resnet50_v1 | onnxruntime | — | — | — |" in md
    assert json.loads(table.to_json())["rows"][1]["status"] == "failed: no QDQ kernel"


@pytest.mark.slow
def test_int8_report_of_a_zoo_model(tmp_path):
    """A table-A regression model: converted, quantised (ONNX Runtime), timed: one table-C row."""
    pytest.importorskip("torch")
    opts = Int8Options(engines=("onnxruntime",), calib_count=4, strict=False, speed_rounds=2, progress=False)
    report = int8_report_for("deeppose", output_dir=tmp_path, options=opts)
    (row,) = table_c_from_int8_report(report).rows
    assert row.model == "deeppose" and row.engine == "onnxruntime" and row.method == "minmax"
    assert row.fp32_ms > 0 and row.int8_ms > 0 and row.speedup == pytest.approx(row.fp32_ms / row.int8_ms, rel=0.5)
    assert row.mean_px_256 is not None and row.published_speedup is None
    assert (tmp_path / "deeppose.int8.onnx").is_file()
    assert report.engine("onnxruntime").fp32_artifact.name == "deeppose.sim.onnx"
