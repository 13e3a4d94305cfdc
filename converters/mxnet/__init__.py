"""MXNet / GluonCV checkpoints (`name-symbol.json` + `name-0000.params`) to ONNX, without MXNet.

    from edgepose.converters.mxnet import mxnet_to_onnx
    mxnet_to_onnx("model-symbol.json", "model-0000.params", "model.onnx", input_shape=(1, 3, 224, 224))

Names resolve lazily: importing this package (or its stdlib-only `fixtures` builder) loads no onnx.
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "MissingParameterError": "errors", "MXNetFileError": "errors", "MXNetShapeError": "errors",
    "MXNetSymbolError": "errors",
    "load_ndarrays": "params", "read_params": "params", "split_params": "params",
    "SymbolGraph": "symbol", "read_symbol": "symbol",
    "mxnet_to_onnx": "translate", "mxnet_to_onnx_model": "translate", "supported_operators": "translate",
}

__all__ = ["mxnet_to_onnx", "mxnet_to_onnx_model", "read_params", "read_symbol", "load_ndarrays",
           "split_params", "supported_operators", "SymbolGraph", "MXNetFileError", "MXNetSymbolError",
           "MissingParameterError", "MXNetShapeError"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
