"""Where the benchmarked files come from: registry names, pinned TFLite assets, or files.

A registry model is converted by edgepose.converters.convert (torch -> ONNX -> onnxsim -> MNN FP32
and FP16, metadata embedded), the one path users get their files from, once, into a cache keyed
by a fingerprint of the model-zoo code, the converters' code and the tool versions. A conversion
that fails raises SourceUnavailableError with its reason: the run skips that model and says why.

Weights are random (seed 0): latency does not depend on their values.
"""
from __future__ import annotations

import importlib.metadata
import json
import logging
from pathlib import Path
from typing import Any, Iterable

from edgepose.errors import EdgePoseError, MetadataError, ModelFileError
from edgepose.files import sha256_bytes, sha256_file
from edgepose.spec import ModelSpec

from .mxnet_source import is_mxnet_name, mxnet_source
from .source import ModelSource, SourceUnavailableError
from .table_a import PUBLISHED
from .variants import Variant

__all__ = ["GROUP_VARIANTS", "MODEL_GROUPS", "ModelSource", "SourceUnavailableError", "describe_source",
           "expand_names", "group_variants", "resolve", "resolve_for"]

log = logging.getLogger(__name__)

# Part of the cache key: bump when the cache layout or the conversion call changes.
# 4: files are converters.convert's own (<name>.sim.onnx, <name>.mnn, <name>.fp16.mnn; the unsimplified
#    <name>.onnx removed); no private exporter.
ADAPTER_VERSION = "4"
# Pinned TFLite models (edgepose.assets) and the preset holding their metadata.
TFLITE_ASSETS = {"pose_landmark_full": "blazepose_full", "hand_landmark_full": "hand_landmark_full",
                 "hand_landmark_lite": "hand_landmark_lite", "pose_detection": "blazepose_detector"}
MODEL_GROUPS = {
    "quick": ("deeppose", "heatmap", "simdr_320"),
    # Table B (seed_figures.md): GluonCV pruned ResNets and their originals, from the MXNet fixtures.
    "table-b": ("mxnet:resnet18_v1b", "mxnet:resnet18_v1b_0.89", "mxnet:resnet50_v1d", "mxnet:resnet50_v1d_0.86",
                "mxnet:resnet50_v1d_0.48", "mxnet:resnet50_v1d_0.37", "mxnet:resnet50_v1d_0.11",
                "mxnet:resnet101_v1d", "mxnet:resnet101_v1d_0.76", "mxnet:resnet101_v1d_0.73"),
    # Table C (FP32 vs INT8): GluonCV's published models from the MXNet fixtures, then zoo models.
    "table-c": ("mxnet:resnet50_v1", "mxnet:mobilenet1.0", "deeppose", "deeppose_x2", "ipr", "dsnt_deconv", "simdr",
                "simdr_320"),
    "int8-tflite": ("pose_landmark_full", "hand_landmark_lite", "hand_landmark_full"),
}
# Variants a group is measured in when none are given (the CLI's and the suite's default for it).
GROUP_VARIANTS = {
    "table-b": ("mnn-fp32", "ort-fp32"),
    "table-c": ("mnn-fp32", "mnn-int8", "ort-fp32", "ort-int8"),
    "int8-tflite": ("mnn-fp32", "mnn-int8", "ort-fp32", "ort-int8", "tflite"),
}


# --- resolution --------------------------------------------------------------------------
def registry_names() -> list[str]:
    """Every registry model: table A's in the table's order, then the others in registration order."""
    from edgepose.models import list_models

    names = list_models()
    return [n for n in PUBLISHED if n in names] + [n for n in names if n not in PUBLISHED]


def expand_names(items: Iterable[str] | None) -> list[str]:
    """Model arguments with groups expanded: `table-a` (the models of table_a.PUBLISHED), `all`, `quick`,
    `table-b` / `table-c` (MXNet fixtures + zoo models of seed_figures.md tables B and C), `int8-tflite`."""
    items = list(items or ["table-a"])
    out: list[str] = []
    for item in items:
        if item == "table-a":
            names = list(PUBLISHED)
        elif item == "all":
            names = registry_names()
        elif item in MODEL_GROUPS:
            names = list(MODEL_GROUPS[item])
        else:
            names = [item]
        out += [n for n in names if n not in out]
    return out


def resolve_for(item: str, variants: Iterable[Variant], *, cache: Path, build_fixtures: bool = False) -> ModelSource:
    """resolve() with the MNN weights and INT8 engines the variants need."""
    from .int8_source import int8_engines

    variants = list(variants)
    weights = tuple(dict.fromkeys(v.weights for v in variants if v.runtime == "mnn" and v.weights != "int8"))
    return resolve(item, cache=cache, weights=weights or ("fp32",), int8=int8_engines(variants),
                   build_fixtures=build_fixtures)


