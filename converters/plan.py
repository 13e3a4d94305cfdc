"""What a conversion does, as data: `Stage`s that each turn one artifact into one file.

Why a separate module: the source kinds (converters.sources.SOURCE_KINDS) name their plan here,
and the pipeline runs whatever plan it is given; neither needs the other's internals. Each
source kind's plan is one function below; INT8 (converters.quantize.stage) adds its own stages.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from edgepose.errors import ConversionError
from edgepose.spec import ModelSpec

from . import stages as st
from .metadata import METADATA_KEY
from .options import ConvertOptions


@dataclass
class Artifact:
    """A model the pipeline can run: the source or a file a stage wrote."""

    key: str
    kind: str  # the runtime that runs it: torch | onnx | mnn | tflite (mxnet: none here)
    target: Any  # a path, or an nn.Module for kind "torch"
    label: str
    runner: Any = None
    outputs: list[dict[str, np.ndarray]] | None = None  # on the conversion's input sets
    tools: tuple[str, ...] = ()


@dataclass
class Stage:
    """One transformation: parent artifact -> a new file, checked at `precision`'s tolerance.

    build(parent, dst, spec) writes the file at dst (embedding spec) and returns report details.
    A stage whose parity is checked elsewhere (MXNet, in its own environment) sets check=False.
    verify(parent, runner, final, result) replaces the element-wise parity check with the stage's
    own (INT8: keypoints on held-out photos); it fills `result` and returns whether to keep the file.
    keep_going: a failure of this stage does not stop the stages after it (INT8 engines are
    alternatives); the caller that planned it decides what the failure means.
    """

    name: str
    parent: str
    key: str
    filename: str
    kind: str
    precision: str
    build: Callable[[Artifact, Path, ModelSpec | None], Mapping[str, Any]]
    tools: tuple[str, ...] = ()
    check: bool = True
    verify: Callable[..., bool] | None = None
    keep_going: bool = False


# --- plans, one per source kind ------------------------------------------------------------------
def plan_torch(src, opts: ConvertOptions) -> list[Stage]:
    first = Stage("torch->onnx", "source", "onnx", f"{src.stem}.onnx", "onnx", "fp32", _build_torch_onnx(opts),
                  tools=("torch", "onnx"))
    return [first, *_onnx_tail(src.stem, "onnx", opts)]


def plan_mxnet(src, opts: ConvertOptions) -> list[Stage]:
    first = Stage("mxnet->onnx", "source", "onnx", f"{src.stem}.onnx", "onnx", "fp32", _build_mxnet_onnx(src, opts),
                  tools=("mxnet", "onnx"), check=False)
    return [first, *_onnx_tail(src.stem, "onnx", opts)]


def plan_onnx(src, opts: ConvertOptions) -> list[Stage]:
    return _onnx_tail(src.stem, "source", opts)


def plan_tflite(src, opts: ConvertOptions) -> list[Stage]:
    """A TFLite graph with DENSIFY ops (sparse weights) is densified first: MNN has no DENSIFY."""
    stem, plan, parent = src.stem, [], "source"
    if _tflite_needs_densify(src.path):
        plan.append(Stage("tflite->dense", "source", "dense", f"{stem}.dense.tflite", "tflite", "fp32",
                          _build_densify, tools=("ai-edge-litert",)))
        parent = "dense"
    return plan + _mnn_stages("tflite", "TFLITE", parent, stem, opts)


def plan_mnn(src, opts: ConvertOptions) -> list[Stage]:
    """An MNN file is already deployable: only its FP16 copy (and INT8, planned by the caller) remain."""
    if not opts.fp16:
        return []
    return [Stage("mnn->mnn-fp16", "source", "mnn_fp16", f"{src.stem}.fp16.mnn", "mnn", "fp16",
                  _build_mnn("MNN", True, opts), tools=("MNN",))]


def _onnx_tail(stem: str, parent: str, opts: ConvertOptions) -> list[Stage]:
    plan = []
    if opts.simplify:
        plan.append(Stage("onnxsim", parent, "sim", f"{stem}.sim.onnx", "onnx", "fp32", _build_simplify(opts),
                          tools=("onnxsim", "onnx")))
        parent = "sim"
    return plan + _mnn_stages("onnx", "ONNX", parent, stem, opts)


def _mnn_stages(kind: str, framework: str, parent: str, stem: str, opts: ConvertOptions) -> list[Stage]:
    """<kind>->mnn (FP32) and, with fp16, <kind>->mnn-fp16, both converted from `parent`."""
    plan = [Stage(f"{kind}->mnn", parent, "mnn", f"{stem}.mnn", "mnn", "fp32", _build_mnn(framework, False, opts),
                  tools=("MNN",))]
    if opts.fp16:
        plan.append(Stage(f"{kind}->mnn-fp16", parent, "mnn_fp16", f"{stem}.fp16.mnn", "mnn", "fp16",
                          _build_mnn(framework, True, opts), tools=("MNN",)))
    return plan


def check_plan(plan: Sequence[Stage]) -> None:
    """Every stage reads an artifact an earlier stage (or the source) provides."""
    keys = {"source"}
    for stage in plan:
        if stage.parent not in keys:
            raise ValueError(f"stage {stage.name!r} reads artifact {stage.parent!r}, which no earlier stage "
                             f"writes (available: {sorted(keys)})")
        keys.add(stage.key)


def _tflite_needs_densify(path: Path) -> bool:
    """Whether the TFLite graph has DENSIFY ops; first, every operator MNN cannot take is named
    (UnsupportedOperatorError), before any runtime or tool starts."""
    from . import tflite_densify, tflite_ops

    tflite_ops.check_mnn_can_convert(path, rewritten={tflite_densify.DENSIFY})
    return tflite_densify.has_densify(path)


# --- stage builders ---------------------------------------------------------------------------------
def _build_torch_onnx(opts: ConvertOptions):
    def build(parent: Artifact, dst: Path, spec: ModelSpec | None) -> Mapping[str, Any]:
        runner = parent.runner
        shape = runner.inputs[0].shape  # the parity shape: batch 2 if dynamic, else the requested batch
        batch = 1 if opts.dynamic_batch else shape[0]
        return st.torch_to_onnx(parent.target, dst, input_shape=(batch, *shape[1:]), input_name=runner.input_names[0],
                                output_names=runner.output_names, opset=opts.opset,
                                dynamic_batch=opts.dynamic_batch, spec=spec)
    return build


def _build_simplify(opts: ConvertOptions):
    def build(parent: Artifact, dst: Path, spec: ModelSpec | None) -> Mapping[str, Any]:
        model = st.load_onnx(parent.target)
        fixed = fixed_shapes(st.input_shapes(model), opts, spec)
        return st.simplify_onnx(parent.target, dst, spec=spec, overwrite_input_shapes=fixed)
    return build


def _build_mnn(framework: str, fp16: bool, opts: ConvertOptions):
    fn = {"ONNX": st.onnx_to_mnn, "TFLITE": st.tflite_to_mnn, "MNN": st.mnn_to_mnn}[framework]

    def build(parent: Artifact, dst: Path, spec: ModelSpec | None) -> Mapping[str, Any]:
        return fn(parent.target, dst, fp16=fp16, spec=spec, timeout=opts.timeout)
    return build


def _build_densify(parent: Artifact, dst: Path, spec: ModelSpec | None) -> Mapping[str, Any]:
    """DENSIFY ops folded into constants (MNN has no DENSIFY).

    The file stays in the output folder, like every stage's file: it is what the MNN files were
    converted from and checked against, so a later check or benchmark can run it in LiteRT. It
    carries no edgepose metadata (the MNN stages after it embed the spec).
    """
    from .tflite_densify import densify_tflite

    return densify_tflite(parent.target, dst)


def _build_mxnet_onnx(src, opts: ConvertOptions):
    """The MXNet hook: converters.mxnet.mxnet_to_onnx(symbol, params, onnx_path, input_shape=...).

    The translator needs no MXNet; its numbers are checked against real MXNet by its own tests
    (MXNet lives in another environment), so this stage carries no parity check here.
    """
    def build(parent: Artifact, dst: Path, spec: ModelSpec | None) -> Mapping[str, Any]:
        try:
            from .mxnet import mxnet_to_onnx
        except ImportError as exc:
            raise ConversionError(f"MXNet conversion is not available in this install ({exc})") from None
        shape = opts.input_shape
        if shape is None and spec is not None:  # a pose preset/card knows its input
            shape = spec.input_shape()
        if shape is None:
            raise ConversionError("MXNet models need an input shape: --input-shape 1,3,H,W (or a --preset)")
        kwargs: dict[str, Any] = {"input_shape": shape}
        if spec is not None:
            kwargs["metadata"] = {METADATA_KEY: spec.to_json()}
            if spec.input_name:
                kwargs["input_name"] = spec.input_name
        mxnet_to_onnx(str(src.path), str(src.params), str(dst), **kwargs)
        model = st.load_onnx(dst)
        return {"format": "onnx", "nodes": st.node_count(model), "translator": "edgepose.converters.mxnet"}
    return build


def fixed_shapes(graph_shapes: Mapping[str, Sequence[Any]], opts: ConvertOptions,
                 spec: ModelSpec | None = None) -> dict[str, list[int]] | None:
    """onnxsim overwrite_input_shapes: only when a non-batch dim is dynamic (or a static batch is asked for)."""
    out = {}
    for name, dims in graph_shapes.items():
        dynamic = [i for i, d in enumerate(dims) if not (isinstance(d, int) and d > 0)]
        if not dynamic or (dynamic == [0] and opts.dynamic_batch):
            continue
        if dynamic == [0]:  # a static batch was asked for
            out[name] = [1, *dims[1:]]
        elif opts.input_shape is not None and len(opts.input_shape) == len(dims):
            out[name] = list(opts.input_shape)
        elif spec is not None and len(dims) == 4 and name == spec.input_name:
            out[name] = list(spec.input_shape())
        else:
            raise ConversionError(f"input {name!r} has dynamic dimensions {tuple(dims)}; pass --input-shape")
    return out or None
