"""The real runtimes the parity checks run: PyTorch, ONNX Runtime, MNN and the TFLite reference.

Each runner has the Backend shape (`inputs`, `outputs`, `input_names`, `output_names`,
`run(feeds) -> {name: array}`). ONNX and MNN files use edgepose's own backends, so parity is
measured through exactly the code the Predictor runs; PyTorch and TFLite get thin wrappers.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from edgepose.backends import TensorInfo, open_backend
from edgepose.backends.litert import LiteRTBackend
from edgepose.errors import BackendError, ModelFileError, ShapeError, UnsupportedOperatorError


class TorchRunner:
    """An nn.Module (or TorchScript module) in eval mode, fed numpy, returning named numpy outputs."""

    name = "torch"

    def __init__(self, module, *, input_shapes: Mapping[str, Sequence[int]], output_names: Sequence[str],
                 label: str = "torch") -> None:
        import torch

        self._torch = torch
        self.module = module.eval()
        self._inputs = [TensorInfo(n, tuple(s), "float32", "NCHW" if len(s) == 4 else None)
                        for n, s in input_shapes.items()]
        self._outputs = [TensorInfo(n, ()) for n in output_names]
        self.label = label

    inputs = property(lambda self: list(self._inputs))
    outputs = property(lambda self: list(self._outputs))
    input_names = property(lambda self: [t.name for t in self._inputs])
    output_names = property(lambda self: [t.name for t in self._outputs])

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        torch = self._torch
        args = [torch.from_numpy(np.ascontiguousarray(feeds[t.name], np.float32)) for t in self._inputs]
        with torch.no_grad():
            out = self.module(*args)
        flat = flatten_outputs(out)
        if len(flat) != len(self._outputs):
            raise BackendError(f"the module returned {len(flat)} outputs, expected {len(self._outputs)}")
        return {t.name: v.detach().cpu().numpy().astype(np.float32, copy=False)
                for t, v in zip(self._outputs, flat)}


def flatten_outputs(out: Any) -> list:
    """A module's outputs as a flat list of tensors: a tensor, nested tuples/lists, or a dict
    (in insertion order, which is how the legacy ONNX exporter flattens it)."""
    return [t for _, t in named_outputs(out)]


def named_outputs(out: Any, prefix: str | None = None) -> list[tuple[str | None, Any]]:
    """(name or None, tensor) pairs; dict keys name their tensors."""
    if isinstance(out, dict):
        return [pair for key, value in out.items() for pair in named_outputs(value, str(key))]
    if isinstance(out, (tuple, list)):
        return [pair for item in out for pair in named_outputs(item)]
    return [(prefix, out)]


class TFLiteRunner(LiteRTBackend):
    """The TFLite reference for parity: edgepose's LiteRT backend (one TFLite runner for runtime,
    converters, benchmarks and tests) plus what a reference needs on top: custom operators named,
    any batch size in one invoke, float32 outputs, and the op counts `edgepose info` prints."""

    name = "tflite"

    def __init__(self, path: str | Path, *, threads: int = 1) -> None:
        path = Path(path)
        if not path.is_file():
            raise ModelFileError(f"TFLite model not found: {path}")
        try:
            super().__init__(path, threads=threads)
        except BackendError as exc:
            raise BackendError("TFLite parity needs the ai-edge-litert package: pip install 'edgepose[convert]'"
                               ) from exc
        except ModelFileError as exc:
            customs = _custom_ops(path)
            if customs:  # a valid file whose custom operators LiteRT has no kernel for (MediaPipe's own)
                raise UnsupportedOperatorError(
                    f"{path.name} carries custom operator(s) {', '.join(customs)} that LiteRT, the reference "
                    f"the conversion is checked against, cannot run ({exc}); the file itself is a valid TFLite "
                    "model. Run it where those operators are registered (e.g. MediaPipe) or cut the graph "
                    "before them", operator=customs[0]) from None
            raise
        self._shapes = {t.name: tuple(t.shape) for t in self._inputs}

    def op_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for op in self._interp._get_ops_details():  # the only op listing the interpreter offers
            counts[op["op_name"]] = counts.get(op["op_name"], 0) + 1
        return counts

    def run(self, feeds: Mapping[str, np.ndarray], outputs: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        names = [t.name for t in self.wanted_outputs(outputs)]
        for t in self._inputs:  # a reference runs the whole batch in one invoke: resize to it
            if t.name in feeds and tuple(np.shape(feeds[t.name])) != self._shapes[t.name]:
                shape = tuple(np.shape(feeds[t.name]))
                self._interp.resize_tensor_input(self._in_index[t.name], list(shape))
                self._interp.allocate_tensors()
                self._shapes[t.name] = shape
        for t in self._inputs:
            if t.name not in feeds:
                raise ShapeError(f"no feed for input {t.name!r}; inputs are {self.input_names}")
        out = self._invoke({t.name: np.ascontiguousarray(feeds[t.name], dtype=np.dtype(t.dtype)) for t in self._inputs},
                           names)
        return {k: np.array(v, dtype=np.float32, copy=True) for k, v in out.items()}


def _custom_ops(path: Path) -> list[str]:
    """Names of the custom operators in a .tflite file (empty if it cannot be read)."""
    from edgepose.errors import EdgePoseError

    from .tflite_model import graph_operators

    try:
        return sorted({name for name, custom in graph_operators(path) if custom})
    except EdgePoseError:
        return []


# The runtimes artifacts run in, by artifact kind: opener(target, threads=, **options) -> runner.
RUNNERS: dict[str, Callable[..., Any]] = {
    "torch": lambda target, *, threads=1, **options: TorchRunner(target, **options),
    "tflite": lambda target, *, threads=1, **options: TFLiteRunner(target, threads=threads),
    "onnx": lambda target, *, threads=1, **options: open_backend(target, "onnxruntime", threads=threads),
    "mnn": lambda target, *, threads=1, **options: open_backend(target, "mnn", threads=threads),
}


def open_runner(kind: str, target: Any, *, threads: int = 1, **options: Any):
    """A runner for an artifact of `kind` (a key of RUNNERS)."""
    try:
        opener = RUNNERS[kind]
    except KeyError:
        raise ValueError(f"unknown artifact kind {kind!r}; known: {', '.join(RUNNERS)}") from None
    return opener(target, threads=threads, **options)
