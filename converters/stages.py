"""The transformations themselves, one function each, every one writing its output atomically.

torch_to_onnx   PyTorch / TorchScript module -> ONNX (legacy TorchScript exporter, opset 17)
simplify_onnx   ONNX -> onnxsim-simplified ONNX
onnx_to_mnn     ONNX -> MNN (FP32, or FP16 weights), native converter in a child process
tflite_to_mnn   TFLite -> MNN, same converter (after converters.tflite_densify for sparse weights)
mnn_to_mnn      MNN -> MNN (an MNN source's FP16 copy), same converter

They embed the given spec (ONNX metadata_props / MNN bizCode) and return a details dict for
the report. Parity is the pipeline's job (converters.pipeline), so each function stays usable alone.
"""
from __future__ import annotations

import contextlib
import inspect
import logging
import os
import re
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any, Iterator, Sequence

from edgepose import files
from edgepose.errors import ConversionError, ModelFileError
from edgepose.spec import ModelSpec

from . import mnn_native
from .metadata import embed_in_onnx, spec_json

log = logging.getLogger(__name__)

DEFAULT_OPSET = 17


def atomic_path(dst: str | Path) -> contextlib.AbstractContextManager[Path]:
    """A temporary file beside `dst` (created, empty); renamed to `dst` only if the block finishes
    without error and wrote something (edgepose.files.atomic_path, failing with ConversionError)."""
    Path(dst).parent.mkdir(parents=True, exist_ok=True)
    return files.atomic_path(dst, create=True, error=ConversionError)


def _umask() -> int:
    return files.umask()


# --- upstream logs -------------------------------------------------------------------------------
def log_path_for(dst: str | Path, what: str) -> Path:
    """Where a stage's upstream log goes: beside its artifact, named after the artifact's final name
    (`.x.onnx.unverified` -> `x.onnx.<what>.log`)."""
    dst = Path(dst)
    pending = re.fullmatch(r"\.(.+?)(?:\.\d+-[0-9a-f]+)?\.unverified", dst.name)
    name = pending.group(1) if pending else dst.name
    return dst.parent / f"{name}.{what}.log"


def write_log(path: Path, text: str) -> Path | None:
    """Write an upstream tool's log; None if it cannot be written (the error still says what failed)."""
    try:
        path.write_text(text, encoding="utf-8", errors="replace")
        os.chmod(path, 0o666 & ~_umask())
        return path
    except OSError as exc:
        log.warning("could not write %s: %s", path, exc)
        return None


