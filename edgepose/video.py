"""`edgepose track`: a source in, an annotated video and JSON lines out, written atomically.

    from edgepose.video import run_track
    summary = run_track("walk.mp4", output="walk_pose.mp4", jsonl="walk_pose.jsonl")

Outputs are written under a temporary name beside the final one and renamed when the run ends:
a run that fails leaves nothing under the final names (and no temporary file). A run stopped by
the user (Ctrl-C, or q / Esc in the live window) is a normal end: the frames done so far are
written and renamed, so the video plays and the JSON lines are whole. The output paths are checked
before any frame is read: a folder that does not exist, cannot be written, a path that is the
input itself or a container OpenCV cannot write fail at once.

The live window (`show=True`) needs an OpenCV build with a GUI; the runtime installs the
headless one (see `check_display`, and the `gui` extra in the README).
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import cv2
import numpy as np

from .errors import DisplayError, OutputError
from .files import atomic_path

log = logging.getLogger(__name__)

# container suffix -> FourCC OpenCV's FFmpeg writer is asked for (all present in the pip wheels)
VIDEO_CODECS = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".mkv": "mp4v", ".avi": "MJPG"}
OPENCV_DISTRIBUTIONS = ("opencv-python", "opencv-contrib-python", "opencv-python-headless",
                        "opencv-contrib-python-headless")
WINDOW = "edgepose track (q or Esc to stop)"


def check_output_path(path: str | Path, *, inputs: tuple[Any, ...] = (), suffixes: tuple[str, ...] | None = None
                      ) -> Path:
    """The output path, once it is known to be writable: its folder exists and takes a file, it
    is not a folder, not one of the inputs, and (for a video) has a suffix OpenCV can write."""
    out = Path(path)
    if out.is_dir():
        raise OutputError(f"{out} is a folder; give a file name in it, e.g. {out / 'out.mp4'}")
    if suffixes is not None and out.suffix.lower() not in suffixes:
        raise OutputError(f"cannot write a video to {out}: use one of {', '.join(suffixes)} "
                          f"(.mp4 is written with the mp4v codec, .avi with MJPG)")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(f"cannot write {out}: the folder {parent} does not exist (create it first)")
    for item in inputs:
        if isinstance(item, (str, os.PathLike)) and Path(item).exists() and out.exists() \
                and out.resolve() == Path(item).resolve():
            raise OutputError(f"{out} is the input; choose another output path (the input is never overwritten)")
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".probe", dir=parent)
    except OSError as exc:
        raise OutputError(f"cannot write in {parent} ({exc.strerror or exc}); choose a folder you can write to") from None
    os.close(fd)
    os.unlink(probe)
    if out.exists() and not os.access(out, os.W_OK):
        raise OutputError(f"{out} exists and is read-only; remove it or choose another name")
    return out


class _AtomicOutput:
    """A file written under a temporary name in its final folder (edgepose.files.atomic_path, held open
    across frames): commit() gives it its name, abort() removes it."""

    class _Aborted(Exception):
        """Thrown into atomic_path by abort(), so it takes its failure path and leaves nothing."""

    def __init__(self, path: Path, suffix: str = "") -> None:
        self.path = path
        self._stack = contextlib.ExitStack()
        # create: the temporary file exists from the start (a writer opens it); an empty output is
        # still committed (a clip whose frames all failed keeps its JSON lines file).
        self.tmp = self._stack.enter_context(atomic_path(path, create=True, require_output=False,
                                                         suffix=f".part{suffix}"))
        self.done = False

    def commit(self) -> Path:
        try:
            self._close()
        except BaseException:
            self.abort()
            raise
        self.done = True
        self._stack.close()  # atomic_path renames (or raises OutputError, leaving nothing)
        return self.path

    def abort(self) -> None:
        if self.done:
            return
        self.done = True
        try:
            self._close()
        finally:
            self._stack.__exit__(self._Aborted, self._Aborted(), None)

    def _close(self) -> None:
        pass


class VideoOutput(_AtomicOutput):
    """An annotated video: cv2.VideoWriter on a temporary file, opened at the first frame's size."""

    def __init__(self, path: str | Path, fps: float) -> None:
        out = Path(path)
        super().__init__(out, suffix=out.suffix)  # OpenCV picks the container from the suffix
        self.fps = float(fps)
        self.fourcc = VIDEO_CODECS.get(out.suffix.lower(), "mp4v")
        self._writer: cv2.VideoWriter | None = None
        self.size: tuple[int, int] | None = None
        self.frames = 0

    def write(self, image: np.ndarray) -> None:
        h, w = image.shape[:2]
        if self._writer is None:
            self._writer = cv2.VideoWriter(str(self.tmp), cv2.VideoWriter_fourcc(*self.fourcc), self.fps, (w, h))
            if not self._writer.isOpened():
                raise OutputError(f"OpenCV cannot write {self.path.suffix} video with codec {self.fourcc!r} "
                                  f"here; try a .avi (MJPG) or .mp4 (mp4v) output")
            self.size = (w, h)
        elif (w, h) != self.size:  # VideoWriter would drop the frame silently
            raise OutputError(f"frame {self.frames} is {w}x{h}; the video was opened at {self.size[0]}x{self.size[1]}")
        self._writer.write(image)
        self.frames += 1

    def _close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None


