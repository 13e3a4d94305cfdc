"""Frame sources: video files, image folders or globs, cameras, iterators of arrays, synthetic clips.

    from edgepose.sources import open_source
    with open_source("walk.mp4") as frames:          # or "shots/", "shots/*.jpg", 0 (a camera), [arr, ...]
        for frame in frames:                         # Frame(index, time in seconds, BGR uint8 image)
            ...

`SOURCE_KINDS` is the table of kinds, one entry each: a name, what SOURCE looks like (for help
and errors), a test that claims a SOURCE, and the class that opens it. `open_source` asks them in
order and the first that claims SOURCE opens it (or `kind=` picks one). A new kind of source is
one more entry here, nothing else.

Every source gives the same guarantees, whatever its kind:
- frames are BGR uint8 (H, W, 3), numbered from 0, with a time in seconds (a file's own frame
  rate, a camera's clock, or `fps` for images and arrays, 30 by default);
- a source with no frame at all raises EmptySourceError, a frame whose size differs from the
  first raises FrameSizeError (an annotated video and the tracker's crops need one size), and
  each kind says what it could not open (VideoError, CameraError, ImageError) and what to do.
"""
from __future__ import annotations

import contextlib
import glob
import logging
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import cv2
import numpy as np

from .errors import (CameraError, EmptySourceError, FrameSizeError, ImageError, InputError, SourceError,
                     VideoError)
from .processing.image import load_image

log = logging.getLogger(__name__)

DEFAULT_FPS = 30.0
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".jp2")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".ts",
                  ".gif")
_GLOB_CHARS = re.compile(r"[*?\[]")


@contextlib.contextmanager
def _quiet_opencv() -> Iterator[None]:
    """OpenCV's own warnings off while a capture opens: a failure becomes our error message instead."""
    logging_ = getattr(getattr(cv2, "utils", None), "logging", None)
    if logging_ is None:
        yield
        return
    before = logging_.getLogLevel()
    logging_.setLogLevel(logging_.LOG_LEVEL_ERROR)
    try:
        yield
    finally:
        logging_.setLogLevel(before)


@dataclass(frozen=True)
class Frame:
    index: int
    time: float  # seconds from the start of the stream
    image: np.ndarray  # BGR uint8 (H, W, 3)


class FrameSource:
    """Base of every source kind: iterate it for Frames; close it (or use `with`) when done.

    Subclasses set `name` (for messages) and may set `fps` (None: unknown), `count` (frames, if
    known in advance) and implement `_frames()` yielding (time or None, image); the checks common
    to all kinds (image validity, zero frames, a size change) are done here.
    """

    kind = "source"
    empty_hint = "check the source"

    def __init__(self, name: str, *, fps: float | None = None, count: int | None = None) -> None:
        self.name = name
        self.fps = fps
        self.count = count
        self.size: tuple[int, int] | None = None  # (width, height) once the first frame is read

    def _frames(self) -> Iterator[tuple[float | None, Any]]:
        raise NotImplementedError

    def __iter__(self) -> Iterator[Frame]:
        fps = self.fps or DEFAULT_FPS
        index = 0
        for t, raw in self._frames():
            try:
                image = load_image(raw)
            except ImageError as exc:
                raise ImageError(f"frame {index} of {self.name}: {exc}") from None
            h, w = image.shape[:2]
            if self.size is None:
                self.size = (w, h)
            elif self.size != (w, h):
                raise FrameSizeError(
                    f"frame {index} of {self.name} is {w}x{h} but the stream started at {self.size[0]}x"
                    f"{self.size[1]}; a stream must keep one frame size (the annotated video and the tracker's "
                    "crops depend on it): resize the frames to one size first, or split the stream where it changes")
            yield Frame(index, float(index / fps if t is None else t), image)
            index += 1
        if index == 0:
            raise EmptySourceError(f"{self.name} gave no frames: {self.empty_hint}")

    def close(self) -> None:
        pass

    def __enter__(self) -> "FrameSource":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "fps": self.fps, "frames": self.count,
                "size": list(self.size) if self.size else None}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class ArraySource(FrameSource):
    """An iterable (list, generator) of BGR uint8 arrays, or one (H, W, 3) array / (N, H, W, 3) stack."""

    kind = "arrays"
    empty_hint = "the iterable was empty"

    def __init__(self, frames: Any, *, fps: float | None = None) -> None:
        if isinstance(frames, np.ndarray) and frames.ndim == 3:
            frames = [frames]
        count = len(frames) if hasattr(frames, "__len__") else None
        super().__init__(f"<{type(frames).__name__} of frames>", fps=fps or DEFAULT_FPS, count=count)
        self._items = frames

    def _frames(self) -> Iterator[tuple[float | None, Any]]:
        for item in self._items:
            yield None, item


