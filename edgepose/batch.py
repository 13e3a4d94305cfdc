"""Batch inference: folders, globs, videos and list files through the pipeline on every core, to Parquet.

    from edgepose.batch import BatchConfig, run_batch, read_results
    summary = run_batch(["photos/", "clips/*.mp4", "more.txt"], "out/")      # N worker processes
    table = read_results("out/")                       # a pyarrow.Table, one row per person per frame

Inputs. A SOURCE is a folder (walked recursively, image and video files by suffix, natural order),
a glob, an image or video file, or a list file (`.txt`/`.lst`/`.list`: one SOURCE per line, relative
to the list's folder, `#` comments). Each image file and each video file is one *input*: the unit
of work, of retry and of resumption.

Rows (`result_schema`). One row per person per frame: source (the input's absolute path), frame,
time, person, status "ok", bbox, detection_score, presence, keypoints (K x/y pairs, image pixels),
scores, width/height of the frame. A frame with nobody is one row with status "no_person"; an input
(or a frame) that cannot be read or run is one row with status "error" and the reason in `error`.

Nothing lost.
- Each finished input's rows are appended at once, as one Arrow record batch, to a journal
  (`.journal-*.arrows`, Arrow IPC stream) in OUT and flushed; every `part_rows` rows the journal
  becomes a Parquet part (`part-*.parquet`), written under a temporary name, fsynced and renamed,
  so a part under its final name always opens. A run that is killed leaves a journal whose complete
  batches the next run turns into a part (a torn last batch is dropped): at most the inputs in flight
  are lost, and they are run again.
- A rerun reads the `source` column of every part and skips the inputs found there (errors
  included; `retry_errors=True` drops an input's error rows and runs it again). OUT/batch.json
  records the pipeline (model sha256s and options); a rerun with another pipeline is refused.
- A worker that dies (native crash, the kernel's OOM killer, an exit) is reported; its input is
  run once more on a fresh worker, and if that dies too the input becomes an error row naming the
  signal or exit status. `item_timeout` kills a worker stuck on one input the same way.
- One run at a time per OUT (an advisory lock on OUT/.lock).

Engines. "local": N worker processes (spawned, default one per core), each holding one
single-thread pipeline and taking one input at a time; rows are identical to running `Pipeline`
(or `Predictor` with boxes) serially on the same frames. "ray": Ray Data, see edgepose.batch_ray.
Both engines share the per-input code (`process_input`) and the writer.
"""
from __future__ import annotations

import glob
import json
import logging
import os
import re
import signal
import sys
import time
import uuid
from collections import deque
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import IO, Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from .errors import BatchError, EdgePoseError, InputError
from .files import atomic_path, atomic_write_bytes, sha256_bytes, sha256_file

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
LIST_SUFFIXES = (".txt", ".lst", ".list")
MANIFEST = "batch.json"
PART_GLOB = "part-*.parquet"
JOURNAL_GLOB = ".journal-*.arrows"
DEFAULT_PART_ROWS = 20_000
STATUS_OK, STATUS_EMPTY, STATUS_ERROR = "ok", "no_person", "error"
# Test-only hook (tests/batch): "SUBSTRING:ACTION" makes a worker that picks up an input whose path
# contains SUBSTRING die for real: segv (SIGSEGV), kill (SIGKILL, as the OOM killer), exit (status 3),
# stop (SIGSTOP: hangs until item_timeout kills it),
# or once-segv (SIGSEGV only while the file PATH given as a third field does not exist; it is created
# first, so the retry succeeds). Several specs: separated by ";". Read in the worker process only.
CRASH_HOOK_ENV = "EDGEPOSE_BATCH_CRASH_ON"


# --- inputs ---------------------------------------------------------------------------
@dataclass(frozen=True)
class BatchInput:
    """One unit of work: an image file or a video file (or a SOURCE that failed to expand)."""

    key: str            # absolute path (the `source` column); for a failed SOURCE, the SOURCE itself
    kind: str           # "image" | "video" | "error"
    rel: str = ""       # path relative to the SOURCE it came from (names annotated outputs and box files)
    error: str | None = None


def _suffixes():
    from .sources import IMAGE_SUFFIXES, VIDEO_SUFFIXES

    return IMAGE_SUFFIXES, VIDEO_SUFFIXES


def _natural_key(text: str) -> list[Any]:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", text)]


def _kind_of(path: str) -> str | None:
    images, videos = _suffixes()
    suffix = os.path.splitext(path)[1].lower()
    return "image" if suffix in images else "video" if suffix in videos else None


