"""A small ONNX graph builder that tracks every tensor's static shape.

Why track shapes ourselves instead of only calling onnx.shape_inference: MXNet's Reshape
codes, Deconvolution's target_shape and Pooling's 'full' convention must be resolved while
translating, and a shape that does not fit (wrong channel count, FC weight mismatch) must be
reported at the MXNet node that broke, not somewhere downstream in ONNX.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

_ONNX_DTYPES = {
    np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.float64): TensorProto.DOUBLE,
    np.dtype(np.float16): TensorProto.FLOAT16, np.dtype(np.int64): TensorProto.INT64,
    np.dtype(np.int32): TensorProto.INT32, np.dtype(np.int8): TensorProto.INT8,
    np.dtype(np.uint8): TensorProto.UINT8, np.dtype(np.bool_): TensorProto.BOOL,
}


def onnx_dtype(dtype) -> int:
    return _ONNX_DTYPES[np.dtype(dtype)]


@dataclass
class Tensor:
    """A value in the graph being built: its ONNX name, static shape, dtype, and value if constant.

    `missing` marks a variable of the symbol that the params file lacks (legal only where an
    operator ignores it, e.g. SoftmaxOutput's label).
    """

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype = np.dtype(np.float32)
    value: np.ndarray | None = None
    missing: bool = False


class GraphBuilder:
    """Collects nodes and initializers; initializers of parameters are added on first use."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: dict[str, onnx.TensorProto] = {}
        self.used: set[str] = set()

    def unique(self, hint: str) -> str:
        name, k = hint, 1
        while name in self.used:
            name, k = f"{hint}_{k}", k + 1
        self.used.add(name)
        return name

    def reserve(self, name: str) -> None:
        self.used.add(name)

    def use(self, t: Tensor) -> str:
        """The ONNX name of `t`, adding it as an initializer if it is a constant not yet stored."""
        if t.value is not None and t.name not in self.initializers:
            # A 0-d scalar is stored with shape (1,) (np.ascontiguousarray), which broadcasts the same.
            # Kept on purpose: with true scalars MNN's converter fuses MXNet's erf-GELU into its own
            # approximate GELU (measured 1.2e-4 relative error against 6e-8). A translator that needs a
            # real scalar (Gather's index) reshapes explicitly.
            self.initializers[t.name] = numpy_helper.from_array(np.ascontiguousarray(t.value), t.name)
        return t.name

    def const(self, value, hint: str, dtype=np.float32) -> Tensor:
        arr = np.asarray(value, dtype=dtype)
        t = Tensor(self.unique(hint), tuple(arr.shape), arr.dtype, arr)
        self.use(t)
        return t

    def ints(self, values, hint: str) -> Tensor:
        return self.const(np.asarray(values, np.int64).reshape(-1), hint, np.int64)

    def node(self, op_type: str, inputs: list[Tensor | str | None], outputs: list[str], *,
             name: str, domain: str = "", **attrs) -> None:
        names = []
        for t in inputs:
            if t is None:
                names.append("")
            elif isinstance(t, Tensor):
                names.append(self.use(t))
            else:
                names.append(t)
        self.nodes.append(helper.make_node(op_type, names, outputs, name=self.unique(name),
                                           domain=domain or None, **attrs))
