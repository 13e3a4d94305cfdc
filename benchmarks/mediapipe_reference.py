"""MediaPipe's own pose pipeline (`mp.solutions.pose`, mediapipe==0.10.14) as a reference, run in its own venv.

edgepose's top-down pipeline (pose detector -> aligned ROI -> BlazePose landmarks) is checked
against what MediaPipe itself outputs on the same photo. MediaPipe 0.10.14 pins numpy < 2 and
protobuf 4 while the project venv has numpy 2, so MediaPipe runs ONLY in a venv of its own,
driven through a worker script (`_mediapipe_worker.py`, beside this file) that reads a JSON
request and writes a JSON answer. This process uses the stdlib and numpy; it never imports
mediapipe.

    from edgepose.benchmarks.mediapipe_reference import mediapipe_pose, time_mediapipe
    ref = mediapipe_pose(["astronaut.png"])[0]   # found, landmarks (33 x [x_px, y_px, z, vis, presence]),
                                                 # detection, roi_from_detection, roi_from_landmarks, ...
    ms = time_mediapipe("astronaut.png", repeats=50)   # per-call Pose.process, pinned to one core

    python -m edgepose.benchmarks.mediapipe_reference IMAGE...   # JSON on stdout

Each result dict (coordinates in image pixels; MediaPipe's normalised x, y times width, height):
  image, sha256, width, height, found
  landmarks           33 x [x, y, z, visibility, presence]   (z is MediaPipe's, unscaled)
  world_landmarks     33 x [x, y, z] in metres, hips-centred
  detection           the detection the ROI came from: score, bbox_rel [xmin, ymin, w, h] (normalised),
                      bbox_px, keypoints_px (4 x [x, y]: hips centre, full-body circle point,
                      shoulders centre, upper-body circle point); None when the detector did not run
                      or found nobody
  detections          every detection the detector kept (after NMS; the graph uses the first)
  roi_from_detection  {x_center, y_center, width, height (px), rotation (rad)}: the ROI the landmark
                      model ran on in static mode
  roi_from_landmarks  the ROI derived from the landmarks (what the next video frame would use)
All of them are streams of MediaPipe's graph `pose_landmark_cpu.binarypb`, observed by building that
graph through `SolutionBase` with the same side packets and options as `Pose` (checked: landmarks
identical to `Pose.process` on the four pinned photos). Unlike `Pose.process`, presence is kept.

Environment:
    $EDGEPOSE_CACHE or the user cache dir   cache root (`edgepose.assets.cache_dir()`)
    $EDGEPOSE_MEDIAPIPE_VENV                use this venv instead of <root>/mediapipe-venv-<pins hash>
                                            (built there, replacing any venv without the marker file)
Results are cached as JSON under <root>/mediapipe-reference/, keyed by the image's sha256, the
parameters, the worker script's sha256 and the pins, so repeated test runs do not rerun MediaPipe.

Measured here (Python 3.11, AMD EPYC, 2 cores, PyPI through pip):
  * Dependencies. mediapipe's own list (absl-py, attrs, flatbuffers, jax, jaxlib, matplotlib, numpy,
    opencv-contrib-python, protobuf<5, sounddevice) is not installed as is: mediapipe goes in with
    --no-deps, and the venv gets what `import mediapipe` + `solutions.pose` need, found by removing
    packages one at a time and rerunning the four pinned photos: numpy 1.26 (the wheel is built
    against numpy 1.x), protobuf 4.25, attrs (`solutions.objectron` imports `attr` when the package
    is imported), cv2 as opencv-python-headless (only core cv2 is used; no GUI libraries), and
    matplotlib (`solutions.drawing_utils` imports `matplotlib.pyplot` when the package is imported),
    itself with --no-deps plus the six packages pyplot's import needs (fonttools, 30 MB, and
    contourpy are never imported). jax/jaxlib (genai converter), sounddevice (audio tasks), absl-py
    and flatbuffers are not needed: results are byte-identical without them.
  * Venv: 373 MB (cv2 137 MB, numpy 79 MB, mediapipe 66 MB, matplotlib + pillow + kiwisolver 58 MB,
    pip/setuptools 24 MB); built in 19-28 s, with or without pip's cache.
  * A worker call costs ~1.3 s (interpreter, mediapipe import, graph start) plus ~30 ms per image;
    a cached result ~0.3 s for the whole CLI.
  * Only `model_complexity=1` (pose_landmark_full) ships in the wheel; `Pose` would download lite or
    heavy from GitHub at run time, which this tool refuses to do.
  * zidane.jpg: MediaPipe's detector scores the person 0.38, so at the default
    min_detection_confidence=0.5 MediaPipe itself finds nobody there (at 0.3 it finds Zidane).
  * time_mediapipe on astronaut.png, 100 calls after 10 warm-up, pinned to core 0: median 30-31 ms
    (min 29.3); unpinned the same, so MediaPipe's TFLite effectively runs one thread here.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Iterable, Sequence, Union

import numpy as np

from edgepose.assets import cache_dir
from edgepose.files import atomic_write_text, sha256_bytes, sha256_file as sha256_of

log = logging.getLogger(__name__)

# Exact pins that resolve on Python 3.11 from PyPI. mediapipe and matplotlib go in with --no-deps
# (see the module docstring for why each of these is here and the rest of their lists are not).
PINS = [
    "numpy==1.26.4", "protobuf==4.25.9", "opencv-python-headless==4.10.0.84", "attrs==26.1.0",
    # what `import matplotlib.pyplot` needs (not fonttools or contourpy: 30 MB, never imported here)
    "cycler==0.12.1", "kiwisolver==1.5.1", "packaging==26.4", "pillow==13.0.0", "pyparsing==3.3.3",
    "python-dateutil==4.0.0", "tzdata==2026.6",
]
NO_DEPS_PINS = ["mediapipe==0.10.14", "matplotlib==3.9.4"]
# mediapipe 0.10.14 publishes CPython wheels for 3.8 to 3.12 only.
SUPPORTED_PYTHON = ((3, 8), (3, 12))
WORKER = Path(__file__).resolve().with_name("_mediapipe_worker.py")
SHIPPED_MODEL_COMPLEXITY = (1,)
MARKER = ".edgepose-ok"

ImageLike = Union[str, os.PathLike, np.ndarray]


class MediaPipeReferenceError(RuntimeError):
    """Building the MediaPipe venv or running the worker failed; the message says how."""


def pins_key() -> str:
    return sha256_bytes(json.dumps([PINS, NO_DEPS_PINS]))[:12]


def venv_dir() -> Path:
    env = os.environ.get("EDGEPOSE_MEDIAPIPE_VENV")
    return Path(env).expanduser() if env else cache_dir() / f"mediapipe-venv-{pins_key()}"


def _base_python() -> str:
    if not SUPPORTED_PYTHON[0] <= sys.version_info[:2] <= SUPPORTED_PYTHON[1]:
        raise MediaPipeReferenceError(
            f"mediapipe==0.10.14 has wheels for CPython 3.8-3.12 only; this is {sys.version.split()[0]}. "
            f"Point $EDGEPOSE_MEDIAPIPE_VENV at a venv of a supported Python with the pins installed")
    return sys.executable


def _tail(text: str | bytes | None, lines: int = 20) -> str:
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    return "\n".join((text or "").strip().splitlines()[-lines:])


def _run(cmd: list[str], what: str, timeout: float) -> None:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        raise MediaPipeReferenceError(f"{what} timed out after {timeout:.0f} s:\n{_tail(exc.stderr)}") from None
    if proc.returncode != 0:
        raise MediaPipeReferenceError(
            f"{what} failed (exit {proc.returncode}): `{' '.join(cmd)}`\n{_tail(proc.stderr or proc.stdout)}")


def ensure_venv() -> Path:
    """Python executable of the MediaPipe venv, building it first if needed (safe across processes).

    The marker file is written last, so a venv without it (interrupted build) is rebuilt from scratch.
    """
    import fcntl

    venv = venv_dir()
    python = venv / "bin" / "python"
    marker = venv / MARKER
    if marker.is_file() and python.exists():
        return python
    if venv.is_dir() and any(venv.iterdir()) and not (venv / "pyvenv.cfg").is_file():
        raise MediaPipeReferenceError(f"{venv} is neither a venv nor empty; not clearing it to build the "
                                      f"MediaPipe venv there (check $EDGEPOSE_MEDIAPIPE_VENV)")
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / f".{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.is_file() and python.exists():
            return python
        t0 = time.time()
        log.warning("building the MediaPipe reference venv at %s (once; about a minute)", venv)
        _run([_base_python(), "-m", "venv", "--clear", str(venv)], "creating the MediaPipe venv", 300)
        pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
        _run(pip + PINS, "pip install of the MediaPipe venv's pins", 1800)
        _run(pip + ["--no-deps"] + NO_DEPS_PINS, "pip install mediapipe", 1800)
        _run([str(python), "-I", "-c", "import mediapipe as mp; mp.solutions.pose.Pose"],
             "importing mediapipe in its venv", 300)
        marker.write_text(json.dumps({"pins": PINS, "no_deps": NO_DEPS_PINS,
                                      "build_s": round(time.time() - t0, 1)}))
        log.warning("MediaPipe venv ready in %.0f s", time.time() - t0)
    return python


def _run_worker(request: dict, *, timeout: float, prefix: Sequence[str] = ()) -> dict:
    python = ensure_venv()
    with tempfile.TemporaryDirectory(prefix="edgepose-mp-") as tmp:
        req, ans = Path(tmp) / "request.json", Path(tmp) / "answer.json"
        req.write_text(json.dumps(request))
        # -I: ignore PYTHONPATH / user site, so nothing from the project's numpy-2 world leaks in.
        cmd = [*prefix, str(python), "-I", str(WORKER), str(req), str(ans)]
        _run(cmd, f"the MediaPipe worker ({request['mode']})", timeout)
        return json.loads(ans.read_text())


# ----------------------------------------------------------------------------------------- images

def _png_bytes(image: np.ndarray) -> bytes:
    """A PNG of a uint8 BGR (H, W, 3) or grey (H, W) array, with the stdlib (this process has no cv2)."""
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3):
        raise ValueError(f"expected a uint8 BGR (H, W, 3) or grey (H, W) array, got {image.dtype} {image.shape}")
    pixels = np.ascontiguousarray(image[..., ::-1] if image.ndim == 3 else image)  # PNG stores RGB
    h, w = pixels.shape[:2]
    raw = b"".join(b"\x00" + row.tobytes() for row in pixels.reshape(h, -1))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    colour = 2 if image.ndim == 3 else 0
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, colour, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))


def _params(*, model_complexity: int, static_image_mode: bool, min_detection_confidence: float) -> dict:
    if model_complexity not in SHIPPED_MODEL_COMPLEXITY:
        raise ValueError(f"model_complexity={model_complexity}: only {SHIPPED_MODEL_COMPLEXITY} ships in the "
                         f"mediapipe wheel (pose_landmark_full); MediaPipe would download the others")
    return {"static_image_mode": bool(static_image_mode), "model_complexity": int(model_complexity),
            "min_detection_confidence": float(min_detection_confidence)}


# --------------------------------------------------------------------------------------------- API

def mediapipe_pose(images: Iterable[ImageLike], *, model_complexity: int = 1, static_image_mode: bool = True,
                   min_detection_confidence: float = 0.5, timeout: float = 600.0) -> list[dict]:
    """MediaPipe Pose's result for each image (paths, or uint8 BGR arrays), cached; see the module doc.

    With static_image_mode=False the images are one video sequence: a result depends on the frames
    before it, so the cache key covers the whole prefix and a miss reruns the sequence.
    """
    params = _params(model_complexity=model_complexity, static_image_mode=static_image_mode,
                     min_detection_confidence=min_detection_confidence)
    base_key = json.dumps({"params": params, "worker": sha256_of(WORKER), "pins": pins_key()}, sort_keys=True)
    store = cache_dir() / "mediapipe-reference"
    with tempfile.TemporaryDirectory(prefix="edgepose-mp-img-") as tmp:
        paths, labels = [], []
        for i, image in enumerate(images):
            if isinstance(image, np.ndarray):
                path = Path(tmp) / f"array-{i}.png"
                path.write_bytes(_png_bytes(image))
                labels.append(None)
            else:
                path = Path(image).resolve()
                if not path.is_file():
                    raise FileNotFoundError(f"no image at {path}")
                labels.append(str(image))
            paths.append(path)
        digests = [sha256_of(p) for p in paths]
        keys = []
        for i in range(len(paths)):
            scope = digests[i:i + 1] if static_image_mode else digests[:i + 1]
            keys.append(sha256_bytes(json.dumps([base_key, scope]))[:24])
        cached = [_load(store / f"{k}.json") for k in keys]
        todo = [i for i, c in enumerate(cached) if c is None]
        if todo and not static_image_mode:
            todo = list(range(len(paths)))
        if todo:
            answer = _run_worker({"mode": "pose", "images": [str(paths[i]) for i in todo], "params": params},
                                 timeout=timeout)
            store.mkdir(parents=True, exist_ok=True)
            for i, result in zip(todo, answer["results"]):
                result["versions"] = answer["versions"]
                _save(store / f"{keys[i]}.json", result)
                cached[i] = result
    return [{"image": label, "sha256": digest, **result}
            for label, digest, result in zip(labels, digests, cached)]


def _load(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _save(path: Path, result: dict) -> None:
    atomic_write_text(path, json.dumps(result))


def time_mediapipe(image_path: str | os.PathLike, *, repeats: int = 50, warmup: int = 5, cpu: int | None = 0,
                   model_complexity: int = 1, min_detection_confidence: float = 0.5,
                   timeout: float | None = None) -> list[float]:
    """Milliseconds per `mp.solutions.pose.Pose.process` call on one image, static mode, one `Pose` reused.

    The worker runs pinned to core `cpu` (`taskset -c`, else `os.sched_setaffinity` in the worker;
    None = not pinned). TFLite/XNNPACK may still start threads; pinned, they share the one core.
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats must be >= 1 and warmup >= 0, got {repeats}, {warmup}")
    path = Path(image_path).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"no image at {path}")
    params = _params(model_complexity=model_complexity, static_image_mode=True,
                     min_detection_confidence=min_detection_confidence)
    taskset = shutil.which("taskset")
    prefix = [taskset, "-c", str(cpu)] if (cpu is not None and taskset) else []
    answer = _run_worker({"mode": "time", "image": str(path), "params": params, "repeats": repeats,
                          "warmup": warmup, "cpu": cpu},
                         timeout=timeout or 120.0 + 2.0 * (repeats + warmup), prefix=prefix)
    log.debug("MediaPipe timed on cores %s", answer["affinity"])
    return answer["ms"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run MediaPipe Pose (mediapipe==0.10.14, own venv) on images; "
                                                 "print JSON results (pixels).")
    parser.add_argument("images", nargs="+", help="image files")
    parser.add_argument("--video", action="store_true", help="static_image_mode=False (images are a sequence)")
    parser.add_argument("--min-detection-confidence", type=float, default=0.5)
    parser.add_argument("--time", action="store_true", help="also time Pose.process on the first image (1 core)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    try:
        out: dict = {"results": mediapipe_pose(args.images, static_image_mode=not args.video,
                                               min_detection_confidence=args.min_detection_confidence)}
        if args.time:
            ms = time_mediapipe(args.images[0], min_detection_confidence=args.min_detection_confidence)
            out["time_ms"] = {"median": float(np.median(ms)), "min": min(ms), "n": len(ms)}
    except (MediaPipeReferenceError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    text = json.dumps(out, indent=1)
    # one line per innermost list (a landmark, a keypoint, a box) instead of one line per number
    print(re.sub(r"\[\s+([^\[\]{}]*?)\s+\]", lambda m: "[" + " ".join(m.group(1).split()) + "]", text))
    return 0


if __name__ == "__main__":
    sys.exit(main())