def expand_sources(sources: Sequence[str | os.PathLike], *, exclude: str | os.PathLike | None = None
                   ) -> list[BatchInput]:
    """The inputs behind SOURCEs, in order, each file once. A SOURCE that names nothing (a missing
    path, a glob or folder without images or videos, an unknown file type) becomes an "error" input
    carrying the reason, so it shows up as an error row instead of vanishing."""
    skip = os.path.abspath(exclude) if exclude is not None else None
    out: list[BatchInput] = []
    seen: set[str] = set()

    def add(item: BatchInput) -> None:
        if item.key not in seen:
            seen.add(item.key)
            out.append(item)

    def walk_folder(folder: str) -> list[str]:
        found = []
        for root, dirs, files in os.walk(folder):
            dirs[:] = sorted((d for d in dirs if not d.startswith(".")
                              and (skip is None or os.path.abspath(os.path.join(root, d)) != skip)), key=_natural_key)
            found += [os.path.join(root, f) for f in files if not f.startswith(".") and _kind_of(f)]
        return sorted(found, key=lambda p: _natural_key(os.path.relpath(p, folder)))

    def expand(source: str, base: str | None, depth: int) -> None:
        text = os.fspath(source)
        path = text if base is None or os.path.isabs(text) else os.path.join(base, text)
        if os.path.isdir(path):
            files = walk_folder(path)
            if not files:
                add(BatchInput(os.path.abspath(path), "error", error=f"EmptySourceError: the folder {text} holds no "
                               "image or video file (looked for common image and video suffixes)"))
            for f in files:
                add(BatchInput(os.path.abspath(f), _kind_of(f), os.path.relpath(f, path)))
            return
        if re.search(r"[*?\[]", path) and not os.path.exists(path):
            files = sorted((f for f in glob.glob(path, recursive=True) if os.path.isfile(f) and _kind_of(f)),
                           key=_natural_key)
            if not files:
                add(BatchInput(text, "error", error=f"EmptySourceError: the glob {text!r} matches no image or video file"))
            root = _glob_root(path)
            for f in files:
                add(BatchInput(os.path.abspath(f), _kind_of(f), os.path.relpath(f, root)))
            return
        if not os.path.exists(path):
            add(BatchInput(os.path.abspath(path), "error", os.path.basename(path),
                           error=f"SourceError: {text} does not exist"))
            return
        suffix = os.path.splitext(path)[1].lower()
        if suffix in LIST_SUFFIXES:
            if depth > 0:
                add(BatchInput(os.path.abspath(path), "error", error=f"SourceError: list file {text} is named inside "
                               "another list file; a list holds images, videos, folders or globs"))
                return
            try:
                lines = Path(path).read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError) as exc:
                add(BatchInput(os.path.abspath(path), "error", error=f"SourceError: cannot read list file {text}: {exc}"))
                return
            for line in lines:
                line = line.strip()
                if line and not line.startswith("#"):
                    expand(line, os.path.dirname(os.path.abspath(path)), depth + 1)
            return
        kind = _kind_of(path)
        if kind is None:
            add(BatchInput(os.path.abspath(path), "error", os.path.basename(path),
                           error=f"SourceError: {text} is not an image, a video or a list file (by its suffix "
                                 f"{suffix or '(none)'}; lists end in {', '.join(LIST_SUFFIXES)})"))
            return
        add(BatchInput(os.path.abspath(path), kind, os.path.basename(path)))

    for source in sources:
        expand(os.fspath(source), None, 0)
    # Two SOURCEs with the same relative names (a/x.jpg, b/x.jpg): name outputs by full path instead.
    rels = [i.rel for i in out if i.kind != "error"]
    if len(set(rels)) != len(rels):
        out = [replace(i, rel=i.key.lstrip("/\\").replace(":", "")) for i in out]
    return out


def _glob_root(pattern: str) -> str:
    parts = []
    for part in Path(pattern).parts:
        if re.search(r"[*?\[]", part):
            break
        parts.append(part)
    return str(Path(*parts)) if parts else "."


# --- the pipeline, as workers build it -----------------------------------------------
@dataclass(frozen=True)
class BatchConfig:
    """What runs on each frame, as plain data a worker process (or Ray actor) rebuilds it from.

    Default: MediaPipe's detector + BlazePose full (the pinned models, edgepose.demo). `model` (and
    `detector`) name other files. `boxes`: a folder of JSON box files, one per image (mirroring the
    input's path under its SOURCE: photos/a/b.jpg from SOURCE photos/ -> BOXES/a/b.json); then only
    the keypoint model runs, on those boxes, as Predictor.predict(image, boxes) does.
    """

    model: str | None = None
    detector: str | None = None
    boxes: str | None = None
    fp16: bool = True
    rounds: int = 3
    max_people: int | None = None
    presence_threshold: float | None = None
    min_score: float | None = None
    backend: str | None = None

    def resolved(self) -> "BatchConfig":
        """The same config with concrete model paths (pinned models converted now, once, in this
        process, so N workers never race to convert them)."""
        model, detector = self.model, self.detector
        if model is None:
            from .demo import demo_model

            model = str(demo_model(fp16=self.fp16))
        if self.boxes is None and detector is None:
            from .demo import detector_model, pinned_model
            from .predictor import Predictor
            from .presets import PRESETS

            named = Predictor(model, backend=self.backend).spec.decode.get("detector")
            if named and named in PRESETS:
                from .cli import detector_asset

                detector = str(pinned_model(detector_asset(named), named, fp16=self.fp16))
            elif self.model is None:
                detector = str(detector_model(fp16=self.fp16))
            else:
                raise BatchError(f"{model} names no person detector in its metadata: pass a detector "
                                 "(--detector FILE) or boxes per image (--boxes DIR)")
        if self.boxes is not None and not os.path.isdir(self.boxes):
            raise BatchError(f"the boxes folder {self.boxes} does not exist (one JSON of boxes per image)")
        for path in (model, detector):
            if path is not None and not os.path.isfile(path):
                raise BatchError(f"model file not found: {path}")
        return replace(self, model=os.path.abspath(model), detector=os.path.abspath(detector) if detector else None,
                       boxes=os.path.abspath(self.boxes) if self.boxes else None)

    def identity(self) -> dict[str, Any]:
        """What decides the rows: model contents and options (not where the files are)."""
        d = asdict(self)
        for key in ("model", "detector"):
            d[key] = sha256_file(d[key]) if d[key] else None
        d["boxes"] = self.boxes is not None
        return d

    def build(self) -> "FrameRunner":
        return FrameRunner(self)


class FrameRunner:
    """One single-thread pipeline (or predictor, with boxes): a frame in, a PoseResult out."""

    def __init__(self, config: BatchConfig) -> None:
        from .detector import Detector
        from .pipeline import Pipeline
        from .predictor import Predictor

        self.config = config
        predictor = Predictor(config.model, backend=config.backend, threads=1)
        self.spec = predictor.spec
        self.pipeline = None
        self.predictor = predictor
        if config.boxes is None:
            detector = Detector(config.detector, backend=config.backend, threads=1, min_score=config.min_score)
            self.pipeline = Pipeline(detector, predictor, max_people=config.max_people,
                                     presence_threshold=config.presence_threshold, rounds=config.rounds)

    def __call__(self, image: np.ndarray, boxes: np.ndarray | None = None):
        if self.pipeline is not None:
            return self.pipeline(image)
        return self.predictor.predict(image, boxes)


