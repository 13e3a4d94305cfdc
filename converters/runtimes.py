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


class TFLiteRunner:
    """The TFLite reference interpreter (ai_edge_litert), one thread, tensors by name."""

    name = "tflite"

    def __init__(self, path: str | Path, *, threads: int = 1) -> None:
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as exc:
            raise BackendError(
                "TFLite parity needs the ai-edge-litert package: pip install 'edgepose[convert]'") from exc
        self.path = Path(path)
        if not self.path.is_file():
            raise ModelFileError(f"TFLite model not found: {self.path}")
        try:
            self._interp = Interpreter(model_path=str(self.path), num_threads=threads)
            self._interp.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            customs = _custom_ops(self.path)
            if customs:  # a valid file whose custom operators LiteRT has no kernel for (MediaPipe's own)
                raise UnsupportedOperatorError(
                    f"{self.path.name} carries custom operator(s) {', '.join(customs)} that LiteRT, the reference "
                    f"the conversion is checked against, cannot run ({first}); the file itself is a valid TFLite "
                    "model. Run it where those operators are registered (e.g. MediaPipe) or cut the graph "
                    "before them", operator=customs[0]) from None
            raise ModelFileError(f"{self.path.name} is not a TFLite model the interpreter can load: {first}") from None
        self._in = self._interp.get_input_details()
        self._out = self._interp.get_output_details()
        self._shapes = {d["index"]: tuple(int(v) for v in d["shape"]) for d in self._in}

    @property
    def inputs(self) -> list[TensorInfo]:
        return [TensorInfo(d["name"], tuple(int(v) for v in d["shape"]), np.dtype(d["dtype"]).name,
                           "NHWC" if len(d["shape"]) == 4 else None) for d in self._in]

    @property
    def outputs(self) -> list[TensorInfo]:
        return [TensorInfo(d["name"], tuple(int(v) for v in d["shape"]), np.dtype(d["dtype"]).name)
                for d in self._out]

    input_names = property(lambda self: [d["name"] for d in self._in])
    output_names = property(lambda self: [d["name"] for d in self._out])

    def op_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for op in self._interp._get_ops_details():  # the only op listing the interpreter offers
            counts[op["op_name"]] = counts.get(op["op_name"], 0) + 1
        return counts

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        interp = self._interp
        for d in self._in:
            if d["name"] not in feeds:
                raise ShapeError(f"no feed for input {d['name']!r}; inputs are {self.input_names}")
            x = np.ascontiguousarray(feeds[d["name"]], dtype=d["dtype"])
            if tuple(x.shape) != self._shapes[d["index"]]:  # e.g. another batch size
                interp.resize_tensor_input(d["index"], list(x.shape))
                interp.allocate_tensors()
                self._shapes[d["index"]] = tuple(x.shape)
            interp.set_tensor(d["index"], x)
        interp.invoke()
        return {d["name"]: np.array(interp.get_tensor(d["index"]), dtype=np.float32, copy=True) for d in self._out}


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
