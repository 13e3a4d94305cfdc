"""LiteRT (TensorFlow Lite) backend: runs a .tflite file as it ships, XNNPACK, one thread by default.

Optional (`pip install ai-edge-litert`): the reference runtime for MediaPipe's models, and on
some CPUs the fastest engine for them. A .tflite file carries no edgepose metadata, so the
metadata comes from a sidecar `<model>.tflite.json`, a preset or the Predictor's fields.
Inputs are NHWC, as the file declares. Batch 1 per invoke: a larger batch runs item by item.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ..errors import BackendError, ModelFileError, ShapeError
from .base import Backend, TensorInfo


# edgepose's names for LiteRT's op resolvers (ai_edge_litert.interpreter.OpResolverType members).
KERNELS = {"xnnpack": "AUTO", "builtin": "BUILTIN_WITHOUT_DEFAULT_DELEGATES"}


class LiteRTBackend(Backend):
    name = "litert"

    def __init__(self, path: str | Path, *, threads: int = 1, kernels: str = "xnnpack") -> None:
        """kernels: "xnnpack" (LiteRT's default: its XNNPACK delegate takes the ops it can) or "builtin"
        (TFLite's own kernels only), two correct FP32 implementations whose gap is the noise floor a
        conversion's parity check must allow."""
        super().__init__(path, threads=threads)
        if kernels not in KERNELS:
            raise BackendError(f"unknown LiteRT kernels {kernels!r}; use one of {', '.join(KERNELS)}")
        try:
            from ai_edge_litert.interpreter import Interpreter, OpResolverType
        except ImportError as exc:
            raise BackendError("the litert backend needs the ai-edge-litert package; "
                               "install it with `pip install ai-edge-litert`") from exc
        self.kernels = kernels
        try:
            self._interp = Interpreter(model_path=str(self.path), num_threads=self.threads,
                                       experimental_op_resolver_type=getattr(OpResolverType, KERNELS[kernels]))
            self._interp.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
            raise ModelFileError(f"{self.path} is not a model LiteRT can load ({first})") from None
        ins, outs = self._interp.get_input_details(), self._interp.get_output_details()
        self._in_index = {d["name"]: d["index"] for d in ins}
        self._out_index = {d["name"]: d["index"] for d in outs}
        self._inputs = [TensorInfo(d["name"], tuple(int(v) for v in d["shape"]), np.dtype(d["dtype"]).name,
                                   "NHWC" if len(d["shape"]) == 4 else None) for d in ins]
        self._outputs = [TensorInfo(d["name"], tuple(int(v) for v in d["shape"]), np.dtype(d["dtype"]).name)
                         for d in outs]

    @property
    def metadata(self) -> str | None:
        return None

    def run(self, feeds: Mapping[str, np.ndarray], outputs: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        names = [t.name for t in self.wanted_outputs(outputs)]
        arrays = {}
        for t in self._inputs:
            if t.name not in feeds:
                raise ShapeError(f"no feed for input {t.name!r}; the model's inputs are {self.input_names}")
            x = np.ascontiguousarray(feeds[t.name], dtype=np.dtype(t.dtype))
            if x.ndim != len(t.shape) or tuple(x.shape[1:]) != tuple(t.shape[1:]):
                raise ShapeError(f"input {t.name!r} of {self.path.name} expects shape (N, "
                                 f"{', '.join(map(str, t.shape[1:]))}), got {tuple(x.shape)}")
            arrays[t.name] = x
        n = next(iter(arrays.values())).shape[0] if arrays else 1
        parts = [self._invoke({k: v[i:i + 1] for k, v in arrays.items()}, names) for i in range(n)]
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    def _invoke(self, feeds: Mapping[str, np.ndarray], outputs: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        try:
            for name, x in feeds.items():
                self._interp.set_tensor(self._in_index[name], x)
            self._interp.invoke()
        except (ValueError, RuntimeError) as exc:
            raise BackendError(f"LiteRT failed to run {self.path.name}: {exc}") from None
        names = self._out_index if outputs is None else outputs
        return {name: self._interp.get_tensor(self._out_index[name]).copy() for name in names}