# --- rows ------------------------------------------------------------------------------
def result_schema(num_keypoints: int, metadata: dict[str, Any] | None = None):
    """The Arrow schema of the rows (K = num_keypoints); `metadata` lands in the file's key-value metadata."""
    import pyarrow as pa

    k = int(num_keypoints)
    fields = [
        ("source", pa.string()),                               # the input: absolute path
        ("frame", pa.int32()),                                 # 0 for an image; null: failed before a frame
        ("time", pa.float64()),                                # seconds (videos: frame / fps)
        ("person", pa.int32()),                                # 0.. per frame; null for no_person / error rows
        ("status", pa.string()),                               # ok | no_person | error
        ("bbox", pa.list_(pa.float32(), 4)),                   # x1, y1, x2, y2 in image pixels
        ("detection_score", pa.float32()),
        ("presence", pa.float32()),
        ("keypoints", pa.list_(pa.list_(pa.float32(), 2), k)),  # K (x, y) in image pixels
        ("scores", pa.list_(pa.float32(), k)),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("error", pa.string()),                                # "Type: reason" on error rows
    ]
    meta = {"edgepose_batch": json.dumps(metadata or {}, sort_keys=True)}
    return pa.schema(fields, metadata=meta)


def _row(source: str, frame: int | None, t: float | None, *, status: str, person: int | None = None,
         width: int | None = None, height: int | None = None, error: str | None = None, **values: Any) -> dict:
    row = {"source": source, "frame": frame, "time": t, "person": person, "status": status, "bbox": None,
           "detection_score": None, "presence": None, "keypoints": None, "scores": None,
           "width": width, "height": height, "error": error}
    row.update(values)
    return row


def frame_rows(source: str, frame: int, t: float, image_size: tuple[int, int], result) -> list[dict]:
    """The rows of one frame's PoseResult (one per person; one "no_person" row when it is empty)."""
    w, h = image_size
    if len(result) == 0:
        return [_row(source, frame, t, status=STATUS_EMPTY, width=w, height=h)]
    extras = result.extras
    det = extras.get("detection_score")
    pres = extras.get("presence")
    rows = []
    for i in range(len(result)):
        rows.append(_row(
            source, frame, t, status=STATUS_OK, person=i, width=w, height=h,
            bbox=[float(v) for v in result.bboxes[i]],
            detection_score=None if det is None or not np.isfinite(det[i]) else float(det[i]),
            presence=None if pres is None else float(np.asarray(pres[i]).reshape(-1)[0]),
            keypoints=[[float(x), float(y)] for x, y in result.keypoints[i]],
            scores=[float(s) for s in result.scores[i]]))
    return rows


def error_text(exc: BaseException) -> str:
    text = str(exc).strip() or repr(exc)
    return f"{type(exc).__name__}: {text}"


# --- one input --------------------------------------------------------------------------
def read_boxes(config: BatchConfig, item: BatchInput) -> Any:
    """The boxes JSON for an input: a list of x1,y1,x2,y2 boxes (or {"boxes": [...], "scores": [...]},
    or [{"bbox": [...], "score": s}, ...]); for a video {"frames": {"0": boxes, ...}} or a list per frame."""
    rel = os.path.splitext(item.rel or os.path.basename(item.key))[0] + ".json"
    path = os.path.join(config.boxes, rel)
    if not os.path.isfile(path):
        raise InputError(f"no boxes file for this input: {path} does not exist")
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"boxes file {path} is not valid JSON ({exc})") from None


def _boxes_for(data: Any, frame: int, video: bool) -> tuple[np.ndarray, np.ndarray | None]:
    if video:
        frames = data.get("frames") if isinstance(data, dict) else None
        if frames is None:
            raise InputError('a video\'s boxes file needs {"frames": {"0": [[x1, y1, x2, y2], ...], ...}}')
        data = frames.get(str(frame), []) if isinstance(frames, dict) else (frames[frame] if frame < len(frames) else [])
    scores = None
    if isinstance(data, dict):
        scores = data.get("scores")
        data = data.get("boxes", [])
    if isinstance(data, list) and data and isinstance(data[0], dict):
        scores = [d.get("score") for d in data]
        data = [d.get("bbox") for d in data]
    try:
        boxes = np.asarray(data, np.float32).reshape(-1, 4)
    except (TypeError, ValueError):
        raise InputError(f"boxes must be lists of 4 numbers x1, y1, x2, y2, got {str(data)[:80]}") from None
    sc = None if scores is None else np.asarray([np.nan if s is None else s for s in scores], np.float32)
    return boxes, sc


def decode_image_bytes(data: bytes) -> np.ndarray:
    """An image file's bytes -> BGR uint8, exactly as cv2.imread decodes the file."""
    import cv2

    from .errors import ImageError

    array = np.frombuffer(data, np.uint8)
    image = cv2.imdecode(array, cv2.IMREAD_COLOR) if array.size else None
    if image is None:
        raise ImageError("not an image OpenCV can decode (corrupt, truncated, or another format)"
                         if array.size else "the file is empty (0 bytes)")
    return image


def process_input(runner: FrameRunner, item: BatchInput, *, path: str | None = None, data: bytes | None = None,
                  annotate_dir: str | None = None) -> tuple[list[dict], int]:
    """All rows of one input, and its frame count. Never raises for a bad input: what cannot be read or
    run becomes an error row (at the frame where it happened; frames before it keep their rows).
    `path` (default: the key) is where to read the file; `data`, its bytes already read (Ray)."""
    key = item.key
    if item.kind == "error":
        return [_row(key, None, None, status=STATUS_ERROR, error=item.error)], 0
    path = path or key
    boxes = None
    rows: list[dict] = []
    frames = 0
    try:
        if runner.pipeline is None:
            boxes = read_boxes(runner.config, item)
        if item.kind == "image":
            if data is None:
                with open(path, "rb") as fh:
                    data = fh.read()
            image = decode_image_bytes(data)
            box_arr, scores = _boxes_for(boxes, 0, False) if boxes is not None else (None, None)
            result = _run(runner, image, box_arr, scores)
            rows += frame_rows(key, 0, 0.0, (image.shape[1], image.shape[0]), result)
            frames = 1
            if annotate_dir:
                _annotate_image(annotate_dir, item, image, result)
            return rows, frames
        return _process_video(runner, item, path, boxes, annotate_dir)
    except Exception as exc:  # noqa: BLE001 - a bad input is a row, never the end of the run
        rows.append(_row(key, frames if frames else None, None, status=STATUS_ERROR, error=error_text(exc)))
        return rows, frames


