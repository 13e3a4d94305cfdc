"""Translate an MXNet checkpoint (symbol JSON + params) to an ONNX model, without MXNet.

The walk is one pass over the symbol's nodes in their (topological) order: variables become
the graph input or constant initializers, each operator goes to its translator in
`ops_nn`/`ops_tensor`, and the heads become the graph outputs under MXNet's own output names
(`Symbol.list_outputs()`, e.g. `resnetv1b_dense0_fwd_output`).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import onnx
from onnx import helper

from . import ops_detection, ops_nn, ops_tensor  # noqa: F401  (fill the operator registry)
from .builder import GraphBuilder, Tensor, onnx_dtype
from .context import IGNORED_INPUTS, OPS, OpContext, output_names
from edgepose.errors import ConversionError
from edgepose.files import atomic_path

from .errors import MissingParameterError, MXNetShapeError, UnsupportedOperatorError
from .params import read_params, split_params
from .symbol import Attrs, SymbolGraph, read_symbol

log = logging.getLogger(__name__)

DEFAULT_OPSET = 17
MIN_OPSET = 17  # LayerNormalization, Split/ReduceSum with input axes, Resize as used here
ShapeArg = Sequence[int] | Mapping[str, Sequence[int]]


def mxnet_to_onnx_model(symbol: str | Path | SymbolGraph, params: str | Path | Mapping[str, np.ndarray], *,
                        input_shape: ShapeArg, input_name: str = "data", opset: int = DEFAULT_OPSET,
                        metadata: Mapping[str, str] | None = None,
                        graph_name: str | None = None) -> onnx.ModelProto:
    """An in-memory ONNX model equivalent to the MXNet graph at inference (BatchNorm uses the
    running statistics, Dropout is the identity, loss layers return their prediction).

    `input_shape` is the static shape of the one input named `input_name`, or a mapping
    {name: shape} for several inputs. `params` is a `.params` path or {name: array} as read by
    `read_params` (keys with or without `arg:`/`aux:`). `metadata` goes to metadata_props.
    """
    if opset < MIN_OPSET:
        raise ValueError(f"opset must be >= {MIN_OPSET}, got {opset}")
    graph = symbol if isinstance(symbol, SymbolGraph) else read_symbol(symbol)
    raw = params if isinstance(params, Mapping) else read_params(params)
    args, aux = split_params(dict(raw))
    values = {**args, **aux}
    shapes = _input_shapes(input_shape, input_name)

    variables = {n.name for n in graph.variables()}
    missing_inputs = set(shapes) - variables
    if missing_inputs:
        names = [n.name for n in graph.variables() if n.name not in values]
        raise MXNetShapeError(
            f"input(s) {sorted(missing_inputs)} not found in the symbol; its variables without parameters "
            f"are {names}. Pass input_name=<one of them>")

    b = GraphBuilder()
    produced: dict[int, list[Tensor]] = {}
    graph_inputs: list[Tensor] = []
    live = _live_nodes(graph)
    variables_by_name: dict[str, Tensor] = {}  # MXNet binds same-named variables to one argument
    for node in graph.nodes:
        if node.index not in live:
            continue
        if node.op == "null":
            if node.name not in variables_by_name:
                variables_by_name[node.name] = _variable(b, node.name, shapes, values, graph_inputs)
            produced[node.index] = [variables_by_name[node.name]]
            continue
        fn = OPS.get(node.op)
        if fn is None:
            raise _unsupported(graph, node)
        ins = [_input_tensor(graph, produced, node, src, idx, k) for k, (src, idx) in enumerate(node.inputs)]
        ignored = IGNORED_INPUTS.get(node.op, set())
        for k, t in enumerate(ins):
            if t.missing and k not in ignored:
                raise MissingParameterError(
                    f"{node.op} node {node.name!r} reads variable {t.name!r}, which is neither the input "
                    f"({', '.join(shapes)}) nor in the params file. Check that the params file belongs to "
                    "this symbol, or pass the variable as an input with its shape")
        n_outputs = Attrs(node).int("num_outputs", 1) if node.op in ("SliceChannel", "split") else 1
        produced[node.index] = OPS[node.op](OpContext(b, node, ins, n_outputs))
    outputs = _outputs(b, graph, produced, graph_inputs)
    used = set(b.initializers)
    unused = [k for k in values if k not in used and not any(k == n.name for n in graph_inputs)]
    if unused:
        log.debug("%d parameters unused by the graph: %s", len(unused), unused[:10])

    onnx_graph = helper.make_graph(
        b.nodes, graph_name or "mxnet_graph",
        [helper.make_tensor_value_info(t.name, onnx_dtype(t.dtype), list(t.shape)) for t in graph_inputs],
        [helper.make_tensor_value_info(t.name, onnx_dtype(t.dtype), list(t.shape)) for t in outputs],
        initializer=list(b.initializers.values()))
    model = helper.make_model(onnx_graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="edgepose.converters.mxnet")
    model.ir_version = min(model.ir_version, 8)  # readable by older runtimes and MNN
    if graph.mxnet_version is not None:
        model.doc_string = f"translated from an MXNet {graph.mxnet_version} symbol"
    for key, value in (metadata or {}).items():
        model.metadata_props.add(key=key, value=value)
    _check(model)
    return model


def mxnet_to_onnx(symbol_path: str | Path, params_path: str | Path, onnx_path: str | Path, *,
                  input_shape: ShapeArg, input_name: str = "data", opset: int = DEFAULT_OPSET,
                  metadata: Mapping[str, str] | None = None) -> Path:
    """Translate `symbol_path` + `params_path` and write `onnx_path` atomically; returns the path.

    Nothing is written unless translation and checking succeed; an existing `onnx_path` is only
    replaced by a complete file. The inputs are never overwritten.
    """
    onnx_path = Path(onnx_path)
    for src in (symbol_path, params_path):  # before the (slow) translation, not only at the write
        if Path(src).exists() and onnx_path.exists() and onnx_path.resolve() == Path(src).resolve():
            raise ConversionError(
                f"refusing to overwrite the input {src} with the ONNX model; choose another output path")
    model = mxnet_to_onnx_model(symbol_path, params_path, input_shape=input_shape, input_name=input_name,
                                opset=opset, metadata=metadata, graph_name=Path(symbol_path).name)
    onnx_path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(onnx_path, protect=(symbol_path, params_path), error=ConversionError) as tmp:
        onnx.save(model, tmp)
    log.info("wrote %s (%d nodes)", onnx_path, len(model.graph.node))
    return onnx_path


# ---- helpers ------------------------------------------------------------------------------------------

def _input_shapes(input_shape: ShapeArg, input_name: str) -> dict[str, tuple[int, ...]]:
    shapes = dict(input_shape) if isinstance(input_shape, Mapping) else {input_name: input_shape}
    out = {}
    for name, shape in shapes.items():
        try:
            dims = tuple(int(d) for d in shape)
        except (TypeError, ValueError):
            raise MXNetShapeError(f"input shape for {name!r} must be a sequence of ints, got {shape!r}") from None
        if not dims or any(d <= 0 for d in dims) or any(float(d) != float(s) for d, s in zip(dims, shape)):
            raise MXNetShapeError(f"input shape for {name!r} must be positive integers, got {shape!r}")
        out[name] = dims
    return out


def _live_nodes(graph: SymbolGraph) -> set[int]:
    live, stack = set(), [h for h, _ in graph.heads]
    while stack:
        i = stack.pop()
        if i not in live:
            live.add(i)
            stack.extend(src for src, _ in graph.nodes[i].inputs)
    return live


def _variable(b: GraphBuilder, name: str, shapes: dict, values: dict, graph_inputs: list[Tensor]) -> Tensor:
    b.reserve(name)
    if name in shapes:
        t = Tensor(name, shapes[name])
        graph_inputs.append(t)
        return t
    if name in values:
        v = np.asarray(values[name])
        if v.dtype.kind == "f" and v.dtype != np.float32:
            log.info("parameter %s is %s; stored as float32", name, v.dtype)
            v = v.astype(np.float32)
        return Tensor(name, tuple(v.shape), v.dtype, v)
    return Tensor(name, (), missing=True)


def _input_tensor(graph: SymbolGraph, produced: dict, node, src: int, idx: int, k: int) -> Tensor:
    outs = produced[src]
    if idx >= len(outs):
        other = graph.nodes[src]
        raise UnsupportedOperatorError(
            f"{node.op} node {node.name!r} reads output {idx} of {other.op} node {other.name!r}, "
            f"which the translator does not produce (it gives {len(outs)})", operator=other.op, node=other.name)
    return outs[idx]


def _outputs(b: GraphBuilder, graph: SymbolGraph, produced: dict, graph_inputs: list[Tensor]) -> list[Tensor]:
    outputs, taken = [], {t.name for t in graph_inputs}
    for src, idx in graph.heads:
        node = graph.nodes[src]
        t = _input_tensor(graph, produced, node, src, idx, 0)
        if t.missing:
            raise MissingParameterError(f"output {node.name!r} is a variable missing from the params file")
        want = node.name if node.op == "null" else output_names(node, len(produced[src]))[idx]
        if t.name == want and t.name not in taken and t.value is None:
            outputs.append(t)
        else:
            name = b.unique(want)
            b.node("Identity", [t], [name], name=f"{want}/Identity")
            outputs.append(Tensor(name, t.shape, t.dtype))
        taken.add(outputs[-1].name)
    return outputs


def _check(model: onnx.ModelProto) -> None:
    """Let ONNX's checker and strict shape inference confirm the graph and our static shapes."""
    try:
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise ConversionError(f"the translated ONNX graph failed ONNX's checker: {exc}. "
                              "This is a translator bug; please report it with the symbol file") from None


def _unsupported(graph: SymbolGraph, node) -> UnsupportedOperatorError:
    """One short message: the operator, its node, every other unsupported operator of the graph, the
    closest supported names; the full list is supported_operators() (no 1,200-character lines)."""
    import difflib

    missing = sorted({n.op for n in graph.nodes if n.op != "null" and n.op not in OPS} - {node.op})
    close = difflib.get_close_matches(node.op, list(OPS), n=3, cutoff=0.6)
    return UnsupportedOperatorError(
        f"MXNet operator {node.op!r} (node {node.name!r}) has no ONNX translation"
        + (f"; the graph also uses {', '.join(missing)}, which have none either" if missing else "")
        + (f" (close supported names: {', '.join(close)})" if close else "")
        + f". {len(OPS)} operators are supported: edgepose.converters.mxnet.supported_operators() lists them",
        operator=node.op, node=node.name)


def supported_operators() -> list[str]:
    """Names of the MXNet operators the translator handles (aliases included)."""
    return sorted(OPS)