class ImageSource(FrameSource):
    """Image files in natural order: a folder, a glob pattern, or a list of paths."""

    kind = "images"
    empty_hint = "no image files there (looked for " + ", ".join(IMAGE_SUFFIXES[:6]) + ", ...)"

    def __init__(self, spec: Any, *, fps: float | None = None) -> None:
        paths, name = _image_paths(spec)
        super().__init__(name, fps=fps or DEFAULT_FPS, count=len(paths))
        self.paths = paths

    def _frames(self) -> Iterator[tuple[float | None, Any]]:
        for path in self.paths:
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is None:
                raise ImageError(f"{path} (in {self.name}) is not an image OpenCV can read; remove it or fix it")
            yield None, image


def _natural_key(path: Path) -> list[Any]:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", str(path))]


def _image_paths(spec: Any) -> tuple[list[Path], str]:
    if isinstance(spec, (list, tuple)):
        paths = [Path(p) for p in spec]
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise ImageError(f"image file(s) not found: {', '.join(missing[:5])}")
        return paths, f"{len(paths)} image files"
    text = str(spec)
    if Path(text).is_dir():
        paths = [p for p in Path(text).iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
        return sorted(paths, key=_natural_key), f"folder {text}"
    if _GLOB_CHARS.search(text):
        paths = [Path(p) for p in glob.glob(text, recursive=True)]
        return sorted((p for p in paths if p.is_file()), key=_natural_key), f"glob {text!r}"
    if not Path(text).is_file():
        raise ImageError(f"image file not found: {text}")
    return [Path(text)], text


class VideoSource(FrameSource):
    """A video file decoded by OpenCV (FFmpeg). Time = frame index / the file's frame rate."""

    kind = "video"
    empty_hint = "the video holds no frame (zero length, or only a header); check it plays in a video player"

    def __init__(self, path: Any, *, fps: float | None = None) -> None:
        p = Path(path)
        if not p.exists():
            raise VideoError(f"video file not found: {p}")
        if p.is_dir():
            raise VideoError(f"{p} is a folder; pass the video file inside it, or the folder of images itself")
        if p.stat().st_size == 0:
            raise EmptySourceError(f"{p} is empty (0 bytes): it gave no frames")
        with _quiet_opencv():
            cap = cv2.VideoCapture(str(p), cv2.CAP_FFMPEG)
        if not cap.isOpened():
            cap.release()
            raise VideoError(
                f"OpenCV cannot open {p} as a video: the file is corrupt or truncated (an MP4 cut short loses the "
                "index at its end), or in a codec this OpenCV build cannot decode. Check that it plays; "
                f"re-encoding it usually fixes both: ffmpeg -i {p.name} -c:v libx264 fixed.mp4")
        own = cap.get(cv2.CAP_PROP_FPS)
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        if fps is None and not (own and np.isfinite(own) and 0 < own < 1000):
            log.warning("%s does not say its frame rate; assuming %.0f fps", p, DEFAULT_FPS)
            own = DEFAULT_FPS
        super().__init__(str(p), fps=float(fps or own), count=count if count > 0 else None)
        self._cap = cap

    def _frames(self) -> Iterator[tuple[float | None, Any]]:
        read = 0
        while True:
            ok, image = self._cap.read()
            if not ok:
                break
            read += 1
            yield None, image
        if read == 0 and self.count:
            raise VideoError(f"{self.name} says it holds {self.count} frames but none decodes: the file is corrupt "
                             "or its codec is missing from this OpenCV build; re-encode it "
                             f"(ffmpeg -i {Path(self.name).name} -c:v libx264 fixed.mp4)")
        if self.count and read < self.count * 0.9:
            log.warning("%s: decoded %d of the %d frames its header announces (truncated or damaged file?)",
                        self.name, read, self.count)

    def close(self) -> None:
        self._cap.release()


class CameraSource(FrameSource):
    """A camera by index (cv2.VideoCapture(index)). Time = seconds since the camera opened."""

    kind = "camera"
    empty_hint = "the camera opened but gave no frame"

    def __init__(self, index: Any, *, fps: float | None = None) -> None:
        idx = int(index)
        with _quiet_opencv():
            cap = cv2.VideoCapture(idx)
        if not cap.isOpened():
            cap.release()
            found = sorted(glob.glob("/dev/video*")) if os.name == "posix" else []
            listing = (f"this machine has {', '.join(found)}" if found else "no camera device was found"
                       ) if os.name == "posix" and Path("/dev").is_dir() else "list the cameras the OS sees"
            raise CameraError(
                f"camera {idx} could not be opened ({listing}): pass the index of a connected camera "
                "(0 is usually the built-in one), close any other program using it, and check you may use it "
                "(on Linux: membership of the 'video' group)")
        own = cap.get(cv2.CAP_PROP_FPS)
        super().__init__(f"camera {idx}", fps=float(fps or own) if (fps or (own and own > 0)) else None)
        self._cap = cap

    def _frames(self) -> Iterator[tuple[float | None, Any]]:
        t0 = time.monotonic()
        read = 0
        while True:
            ok, image = self._cap.read()
            if not ok:
                if read == 0:
                    raise CameraError(f"{self.name} opened but returns no frame (busy, or not a video "
                                      "capture device); try another index")
                log.warning("%s stopped giving frames after %d", self.name, read)
                return
            read += 1
            yield time.monotonic() - t0, image

    def close(self) -> None:
        self._cap.release()


class ClipSource(FrameSource):
    """`clip:PHOTO:MOTION`: a synthetic clip of a pinned photo (edgepose.clips), e.g. clip:bus:pan."""

    kind = "clip"

    def __init__(self, spec: Any, *, fps: float | None = None) -> None:
        from .clips import pinned_clip

        try:
            self.clip = pinned_clip(str(spec).split(":", 1)[1])
        except SourceError:
            raise
        except InputError as exc:
            raise SourceError(str(exc)) from None
        super().__init__(f"clip:{self.clip.name}", fps=fps or self.clip.fps, count=len(self.clip))

    def _frames(self) -> Iterator[tuple[float | None, Any]]:
        for frame in self.clip.frames:
            yield None, frame


def _is_pathlike(x: Any) -> bool:
    return isinstance(x, (str, os.PathLike))


def _claims_camera(x: Any) -> bool:
    if isinstance(x, bool):
        return False
    if isinstance(x, (int, np.integer)):
        return True
    return isinstance(x, str) and x.isdigit() and not Path(x).exists()


def _claims_images(x: Any) -> bool:
    if isinstance(x, (list, tuple)):
        return bool(x) and all(_is_pathlike(p) for p in x)
    if not _is_pathlike(x):
        return False
    text = str(x)
    p = Path(text)
    return p.is_dir() or (p.suffix.lower() in IMAGE_SUFFIXES and not _GLOB_CHARS.search(text)) or (
        bool(_GLOB_CHARS.search(text)) and not p.exists())


def _claims_arrays(x: Any) -> bool:
    if isinstance(x, np.ndarray):
        return True
    return not _is_pathlike(x) and not isinstance(x, (bytes, dict)) and isinstance(x, Iterable)


@dataclass(frozen=True)
class SourceKind:
    """One kind of frame source: `claims(SOURCE)` says whether SOURCE is one; `open(SOURCE, fps=)` opens it."""

    name: str
    looks_like: str
    claims: Callable[[Any], bool]
    open: Callable[..., FrameSource]


# Asked in this order; the first kind that claims a SOURCE opens it.
SOURCE_KINDS: dict[str, SourceKind] = {k.name: k for k in (
    SourceKind("clip", "clip:PHOTO:MOTION, a synthetic clip of a pinned photo (e.g. clip:bus:pan)",
               lambda x: isinstance(x, str) and x.startswith("clip:"), ClipSource),
    SourceKind("camera", "a camera index: 0, 1, ...", _claims_camera, CameraSource),
    SourceKind("images", "a folder of images, a glob such as 'shots/*.jpg', an image file, or a list of paths",
               _claims_images, ImageSource),
    SourceKind("video", "a video file (.mp4, .avi, .mov, .mkv, ...)", _is_pathlike, VideoSource),
    SourceKind("arrays", "a BGR uint8 array, or an iterable of them (list, generator)", _claims_arrays, ArraySource),
)}


def open_source(source: Any, *, kind: str | None = None, fps: float | None = None) -> FrameSource:
    """Open SOURCE as the first kind in SOURCE_KINDS that claims it (or as `kind`). `fps` sets the
    frame rate of sources without their own (images, arrays) and overrides a file's."""
    if isinstance(source, FrameSource):
        return source
    if fps is not None and not (np.isfinite(fps) and fps > 0):
        raise SourceError(f"fps must be a positive number, got {fps!r}")
    if kind is not None:
        if kind not in SOURCE_KINDS:
            raise SourceError(f"unknown source kind {kind!r}; kinds: {', '.join(SOURCE_KINDS)}")
        return SOURCE_KINDS[kind].open(source, fps=fps)
    for entry in SOURCE_KINDS.values():
        if entry.claims(source):
            return entry.open(source, fps=fps)
    raise SourceError(f"cannot read frames from a {type(source).__name__}; a source is "
                      + "; or ".join(f"{k.looks_like} ({k.name})" for k in SOURCE_KINDS.values()))


def describe_kinds() -> str:
    """One line per kind, for help texts."""
    return "\n".join(f"  {k.name:7s} {k.looks_like}" for k in SOURCE_KINDS.values())