def _run(runner: FrameRunner, image: np.ndarray, boxes: np.ndarray | None, scores: np.ndarray | None):
    if runner.pipeline is not None:
        return runner(image)
    if boxes is None or len(boxes) == 0:
        from .pipeline import _empty

        return _empty(runner.spec)
    result = runner(image, boxes)
    if scores is not None and len(scores) == len(boxes):
        result.extras["detection_score"] = scores
    return result


def _process_video(runner: FrameRunner, item: BatchInput, path: str, boxes: Any, annotate_dir: str | None
                   ) -> tuple[list[dict], int]:
    from .sources import open_source

    key = item.key
    rows: list[dict] = []
    frames = 0
    video_out = None
    try:
        with open_source(path, kind="video") as source:
            if annotate_dir:
                from .video import VideoOutput

                target = _annotated_path(annotate_dir, item, ".mp4")
                target.parent.mkdir(parents=True, exist_ok=True)
                video_out = VideoOutput(target, source.fps or 30.0)
            iterator = iter(source)
            while True:
                try:
                    frame = next(iterator)
                except StopIteration:
                    break
                except Exception as exc:  # noqa: BLE001 - the stream ends here; frames before it stay
                    rows.append(_row(key, frames, None, status=STATUS_ERROR, error=error_text(exc)))
                    break
                h, w = frame.image.shape[:2]
                try:
                    box_arr, scores = _boxes_for(boxes, frame.index, True) if boxes is not None else (None, None)
                    result = _run(runner, frame.image, box_arr, scores)
                except Exception as exc:  # noqa: BLE001 - one bad frame is one error row; go on
                    rows.append(_row(key, frame.index, frame.time, status=STATUS_ERROR, width=w, height=h,
                                     error=error_text(exc)))
                    result = None
                else:
                    rows += frame_rows(key, frame.index, frame.time, (w, h), result)
                if video_out is not None:
                    from .visualize import draw_pose

                    video_out.write(draw_pose(frame.image, result) if result is not None else frame.image)
                frames += 1
        if video_out is not None:
            if video_out.frames:
                video_out.commit()
            else:
                video_out.abort()
    except Exception as exc:  # noqa: BLE001 - could not open it at all
        if video_out is not None and not video_out.done:
            video_out.abort()
        rows.append(_row(key, frames if frames else None, None, status=STATUS_ERROR, error=error_text(exc)))
    return rows, frames


def _annotated_path(annotate_dir: str, item: BatchInput, suffix: str) -> Path:
    rel = item.rel or os.path.basename(item.key)
    return Path(annotate_dir) / (os.path.splitext(rel)[0] + ".pose" + suffix)


def _annotate_image(annotate_dir: str, item: BatchInput, image: np.ndarray, result) -> None:
    from .visualize import draw_pose

    import cv2

    suffix = ".jpg" if os.path.splitext(item.key)[1].lower() in (".jpg", ".jpeg") else ".png"
    target = _annotated_path(annotate_dir, item, suffix)
    target.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(suffix, draw_pose(image, result))
    if not ok:
        raise BatchError(f"OpenCV could not encode {target}")
    atomic_write_bytes(target, buf.tobytes())


def crash_hook(key: str) -> None:
    """Test-only: die for real on a marked input (see CRASH_HOOK_ENV)."""
    for spec in filter(None, os.environ.get(CRASH_HOOK_ENV, "").split(";")):
        marker, _, rest = spec.partition(":")
        action, _, flag = rest.partition(":")
        if marker and marker in key:
            break
    else:
        return
    if action == "once-segv":
        if os.path.exists(flag):
            return
        Path(flag).touch()
        action = "segv"
    sys.stderr.flush()
    if action == "segv":
        os.kill(os.getpid(), signal.SIGSEGV)
    elif action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif action == "exit":
        os._exit(3)
    elif action == "stop":  # a hang (as a native deadlock): only item_timeout ends it
        os.kill(os.getpid(), signal.SIGSTOP)
    time.sleep(0.5)  # the signal is delivered


