"""INT8 quantisation (MNN offline quantiser, ONNX Runtime static QDQ) with calibration on real photos.

API: `quantize_int8(fp32_artifacts, calib=..., options=Int8Options(...)) -> Int8Report`, or as stages
of a conversion: `converters.convert(source, int8=Int8Options(calib=...))` (quantize.stage).
CLI: `add_int8_arguments(parser)`; converters.cli turns the flags into an Int8Options.
Table C rows from a report: edgepose.benchmarks.table_c.
"""
from __future__ import annotations

from .api import DEFAULT_THRESHOLD_PX_256, ENGINES, Int8Options, quantize_int8
from .calibration import CalibrationSet, load_calibration
from .cli import add_int8_arguments, fp32_artifacts_from_report
from .report import EngineResult, Int8Report

__all__ = ["DEFAULT_THRESHOLD_PX_256", "ENGINES", "CalibrationSet", "EngineResult", "Int8Options", "Int8Report",
           "add_int8_arguments", "fp32_artifacts_from_report", "load_calibration", "quantize_int8"]
