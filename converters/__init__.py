"""Build-time converters: PyTorch / MXNet / TFLite / ONNX to simplified ONNX and MNN, with parity checks.

    from edgepose.converters import convert
    report = convert("model.onnx", output_dir="out", fp16=True)
    print(report.format_table())

Names resolve lazily, so importing this package loads neither torch nor onnx.
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "convert": "pipeline",
    "ConvertOptions": "options",
    "plan_stages": "pipeline",
    "Stage": "pipeline",
    "ConversionReport": "report",
    "StageResult": "report",
    "ParityResult": "report",
    "OutputParity": "report",
    "Tolerance": "report",
    "TOLERANCES": "parity",
    "torch_to_onnx": "stages",
    "simplify_onnx": "stages",
    "onnx_to_mnn": "stages",
    "tflite_to_mnn": "stages",
    "load_weights": "checkpoint",
    "model_info": "info",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