def peak_rss_mb() -> float:
    """This process's peak resident memory (MB): VmHWM on Linux. Not getrusage's ru_maxrss: Linux carries
    the parent's peak into a forked-and-exec'd child's (a spawned worker of a 300 MB parent "peaked" at
    300 MB while using 140)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    import resource

    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024.0 if sys.platform != "darwin" else kb / 2**20


# --- the output folder ------------------------------------------------------------------
class ResultWriter:
    """Rows into OUT: a journal appended per finished input, rolled into atomic Parquet parts.

    Opening it takes OUT's lock, checks OUT/batch.json against this run's pipeline, recovers the
    journals a killed run left (their complete batches become a part) and reads which inputs are
    already finished (`finished`: source -> True when its rows include an error)."""

    def __init__(self, out: str | os.PathLike, schema, manifest: dict[str, Any], *,
                 part_rows: int = DEFAULT_PART_ROWS) -> None:
        import pyarrow as pa  # noqa: F401 - fail here, with the install hint, before any work

        self.out = Path(out)
        if self.out.exists() and not self.out.is_dir():
            raise BatchError(f"-o {self.out} is a file; the output is a folder (parts, journal, batch.json)")
        try:
            self.out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BatchError(f"cannot create the output folder {self.out}: {exc.strerror or exc}") from None
        self.schema = schema
        self.part_rows = max(1, int(part_rows))
        self._lock_fh = self._lock()
        self._check_manifest(manifest)
        self._cleanup_temporaries()
        self.recovered_rows = self._recover_journals()
        self.finished = self._read_finished()
        self._journal: Path | None = None
        self._sink: IO[bytes] | None = None
        self._ipc = None
        self._pending: list = []
        self._pending_rows = 0
        self.parts_written: list[Path] = []
        self.rows_written = 0

    # -- setup
    def _lock(self) -> IO[str]:
        fh = open(self.out / ".lock", "w")
        try:
            import fcntl

            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:  # not POSIX: no lock
            pass
        except OSError:
            fh.close()
            raise BatchError(f"another edgepose batch run is writing to {self.out}; wait for it or use another -o") from None
        return fh

    def _check_manifest(self, manifest: dict[str, Any]) -> None:
        path = self.out / MANIFEST
        wanted = {"edgepose_batch": FORMAT_VERSION, **manifest}
        if path.is_file():
            try:
                have = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise BatchError(f"{path} is unreadable ({exc}); remove it only if {self.out} holds no results "
                                 "you want to keep") from None
            if have.get("pipeline") != wanted.get("pipeline") or have.get("edgepose_batch") != FORMAT_VERSION:
                diff = sorted(k for k in set(have.get("pipeline", {})) | set(wanted["pipeline"])
                              if have.get("pipeline", {}).get(k) != wanted["pipeline"].get(k))
                raise BatchError(f"{self.out} holds results of another pipeline (differs in: {', '.join(diff) or 'format'}); "
                                 "a rerun must use the same models and options to resume, or write to another -o")
            return
        if any(self.out.glob(PART_GLOB)):
            raise BatchError(f"{self.out} holds Parquet parts but no {MANIFEST}; write to another -o")
        atomic_write_bytes(path, json.dumps(wanted, indent=1, sort_keys=True).encode())

    def _cleanup_temporaries(self) -> None:
        for tmp in self.out.glob(".part-*.tmp"):
            tmp.unlink(missing_ok=True)

    def _recover_journals(self) -> int:
        import pyarrow as pa

        rows = 0
        for journal in sorted(self.out.glob(JOURNAL_GLOB)):
            part = self.out / f"part-{journal.name[len('.journal-'):-len('.arrows')]}.parquet"
            if not part.exists():
                batches = read_journal(journal)
                if batches:
                    table = pa.Table.from_batches(batches).cast(self.schema)
                    self._write_part(part, table)
                    rows += table.num_rows
                    log.info("recovered %d rows of an interrupted run from %s", table.num_rows, journal.name)
            journal.unlink()
        return rows

    def _read_finished(self) -> dict[str, bool]:
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        finished: dict[str, bool] = {}
        for part in sorted(self.out.glob(PART_GLOB)):
            try:
                t = pq.read_table(part, columns=["source", "status"])
            except Exception as exc:  # noqa: BLE001 - parts are renamed into place whole; say so if not
                raise BatchError(f"{part} does not open as Parquet ({exc}); it was not written by edgepose batch "
                                 "or the disk lost it: move it away and rerun (its inputs run again)") from None
            errors = set(t.filter(pc.equal(t["status"], STATUS_ERROR))["source"].to_pylist())
            for s in set(t["source"].to_pylist()):
                finished[s] = finished.get(s, False) or s in errors
        return finished

    def drop_sources(self, sources: Iterable[str]) -> int:
        """Remove every row of these inputs from the parts (each part rewritten atomically): they run again."""
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        drop = pa.array(sorted(set(sources)), pa.string())
        removed = 0
        if len(drop) == 0:
            return 0
        for part in sorted(self.out.glob(PART_GLOB)):
            t = pq.read_table(part)
            mask = pc.is_in(t["source"], value_set=drop)
            n = int(pc.sum(mask).as_py() or 0)
            if not n:
                continue
            keep = t.filter(pc.invert(mask))
            if keep.num_rows:
                self._write_part(part, keep)
            else:
                part.unlink()
            removed += n
        for s in drop.to_pylist():
            self.finished.pop(s, None)
        return removed

    # -- writing
    def add(self, table) -> None:
        """One finished input's rows: appended to the journal and flushed before this returns."""
        import pyarrow as pa

        table = table.cast(self.schema) if table.schema != self.schema else table
        if self._ipc is None:
            self._journal = self.out / f".journal-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}.arrows"
            self._sink = open(self._journal, "wb")
            self._ipc = pa.ipc.new_stream(self._sink, self.schema)
        batch = table.combine_chunks().to_batches()
        self._ipc.write_batch(batch[0] if len(batch) == 1 else pa.Table.from_batches(batch).combine_chunks().to_batches()[0])
        self._sink.flush()
        self._pending.append(table)
        self._pending_rows += table.num_rows
        if self._pending_rows >= self.part_rows:
            self.roll()

    def roll(self) -> Path | None:
        """The journal's rows -> a Parquet part (temporary name, fsync, rename); then the journal goes."""
        import pyarrow as pa

        if self._ipc is None:
            return None
        self._ipc.close()
        self._sink.close()
        journal = self._journal
        part = self.out / f"part-{journal.name[len('.journal-'):-len('.arrows')]}.parquet"
        table = pa.concat_tables(self._pending) if self._pending else self.schema.empty_table()
        if table.num_rows:
            self._write_part(part, table)
            self.parts_written.append(part)
            self.rows_written += table.num_rows
        journal.unlink()
        self._ipc = self._sink = self._journal = None
        self._pending, self._pending_rows = [], 0
        return part

    def _write_part(self, part: Path, table) -> None:
        """A Parquet part written whole or not at all (fsync'd, renamed, folder synced). The temporary
        is ".part-*.tmp" beside it: a crash can leave one, and the next start removes it."""
        import pyarrow.parquet as pq

        with atomic_path(part, suffix=".tmp", error=BatchError) as tmp:
            pq.write_table(table, tmp, compression="zstd")

    def close(self) -> None:
        try:
            self.roll()
        finally:
            if self._lock_fh is not None:
                self._lock_fh.close()
                self._lock_fh = None


