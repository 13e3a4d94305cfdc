"""INT8 quantisation (MNN offline quantiser, ONNX Runtime static QDQ) with calibration on real photos.

API: `quantize_int8(fp32_artifacts, calib=..., options=Int8Options(...)) -> Int8Report`.
CLI: `add_int8_arguments(parser)` + `quantize_from_args(args, fp32_artifacts, spec)`.
Benchmarks: `int8_variants(...)` and `table_c_rows(...)`.
"""
from __future__ import annotations

from .api import DEFAULT_THRESHOLD_PX_256, ENGINES, Int8Options, quantize_int8
from .calibration import CalibrationSet, load_calibration
from .report import EngineResult, Int8Report

__all__ = ["DEFAULT_THRESHOLD_PX_256", "ENGINES", "CalibrationSet", "EngineResult", "Int8Options", "Int8Report",
           "load_calibration", "quantize_int8"]
