"""GluonCV models from the MXNet fixtures (edgepose.converters.mxnet.fixtures), converted for the benchmark.

The fixtures are real MXNet exports (symbol + params, random weights) built by
`python -m edgepose.converters.mxnet.fixtures` in its own venv. Here they are converted with the
shared pipeline (edgepose.converters.convert: MXNet -> ONNX -> onnxsim -> MNN), once, into the
benchmark cache, keyed by the fixture set, the MXNet translator's code and the tool versions.

They are ImageNet classifiers without a pose card, so they are timed on the raw session only
(`raw_only`). Their INT8 files (table C) are made with the INT8 engines directly, calibrated on
crops of the pinned person photos resized to 224x224 with ImageNet normalisation; the card
stamped into those files exists only to describe that preprocessing.

Benchmark names are `mxnet:<gluoncv name>`, e.g. `mxnet:resnet50_v1d_0.48`.
"""
from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from edgepose.errors import EdgePoseError, ModelFileError
from edgepose.files import sha256_bytes
from edgepose.presets import IMAGENET_MEAN, IMAGENET_STD

from .source import ModelSource, SourceUnavailableError

log = logging.getLogger(__name__)

PREFIX = "mxnet:"
CALIB_COUNT = 16
# Part of the cache key: the files are converters.convert's own names in the cache folder (no renames).
LAYOUT = b"layout 2"
FIXTURES_MODULE = "edgepose.converters.mxnet.fixtures"
BUILD_COMMAND = f"python -m {FIXTURES_MODULE}  (or: edgepose bench table-b, which builds them)"


class FixturesMissingError(SourceUnavailableError, FileNotFoundError):
    """The MXNet fixture set is not built (or a model is not in it)."""


def is_mxnet_name(item: str) -> bool:
    return item.startswith(PREFIX)


def fixture_module():
    """The MXNet fixture builder: part of the installed package (stdlib only until it builds)."""
    from edgepose.converters.mxnet import fixtures

    return fixtures


def fixtures_dir() -> Path:
    """The fixture folder the tests use ($EDGEPOSE_MXNET_FIXTURES or the builder's cache dir)."""
    return fixture_module().fixtures_dir()


def locate_fixtures() -> Path:
    """The built fixture folder (holds manifest.json), or FixturesMissingError saying how to build it."""
    folder = fixtures_dir()
    if folder is not None and (folder / "manifest.json").is_file():
        return folder
    where = f" (looked in {folder})" if folder is not None else ""
    raise FixturesMissingError(f"MXNet fixtures are not built{where}; build them with {BUILD_COMMAND}")


def build_fixtures(*, timeout: float = 3600.0) -> Path:
    """Build the fixtures (creates the MXNet venv on first use: pip downloads ~200 MB); returns the folder."""
    log.warning("building the MXNet fixtures with %s (first time: creates an MXNet venv, ~2-5 min)", FIXTURES_MODULE)
    run = subprocess.run([sys.executable, "-m", FIXTURES_MODULE], capture_output=True, text=True, timeout=timeout,
                         stdin=subprocess.DEVNULL)
    if run.returncode != 0:
        raise FixturesMissingError(f"python -m {FIXTURES_MODULE} failed (exit {run.returncode}): "
                                   f"{(run.stderr or run.stdout).strip().splitlines()[-5:]}")
    return locate_fixtures()


def ensure_fixtures(*, build: bool) -> Path:
    try:
        return locate_fixtures()
    except FixturesMissingError:
        if not build:
            raise
    return build_fixtures()


def fixture_models(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "manifest.json").read_text()).get("models", {})


def _key(folder: Path) -> str:
    """Fixture set + the MXNet translator's code + tool versions + LAYOUT."""
    import importlib.metadata as md

    import edgepose.converters.mxnet as mx

    parts = [LAYOUT, folder.name.encode(), (folder / "manifest.json").read_bytes()]
    root = Path(mx.__file__).parent
    for f in sorted(root.glob("*.py")):
        parts += [f.name.encode(), f.read_bytes()]
    for dist in ("onnx", "onnxsim", "MNN"):
        try:
            parts.append(f"{dist}={md.version(dist)}".encode())
        except md.PackageNotFoundError:
            pass
    return sha256_bytes(b"".join(parts))[:12]


def mxnet_source(item: str, *, cache: Path, weights: tuple[str, ...] = ("fp32",), int8: Iterable[str] = (),
                 build: bool = False):
    """A raw-only ModelSource for `mxnet:<name>`: simplified ONNX, MNN FP32 (+FP16), INT8 when asked."""
    name = item[len(PREFIX):] if is_mxnet_name(item) else item
    folder = ensure_fixtures(build=build)
    models = fixture_models(folder)
    if name not in models:
        raise FixturesMissingError(f"{name!r} is not among the MXNet fixtures ({', '.join(models)}); "
                                   f"add it to MODELS in {FIXTURES_MODULE}")
    shape = tuple(models[name]["inputs"]["data"])
    out = Path(cache) / "mxnet" / f"{name}-{_key(folder)}"
    onnx_path, mnn = out / f"{name}.sim.onnx", {"fp32": out / f"{name}.mnn", "fp16": out / f"{name}.fp16.mnn"}
    need = [w for w in weights if w in mnn] or ["fp32"]
    if int8 and "mnn" in int8 and "fp32" not in need:
        need.append("fp32")
    if not onnx_path.is_file() or not all(mnn[w].is_file() for w in need):
        _convert(folder / "models" / name, out, name, shape, fp16="fp16" in need)
    artifacts = {("onnx", "fp32"): onnx_path}
    artifacts.update({("mnn", w): mnn[w] for w in need})
    engines = tuple(e for e in int8 if e in ("mnn", "onnxruntime"))
    if engines:
        artifacts.update(classifier_int8(name, artifacts, out, shape, engines))
    return ModelSource(name=f"{PREFIX}{name}", kind="mxnet", artifacts=artifacts, onnx=onnx_path, raw_only=True)


