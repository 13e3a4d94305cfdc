"""Inference backends behind one small interface (`Backend`), imported lazily.

The backend follows the file type unless named explicitly; an unknown name lists the valid
ones. There is no silent fallback from one backend to another.
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from ..errors import BackendError, ModelFileError
from .base import Backend, TensorInfo

_BACKENDS = {
    "mnn": ("edgepose.backends.mnn", "MNNBackend"),
    "onnxruntime": ("edgepose.backends.onnxruntime", "OnnxRuntimeBackend"),
    "litert": ("edgepose.backends.litert", "LiteRTBackend"),
    "openvino": ("edgepose.backends.openvino", "OpenVINOBackend"),
}
_ALIASES = {"ort": "onnxruntime", "onnx": "onnxruntime", "tflite": "litert", "ov": "openvino"}
AUTO = "auto"  # measured per model and CPU: edgepose.backends.auto
_BY_SUFFIX = {".mnn": "mnn", ".onnx": "onnxruntime", ".tflite": "litert"}

__all__ = ["Backend", "TensorInfo", "available_backends", "backend_for", "open_backend"]


def available_backends() -> list[str]:
    return sorted(_BACKENDS) + [AUTO]


def backend_for(path: str | Path, backend: str | None = None) -> str:
    """The backend name for a model file: the explicit choice, else the file's suffix."""
    if backend is not None:
        name = _ALIASES.get(str(backend).lower(), str(backend).lower())
        if name not in _BACKENDS and name != AUTO:
            raise BackendError(
                f"unknown backend {backend!r}; valid backends: {', '.join(available_backends())}")
        return name
    suffix = Path(path).suffix.lower()
    if suffix not in _BY_SUFFIX:
        raise ModelFileError(
            f"cannot tell which backend runs {Path(path).name!r} from its suffix {suffix!r}; "
            f"use a {' or '.join(_BY_SUFFIX)} file or pass backend= one of {', '.join(available_backends())}")
    return _BY_SUFFIX[suffix]


def open_backend(path: str | Path, backend: str | None = None, *, threads: int = 1, **options: Any) -> Backend:
    """Load `path` with the chosen (or suffix-implied) backend."""
    name = backend_for(path, backend)
    if name == AUTO:
        raise BackendError("backend='auto' is measured per model by Predictor / Detector "
                           "(edgepose.backends.auto.choose); open_backend needs a concrete engine: "
                           f"{', '.join(sorted(_BACKENDS))}")
    module_name, class_name = _BACKENDS[name]
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls(path, threads=threads, **options)
