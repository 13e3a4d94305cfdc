"""Calibration data: images -> the exact crops the Predictor would feed the FP32 model.

Each sample is cropped by `Predictor.prepare` on the FP32 model (the whole image, or each
person box from `boxes.json`), so calibration sees what inference sees. The uint8 crops are
kept; each engine packs them with the Predictor's own `InputPacker` for its model's layout.

A calibration folder holds images (.jpg .jpeg .png .bmp .webp .tif .tiff) and optionally
`boxes.json`: {"photo.jpg": [[x1, y1, x2, y2], ...]}; an image it does not list is used whole.
Handling of bad input: a missing or empty folder, a file with an image suffix that does not
decode, a box outside its image, or fewer samples than asked raise CalibrationError.
Grayscale and 16-bit images are read as 8-bit BGR (OpenCV's IMREAD_COLOR), with a log line;
any size is fine (the crop resizes), except images under 8 pixels on a side (an error).
"""
from __future__ import annotations

import hashlib
import json
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np

from edgepose.errors import CalibrationError, EdgePoseError
from edgepose.files import sha256_file
from edgepose.processing.image import InputPacker
from edgepose.spec import ModelSpec

from .samples import PhotoSample, pinned_samples

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
BOXES_FILE = "boxes.json"
PINNED_PREFIX = "pinned:"
MIN_SIDE = 8


@dataclass
class CalibrationSet:
    """Crops (N, H, W, 3) BGR uint8 exactly as the Predictor makes them, with their provenance.

    names    one per crop ("photo.jpg" or "photo.jpg#1" for the second box).
    images   the source image files (or pinned photo names) and their sha256.
    """

    crops: np.ndarray
    names: list[str]
    boxes: list[tuple[float, float, float, float] | None]
    source: str
    images: dict[str, str] = field(default_factory=dict)
    matrices: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.crops.shape[0])

    @property
    def sha256(self) -> str:
        """One hash over the crops themselves: the same pixels give the same hash."""
        digest = hashlib.sha256()
        digest.update(np.ascontiguousarray(self.crops).tobytes())
        for name in self.names:
            digest.update(name.encode())
        return digest.hexdigest()

    def tensors(self, spec: ModelSpec) -> np.ndarray:
        """(N, ...) float32 in `spec`'s layout, colour and normalisation (the Predictor's packer)."""
        return np.ascontiguousarray(InputPacker(spec).pack(self.crops)).copy()

    def subset(self, count: int) -> "CalibrationSet":
        """`count` samples spread evenly over the set (keeps every photo represented)."""
        if count > len(self):
            raise CalibrationError(
                f"asked for {count} calibration samples but {self.source} gives only {len(self)}; "
                f"lower --calib-count to at most {len(self)} or add images")
        idx = np.linspace(0, len(self) - 1, count).round().astype(int) if count < len(self) else np.arange(len(self))
        return CalibrationSet(self.crops[idx], [self.names[i] for i in idx], [self.boxes[i] for i in idx],
                              self.source, dict(self.images),
                              None if self.matrices is None else self.matrices[idx])

    def provenance(self) -> dict[str, Any]:
        return {"source": self.source, "count": len(self), "sha256": self.sha256,
                "samples": list(self.names), "images": dict(self.images)}

    def write_pngs(self, folder: Path) -> list[Path]:
        """Lossless PNGs of the crops (MNN's quantiser reads images from a folder itself)."""
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for i, crop in enumerate(self.crops):
            path = folder / f"{i:05d}.png"
            if not cv2.imwrite(str(path), crop):
                raise CalibrationError(f"could not write calibration crop {path}")
            paths.append(path)
        return paths


# --- building a set --------------------------------------------------------------------------
def load_calibration(calib: str | Path | Sequence[PhotoSample], predictor, *, split: str = "calibration",
                     progress: bool = True) -> CalibrationSet:
    """A CalibrationSet from a folder, "pinned:person" / "pinned:hand", or PhotoSamples."""
    if isinstance(calib, str) and calib.startswith(PINNED_PREFIX):
        kind = calib[len(PINNED_PREFIX):]
        try:
            samples = pinned_samples(kind, split)
        except ValueError as exc:
            raise CalibrationError(f"{calib!r}: {exc}") from None
        return from_samples(samples, predictor, source=calib if split == "calibration" else f"{calib} (held out)",
                            progress=progress)
    if isinstance(calib, (str, Path)):
        return from_folder(Path(calib), predictor, progress=progress)
    return from_samples(list(calib), predictor, source="samples", progress=progress)


def from_samples(samples: Sequence[PhotoSample], predictor, *, source: str, progress: bool = True) -> CalibrationSet:
    if not samples:
        raise CalibrationError(f"{source}: no samples")
    crops, names, boxes, matrices = [], [], [], []
    for s in _progress(samples, "calibration crops", progress):
        crop, matrix = _crop(predictor, s.image, s.box, s.name)
        crops.append(crop)
        names.append(s.name)
        boxes.append(s.box)
        matrices.append(matrix)
    from edgepose.assets import ASSETS

    photos = {s.photo: ASSETS[s.photo].sha256 for s in samples if s.photo in ASSETS}
    return CalibrationSet(np.stack(crops), names, boxes, source, photos, np.stack(matrices))