def resolve(item: str, *, cache: Path, weights: tuple[str, ...] = ("fp32", "fp16"), int8: Iterable[str] = (),
            build_fixtures: bool = False) -> ModelSource:
    """A ModelSource for a registry name, a pinned TFLite asset, `mxnet:<fixture>`, or a model file path.

    int8   INT8 engines to make files for ("mnn", "onnxruntime"); registry, asset and mxnet sources only.
    """
    int8 = tuple(int8)
    if is_mxnet_name(item):
        return mxnet_source(item, cache=cache, weights=weights, int8=int8, build=build_fixtures)
    path = Path(item)
    if path.suffix.lower() in (".onnx", ".mnn", ".tflite") or path.exists():
        if not path.is_file():
            raise ModelFileError(f"model file not found: {path}")
        return file_source(path, cache=cache, weights=weights)
    if item in TFLITE_ASSETS:
        from edgepose.assets import fetch_asset

        return tflite_source(fetch_asset(item), cache=cache, preset=TFLITE_ASSETS[item], name=item, kind="asset",
                             weights=weights, int8=int8)
    try:
        names = registry_names()
    except ImportError as exc:
        raise MetadataError(f"{item!r} is not a file; registry models need torch ({exc}): "
                            "install edgepose[torch] or pass model files") from None
    if item not in names:
        raise MetadataError(
            f"unknown model {item!r}: not a file, not a registry model ({', '.join(names)}), "
            f"not a pinned asset ({', '.join(TFLITE_ASSETS)}); groups: table-a, all, quick")
    return registry_source(item, cache=cache, weights=weights, int8=int8)


def group_variants(items: Iterable[str] | None) -> tuple[str, ...] | None:
    """The default variants when every model argument is a group with its own (table-b, table-c, ...)."""
    items = list(items or [])
    if not items or any(i not in GROUP_VARIANTS for i in items):
        return None
    out: list[str] = []
    for item in items:
        out += [v for v in GROUP_VARIANTS[item] if v not in out]
    return tuple(out)


# --- registry models ----------------------------------------------------------------------
def _versions(*dists: str) -> dict[str, str]:
    out = {}
    for d in dists:
        try:
            out[d] = importlib.metadata.version(d)
        except importlib.metadata.PackageNotFoundError:
            out[d] = "absent"
    return out


def _code_files(package, pattern: str) -> list[bytes]:
    root = Path(package.__file__).parent
    return [part for f in sorted(root.glob(pattern)) for part in (f.relative_to(root).as_posix().encode(),
                                                                   f.read_bytes())]


def models_fingerprint() -> str:
    """Hash of what makes a registry model's files: the model-zoo code, the converters' own code (not
    its quantize/ or mxnet/ parts), the tools' versions and ADAPTER_VERSION. Any change re-converts."""
    import edgepose.converters as converters
    import edgepose.models as zoo

    parts = [ADAPTER_VERSION.encode(), *_code_files(zoo, "**/*.py"), *_code_files(converters, "*.py"),
             json.dumps(_versions("torch", "onnx", "onnxsim", "MNN"), sort_keys=True).encode()]
    return sha256_bytes(b"\0".join(parts))[:12]


def registry_source(name: str, *, cache: Path, weights: tuple[str, ...] = ("fp32", "fp16"),
                    int8: Iterable[str] = ()) -> ModelSource:
    """A registry model's converted files (made by convert() on first use) and its table-A row, if any."""
    from edgepose.models import get_spec

    out_dir = Path(cache) / "models" / f"{name}-{models_fingerprint()}"
    spec = get_spec(name)
    onnx_path = out_dir / f"{name}.sim.onnx"
    files = {"fp32": out_dir / f"{name}.mnn", "fp16": out_dir / f"{name}.fp16.mnn"}
    int8 = tuple(int8)
    wanted = [w for w in files if w in weights or (w == "fp32" and "mnn" in int8)]
    artifacts = {("onnx", "fp32"): onnx_path, **{("mnn", w): files[w] for w in wanted}}
    if not all(p.is_file() for p in artifacts.values()):
        _convert_registry_model(name, out_dir, fp16="fp16" in wanted)
    int8_arts, int8_report = _int8_artifacts(name, {"mnn": artifacts.get(("mnn", "fp32")), "onnx": onnx_path},
                                             out_dir, spec=spec, engines=int8)
    artifacts.update(int8_arts)
    row = PUBLISHED.get(name)
    return ModelSource(name=name, kind="registry", artifacts=artifacts, onnx=onnx_path, spec=spec,
                       table_id=row.table_id if row else None, published_ms=row.ms if row else None,
                       int8_report=int8_report or None)


def _convert_registry_model(name: str, out_dir: Path, *, fp16: bool) -> None:
    """edgepose.converters.convert into out_dir, non-strict: with random weights an FP16 parity miss is
    expected (near-flat softmaxes) and says nothing about speed; the report keeps the figures."""
    import torch  # a missing extra is an ImportError the CLI turns into the pip command (cli.EXTRAS)

    from edgepose.converters import convert

    torch.set_num_threads(1)  # 2 threads on the shared 2-core machine were 10-100x slower under load
    log.info("converting %s into %s", name, out_dir)
    try:
        report = convert(name, output_dir=out_dir, fp16=fp16, seed=0, strict=False)
    except EdgePoseError as exc:
        raise SourceUnavailableError(f"{name}: conversion failed ({type(exc).__name__}: {exc})") from exc
    warned = list(getattr(report, "warnings", None) or [])
    if warned:
        log.info("%s converted with parity warnings: %s", name, "; ".join(map(str, warned))[:300])
    # The unsimplified export goes (its figures stay in <name>.report.json): every ONNX consumer here
    # (ort-fp32, MACs, engine_matrix's auto probe of siblings) is to run the simplified graph users ship.
    (out_dir / f"{name}.onnx").unlink(missing_ok=True)


