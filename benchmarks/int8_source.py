"""INT8 files for the benchmark, made once with edgepose.converters.quantize and cached.

Registry models (random weights) and pinned TFLite models are calibrated on the pinned photos
("pinned:person", "pinned:hand" for hand models) with the INT8 API, non-strict: with random
weights the keypoint error says nothing, the speed is what is measured. The files go to an
`int8-<key>/` folder beside the FP32 ones; the key hashes the INT8 code, the tool versions and
the options, so a change there re-quantises. The INT8 report (<stem>.int8.json) is kept and its
accuracy figures join table C.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Iterable, Mapping

from edgepose.files import atomic_write_text, sha256_bytes
from edgepose.spec import ModelSpec

from .variants import Variant

log = logging.getLogger(__name__)

INT8_ENGINES = {"mnn": "mnn", "onnxruntime": "onnxruntime"}
# What the INT8 step is asked for (part of the cache key).
# calib_count None: the INT8 default, min(64, samples the pinned set gives)
INT8_SETTINGS = {"engines": ["mnn", "onnxruntime"], "strict": False, "calib_count": None, "methods": "defaults"}


def int8_engines(variants: Iterable[Variant]) -> tuple[str, ...]:
    """The INT8 engines the variants ask for: mnn-int8 -> "mnn", ort-int8 -> "onnxruntime"."""
    return tuple(dict.fromkeys(v.runtime for v in variants if v.weights == "int8" and v.runtime in INT8_ENGINES))


def int8_key() -> str:
    """Hash of the INT8 package's code, the tools' versions and INT8_SETTINGS."""
    import importlib.metadata as md

    import edgepose.converters.quantize as q

    parts = [json.dumps(INT8_SETTINGS, sort_keys=True).encode()]
    root = Path(q.__file__).parent
    for f in sorted(root.glob("*.py")):
        parts += [f.name.encode(), f.read_bytes()]
    for dist in ("MNN", "onnxruntime", "onnx"):
        try:
            parts.append(f"{dist}={md.version(dist)}".encode())
        except md.PackageNotFoundError:
            parts.append(f"{dist}=absent".encode())
    return sha256_bytes(b"".join(parts))[:12]


def int8_dir(fp32_dir: Path) -> Path:
    return Path(fp32_dir) / f"int8-{int8_key()}"


def calib_for(name: str) -> str:
    """The pinned calibration set that fits a model: hand photos for hand models, else people."""
    from edgepose.converters.quantize.samples import kind_for

    return f"pinned:{kind_for(name)}"


def int8_artifacts(name: str, fp32: Mapping[str, Path], out_dir: Path, *, spec: ModelSpec | None,
                   engines: Iterable[str]) -> tuple[dict[tuple[str, str], Path], dict[str, Any]]:
    """({("mnn","int8"): path, ("onnx","int8"): path, maybe ("onnx","fp32")}, report dict), cached.

    fp32   {"mnn": .mnn, "onnx": .onnx, "tflite": .tflite} - the FP32 files to quantise.
    Both engines are quantised together the first time (one calibration pass, one report), so a later
    run asking for the other engine finds it cached. An engine that failed is logged, not raised.
    """
    engines = tuple(e for e in engines if e in INT8_ENGINES)
    if not engines:
        return {}, {}
    out = int8_dir(out_dir)
    report_path = out / f"{name}.int8.json"
    data = _load_report(report_path)
    if data is None:
        data = _quantize(name, fp32, out, spec, INT8_SETTINGS["engines"])
    retry = [e for e in engines if not _has_file(data, e)]
    if retry:
        # One more try for an engine without a file: MNN's quantiser has failed here once and
        # then succeeded on the same model (a re-stamp check off by 0.03); a cached failure is retried too.
        log.info("INT8 %s: retrying %s", name, ", ".join(retry))
        again = _quantize(name, fp32, out, spec, retry)
        data = merge_reports(data, again)
        atomic_write_text(report_path, json.dumps(data, indent=2) + "\n")
    return artifacts_from_report(data, out, engines), data


def _has_file(data: Mapping[str, Any], engine: str) -> bool:
    return any(e.get("engine") == engine and e.get("artifact") for e in data.get("engines", []))


def merge_reports(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """`old` with its engines replaced by those `new` has (a retry of some engines)."""
    redone = {e.get("engine") for e in new.get("engines", [])}
    merged = dict(old)
    merged["engines"] = [e for e in old.get("engines", []) if e.get("engine") not in redone] + list(new["engines"])
    return merged


def _load_report(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    for e in data.get("engines", []):
        if e.get("artifact") and not (path.parent / e["artifact"]).is_file():
            return None  # a file was removed: quantise again
    return data


def _quantize(name: str, fp32: Mapping[str, Path], out: Path, spec: ModelSpec | None,
              engines: Iterable[str]) -> dict[str, Any]:
    from edgepose.converters.quantize import Int8Options, quantize_int8

    out.mkdir(parents=True, exist_ok=True)
    opts = Int8Options(engines=tuple(engines), strict=False, speed=False, progress=False,
                       calib_count=INT8_SETTINGS["calib_count"])
    calib = calib_for(spec.name if spec is not None and spec.name else name)
    log.info("INT8 %s: calibrating on %s into %s", name, calib, out)
    report = quantize_int8({k: Path(v) for k, v in fp32.items()}, calib=calib, spec=spec, output_dir=out,
                           stem=name, options=opts)
    return json.loads(report.to_json())


def artifacts_from_report(data: Mapping[str, Any], out: Path, engines: Iterable[str]) -> dict[tuple[str, str], Path]:
    """The files an INT8 report lists, as ModelSource artifacts, for the engines asked for.

    For ONNX Runtime on a TFLite model, the FP32 ONNX the INT8 step converted (tflite2onnx) is
    returned too, as ("onnx", "fp32"), so `ort-fp32` can be timed beside `ort-int8`.
    """
    arts: dict[tuple[str, str], Path] = {}
    for e in data.get("engines", []):
        engine = e.get("engine")
        if engine not in engines:
            continue
        if not e.get("artifact"):
            log.warning("INT8 %s with %s: no file (%s)", data.get("model"), engine, e.get("error") or e.get("status"))
            continue
        fmt = "mnn" if engine == "mnn" else "onnx"
        arts[(fmt, "int8")] = out / e["artifact"]
        fp32 = e.get("fp32_artifact")
        if engine == "onnxruntime" and fp32 and (out / fp32).is_file():
            arts[("onnx", "fp32")] = out / fp32
    return arts


def accuracy_by_engine(data: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """{"mnn": {...}, "onnxruntime": {...}}: method, status, mean/max px @256, PCK from an INT8 report."""
    out: dict[str, dict[str, Any]] = {}
    for e in (data or {}).get("engines", []):
        acc = e.get("accuracy") or {}
        out[e["engine"]] = {"method": (e.get("details") or {}).get("method"), "status": e.get("status"),
                            "mean_px_256": acc.get("mean_px_256"), "max_px_256": acc.get("max_px_256"),
                            "pck": acc.get("pck"), "error": e.get("error")}
    return out
