"""The main job: real pretrained models on a real photo, from nothing but PyPI.

Fetches MediaPipe's person detector and BlazePose (full) from the pinned mediapipe wheel,
converts both to MNN with their metadata embedded (once; cached; the detector's sparse weights
are densified first), runs the top-down Pipeline on a photo (every person), writes an annotated
PNG and a JSON of keypoints, and measures the latency of each stage.
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from . import assets
from ._native import import_mnn
from .errors import InputError, ModelFileError, OutputError
from .files import atomic_write_bytes
from .heads import DETECTOR_HEADS
from .pipeline import Pipeline
from .detector import Detector
from .predictor import Predictor
from .processing.image import load_image
from .presets import get_preset
from .spec import PoseResult
from .visualize import draw_pose

log = logging.getLogger(__name__)

DEMO_MODEL = "pose_landmark_full"
DEMO_PRESET = "blazepose_full"
DETECTOR_MODEL = "pose_detection"
DETECTOR_PRESET = "blazepose_detector"
DEMO_IMAGE = "astronaut"


@dataclass(frozen=True)
class DemoResult:
    model: Path
    detector: Path | None
    image: Path
    annotated: Path
    keypoints_json: Path
    result: PoseResult
    timing: dict[str, float]
    engines: dict[str, str] | None = None  # "detector" / "model" -> the backend that ran it


def pinned_model(asset: str, preset: str, *, fp16: bool = True) -> Path:
    """A pinned MediaPipe model converted to MNN with its preset embedded, cached; converted on
    first use (and again when the cached file's metadata differs from the preset's)."""
    source = assets.fetch_asset(asset)
    precision = "fp16" if fp16 else "fp32"
    target = assets.cache_dir() / "models" / f"{asset}.{precision}.mnn"
    wanted = get_preset(preset)
    if target.is_file():
        try:
            spec = (Detector if wanted.head in DETECTOR_HEADS else Predictor)(target).spec
            same = spec.replace(provenance={}) == wanted.replace(provenance={})
            if same and spec.provenance.get("source_sha256") == assets.ASSETS[asset].sha256:
                return target
        except Exception as exc:  # noqa: BLE001 - a stale or broken cache entry is rebuilt
            log.warning("rebuilding cached %s (%s)", target, exc)
    build = model_builder("tflite-mnn")
    MNN = import_mnn()
    spec = wanted.with_provenance(
        source=source.name, source_sha256=assets.ASSETS[asset].sha256,
        source_package=f"{assets.ASSETS[asset].package}=={assets.ASSETS[asset].version}",
        converter=f"MNN {MNN.version()}", precision=precision)
    log.info("converting %s to %s", source.name, target)
    build(source, target, fp16=fp16, biz_code=spec.to_json())
    return target


def model_builder(name: str):
    """A conversion function registered by the build-time package under the `edgepose.model_builders`
    entry point: the runtime asks for it by name and never imports build-time code itself."""
    from importlib.metadata import entry_points

    found = [ep for ep in entry_points(group="edgepose.model_builders") if ep.name == name]
    if not found:
        raise ModelFileError(f"no model builder {name!r} is registered (entry point group edgepose.model_builders); "
                             "reinstall edgepose (`pip install -e '.[demo]'`)")
    try:
        return found[0].load()
    except ImportError as exc:
        raise ModelFileError(f"converting the pinned models needs the demo extra ({exc}); "
                             "install it with `pip install 'edgepose[demo]'`") from exc


def demo_model(*, fp16: bool = True) -> Path:
    """The converted BlazePose landmark model (MNN) in the cache."""
    return pinned_model(DEMO_MODEL, DEMO_PRESET, fp16=fp16)


def detector_model(*, fp16: bool = True) -> Path:
    """The converted MediaPipe person detector (MNN) in the cache."""
    return pinned_model(DETECTOR_MODEL, DETECTOR_PRESET, fp16=fp16)


def default_pipeline(*, fp16: bool = True, threads: int = 1, backend: str | None = None,
                     min_score: float | None = None, **options) -> Pipeline:
    """MediaPipe's person detector + BlazePose full, from the pinned wheel, converted to MNN.

    backend="auto" measures MNN against the engines that read the original .tflite files (LiteRT,
    OpenVINO) on this CPU, once, and runs each model on its fastest (edgepose.backends.auto).
    """
    alternatives = {}
    if backend is not None and str(backend).lower() == "auto":
        alternatives = {"det": [assets.fetch_asset(DETECTOR_MODEL)], "pose": [assets.fetch_asset(DEMO_MODEL)]}
    detector = Detector(detector_model(fp16=fp16), backend=backend, threads=threads, min_score=min_score,
                        alternatives=alternatives.get("det", ()))
    predictor = Predictor(demo_model(fp16=fp16), backend=backend, threads=threads,
                          alternatives=alternatives.get("pose", ()))
    return Pipeline(detector, predictor, **options)


def resolve_image(image: str | Path | None) -> Path:
    """A user's image path, or the name of a pinned photo (astronaut, grace_hopper, bus, zidane)."""
    if image is None:
        return assets.fetch_asset(DEMO_IMAGE)
    if str(image) in assets.PHOTO_PERSON_BOXES:
        return assets.fetch_asset(str(image))
    path = Path(image)
    if not path.is_file():
        raise ModelFileError(
            f"image not found: {path}; pass a file or one of {', '.join(assets.PHOTO_PERSON_BOXES)}")
    return path


