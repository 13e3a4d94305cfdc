"""Parameters and multiply-accumulates of an ONNX graph, from its shapes.

Counts the layers that dominate CPU time: Conv, ConvTranspose, Gemm and MatMul (element-wise
ops, pooling and softmax are left out, as is usual for MAC counts). Shapes come from
`onnx.shape_inference`; a symbolic dimension (a dynamic batch) counts as 1.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

COUNTED_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")
_FLOAT_TYPES = {1, 10, 11, 16}  # FLOAT, FLOAT16, DOUBLE, BFLOAT16


@dataclass(frozen=True)
class GraphCost:
    params: int
    macs: int
    macs_by_op: dict[str, int] = field(default_factory=dict)
    unknown_shapes: tuple[str, ...] = ()  # nodes skipped because a shape was not inferred

    @property
    def gflops(self) -> float:
        """2 flops per MAC, in units of 1e9."""
        return 2.0 * self.macs / 1e9


def _dims(type_proto) -> tuple[int, ...] | None:
    tensor = type_proto.tensor_type
    if not tensor.HasField("shape"):
        return None
    out = []
    for d in tensor.shape.dim:
        out.append(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else 1)
    return tuple(out)


def _shapes(model) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {}
    graph = model.graph
    for init in graph.initializer:
        shapes[init.name] = tuple(init.dims)
    for vi in list(graph.input) + list(graph.value_info) + list(graph.output):
        dims = _dims(vi.type)
        if dims is not None:
            shapes.setdefault(vi.name, dims)
    return shapes


def _attr(node, name, default):
    for a in node.attribute:
        if a.name == name:
            return a.i if a.type == a.INT else list(a.ints) if a.ints else default
    return default


def node_macs(node, shapes: dict[str, tuple[int, ...]]) -> int | None:
    """MACs of one node, None when a needed shape is unknown."""
    op = node.op_type
    if op == "Conv":
        w, y = shapes.get(node.input[1]), shapes.get(node.output[0])
        if w is None or y is None:
            return None
        return math.prod(y) * math.prod(w[1:])  # each output: Cin/group x kernel
    if op == "ConvTranspose":
        x, w = shapes.get(node.input[0]), shapes.get(node.input[1])
        if x is None or w is None:
            return None
        return math.prod(x) * math.prod(w[1:])  # each input: (Cout/group) x kernel
    if op == "Gemm":
        a, b = shapes.get(node.input[0]), shapes.get(node.input[1])
        if a is None or b is None or len(a) != 2 or len(b) != 2:
            return None
        m, k = (a[1], a[0]) if _attr(node, "transA", 0) else a
        n = b[0] if _attr(node, "transB", 0) else b[1]
        return m * n * k
    if op == "MatMul":
        a, b = shapes.get(node.input[0]), shapes.get(node.input[1])
        if a is None or b is None:
            return None
        a2 = (1,) + a if len(a) == 1 else a
        b2 = b + (1,) if len(b) == 1 else b
        m, k, n = a2[-2], a2[-1], b2[-1]
        batch_a, batch_b = a2[:-2], b2[:-2]
        width = max(len(batch_a), len(batch_b))
        batch_a = (1,) * (width - len(batch_a)) + batch_a
        batch_b = (1,) * (width - len(batch_b)) + batch_b
        batch = math.prod(max(x, y) for x, y in zip(batch_a, batch_b))
        return batch * m * k * n
    return 0


def count_params(model) -> int:
    """Elements of floating-point initializers (weights), shape constants excluded."""
    return sum(math.prod(init.dims) for init in model.graph.initializer if init.data_type in _FLOAT_TYPES)


def graph_cost(model_or_path) -> GraphCost:
    """Parameters and Conv/ConvTranspose/Gemm/MatMul MACs of an ONNX model (path or ModelProto)."""
    import onnx

    model = onnx.load(str(model_or_path)) if isinstance(model_or_path, (str, Path)) else model_or_path
    inferred = onnx.shape_inference.infer_shapes(model)
    shapes = _shapes(inferred)
    by_op: dict[str, int] = {}
    unknown = []
    for node in inferred.graph.node:
        if node.op_type not in COUNTED_OPS:
            continue
        macs = node_macs(node, shapes)
        if macs is None:
            unknown.append(node.name or node.op_type)
            continue
        by_op[node.op_type] = by_op.get(node.op_type, 0) + macs
    return GraphCost(params=count_params(model), macs=sum(by_op.values()), macs_by_op=by_op,
                     unknown_shapes=tuple(unknown))