def read_journal(path: str | os.PathLike) -> list:
    """The complete record batches of a journal; a torn tail (a killed writer) is dropped."""
    import pyarrow as pa

    batches = []
    try:
        with open(path, "rb") as fh:
            reader = pa.ipc.open_stream(fh)
            while True:
                try:
                    batches.append(reader.read_next_batch())
                except StopIteration:
                    break
    except (pa.ArrowException, OSError, EOFError, ValueError):
        pass
    return batches


def read_results(out: str | os.PathLike, *, sort: bool = True):
    """Every row in OUT's parts as one pyarrow.Table, sorted by source, frame, person (errors last in a frame).
    Rows still in a journal (a run in progress or killed) are not included until a run recovers them."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    parts = sorted(Path(out).glob(PART_GLOB))
    if not parts:
        raise BatchError(f"no results in {out} (no {PART_GLOB} files)")
    table = pa.concat_tables([pq.read_table(p) for p in parts])
    if sort:
        table = table.sort_by([("source", "ascending"), ("frame", "ascending"), ("person", "ascending"),
                               ("status", "ascending")])
    return table


# --- progress -----------------------------------------------------------------------------
class BatchProgress:
    """Inputs done and items/s on stderr (tqdm's bar if installed, else a line rewritten twice a second)."""

    def __init__(self, total: int, *, enabled: bool = True, stream: IO[str] | None = None) -> None:
        self.total, self.enabled = total, enabled
        self.stream = stream or sys.stderr
        self.n = self.frames = self.errors = 0
        self.t0 = time.perf_counter()
        self._last = 0.0
        self._bar = None
        if enabled:
            try:
                from tqdm import tqdm
            except ImportError:
                tqdm = None
            if tqdm is not None:
                self._bar = tqdm(total=total, desc="batch", unit="item", file=self.stream, dynamic_ncols=True)

    def update(self, frames: int, errors: int) -> None:
        self.n += 1
        self.frames += frames
        self.errors += errors
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.set_postfix(frames=self.frames, errors=self.errors, refresh=False)
            self._bar.update(1)
            return
        now = time.perf_counter()
        if now - self._last >= 0.5 or self.n == self.total:
            self._last = now
            dt = max(now - self.t0, 1e-9)
            self.stream.write(f"\rbatch {self.n}/{self.total} items  {self.n / dt:5.2f} items/s  "
                              f"{self.frames / dt:5.1f} frames/s  {self.errors} errors ")
            self.stream.flush()

    def note(self, text: str) -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.write(text, file=self.stream)
        else:
            self.stream.write("\n" + text + "\n")

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        elif self.enabled and self.n:
            self.stream.write("\n")
            self.stream.flush()


# --- the local engine ----------------------------------------------------------------------
def describe_exit(exitcode: int | None) -> str:
    if exitcode is None:
        return "stopped responding"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        why = {"SIGSEGV": "a native crash", "SIGBUS": "a native crash", "SIGABRT": "a native abort",
               "SIGILL": "an illegal instruction", "SIGFPE": "a native arithmetic fault",
               "SIGKILL": "killed: the kernel's OOM killer sends it when memory runs out"}.get(name)
        return f"killed by {name}" + (f" ({why})" if why else "")
    return f"exited with status {exitcode}"


def _worker_main(conn, config: BatchConfig, annotate_dir: str | None) -> None:
    """A worker process: one single-thread pipeline, one input at a time, until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it stops the workers
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    try:
        import cv2

        cv2.setNumThreads(1)
        runner = config.build()
    except BaseException as exc:  # noqa: BLE001 - the parent says why and stops the run
        conn.send(("fatal", error_text(exc)))
        return
    conn.send(("ready", os.getpid(), peak_rss_mb()))
    while True:
        try:
            item = conn.recv()
        except (EOFError, OSError):  # the parent is gone
            return
        if item is None:
            return
        crash_hook(item.key)
        t0 = time.perf_counter()
        rows, frames = process_input(runner, item, annotate_dir=annotate_dir)
        conn.send(("done", item.key, rows, frames, time.perf_counter() - t0, peak_rss_mb()))


@dataclass
class _Slot:
    index: int
    process: Any = None
    conn: Any = None
    item: BatchInput | None = None
    started: float = 0.0
    ready: bool = False
    pid: int | None = None
    timed_out: bool = False


class LocalPool:
    """N spawned worker processes, one input each at a time; a dead worker's input is retried once."""

    def __init__(self, config: BatchConfig, workers: int, *, annotate_dir: str | None = None,
                 item_timeout: float | None = None, start_timeout: float = 600.0) -> None:
        import multiprocessing as mp

        self.ctx = mp.get_context("spawn")  # no fork of a parent holding native state and threads
        self.config = config
        self.annotate_dir = annotate_dir
        self.item_timeout = item_timeout
        self.start_timeout = start_timeout
        self.slots = [_Slot(i) for i in range(max(1, int(workers)))]
        self.deaths: list[dict[str, Any]] = []
        self.peak_mb: dict[int, float] = {}  # pid -> peak RSS (MB)
        self.startup_s: float | None = None

    def _start(self, slot: _Slot) -> None:
        parent, child = self.ctx.Pipe()
        proc = self.ctx.Process(target=_worker_main, args=(child, self.config, self.annotate_dir),
                                name=f"edgepose-batch-{slot.index}", daemon=True)
        proc.start()
        child.close()
        slot.process, slot.conn, slot.item, slot.ready, slot.pid = proc, parent, None, False, proc.pid
        slot.started = time.monotonic()

    def _stop(self, slot: _Slot, *, kill: bool = False) -> None:
        if slot.process is None:
            return
        try:
            if not kill and slot.process.is_alive():
                slot.conn.send(None)
        except (OSError, BrokenPipeError):
            pass
        slot.process.join(timeout=0 if kill else 5)
        if slot.process.is_alive():
            slot.process.kill()
            slot.process.join(timeout=5)
        slot.conn.close()
        slot.process = slot.conn = None

    def run(self, items: Sequence[BatchInput], on_result: Callable[[BatchInput, list[dict], int, dict], None],
            on_note: Callable[[str], None] | None = None) -> None:
        """Run every item; `on_result(item, rows, frames, info)` is called in this process for each, once."""
        from multiprocessing.connection import wait

        pending = deque(items)
        attempts: dict[str, int] = {}
        n = min(len(self.slots), len(pending)) or 1
        self.slots = self.slots[:n]
        t0 = time.monotonic()
        for slot in self.slots:
            self._start(slot)
        early_deaths = 0
        try:
            while pending or any(s.item is not None for s in self.slots):
                for slot in self.slots:  # hand out work
                    if slot.ready and slot.item is None and pending:
                        slot.item = pending.popleft()
                        slot.started = time.monotonic()
                        try:
                            slot.conn.send(slot.item)
                        except (OSError, BrokenPipeError):
                            pass  # its death is seen below
                watch = {s.conn: s for s in self.slots if s.conn is not None}
                sentinels = {s.process.sentinel: s for s in self.slots if s.process is not None}
                ready = wait(list(watch) + list(sentinels), timeout=0.5)
                dead: list[_Slot] = []
                for obj in ready:
                    slot = watch.get(obj)
                    if slot is None:
                        if sentinels[obj] not in dead:
                            dead.append(sentinels[obj])
                        continue
                    try:
                        while slot.conn is not None and slot.conn.poll():
                            msg = slot.conn.recv()
                            self._message(slot, msg, on_result)
                            if msg[0] == "ready" and self.startup_s is None and all(s.ready for s in self.slots):
                                self.startup_s = time.monotonic() - t0
                    except (EOFError, OSError):
                        if slot not in dead:
                            dead.append(slot)
                now = time.monotonic()
                for slot in self.slots:
                    if slot.process is None:
                        continue
                    if not slot.ready and now - slot.started > self.start_timeout:
                        raise BatchError(f"a worker did not start within {self.start_timeout:.0f} s")
                    if (self.item_timeout and slot.item is not None and now - slot.started > self.item_timeout
                            and slot not in dead):
                        slot.process.kill()
                        slot.process.join(timeout=5)
                        dead.append(slot)
                        slot.timed_out = True
                for slot in dead:
                    if slot.process is None:
                        continue
                    slot.process.join(timeout=5)
                    timed_out, slot.timed_out = slot.timed_out, False
                    how = (f"took longer than {self.item_timeout:g} s and was killed" if timed_out
                           else describe_exit(slot.process.exitcode))
                    item = slot.item
                    was_ready = slot.ready
                    self._stop(slot, kill=True)
                    if item is None:
                        if not was_ready:
                            early_deaths += 1
                            if early_deaths > 2 * len(self.slots):
                                raise BatchError(f"workers keep dying before they start ({how})")
                        self._start(slot)
                        continue
                    attempts[item.key] = attempts.get(item.key, 0) + 1
                    event = {"source": item.key, "worker_pid": slot.pid, "how": how, "attempt": attempts[item.key]}
                    self.deaths.append(event)
                    if attempts[item.key] < 2:
                        msg = f"worker {slot.pid} {how} on {item.key}; running it again on a fresh worker"
                        pending.appendleft(item)
                    else:
                        msg = f"worker {slot.pid} {how} on {item.key} again; recorded as an error row"
                        rows = [_row(item.key, None, None, status=STATUS_ERROR,
                                     error=f"WorkerDied: the worker running this input {how}, twice "
                                           "(once retried on a fresh worker)")]
                        on_result(item, rows, 0, {"seconds": 0.0, "worker_pid": slot.pid, "died": True})
                    log.warning(msg)
                    if on_note:
                        on_note(msg)
                    self._start(slot)
        finally:
            for slot in self.slots:
                self._stop(slot, kill=slot.item is not None)

    def _message(self, slot: _Slot, msg: tuple, on_result) -> None:
        kind = msg[0]
        if kind == "fatal":
            raise BatchError(f"a worker could not build the pipeline: {msg[1]}")
        if kind == "ready":
            slot.ready, slot.pid = True, msg[1]
            self.peak_mb[msg[1]] = max(self.peak_mb.get(msg[1], 0.0), msg[2])
            return
        if kind == "done":
            _, key, rows, frames, seconds, peak = msg
            item, slot.item = slot.item, None
            self.peak_mb[slot.pid] = max(self.peak_mb.get(slot.pid, 0.0), peak)
            on_result(item, rows, frames, {"seconds": seconds, "worker_pid": slot.pid})


# --- the run ----------------------------------------------------------------------------------
@dataclass
class BatchSummary:
    out: str
    engine: str
    workers: int
    inputs: int                 # inputs named by the SOURCEs
    skipped: int                # already finished in OUT
    done: int                   # run now
    frames: int
    rows: int
    errors: int                 # inputs run now whose rows include an error
    seconds: float
    worker_deaths: list[dict[str, Any]] = field(default_factory=list)
    peak_mb: dict[str, float] = field(default_factory=dict)   # worker -> peak RSS (MB)
    startup_s: float | None = None   # local: until every worker has its pipeline; Ray: ray.init
    first_result_s: float | None = None  # from the call to the first input's rows
    recovered_rows: int = 0
    parts: list[str] = field(default_factory=list)
    error_samples: list[tuple[str, str]] = field(default_factory=list)
    stopped: bool = False

    @property
    def items_per_s(self) -> float:
        return self.done / self.seconds if self.seconds > 0 else 0.0

    @property
    def frames_per_s(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def default_workers() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def run_batch(sources: Sequence[str | os.PathLike], out: str | os.PathLike, *, config: BatchConfig | None = None,
              workers: int | None = None, ray: str | bool | None = None, annotate: bool = False,
              progress: bool = False, retry_errors: bool = False, part_rows: int = DEFAULT_PART_ROWS,
              item_timeout: float | None = None, ray_init: dict[str, Any] | None = None) -> BatchSummary:
    """Run the pipeline over every input of `sources`, writing Parquet parts into `out`.

    workers   worker processes (local) or actors (Ray); default: one per core (Ray: per cluster CPU)
    ray       None/False: the local engine; True: Ray Data on a local Ray (or RAY_ADDRESS); a string:
              the address of a Ray cluster ("auto", "ray://head:10001", "head:6379")
    annotate  also write annotated images / videos under out/annotated/
    retry_errors  run again the inputs whose rows in `out` include an error (their old rows are dropped)
    """
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise BatchError("edgepose batch writes Parquet through pyarrow, which is not installed: "
                         "pip install 'edgepose[batch]' (or 'edgepose[ray]' for the Ray engine)") from None
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise BatchError(f"workers must be a positive integer, got {workers!r}")
    if item_timeout is not None and not (item_timeout > 0):
        raise BatchError(f"item_timeout must be positive seconds, got {item_timeout!r}")
    t0 = time.perf_counter()
    config = (config or BatchConfig()).resolved()
    out_path = Path(out)
    items = expand_sources(sources, exclude=out_path)
    if not items:
        raise BatchError("no inputs: give folders, globs, image or video files, or list files")
    runner_spec = _model_card(config)
    manifest = {"pipeline": config.identity(), "keypoint_names": list(runner_spec.keypoint_names),
                "skeleton": [list(p) for p in runner_spec.skeleton]}
    schema = result_schema(runner_spec.num_keypoints, {"keypoint_names": list(runner_spec.keypoint_names),
                                                       "skeleton": [list(p) for p in runner_spec.skeleton],
                                                       "pipeline": manifest["pipeline"]})
    writer = ResultWriter(out_path, schema, manifest, part_rows=part_rows)
    stopped = False
    try:
        if retry_errors:
            again = [k for k, err in writer.finished.items() if err]
            writer.drop_sources(again)
        todo = [i for i in items if i.key not in writer.finished]
        skipped = len(items) - len(todo)
        annotate_dir = str((out_path / "annotated").resolve()) if annotate else None
        engine = "ray" if ray not in (None, False) else "local"
        bar = BatchProgress(len(todo), enabled=progress)
        stats = {"done": 0, "frames": 0, "rows": 0, "errors": 0, "samples": [], "first": None}

        def on_result(item: BatchInput, rows: list[dict], frames: int, info: dict) -> None:
            import pyarrow as pa

            writer.add(pa.Table.from_pylist(rows, schema=schema))
            errs = [r["error"] for r in rows if r["status"] == STATUS_ERROR]
            stats["done"] += 1
            if stats["first"] is None:
                stats["first"] = time.perf_counter() - t0
            stats["frames"] += frames
            stats["rows"] += len(rows)
            if errs:
                stats["errors"] += 1
                if len(stats["samples"]) < 20:
                    stats["samples"].append((item.key, errs[0]))
            bar.update(frames, 1 if errs else 0)

        deaths: list[dict[str, Any]] = []
        peak: dict[str, float] = {}
        startup = None
        n_workers = workers or default_workers()
        try:
            if not todo:
                n_workers = 0
            elif engine == "local":
                pool = LocalPool(config, min(n_workers, len(todo)), annotate_dir=annotate_dir, item_timeout=item_timeout)
                try:
                    pool.run(todo, on_result, on_note=bar.note)
                finally:
                    deaths = pool.deaths
                    peak = {f"pid {pid}": mb for pid, mb in pool.peak_mb.items()}
                    startup = pool.startup_s
                    n_workers = len(pool.slots)
            else:
                from .batch_ray import run_ray

                info = run_ray(todo, config, on_result, address=None if ray is True else str(ray),
                               workers=workers, annotate_dir=annotate_dir, progress_note=bar.note,
                               init_options=ray_init)
                deaths, peak, startup, n_workers = info["deaths"], info["peak_mb"], info["startup_s"], info["workers"]
        except KeyboardInterrupt:
            stopped = True  # the inputs finished so far are in the journal; close() makes them a part
        finally:
            bar.close()
    finally:
        writer.close()
    if stopped:
        raise KeyboardInterrupt
    return BatchSummary(out=str(out_path), engine=engine, workers=n_workers, inputs=len(items), skipped=skipped,
                        done=stats["done"], frames=stats["frames"], rows=stats["rows"], errors=stats["errors"],
                        seconds=time.perf_counter() - t0, worker_deaths=deaths, peak_mb=peak, startup_s=startup,
                        first_result_s=stats["first"],
                        recovered_rows=writer.recovered_rows, parts=[str(p) for p in writer.parts_written],
                        error_samples=stats["samples"])


def _model_card(config: BatchConfig):
    """The keypoint model's spec (for the schema), read without running anything."""
    from .predictor import Predictor

    return Predictor(config.model, backend=config.backend, threads=1).spec


def serial_rows(sources: Sequence[str | os.PathLike], config: BatchConfig | None = None) -> list[dict]:
    """The rows of a plain serial loop in this process (no workers, no output folder): the reference the
    engines must equal, row for row, once both are sorted by source, frame, person."""
    config = (config or BatchConfig()).resolved()
    runner = config.build()
    rows: list[dict] = []
    for item in expand_sources(sources):
        rows += process_input(runner, item)[0]
    return rows


def table_digest(table) -> str:
    """A sha256 of a results table's contents (sorted, schema metadata left out): equal tables, equal digests."""
    import pyarrow as pa
    import pyarrow.ipc as ipc

    table = table.sort_by([("source", "ascending"), ("frame", "ascending"), ("person", "ascending"),
                           ("status", "ascending")]).replace_schema_metadata(None).combine_chunks()
    sink = pa.BufferOutputStream()
    with ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    return sha256_bytes(sink.getvalue().to_pybytes())