class JsonLinesOutput(_AtomicOutput):
    """One JSON object per line, flushed per frame to the temporary file."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(Path(path))
        self._fh: IO[str] | None = open(self.tmp, "w", encoding="utf-8")

    def write(self, record: dict[str, Any]) -> None:
        assert self._fh is not None
        self._fh.write(json.dumps(record, separators=(",", ":")) + "\n")

    def _close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


# --- live window ---------------------------------------------------------------------
def opencv_distributions() -> dict[str, str]:
    """The OpenCV pip distributions installed here (name -> version); they all install `cv2`."""
    from importlib import metadata

    found = {}
    for name in OPENCV_DISTRIBUTIONS:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return found


def _gui_backend() -> str | None:
    """The GUI backend this cv2 was built with (GTK, QT, WIN32, COCOA, ...), or None (headless)."""
    info = cv2.getBuildInformation()
    section = info.split("GUI:", 1)
    if len(section) < 2:
        return None
    first = section[1].strip().splitlines()[0].strip()
    if first.upper().startswith("NONE"):
        return None
    return first or "unknown"


def check_display() -> None:
    """Raise DisplayError, saying how to fix it, unless a live window can open here.

    Every OpenCV wheel (opencv-python, -headless, -contrib...) installs the same `cv2` folder: with
    two of them installed, the one installed last is the one that loads, and uninstalling either
    deletes files the other needs. The `gui` extra adds opencv-python beside the runtime's
    headless build; this check tells which build actually loads and how to put the GUI one on top.
    """
    dists = opencv_distributions()
    listed = ", ".join(f"{k}=={v}" for k, v in dists.items()) or "none found by pip"
    gui_dist = next((d for d in ("opencv-python", "opencv-contrib-python") if d in dists), None)
    if _gui_backend() is None:
        if gui_dist is not None:
            raise DisplayError(
                f"{gui_dist} is installed but the cv2 that loads is a headless build ({listed}): all of them write "
                f"one `cv2` folder and the last installed wins. Put the GUI build back on top (nothing else "
                f"changes): pip install --force-reinstall --no-deps \"{gui_dist}=={dists[gui_dist]}\"")
        raise DisplayError(
            f"--show needs OpenCV with a GUI, and this environment has only the headless build edgepose installs "
            f"({listed}). Add the GUI build with the gui extra: pip install \"edgepose[gui]\" (README, 'Video and "
            "cameras'); or write the video with -o and watch that")
    if len(set(dists.values())) > 1:
        log.warning("OpenCV builds of different versions share the cv2 folder (%s); if cv2 misbehaves, align them: "
                    "pip install --force-reinstall --no-deps opencv-python==<the headless version>", listed)
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise DisplayError("--show needs a display, and this session has none (DISPLAY is not set: an SSH or "
                           "headless session); write the video with -o instead, or use ssh -X")


class LiveWindow:
    """cv2.imshow in a window; `show(image)` returns False once the user pressed q or Esc."""

    def __init__(self) -> None:
        check_display()
        try:
            cv2.namedWindow(WINDOW, cv2.WINDOW_NORMAL)
        except cv2.error as exc:
            raise DisplayError(f"OpenCV could not open a window ({str(exc).strip().splitlines()[-1]}); "
                               "write the video with -o instead") from None

    def show(self, image: np.ndarray) -> bool:
        cv2.imshow(WINDOW, image)
        key = cv2.waitKey(1) & 0xFF
        return key not in (ord("q"), 27)

    def close(self) -> None:
        try:
            cv2.destroyWindow(WINDOW)
            cv2.waitKey(1)
        except cv2.error:
            pass


# --- progress ------------------------------------------------------------------------
class Progress:
    """Frames done and frames per second on a stream (stderr): tqdm's bar when tqdm is installed,
    else one plain line rewritten at most twice a second."""

    def __init__(self, total: int | None, *, stream: IO[str] | None = None, desc: str = "track",
                 use_tqdm: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.total = total
        self.n = 0
        self.t0 = time.perf_counter()
        self._last = 0.0
        self._bar = None
        if use_tqdm is not False:
            try:
                from tqdm import tqdm
            except ImportError:
                tqdm = None
            if tqdm is not None:
                self._bar = tqdm(total=total, desc=desc, unit="frame", file=self.stream, dynamic_ncols=True)

    @property
    def fps(self) -> float:
        dt = time.perf_counter() - self.t0
        return self.n / dt if dt > 0 else 0.0

    def update(self, people: int = 0) -> None:
        self.n += 1
        if self._bar is not None:
            self._bar.update(1)
            self._bar.set_postfix(people=people, refresh=False)
            return
        now = time.perf_counter()
        if now - self._last >= 0.5:
            self._last = now
            of = f"/{self.total}" if self.total else ""
            self.stream.write(f"\rframe {self.n}{of}  {self.fps:5.1f} fps  {people} people ")
            self.stream.flush()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        elif self.n:
            of = f"/{self.total}" if self.total else ""
            self.stream.write(f"\rframe {self.n}{of}  {self.fps:5.1f} fps\n")
            self.stream.flush()


# --- the run -------------------------------------------------------------------------
@dataclass
class TrackSummary:
    frames: int
    seconds: float
    detector_runs: int
    ids: list[int]
    max_people: int
    stopped: str | None  # "Ctrl-C" or "window" when the user ended the run early
    source: dict[str, Any]
    outputs: dict[str, str] = field(default_factory=dict)
    timing_ms: dict[str, float] = field(default_factory=dict)  # medians per frame

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def run_track(source: Any, *, output: str | Path | None = None, jsonl: str | Path | None = None,
              show: bool = False, pipeline: Any = None, fps: float | None = None, max_frames: int | None = None,
              progress: bool = False, **tracker_options: Any) -> TrackSummary:
    """Track people through `source` (edgepose.sources) and write what was asked: an annotated
    video (`output`), one JSON line per frame (`jsonl`), a live window (`show`).

    pipeline   an edgepose.Pipeline, or a function that makes one (called after the output checks);
               default: MediaPipe's detector + BlazePose (edgepose.demo)
    fps        frame rate of sources without one (images, arrays; default 30)
    max_frames stop after this many frames
    progress   show a progress bar with the frame rate on stderr (tqdm's, if installed)
    tracker_options  edgepose.tracking.Tracker's (detect_every, max_people, smooth, ...)
    """
    from .sources import open_source
    from .tracking import Tracker

    if output is None and jsonl is None and not show:
        raise OutputError("nothing to write: give an output video (-o out.mp4), --jsonl out.jsonl, or --show")
    if max_frames is not None and max_frames < 1:
        raise OutputError(f"max_frames must be at least 1, got {max_frames}")
    inputs = (source,) if isinstance(source, (str, os.PathLike)) else ()
    out_video = check_output_path(output, inputs=inputs, suffixes=tuple(VIDEO_CODECS)) if output else None
    out_jsonl = check_output_path(jsonl, inputs=inputs) if jsonl else None
    if out_video is not None and out_jsonl is not None and out_video.resolve() == out_jsonl.resolve():
        raise OutputError("the video and the JSON lines would go to the same file; give two paths")
    if show:
        check_display()  # before the models load: a missing GUI or display is known now
    sinks: list[_AtomicOutput] = []
    ids: set[int] = set()
    most = 0
    stopped: str | None = None
    t0 = time.perf_counter()
    samples: dict[str, list[float]] = {}
    src = open_source(source, fps=fps)  # a missing camera or a corrupt file fails here, before the models load
    bar = window = None
    try:
        if pipeline is None:
            from .demo import default_pipeline

            pipeline = default_pipeline()
        elif callable(pipeline) and not hasattr(pipeline, "predictor"):
            pipeline = pipeline()  # a factory: the models load only once source and outputs are known good
        tracker = Tracker(pipeline, **tracker_options)
        window = LiveWindow() if show else None
        if progress:
            total = src.count if max_frames is None or src.count is None else min(src.count, max_frames)
            bar = Progress(total)
        video = VideoOutput(out_video, src.fps or 30.0) if out_video else None
        if video:
            sinks.append(video)
        lines = JsonLinesOutput(out_jsonl) if out_jsonl else None
        if lines:
            sinks.append(lines)
        try:
            for frame in src:
                result = tracker.update(frame.image, frame.time)
                ids.update(result.ids)
                most = max(most, len(result))
                for key, value in tracker.last_timing.items():
                    samples.setdefault(key, []).append(value)
                if video is not None or window is not None:
                    annotated = result.plot()
                    if video is not None:
                        video.write(annotated)
                    if window is not None and not window.show(annotated):
                        stopped = "window"
                if lines is not None:
                    lines.write(result.to_dict())
                if bar is not None:
                    bar.update(len(result))
                if stopped or (max_frames is not None and frame.index + 1 >= max_frames):
                    break
        except KeyboardInterrupt:  # the user stopped the run: keep what was done
            stopped = "Ctrl-C"
        if tracker.frames == 0:  # stopped before the first frame: nothing worth keeping
            raise KeyboardInterrupt
        written = {}
        for sink in sinks:
            written["video" if isinstance(sink, VideoOutput) else "jsonl"] = str(sink.commit())
    except BaseException:
        for sink in sinks:
            if not sink.done:
                sink.abort()
        raise
    finally:
        if bar is not None:
            bar.close()
        src.close()
        if window is not None:
            window.close()
    seconds = time.perf_counter() - t0
    return TrackSummary(frames=tracker.frames, seconds=seconds, detector_runs=tracker.detector_runs,
                        ids=sorted(ids), max_people=most, stopped=stopped, source=src.describe(),
                        outputs=written, timing_ms={k: float(np.median(v)) for k, v in samples.items()})
