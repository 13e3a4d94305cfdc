"""ONNX Runtime backend: the second backend, one intra-op thread by default."""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ..errors import BackendError, ModelFileError, ShapeError
from .base import Backend, TensorInfo

METADATA_KEY = "edgepose"
_ORT_TYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(int64)": "int64",
              "tensor(int32)": "int32", "tensor(uint8)": "uint8", "tensor(int8)": "int8"}


class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"

    def __init__(self, path: str | Path, *, threads: int = 1) -> None:
        super().__init__(path, threads=threads)
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise BackendError(
                "the onnxruntime backend needs the onnxruntime package; "
                "install it with `pip install 'edgepose[ort]'`") from exc
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # ORT raises its own Fail/InvalidGraph/... types
            first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
            raise ModelFileError(
                f"{self.path} is not a model ONNX Runtime can load ({first}); "
                "check that it is a valid .onnx file") from None
        meta = self._session.get_modelmeta()
        self._metadata = meta.custom_metadata_map.get(METADATA_KEY)
        self._inputs = [self._describe(i) for i in self._session.get_inputs()]
        self._outputs = [self._describe(o) for o in self._session.get_outputs()]
        self._output_names = [o.name for o in self._outputs]

    @staticmethod
    def _describe(node) -> TensorInfo:
        shape = tuple(d if isinstance(d, int) else (d or None) for d in node.shape)
        return TensorInfo(node.name, shape, _ORT_TYPES.get(node.type, node.type), None)

    @property
    def metadata(self) -> str | None:
        return self._metadata

    def run(self, feeds: Mapping[str, np.ndarray], outputs: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        names = self._output_names if outputs is None else [t.name for t in self.wanted_outputs(outputs)]
        prepared = {}
        for t in self._inputs:
            if t.name not in feeds:
                raise ShapeError(f"no feed for input {t.name!r}; the model's inputs are {self.input_names}")
            x = np.ascontiguousarray(feeds[t.name], dtype=np.dtype(t.dtype) if t.dtype in _ORT_TYPES.values() else None)
            fixed = [(i, d) for i, d in enumerate(t.shape) if isinstance(d, int)]
            if x.ndim != len(t.shape) or any(x.shape[i] != d for i, d in fixed):
                raise ShapeError(
                    f"input {t.name!r} of {self.path.name} expects shape {t.shape}, got {tuple(x.shape)}")
            prepared[t.name] = x
        try:
            values = self._session.run(names, prepared)
        except Exception as exc:
            raise BackendError(f"ONNX Runtime failed to run {self.path.name}: {exc}") from None
        return dict(zip(names, values))
