"""OpenVINO backend: reads .onnx, .tflite (and OpenVINO IR .xml) directly; CPU, latency hint, one stream.

Optional (`pip install 'edgepose[openvino]'`). On some x86 CPUs it is the fastest engine for a model
(measured per model and CPU by `backend="auto"`). Metadata: an ONNX file's edgepose entry when the
`onnx` package is installed to read it, else a sidecar `<model>.json`; .tflite files carry none.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ..errors import BackendError, ModelFileError, ShapeError
from .base import Backend, TensorInfo

METADATA_KEY = "edgepose"


class OpenVINOBackend(Backend):
    name = "openvino"

    def __init__(self, path: str | Path, *, threads: int = 1) -> None:
        super().__init__(path, threads=threads)
        try:
            import openvino as ov
        except ImportError as exc:
            raise BackendError("the openvino backend needs the openvino package; "
                               "install it with `pip install 'edgepose[openvino]'`") from exc
        core = ov.Core()
        try:
            model = core.read_model(str(self.path))
            # f32 explicitly: on CPUs with AVX512_BF16 or AMX, OpenVINO's CPU plugin otherwise runs
            # in bf16 by default (measured here on Zen 4: BlazePose keypoints off by 2-4 px).
            compiled = core.compile_model(model, "CPU", {"INFERENCE_NUM_THREADS": self.threads,
                                                         "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1,
                                                         "INFERENCE_PRECISION_HINT": "f32"})
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
            raise ModelFileError(f"{self.path} is not a model OpenVINO can load ({first})") from None
        self._request = compiled.create_infer_request()
        layout = "NHWC" if self.path.suffix.lower() == ".tflite" else None
        self._inputs = [TensorInfo(p.get_any_name(), _shape(p.get_partial_shape()), _dtype(p.get_element_type()),
                                   layout if len(p.get_partial_shape()) == 4 else None) for p in model.inputs]
        self._outputs = [TensorInfo(p.get_any_name(), _shape(p.get_partial_shape()), _dtype(p.get_element_type()))
                         for p in model.outputs]
        self._static_batch = all(isinstance(t.shape[0], int) and t.shape[0] == 1 for t in self._inputs if t.shape)
        self._metadata = _onnx_metadata(self.path) if self.path.suffix.lower() == ".onnx" else None

    @property
    def metadata(self) -> str | None:
        return self._metadata

    def run(self, feeds: Mapping[str, np.ndarray], outputs: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        wanted = {t.name for t in self.wanted_outputs(outputs)}
        arrays = {}
        for t in self._inputs:
            if t.name not in feeds:
                raise ShapeError(f"no feed for input {t.name!r}; the model's inputs are {self.input_names}")
            x = np.ascontiguousarray(feeds[t.name], dtype=np.dtype(t.dtype))
            fixed = [(i, d) for i, d in enumerate(t.shape) if isinstance(d, int) and i > 0]
            if x.ndim != len(t.shape) or any(x.shape[i] != d for i, d in fixed):
                raise ShapeError(f"input {t.name!r} of {self.path.name} expects shape {t.shape}, got {tuple(x.shape)}")
            arrays[t.name] = x
        n = next(iter(arrays.values())).shape[0] if arrays else 1
        if n > 1 and self._static_batch:
            parts = [self._infer({k: v[i:i + 1] for k, v in arrays.items()}, wanted) for i in range(n)]
            return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        return self._infer(arrays, wanted)

    def _infer(self, feeds: Mapping[str, np.ndarray], wanted: set[str]) -> dict[str, np.ndarray]:
        try:
            result = self._request.infer(dict(feeds))
        except RuntimeError as exc:
            raise BackendError(f"OpenVINO failed to run {self.path.name}: {exc}") from None
        return {t.name: np.array(result[i], copy=True) for i, t in enumerate(self._outputs) if t.name in wanted}


def _shape(partial) -> tuple[int | None, ...]:
    return tuple(d.get_length() if d.is_static else None for d in partial)


def _dtype(element_type) -> str:
    name = element_type.get_type_name()
    return {"f32": "float32", "f16": "float16", "i64": "int64", "i32": "int32", "u8": "uint8",
            "i8": "int8"}.get(name, name)


def _onnx_metadata(path: Path) -> str | None:
    """The `edgepose` entry of an ONNX file's metadata_props, read off the protobuf wire format
    (ModelProto field 14, entries of key=1 / value=2), so the runtime needs no `onnx` package."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    for field, value in _fields(data):
        if field == 14 and isinstance(value, bytes):
            entry = dict(_fields(value))
            if entry.get(1) == METADATA_KEY.encode() and isinstance(entry.get(2), bytes):
                return entry[2].decode("utf-8", errors="replace")
    return None


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(data: bytes):
    """(field number, int or bytes) of one protobuf message; stops quietly on malformed input."""
    pos = 0
    try:
        while pos < len(data):
            key, pos = _varint(data, pos)
            field, wire = key >> 3, key & 7
            if wire == 0:
                value, pos = _varint(data, pos)
            elif wire == 2:
                size, pos = _varint(data, pos)
                value, pos = data[pos:pos + size], pos + size
            elif wire == 1:
                value, pos = data[pos:pos + 8], pos + 8
            elif wire == 5:
                value, pos = data[pos:pos + 4], pos + 4
            else:
                return
            yield field, value
    except ValueError:
        return
