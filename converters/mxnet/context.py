"""What an operator translator sees: the MXNet node, its typed attributes, its input tensors.

Each translator computes its outputs' shapes itself and checks the shapes it depends on, so
errors name the MXNet node and operator. The operator registry lives here too.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from .builder import GraphBuilder, Tensor
from .errors import MXNetShapeError, UnsupportedOperatorError
from .symbol import Attrs, Node

Translator = Callable[["OpContext"], list[Tensor]]
OPS: dict[str, Translator] = {}
# Inputs an operator ignores at inference (loss labels): they need no value in the params file.
IGNORED_INPUTS: dict[str, set[int]] = {}


def register(*names: str, ignores: tuple[int, ...] = ()) -> Callable[[Translator], Translator]:
    def deco(fn: Translator) -> Translator:
        for name in names:
            OPS[name] = fn
            if ignores:
                IGNORED_INPUTS[name] = set(ignores)
        return fn
    return deco


# Operators whose outputs MXNet names differently (their FListOutputNames).
_OUTPUT_SUFFIXES = {"MakeLoss": ("loss",), "make_loss": ("loss",)}
# Operators with hidden outputs and no FListOutputNames: MXNet numbers even the one visible output
# (box_nms keeps a second, hidden index output: its visible output is `<name>_output0`).
_ALL_OUTPUTS = {"_contrib_box_nms": 2, "_contrib_box_non_maximum_suppression": 2}


def output_names(node: Node, n_outputs: int) -> list[str]:
    """MXNet's own output names (Symbol.list_outputs): `<name>_output`, or `_output<i>` for several."""
    if node.op in _OUTPUT_SUFFIXES:
        return [f"{node.name}_{s}" for s in _OUTPUT_SUFFIXES[node.op][:n_outputs]]
    if max(n_outputs, _ALL_OUTPUTS.get(node.op, 1)) == 1:
        return [f"{node.name}_output"]
    return [f"{node.name}_output{i}" for i in range(n_outputs)]


class OpContext:
    def __init__(self, b: GraphBuilder, node: Node, ins: list[Tensor], n_outputs: int = 1):
        self.b = b
        self.node = node
        self.a = Attrs(node)
        self.ins = ins
        self.out_names = output_names(node, n_outputs)

    @property
    def x(self) -> Tensor:
        return self.ins[0]

    # ---- errors that name the node --------------------------------------------------------
    def shape_error(self, message: str) -> MXNetShapeError:
        return MXNetShapeError(f"{self.node.op} node {self.node.name!r}: {message}",
                               node=self.node.name, operator=self.node.op)

    def unsupported(self, what: str) -> UnsupportedOperatorError:
        return UnsupportedOperatorError(
            f"{self.node.op} node {self.node.name!r}: {what} is not supported by the MXNet->ONNX "
            "translator; re-export the model without it or extend edgepose.converters.mxnet.ops",
            operator=self.node.op, node=self.node.name)

    def need_inputs(self, low: int, high: int | None = None) -> None:
        high = low if high is None else high
        if not low <= len(self.ins) <= high:
            want = str(low) if low == high else f"{low}..{high}"
            raise self.shape_error(f"expects {want} inputs, got {len(self.ins)}")

    def const_input(self, i: int, what: str) -> np.ndarray:
        t = self.ins[i]
        if t.value is None:
            raise self.unsupported(f"a computed (non-parameter) {what}")
        return t.value

    # ---- emission ---------------------------------------------------------------------------
    def emit(self, op_type: str, inputs: list, shape, *, out: int | None = None, dtype=np.float32,
             **attrs) -> Tensor:
        """Add one ONNX node; `out=i` names its result as the MXNet node's i-th output."""
        hint = self.out_names[out] if out is not None else f"{self.node.name}__{op_type.lower()}"
        name = self.b.unique(hint)
        self.b.node(op_type, inputs, [name], name=f"{self.node.name}/{op_type}", **attrs)
        return Tensor(name, tuple(int(d) for d in shape), np.dtype(dtype))

    def emit_multi(self, op_type: str, inputs: list, shapes: list, **attrs) -> list[Tensor]:
        names = [self.b.unique(f"{self.node.name}__{op_type.lower()}{i}") for i in range(len(shapes))]
        self.b.node(op_type, inputs, names, name=f"{self.node.name}/{op_type}", **attrs)
        return [Tensor(n, tuple(int(d) for d in s)) for n, s in zip(names, shapes)]

    def const(self, value, hint: str, dtype=np.float32) -> Tensor:
        return self.b.const(value, f"{self.node.name}__{hint}", dtype)

    def ints(self, values, hint: str) -> Tensor:
        return self.b.ints(values, f"{self.node.name}__{hint}")
