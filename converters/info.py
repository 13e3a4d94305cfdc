"""`edgepose info`: what is inside a model file - metadata, inputs/outputs, size, operator counts.

Works for .mnn with the runtime alone (MNN's expression loader lists every op); .onnx uses
ONNX Runtime for inputs/outputs and imports `onnx` only to count operators; .tflite uses the
reference interpreter.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edgepose.errors import ModelFileError

SUFFIXES = (".mnn", ".onnx", ".tflite")


def mnn_op_counts(path: str | Path) -> dict[str, int]:
    """Operator type -> count in an MNN file (constants and inputs excluded)."""
    from edgepose._native import import_mnn

    MNN = import_mnn()
    try:
        graph = MNN.expr.load_as_dict(str(path))
    except (SystemError, RuntimeError, ValueError) as exc:
        raise ModelFileError(f"{Path(path).name} is not a model MNN can read ({type(exc).__name__})") from None
    counts: dict[str, int] = {}
    for var in graph.values():
        op = var.op_type
        if op in ("Const", "Input", "TrainableParam"):
            continue
        counts[op] = counts.get(op, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def onnx_op_counts(path: str | Path) -> dict[str, int] | None:
    """Operator type -> count for an ONNX file; None when the onnx package is not installed."""
    try:
        import onnx  # noqa: F401 - only for counting
    except ImportError:
        return None
    from .stages import load_onnx, op_counts

    return op_counts(load_onnx(path))


def model_info(path: str | Path) -> dict[str, Any]:
    """Everything `edgepose info` shows, as a dict."""
    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"model file not found: {path}")
    if not path.is_file():
        raise ModelFileError(f"{path} is not a file")
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ModelFileError(f"{path.name}: edgepose info reads {', '.join(SUFFIXES)} files, not {suffix!r}")
    info: dict[str, Any] = {"path": str(path), "format": suffix[1:], "size_bytes": path.stat().st_size}
    notes: list[str] = []
    if suffix == ".tflite":
        from .runtimes import TFLiteRunner

        runner = TFLiteRunner(path)
        metadata_text = None
        ops = runner.op_counts()
    else:
        from edgepose.backends import open_backend

        runner = open_backend(path, "mnn" if suffix == ".mnn" else "onnxruntime")
        metadata_text = runner.metadata
        if suffix == ".mnn":
            ops = mnn_op_counts(path)
            info["mnn_version"] = getattr(runner, "version", None)
        else:
            ops = onnx_op_counts(path)
            if ops is None:
                notes.append("operator counts need the onnx package (pip install 'edgepose[convert]')")
    info["metadata"] = _metadata(metadata_text, path)
    info["inputs"] = [_tensor(t) for t in runner.inputs]
    info["outputs"] = [_tensor(t) for t in runner.outputs]
    info["op_counts"] = ops
    info["op_total"] = sum(ops.values()) if ops else None
    if notes:
        info["notes"] = notes
    return info


def _metadata(text: str | None, path: Path) -> dict[str, Any] | None:
    from edgepose.errors import MetadataError
    from edgepose.metadata_checks import load_json

    from .metadata import parse_spec_text

    if text:
        try:  # size, nesting, NaN tokens: a foreign string that breaks them is shown raw, not parsed
            load_json(text, f"metadata of {path.name}")
        except MetadataError:
            if '"edgepose_spec"' in text[:200]:
                raise  # an edgepose card that is broken: say so
            return {"raw": text[:4096]}
    return parse_spec_text(text, source=f"metadata of {path.name}")


def _tensor(t) -> dict[str, Any]:
    return {"name": t.name, "shape": [d if isinstance(d, int) else (d or "?") for d in t.shape],
            "dtype": t.dtype, **({"layout": t.layout} if t.layout else {})}


def format_info(info: dict[str, Any]) -> str:
    """The info dict as readable text."""
    from .report import _human

    lines = [f"file      {info['path']}", f"format    {info['format']}"
             + (f" (MNN {info['mnn_version']})" if info.get("mnn_version") else ""),
             f"size      {_human(info['size_bytes'])} ({info['size_bytes']} bytes)"]
    for label in ("inputs", "outputs"):
        for i, t in enumerate(info[label]):
            shape = "x".join(str(d) for d in t["shape"]) or "?"
            lay = f" {t['layout']}" if t.get("layout") else ""
            lines.append(f"{label if i == 0 else '':<9} {t['name']}: {t['dtype']} [{shape}]{lay}")
    meta = info.get("metadata")
    if meta is None:
        lines.append("metadata  none (convert with a model card: --meta / --preset)")
    elif "raw" in meta:
        lines.append(f"metadata  (not edgepose) {meta['raw'][:200]}")
    else:
        prov = meta.get("provenance") or {}
        lines.append(f"metadata  {meta.get('name') or '(unnamed)'}: head {meta.get('head')}, "
                     f"{meta.get('num_keypoints')} keypoints, input {meta.get('input_size')} "
                     f"{meta.get('layout')} {meta.get('color')}, mean {meta.get('mean')}, std {meta.get('std')}")
        if meta.get("outputs"):
            lines.append(f"          outputs {json.dumps(meta['outputs'])}")
        if prov:
            keys = ("source", "source_sha256", "weights", "stage", "precision", "parent")
            lines.append("          provenance " + ", ".join(f"{k}={prov[k]}" for k in keys if k in prov))
            if prov.get("tools"):
                lines.append("          tools " + ", ".join(f"{k} {v}" for k, v in prov["tools"].items()))
    ops = info.get("op_counts")
    if ops:
        lines.append(f"ops       {info['op_total']} total: " + ", ".join(f"{k} {v}" for k, v in ops.items()))
    for note in info.get("notes", []):
        lines.append(f"note      {note}")
    from edgepose._text import printable  # metadata and names come from the file: no raw control characters

    return "\n".join(printable(line) for line in lines)