def run_demo(*, image: str | Path | None = None, bbox: Sequence[float] | None = None,
             output_dir: str | Path = "edgepose-demo", fp16: bool = True, repeats: int = 30,
             threads: int = 1, max_people: int | None = None, backend: str | None = None) -> DemoResult:
    """Detector + landmarks on every person (or BlazePose alone on a given box); PNG + JSON + latency."""
    image_path = resolve_image(image)
    bgr = load_image(image_path)
    out = Path(output_dir)
    annotated = out / f"{image_path.stem}_pose.png"
    keypoints_json = out / f"{image_path.stem}_pose.json"
    for target in (annotated, keypoints_json):
        if target.resolve() == image_path.resolve():
            raise InputError(f"the output {target} would overwrite the input image; choose another -o directory")
    if not isinstance(repeats, int) or isinstance(repeats, bool) or repeats < 1:
        raise InputError(f"repeats must be a positive integer, got {repeats!r}")
    prepare_output_dir(out)  # before minutes of conversion and timing, not after
    if bbox is not None:
        predictor = Predictor(demo_model(fp16=fp16), threads=threads, backend=backend,
                              alternatives=[assets.fetch_asset(DEMO_MODEL)] if backend == "auto" else ())
        detector_path = None
        result = predictor.predict(bgr, [list(bbox)])
        timing = predictor.time(bgr, [list(bbox)], repeats=repeats)
        model = predictor.backend.path
        engines = {"model": predictor.backend.name}
    else:
        pipeline = default_pipeline(fp16=fp16, threads=threads, max_people=max_people, backend=backend)
        detector_path, model = pipeline.detector.backend.path, pipeline.predictor.backend.path
        result = pipeline(bgr)
        timing = time_pipeline(pipeline, bgr, repeats=repeats)
        engines = {"detector": pipeline.detector.backend.name, "model": pipeline.predictor.backend.name}
    atomic_write_bytes(annotated, encode_png(draw_pose(bgr, result)))
    try:
        atomic_write_bytes(keypoints_json, result.to_json().encode())
    except OutputError as exc:
        raise OutputError(f"{exc} (the annotated image {annotated} was written)") from None
    return DemoResult(model, detector_path, image_path, annotated, keypoints_json, result, timing, engines)


def time_pipeline(pipeline: Pipeline, image, *, repeats: int = 30, warmup: int = 3) -> dict[str, float]:
    """Median / min / max ms of the whole pipeline call, and the median of each stage."""
    for _ in range(warmup):
        pipeline(image)
    total, det, kps = [], [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        pipeline(image)
        total.append((time.perf_counter() - t0) * 1e3)
        det.append(pipeline.last_timing["detector_ms"])
        kps.append(pipeline.last_timing["keypoints_ms"])
    return {"median_ms": float(np.median(total)), "min_ms": float(np.min(total)), "max_ms": float(np.max(total)),
            "detector_ms": float(np.median(det)), "keypoints_ms": float(np.median(kps))}


def encode_png(image: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", image)
    if not ok:
        raise InputError("OpenCV could not encode the annotated image as PNG")
    return buf.tobytes()


def prepare_output_dir(out: Path) -> None:
    """Create the demo's output directory, or say why it cannot be used (before any work)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise OutputError(f"-o {out} is an existing file, not a directory; pass a directory for the PNG and JSON")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the output directory {out}: {exc.strerror or exc}") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise OutputError(f"the output directory {out} is not writable")


def check_output_image(path: Path) -> None:
    """An annotated-image path OpenCV can encode, in an existing writable directory (checked before
    the model runs)."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"-o {path} is a directory; give a file name such as {path / 'pose.png'}")
    if not cv2.haveImageWriter(str(path)):
        raise OutputError(f"OpenCV cannot write {path.suffix or 'extension-less'!r} images ({path.name}); "
                          "use .png or .jpg")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(f"cannot write {path}: the directory {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write {path}: {parent} is not writable")
