"""Where the benchmarked files come from: registry names, pinned TFLite assets, or files.

A thin adapter of the benchmark's own (see `_export_registry_model`): a registry model is
exported torch -> ONNX -> onnxsim -> MNN FP32 and FP16 with its metadata embedded, once,
into a cache keyed by a fingerprint of the model code and tool versions. When the shared
conversion pipeline (edgepose.converters) exposes `convert`, it is used instead, so the
benchmark measures exactly the files users get.

Weights are random (seed 0): latency does not depend on their values.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from edgepose.errors import MetadataError, ModelFileError
from edgepose.spec import ModelSpec

from .variants import Variant

log = logging.getLogger(__name__)

ADAPTER_VERSION = "2"
OPSET = 17
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


@dataclass
class ModelSource:
    """One model and the files it can be measured from.

    artifacts     (format, weights) -> path, e.g. ("mnn", "fp16"), ("onnx", "fp32"), ("tflite", "fp32").
    onnx          the ONNX graph to count parameters and MACs on (None when there is none).
    fixed_mnn     a user-given .mnn file: every MNN variant runs this file, whatever its weights.
    raw_only      no pose card (e.g. an ImageNet classifier): time the raw session, no Predictor.
    int8_report   the INT8 step's report (accuracy per engine) when INT8 files were made.
    """

    name: str
    kind: str  # "registry" | "asset" | "file"
    artifacts: dict[tuple[str, str], Path] = field(default_factory=dict)
    onnx: Path | None = None
    spec: ModelSpec | None = None
    table_id: str | None = None
    published_ms: tuple[float, ...] | None = None
    fixed_mnn: bool = False
    raw_only: bool = False
    int8_report: dict[str, Any] | None = None

    def applicable(self, variants: Iterable[Variant]) -> list[Variant]:
        """The requested variants this source has a file for (a fixed .mnn maps all MNN ones to it)."""
        out: list[Variant] = []
        for v in variants:
            if self.fixed_mnn:
                if v.runtime != "mnn":
                    continue
                v = Variant("mnn", "file", v.precision)
            elif not any(a in self.artifacts for a in v.artifacts):
                continue
            if v not in out:
                out.append(v)
        return out

    def path_for(self, variant: Variant) -> Path:
        if self.fixed_mnn and variant.runtime == "mnn":
            return self.artifacts[("mnn", "file")]
        for artifact in variant.artifacts:
            if artifact in self.artifacts:
                return self.artifacts[artifact]
        raise ModelFileError(f"{self.name} has no {variant.artifact[1]} {variant.artifact[0]} file "
                             f"for variant {variant.name}; it has {sorted(self.artifacts)}")


# --- resolution --------------------------------------------------------------------------
def registry_names(*, published_only: bool = False) -> list[str]:
    from edgepose.models import list_models

    return list_models(published_only=published_only)


def expand_names(items: Iterable[str] | None) -> list[str]:
    """Model arguments with groups expanded: `table-a` (the registry's table-A rows), `all`, `quick`,
    `table-b` / `table-c` (MXNet fixtures + zoo models of seed_figures.md tables B and C), `int8-tflite`."""
    items = list(items or ["table-a"])
    out: list[str] = []
    for item in items:
        if item == "table-a":
            names = registry_names(published_only=True)
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
    from .mxnet_source import is_mxnet_name, mxnet_source

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


def models_fingerprint() -> str:
    """Hash of the model-zoo source files and the conversion tools' versions."""
    import edgepose.models as zoo

    digest = hashlib.sha256(ADAPTER_VERSION.encode())
    root = Path(zoo.__file__).parent
    for f in sorted(root.rglob("*.py")):
        digest.update(f.relative_to(root).as_posix().encode())
        digest.update(f.read_bytes())
    digest.update(json.dumps(_versions("torch", "onnx", "onnxsim", "MNN"), sort_keys=True).encode())
    return digest.hexdigest()[:12]


def registry_source(name: str, *, cache: Path, weights: tuple[str, ...] = ("fp32", "fp16"),
                    int8: Iterable[str] = ()) -> ModelSource:
    from edgepose.models import get_entry

    entry = get_entry(name)
    out_dir = Path(cache) / "models" / f"{name}-{models_fingerprint()}"
    spec = entry.spec()
    onnx_path = out_dir / f"{name}.onnx"
    artifacts = {("onnx", "fp32"): onnx_path}
    int8 = tuple(int8)
    for w in tuple(weights) + (("fp32",) if "mnn" in int8 else ()):
        if w in ("fp32", "fp16"):
            artifacts[("mnn", w)] = out_dir / f"{name}.{w}.mnn"
    missing = [p for p in artifacts.values() if not p.is_file()]
    if missing:
        out_dir.mkdir(parents=True, exist_ok=True)
        log.info("building %s into %s", name, out_dir)
        _build_registry_model(name, spec, onnx_path, {w: p for (f, w), p in artifacts.items() if f == "mnn"})
    int8_arts, int8_report = _int8_artifacts(name, {"mnn": artifacts.get(("mnn", "fp32")), "onnx": onnx_path},
                                             out_dir, spec=spec, engines=int8)
    artifacts.update(int8_arts)
    return ModelSource(name=name, kind="registry", artifacts=artifacts, onnx=onnx_path, spec=spec,
                       table_id=entry.table_id, published_ms=entry.published_ms, int8_report=int8_report or None)


def _build_registry_model(name: str, spec: ModelSpec, onnx_path: Path, mnn_paths: dict[str, Path]) -> None:
    """torch -> ONNX -> onnxsim -> MNN with metadata: the shared pipeline if it can, else our own export."""
    import torch

    torch.set_num_threads(1)  # 2 threads on the shared 2-core machine were 10-100x slower under load
    if _convert_with_pipeline(name, onnx_path, mnn_paths):
        return
    _export_registry_model(name, spec, onnx_path)
    for w, dst in mnn_paths.items():
        onnx_to_mnn(onnx_path, dst, fp16=(w == "fp16"), spec=spec)


def _convert_with_pipeline(name: str, onnx_path: Path, mnn_paths: dict[str, Path]) -> bool:
    """edgepose.converters.convert (parity-checked), renamed to our file names; False if it cannot."""
    try:
        from edgepose.converters import convert
    except ImportError:
        return False
    out_dir = onnx_path.parent / "pipeline"
    try:
        # strict=False: with random weights an FP16 parity miss is expected (near-flat softmaxes) and says
        # nothing about speed; the report keeps the figures and the files are kept.
        report = convert(name, output_dir=out_dir, fp16="fp16" in mnn_paths, seed=0, strict=False)
        warned = [w for w in getattr(report, "warnings", []) or []]
        if warned:
            log.info("%s converted with parity warnings: %s", name, "; ".join(map(str, warned))[:300])
    except Exception as exc:  # noqa: BLE001 - any failure of the shared pipeline means: use our own export
        log.warning("edgepose.converters.convert(%r) failed (%s: %s); exporting with the benchmark's own "
                    "torch -> ONNX -> onnxsim -> MNN steps", name, type(exc).__name__, str(exc)[:200])
        return False
    made = {onnx_path: out_dir / f"{name}.sim.onnx"}
    for w, dst in mnn_paths.items():
        made[dst] = out_dir / (f"{name}.fp16.mnn" if w == "fp16" else f"{name}.mnn")
    if not all(src.is_file() for src in made.values()):
        log.warning("edgepose.converters.convert(%r) did not write %s; using the benchmark's own export",
                    name, [str(s) for s in made.values() if not s.is_file()])
        return False
    for dst, src in made.items():
        src.replace(dst)
    (out_dir / f"{name}.onnx").unlink(missing_ok=True)  # the unsimplified export; its report.json stays
    return True


def _export_registry_model(name: str, spec: ModelSpec, dst: Path) -> None:
    import onnx
    import onnxsim
    import torch

    from edgepose.models import create_model, get_entry

    entry = get_entry(name)
    torch.manual_seed(0)
    model = create_model(name, deploy=True)
    w, h = entry.input_size
    tmp = dst.with_suffix(".raw.onnx")
    with torch.no_grad():
        torch.onnx.export(model, (torch.zeros(1, 3, h, w),), str(tmp), input_names=[entry.input_name],
                          output_names=list(entry.output_names), opset_version=OPSET, dynamo=False)
    simplified, ok = onnxsim.simplify(onnx.load(str(tmp)))
    if not ok:
        raise ModelFileError(f"onnxsim could not validate the simplified {name}")
    from edgepose.converters.metadata import embed_in_onnx

    embed_in_onnx(simplified, spec)
    onnx.save(simplified, str(dst))
    tmp.unlink()


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
    except Exception as exc:  # noqa: BLE001 - INT8 rows are skipped (and logged), the FP32 ones still run
        log.warning("INT8 files for %s could not be made (%s: %s); its int8 variants are skipped",
                    name, type(exc).__name__, str(exc)[:300])
        return {}, {}


# --- files and assets ---------------------------------------------------------------------
def _sha(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:12]


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


# --- small conversion helpers -------------------------------------------------------------
def onnx_to_mnn(src: Path, dst: Path, *, fp16: bool, spec: ModelSpec | None) -> Path:
    """The MNN native converter in a child process (edgepose.converters.mnn_native)."""
    from edgepose.converters.mnn_native import convert_to_mnn

    convert_to_mnn(src, dst, framework="ONNX", fp16=fp16, biz_code=spec.to_json() if spec is not None else None)
    return dst


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