def _int8_artifacts(name: str, fp32: dict[str, Path | None], out_dir: Path, *, spec: ModelSpec | None,
                    engines: Iterable[str]) -> tuple[dict[tuple[str, str], Path], dict[str, Any]]:
    """INT8 files (edgepose.converters.quantize, pinned-photo calibration, cached); ({}, {}) if none asked."""
    engines = tuple(engines)
    if not engines:
        return {}, {}
    from .int8_source import int8_artifacts

    files = {k: Path(v) for k, v in fp32.items() if v is not None}
    try:
        return int8_artifacts(name, files, out_dir, spec=spec, engines=engines)
    except (EdgePoseError, ImportError, OSError) as exc:  # INT8 rows are skipped (and logged), FP32 ones run
        log.warning("INT8 files for %s could not be made (%s: %s); its int8 variants are skipped",
                    name, type(exc).__name__, str(exc)[:300])
        return {}, {}


# --- files and assets ---------------------------------------------------------------------
def _sha(path: Path) -> str:
    return sha256_file(path)[:12]


def file_source(path: Path, *, cache: Path, weights: tuple[str, ...] = ("fp32", "fp16")) -> ModelSource:
    suffix = path.suffix.lower()
    if suffix == ".mnn":
        return ModelSource(name=path.stem, kind="file", artifacts={("mnn", "file"): path}, fixed_mnn=True)
    if suffix == ".tflite":
        return tflite_source(path, cache=cache, preset=None, name=path.stem, kind="file")
    if suffix != ".onnx":
        raise ModelFileError(f"cannot benchmark {path.name}: use a .onnx, .mnn or .tflite file")
    import onnx

    from edgepose.converters.metadata import spec_from_onnx

    spec = spec_from_onnx(onnx.load(str(path), load_external_data=False))
    out_dir = Path(cache) / "files" / f"{path.stem}-{_sha(path)}"
    artifacts: dict[tuple[str, str], Path] = {("onnx", "fp32"): path}
    for w in weights:
        if w in ("fp32", "fp16"):
            dst = out_dir / f"{path.stem}.{w}.mnn"
            if not dst.is_file():
                from edgepose.converters import onnx_to_mnn

                dst.parent.mkdir(parents=True, exist_ok=True)
                onnx_to_mnn(path, dst, fp16=(w == "fp16"), spec=spec)
            artifacts[("mnn", w)] = dst
    return ModelSource(name=path.stem, kind="file", artifacts=artifacts, onnx=path, spec=spec)


def tflite_source(path: Path, *, cache: Path, preset: str | None, name: str, kind: str,
                  weights: tuple[str, ...] = ("fp32", "fp16"), int8: Iterable[str] = ()) -> ModelSource:
    from edgepose.converters.pinned import tflite_to_mnn_file

    spec = None
    if preset is not None:
        from edgepose.presets import get_preset

        spec = get_preset(preset)
    out_dir = Path(cache) / "files" / f"{name}-{_sha(path)}"
    artifacts: dict[tuple[str, str], Path] = {("tflite", "fp32"): path}
    int8 = tuple(int8) if spec is not None else ()  # INT8 calibration needs the card (preprocessing)
    for w in tuple(weights) + (("fp32",) if int8 else ()):
        if w in ("fp32", "fp16"):
            dst = out_dir / f"{name}.{w}.mnn"
            if not dst.is_file():
                tflite_to_mnn_file(path, dst, fp16=(w == "fp16"), biz_code=spec.to_json() if spec is not None else None)
            artifacts[("mnn", w)] = dst
    # ONNX Runtime INT8 converts the .tflite to ONNX first (tflite2onnx); that FP32 ONNX joins as ort-fp32.
    int8_arts, int8_report = _int8_artifacts(name, {"mnn": artifacts[("mnn", "fp32")] if int8 else None,
                                                    "tflite": path}, out_dir, spec=spec, engines=int8)
    artifacts.update(int8_arts)
    return ModelSource(name=name, kind=kind, artifacts=artifacts, spec=spec, int8_report=int8_report or None)


def _int8_summary(report: dict[str, Any] | None) -> dict[str, Any] | None:
    if not report:
        return None
    from .int8_source import accuracy_by_engine

    return {"calibration": (report.get("calibration") or {}).get("source"), "engines": accuracy_by_engine(report)}


def describe_source(source: ModelSource) -> dict[str, Any]:
    return {"name": source.name, "kind": source.kind, "table_id": source.table_id,
            "published_ms": list(source.published_ms) if source.published_ms else None,
            "raw_only": source.raw_only, "int8": _int8_summary(source.int8_report),
            "artifacts": {f"{f}-{w}": str(p) for (f, w), p in sorted(source.artifacts.items())}}