def first_line(text: str, limit: int = 240) -> str:
    """The first non-empty line, shortened at a word boundary (never cut mid-word)."""
    line = next((ln.strip() for ln in str(text).splitlines() if ln.strip()), "")
    if len(line) <= limit:
        return line
    cut = line[:limit].rsplit(" ", 1)[0]
    return (cut if len(cut) > limit // 2 else line[:limit]) + " ..."


@contextlib.contextmanager
def captured_output() -> Iterator[list[str]]:
    """Everything written to file descriptors 1 and 2 inside the block (Python and native code alike,
    e.g. torch's exporter printing hundreds of lines of IR to stdout), collected into the yielded
    list afterwards."""
    out: list[str] = []
    streams = (sys.stdout, sys.stderr)
    for stream in streams:
        try:
            stream.flush()
        except (AttributeError, OSError, ValueError):
            pass
    saved: list[tuple[int, int]] = []
    with tempfile.TemporaryFile(mode="w+b") as sink:
        for fd in (1, 2):
            try:
                saved.append((fd, os.dup(fd)))
                os.dup2(sink.fileno(), fd)
            except OSError:  # no such descriptor: nothing to capture there
                continue
        try:
            yield out
        finally:
            for stream in streams:
                try:
                    stream.flush()
                except (AttributeError, OSError, ValueError):
                    pass
            for fd, copy in saved:
                os.dup2(copy, fd)
                os.close(copy)
            sink.seek(0)
            out.append(sink.read().decode(errors="replace"))


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
            # The exporter prints from C++ (on a failure, the whole Torch IR graph: 589 lines for a
            # two-block ViT); that goes to a log file the error names, never to the terminal.
            with captured_output() as chatter:
                torch.onnx.export(module, (dummy,), str(tmp), dynamo=False, opset_version=int(opset),
                                  input_names=[input_name], output_names=list(output_names),
                                  dynamic_axes=axes, do_constant_folding=True)
        except Exception as exc:  # noqa: BLE001 - the exporter raises many types
            import traceback

            text = "".join(chatter) + "\n" + "".join(traceback.format_exception(exc))
            where = write_log(log_path_for(dst, "export"), text)
            hint = _export_hint(module, exc)
            raise ConversionError(
                f"torch.onnx.export failed: {first_line(str(exc)) or type(exc).__name__}"
                + (f"; {hint}" if hint else "") + (f" (full exporter log: {where})" if where else "")) from exc
        if "".join(chatter).strip():
            log.debug("torch.onnx.export said:\n%s", "".join(chatter))
        model = onnx.load(str(tmp))
        embed_in_onnx(model, spec)
        onnx.save(model, str(tmp))
    return {"format": "onnx", "opset": int(opset), "nodes": node_count(model), "dynamic_batch": dynamic_batch,
            "exporter": "torch.onnx.export(dynamo=False)"}


def _export_hint(module, exc: Exception) -> str:
    """What to do when the legacy exporter fails. Measured on a two-block ViT with nn.MultiheadAttention:
    the nn.Module exports; the same model scripted fails on aten::is_autocast_enabled, traced and
    loaded from a file on "transpose for tensor of unknown rank" (the issue-17 ViT failure)."""
    import torch

    text = str(exc)
    scripted = isinstance(module, torch.jit.ScriptModule)
    if scripted:
        return ("the model is TorchScript (traced or scripted), which keeps code the ONNX exporter cannot follow "
                "(nn.MultiheadAttention's fast path and autocast checks; attention reshapes whose ranks it cannot "
                "infer): convert the Python nn.Module instead (edgepose.converters.convert(model, input_shape=...), "
                "or a zoo name with --weights), or export ONNX from it yourself and convert the .onnx")
    if "is not supported" in text and "operator" in text:
        return "the model uses an operator this ONNX opset lacks: try a newer --opset, or replace that layer"
    return ""


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
        import traceback

        where = write_log(log_path_for(dst, "onnxsim"), "".join(traceback.format_exception(exc)))
        raise ConversionError(
            f"onnxsim failed on {Path(src).name}: {first_line(str(exc)) or type(exc).__name__}; retry without "
            "simplification (--no-simplify)" + (f" (full log: {where})" if where else "")) from exc
    embed_in_onnx(simplified, spec)
    save_onnx(simplified, dst)
    return {"format": "onnx", "nodes_before": before, "nodes_after": node_count(simplified)}


def onnx_to_mnn(src: str | Path, dst: str | Path, *, fp16: bool = False, spec: ModelSpec | None = None,
                timeout: float = 900.0, round_fp16: bool = True) -> dict[str, Any]:
    """ONNX -> MNN in a child process; the spec JSON goes into the model as bizCode.

    fp16 stores the weights in half precision. MNN's own cast truncates, so by default (round_fp16)
    the converter reads a copy whose weights are already rounded to FP16 (converters.fp16_weights).
    """
    return _to_mnn(src, dst, "ONNX", fp16=fp16, spec=spec, timeout=timeout, round_fp16=round_fp16)


def tflite_to_mnn(src: str | Path, dst: str | Path, *, fp16: bool = False, spec: ModelSpec | None = None,
                  timeout: float = 900.0, round_fp16: bool = True) -> dict[str, Any]:
    """TFLite -> MNN in a child process; the MNN model keeps the NHWC input layout.

    The operator codes are checked first: MNN stops at the first builtin it lacks and crashes on an
    unknown custom op, so every unsupported operator is named here instead (UnsupportedOperatorError).
    A graph with DENSIFY needs converters.tflite_densify first (the pipeline plans it). fp16 and
    round_fp16 as in onnx_to_mnn.
    """
    from .tflite_ops import check_mnn_can_convert

    check_mnn_can_convert(src)
    return _to_mnn(src, dst, "TFLITE", fp16=fp16, spec=spec, timeout=timeout, round_fp16=round_fp16)


def mnn_to_mnn(src: str | Path, dst: str | Path, *, fp16: bool = False, spec: ModelSpec | None = None,
               timeout: float = 900.0) -> dict[str, Any]:
    """MNN -> MNN in a child process (an MNN source's FP16 copy, or a new card as bizCode).

    The weights are already MNN's, so there is no rounded copy to read: --fp16 uses MNN's own cast.
    """
    return _to_mnn(src, dst, "MNN", fp16=fp16, spec=spec, timeout=timeout, round_fp16=False)


def _to_mnn(src: str | Path, dst: str | Path, framework: str, *, fp16: bool, spec: ModelSpec | None,
            timeout: float, round_fp16: bool) -> dict[str, Any]:
    details: dict[str, Any] = {"format": "mnn", "fp16_weights": fp16}
    if not (fp16 and round_fp16):
        run = _mnn_convert(src, dst, framework, fp16=fp16, spec=spec, timeout=timeout)
        return {**details, "converter_log_tail": _tail(run.log)}
    from . import fp16_weights

    src, dst = Path(src), Path(dst)
    # The rounded copy lives beside the output (the output folder is writable and has room for a
    # model; /tmp may not) and goes when the conversion ends, whatever happens.
    with tempfile.TemporaryDirectory(prefix=f".{dst.name}.fp16-", dir=dst.parent) as tmp:
        rounded = Path(tmp) / src.name
        if framework == "ONNX":
            details.update(fp16_weights.round_onnx_weights(src, rounded))
        else:
            details.update(fp16_weights.round_tflite_weights(src, rounded))
        run = _mnn_convert(rounded, dst, framework, fp16=True, spec=spec, timeout=timeout)
    details["fp16_weights"] = True
    return {**details, "converter_log_tail": _tail(run.log)}


def _mnn_convert(src: Path | str, dst: Path | str, framework: str, *, fp16: bool, spec: ModelSpec | None,
                 timeout: float):
    """mnn_native.convert_to_mnn; on a failure whose log came back, the log goes to a file the error names."""
    try:
        return mnn_native.convert_to_mnn(src, dst, framework=framework, fp16=fp16, biz_code=spec_json(spec),
                                         timeout=timeout)
    except ConversionError as exc:
        text = exc.log
        if text and exc.args and isinstance(exc.args[0], str):
            where = write_log(log_path_for(dst, "mnnconvert"), text)
            if where is not None:
                exc.args = (f"{exc.args[0]} (full converter log: {where})", *exc.args[1:])
                exc.log_path = where
        raise


def _tail(text: str, n: int = 3) -> list[str]:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("The device supports")]
    return lines[-n:]
