"""The transformations themselves, one function each, every one writing its output atomically.

torch_to_onnx   PyTorch / TorchScript module -> ONNX (legacy TorchScript exporter, opset 17)
simplify_onnx   ONNX -> onnxsim-simplified ONNX
onnx_to_mnn     ONNX -> MNN (FP32, or FP16 weights), native converter in a child process
tflite_to_mnn   TFLite -> MNN, same converter (after converters.tflite_densify for sparse weights)

They embed the given spec (ONNX metadata_props / MNN bizCode) and return a details dict for
the report. Parity is the pipeline's job (converters.pipeline), so each function stays usable alone.
"""
from __future__ import annotations

import contextlib
import inspect
import logging
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any, Iterator, Sequence

from edgepose.errors import ConversionError, ModelFileError
from edgepose.spec import ModelSpec

from . import mnn_native
from .metadata import embed_in_onnx, spec_json

log = logging.getLogger(__name__)

DEFAULT_OPSET = 17


@contextlib.contextmanager
def atomic_path(dst: str | Path) -> Iterator[Path]:
    """A temporary path beside `dst`; renamed to `dst` only if the block finishes without error."""
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".part", dir=dst.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if not tmp.is_file() or tmp.stat().st_size == 0:
            raise ConversionError(f"no output was written for {dst.name}")
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; artifacts get the usual permissions
        os.replace(tmp, dst)
    finally:
        if tmp.exists():
            tmp.unlink()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# --- ONNX helpers ------------------------------------------------------------------------------
def load_onnx(path: str | Path):
    """An ONNX ModelProto, or a ModelFileError that says what is wrong with the file."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"ONNX model not found: {path}")
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # noqa: BLE001 - protobuf raises DecodeError, ValueError, ...
        raise ModelFileError(
            f"{path.name} is not a readable ONNX model ({type(exc).__name__}: {str(exc)[:160]}); "
            "check that the file is complete (not truncated) and really ONNX") from None
    if not model.graph.node:
        raise ModelFileError(f"{path.name} has no graph nodes; it is empty or not an ONNX model")
    try:
        onnx.checker.check_model(model)
    except Exception as exc:  # noqa: BLE001 - onnx.checker.ValidationError and friends
        raise ModelFileError(f"{path.name} is not a valid ONNX model: {str(exc).splitlines()[0][:240]}") from None
    return model


def save_onnx(model, dst: str | Path) -> None:
    import onnx

    with atomic_path(dst) as tmp:
        onnx.save(model, str(tmp))


def node_count(model) -> int:
    return len(model.graph.node)


def op_counts(model) -> dict[str, int]:
    counts: dict[str, int] = {}
    for node in model.graph.node:
        key = node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}::{node.op_type}"
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def input_shapes(model) -> dict[str, tuple[int | str | None, ...]]:
    """Graph inputs (not initializers) -> shape with dim_param names / None for unknown dims."""
    inits = {i.name for i in model.graph.initializer}
    shapes = {}
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        dims = vi.type.tensor_type.shape.dim
        shapes[vi.name] = tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in dims)
    return shapes


# --- stages ---------------------------------------------------------------------------------------
def torch_to_onnx(module, dst: str | Path, *, input_shape: Sequence[int], input_name: str = "input",
                  output_names: Sequence[str], opset: int = DEFAULT_OPSET, dynamic_batch: bool = True,
                  spec: ModelSpec | None = None) -> dict[str, Any]:
    """Export with the TorchScript-based exporter (`dynamo=False`).

    Why not the default: torch 2.13 defaults to the torch.export-based exporter, which needs
    the onnxscript package and emits functions/opsets MNN does not read; the legacy exporter
    works for nn.Module and TorchScript alike (it warns that it is deprecated).
    """
    import onnx
    import torch

    module = module.eval()
    dummy = torch.zeros(tuple(int(d) for d in input_shape), dtype=torch.float32)
    axes = None
    if dynamic_batch:
        axes = {input_name: {0: "batch"}, **{n: {0: "batch"} for n in output_names}}
    with atomic_path(dst) as tmp, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
        warnings.filterwarnings("ignore", message=".*feature will be removed.*")
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        try:
            torch.onnx.export(module, (dummy,), str(tmp), dynamo=False, opset_version=int(opset),
                              input_names=[input_name], output_names=list(output_names),
                              dynamic_axes=axes, do_constant_folding=True)
        except Exception as exc:  # noqa: BLE001 - the exporter raises many types
            first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
            raise ConversionError(f"torch.onnx.export failed: {first}") from exc
        model = onnx.load(str(tmp))
        embed_in_onnx(model, spec)
        onnx.save(model, str(tmp))
    return {"format": "onnx", "opset": int(opset), "nodes": node_count(model), "dynamic_batch": dynamic_batch,
            "exporter": "torch.onnx.export(dynamo=False)"}


def simplify_onnx(src: str | Path, dst: str | Path, *, spec: ModelSpec | None = None,
                  overwrite_input_shapes: dict[str, Sequence[int]] | None = None) -> dict[str, Any]:
    """onnxsim with its own check off (the pipeline's parity check replaces it)."""
    import onnxsim

    model = load_onnx(src)
    before = node_count(model)
    kwargs: dict[str, Any] = {"check_n": 0}
    params = inspect.signature(onnxsim.simplify).parameters
    if "certify" in params:
        kwargs["certify"] = False  # the optional Z3 proof is slow and off-topic here
    if overwrite_input_shapes:
        kwargs["overwrite_input_shapes"] = {k: list(v) for k, v in overwrite_input_shapes.items()}
    try:
        simplified, _ = onnxsim.simplify(model, **kwargs)
    except Exception as exc:  # noqa: BLE001 - onnxsim raises RuntimeError/ValueError/InferenceError
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise ConversionError(
            f"onnxsim failed on {Path(src).name}: {first}; retry without simplification (--no-simplify)") from exc
    embed_in_onnx(simplified, spec)
    save_onnx(simplified, dst)
    return {"format": "onnx", "nodes_before": before, "nodes_after": node_count(simplified)}


def onnx_to_mnn(src: str | Path, dst: str | Path, *, fp16: bool = False, spec: ModelSpec | None = None,
                timeout: float = 900.0) -> dict[str, Any]:
    """ONNX -> MNN in a child process; the spec JSON goes into the model as bizCode."""
    run = mnn_native.convert_to_mnn(src, dst, framework="ONNX", fp16=fp16, biz_code=spec_json(spec),
                                    timeout=timeout)
    return {"format": "mnn", "fp16_weights": fp16, "converter_log_tail": _tail(run.log)}


def tflite_to_mnn(src: str | Path, dst: str | Path, *, fp16: bool = False, spec: ModelSpec | None = None,
                  timeout: float = 900.0) -> dict[str, Any]:
    """TFLite -> MNN in a child process; the MNN model keeps the NHWC input layout.

    The operator codes are checked first: MNN stops at the first builtin it lacks and crashes on an
    unknown custom op, so every unsupported operator is named here instead (UnsupportedOperatorError).
    A graph with DENSIFY needs converters.tflite_densify first (the pipeline plans it).
    """
    from .tflite_ops import check_mnn_can_convert

    check_mnn_can_convert(src)
    run = mnn_native.convert_to_mnn(src, dst, framework="TFLITE", fp16=fp16, biz_code=spec_json(spec),
                                    timeout=timeout)
    return {"format": "mnn", "fp16_weights": fp16, "converter_log_tail": _tail(run.log)}


def _tail(text: str, n: int = 3) -> list[str]:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("The device supports")]
    return lines[-n:]
