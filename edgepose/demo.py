"""The main job: a real pretrained pose model on a real photo, from nothing but PyPI.

Fetches MediaPipe BlazePose (full) from the pinned mediapipe wheel, converts it to MNN with
its metadata embedded (once; cached), runs the Predictor on a photo, writes an annotated PNG
and a JSON of keypoints, and measures the latency of `predict`.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2

from . import assets
from ._native import import_mnn
from .errors import ModelFileError
from .predictor import Predictor
from .presets import get_preset
from .spec import PoseResult
from .visualize import draw_pose

log = logging.getLogger(__name__)

DEMO_MODEL = "pose_landmark_full"
DEMO_PRESET = "blazepose_full"
DEMO_IMAGE = "astronaut"


@dataclass(frozen=True)
class DemoResult:
    model: Path
    image: Path
    annotated: Path
    keypoints_json: Path
    result: PoseResult
    timing: dict[str, float]


def demo_model(*, fp16: bool = True) -> Path:
    """The converted BlazePose MNN file in the cache, converting it on first use."""
    source = assets.fetch_asset(DEMO_MODEL)
    precision = "fp16" if fp16 else "fp32"
    target = assets.cache_dir() / "models" / f"{DEMO_MODEL}.{precision}.mnn"
    if target.is_file():
        try:
            spec = Predictor(target).spec
            if spec.provenance.get("source_sha256") == assets.ASSETS[DEMO_MODEL].sha256:
                return target
        except Exception as exc:  # noqa: BLE001 - a stale or broken cache entry is rebuilt
            log.warning("rebuilding cached %s (%s)", target, exc)
    from .converters.mnn_native import convert_to_mnn  # build-time code, loaded only here

    MNN = import_mnn()
    spec = get_preset(DEMO_PRESET).with_provenance(
        source=source.name, source_sha256=assets.ASSETS[DEMO_MODEL].sha256,
        source_package=f"{assets.ASSETS[DEMO_MODEL].package}=={assets.ASSETS[DEMO_MODEL].version}",
        converter=f"MNN {MNN.version()}", precision=precision)
    log.info("converting %s to %s", source.name, target)
    convert_to_mnn(source, target, framework="TFLITE", fp16=fp16, biz_code=spec.to_json())
    return target


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
             threads: int = 1) -> DemoResult:
    model = demo_model(fp16=fp16)
    image_path = resolve_image(image)
    predictor = Predictor(model, threads=threads)
    bgr = cv2.imread(str(image_path), cv2.IMREAD_COLOR)
    bboxes = [list(bbox)] if bbox is not None else None
    result = predictor.predict(bgr if bgr is not None else image_path, bboxes)
    timing = predictor.time(bgr, bboxes, repeats=repeats)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    annotated = out / f"{image_path.stem}_pose.png"
    cv2.imwrite(str(annotated), draw_pose(bgr, result))
    keypoints_json = out / f"{image_path.stem}_pose.json"
    keypoints_json.write_text(result.to_json())
    return DemoResult(model, image_path, annotated, keypoints_json, result, timing)