def _convert(prefix: Path, out: Path, name: str, shape: tuple[int, ...], *, fp16: bool) -> None:
    from edgepose.converters import convert

    symbol, params = Path(f"{prefix}-symbol.json"), Path(f"{prefix}-0000.params")
    if not symbol.is_file() or not params.is_file():
        raise ModelFileError(f"fixture files missing: {symbol} / {params}; rebuild with {BUILD_COMMAND}")
    log.info("converting MXNet %s (%s) into %s", name, shape, out)
    try:
        convert(str(symbol), params=str(params), input_shape=shape, output_dir=out, fp16=fp16, strict=False)
    except EdgePoseError as exc:
        raise SourceUnavailableError(f"{PREFIX}{name}: conversion failed ({type(exc).__name__}: {exc})") from exc
    (out / f"{name}.onnx").unlink(missing_ok=True)  # the unsimplified translation; ORT runs the simplified one


# --- INT8 for classifiers -----------------------------------------------------------------
def classifier_spec(name: str, shape: tuple[int, ...]):
    """A card describing only the classifier's input preprocessing (ImageNet mean/std, RGB, NCHW)."""
    from edgepose.spec import ModelSpec

    return ModelSpec(name=name, input_size=(int(shape[3]), int(shape[2])), head="regression", num_keypoints=1,
                     layout="NCHW", color="RGB", mean=IMAGENET_MEAN, std=IMAGENET_STD, input_name="data",
                     provenance={"note": "ImageNet classifier (GluonCV, MXNet fixture, random weights): this card "
                                         "only describes the input preprocessing used for INT8 calibration"})


def classifier_calibration(width: int, height: int, *, count: int = CALIB_COUNT):
    """Pinned person photo crops (box as is), resized to width x height; the held-out photo is not used."""
    import cv2

    from edgepose.converters.quantize.calibration import CalibrationSet
    from edgepose.converters.quantize.samples import pinned_samples

    samples = pinned_samples("person", "calibration")
    idx = np.linspace(0, len(samples) - 1, min(count, len(samples))).round().astype(int)
    crops, names = [], []
    for i in idx:
        s = samples[i]
        x1, y1, x2, y2 = (int(round(v)) for v in s.box)
        h, w = s.image.shape[:2]
        patch = s.image[max(0, y1):min(h, y2), max(0, x1):min(w, x2)]
        crops.append(cv2.resize(patch, (width, height), interpolation=cv2.INTER_AREA))
        names.append(s.name)
    return CalibrationSet(np.stack(crops), names, [None] * len(names), "pinned:person (box crops resized)")


def classifier_int8(name: str, fp32: dict, out: Path, shape: tuple[int, ...],
                    engines: Iterable[str]) -> dict[tuple[str, str], Path]:
    """MNN EMA and ONNX Runtime QDQ (U8S8, per-channel) files, cached; an engine that fails is logged."""
    from edgepose.converters.quantize import mnn_engine, ort_engine

    from .int8_source import int8_dir

    spec = classifier_spec(name, shape)
    arts: dict[tuple[str, str], Path] = {}
    calib = None
    folder = int8_dir(out)
    folder.mkdir(parents=True, exist_ok=True)
    for engine in engines:
        dst = folder / (f"{name}.int8.mnn" if engine == "mnn" else f"{name}.int8.onnx")
        if not dst.is_file():
            calib = calib if calib is not None else classifier_calibration(spec.input_size[0], spec.input_size[1])
            src = fp32[("mnn", "fp32")] if engine == "mnn" else fp32[("onnx", "fp32")]
            int8_spec = spec.with_provenance(precision="int8", stage=f"int8-{engine}", parent=src.name,
                                             calibration=calib.provenance())
            try:
                if engine == "mnn":
                    mnn_engine.quantize(src, dst, calib, spec, int8_spec)
                else:
                    ort_engine.quantize(src, dst, calib, spec, int8_spec, settings=ort_engine.select_config(
                        # a classifier has no keypoints to score mixed precision on: all-INT8, as table C's rows
                        activations=ort_engine.DEFAULT_ACTIVATIONS, float_fallback=False))
            except EdgePoseError as exc:
                log.warning("INT8 %s with %s failed: %s", name, engine, exc)
                continue
        arts[("mnn" if engine == "mnn" else "onnx", "int8")] = dst
    return arts