def from_folder(folder: Path, predictor, *, files: Sequence[Path] | None = None,
                progress: bool = True) -> CalibrationSet:
    """Crops of the images in `folder` (or just `files` of it), per boxes.json or whole."""
    if not folder.exists():
        raise CalibrationError(f"calibration folder {folder} does not exist")
    if not folder.is_dir():
        raise CalibrationError(f"--calib must be a folder of images, {folder} is a file")
    if files is None:
        files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise CalibrationError(
            f"calibration folder {folder} has no images ({', '.join(IMAGE_SUFFIXES)}); "
            "put a few dozen photos like the ones the model will see there")
    all_names = {p.name for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES}
    boxes_by_file = _read_boxes(folder, all_names)
    crops, names, boxes, matrices, hashes = [], [], [], [], {}
    for path in _progress(files, "calibration images", progress):
        image = _read_image(path)
        hashes[path.name] = sha256_file(path)
        listed = boxes_by_file.get(path.name)
        for j, box in enumerate(listed if listed else [None]):
            crop, matrix = _crop(predictor, image, box, path.name)
            crops.append(crop)
            names.append(path.name if listed is None else f"{path.name}#{j}")
            boxes.append(None if box is None else tuple(float(v) for v in box))
            matrices.append(matrix)
    return CalibrationSet(np.stack(crops), names, boxes, str(folder), hashes, np.stack(matrices))


def _read_image(path: Path) -> np.ndarray:
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is None or raw.size == 0:
        raise CalibrationError(f"calibration image {path} cannot be read (corrupt or not an image); "
                               "remove it or replace it with a readable JPEG/PNG")
    if min(raw.shape[:2]) < MIN_SIDE:
        raise CalibrationError(f"calibration image {path} is {raw.shape[1]}x{raw.shape[0]} pixels; "
                               f"images need at least {MIN_SIDE} pixels on each side")
    if raw.ndim == 2 or raw.shape[2] == 1 or raw.dtype != np.uint8:
        log.info("%s is %s; read as 8-bit BGR", path.name,
                 "grayscale" if raw.ndim == 2 or raw.shape[2] == 1 else str(raw.dtype))
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise CalibrationError(f"calibration image {path} cannot be decoded as a colour image")
    return image


def _read_boxes(folder: Path, names: set[str]) -> dict[str, list[list[float]]]:
    path = folder / BOXES_FILE
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CalibrationError(f"{path} is not valid JSON ({exc}); expected "
                               '{"photo.jpg": [[x1, y1, x2, y2], ...]}') from None
    if not isinstance(data, dict):
        raise CalibrationError(f'{path} must map image names to box lists: {{"photo.jpg": [[x1, y1, x2, y2]]}}')
    unknown = sorted(set(data) - names)
    if unknown:
        raise CalibrationError(f"{path} lists boxes for images that are not in the folder: {unknown[:5]}")
    out = {}
    for name, boxes in data.items():
        arr = np.asarray(boxes, dtype=float) if boxes else np.zeros((0, 4))
        if arr.ndim == 1 and arr.size == 4:
            arr = arr[None]
        if arr.ndim != 2 or arr.shape[1] != 4 or len(arr) == 0:
            raise CalibrationError(f"{path}: boxes of {name!r} must be a non-empty list of [x1, y1, x2, y2]")
        out[name] = arr.tolist()
    return out


def _crop(predictor, image: np.ndarray, box, name: str) -> tuple[np.ndarray, np.ndarray]:
    """The uint8 crop `Predictor.prepare` makes, recovered from its tensor (checked exactly)."""
    try:
        tensor, matrices, _ = predictor.prepare(image, None if box is None else [box])
    except EdgePoseError as exc:
        raise CalibrationError(f"calibration sample {name}: {exc}") from None
    spec = predictor.spec
    t = np.asarray(tensor[0], np.float64)
    if spec.layout == "NCHW":
        t = t.transpose(1, 2, 0)
    pixels = t * np.asarray(spec.std) + np.asarray(spec.mean)
    if spec.color == "RGB":
        pixels = pixels[..., ::-1]
    crop = np.clip(np.rint(pixels), 0, 255).astype(np.uint8)
    if not np.array_equal(InputPacker(spec).pack(crop[None])[0], tensor[0]):
        raise CalibrationError(f"calibration sample {name}: the crop could not be recovered exactly "
                               "from the Predictor's input tensor")
    return crop, matrices[0]


def _progress(items, desc: str, enabled: bool):
    if not enabled:
        return items
    try:
        from tqdm import tqdm
    except ImportError:  # tqdm is a dependency of the convert extra; a bar is optional
        return items
    return tqdm(items, desc=desc, unit="img", file=sys.stderr, leave=False)
