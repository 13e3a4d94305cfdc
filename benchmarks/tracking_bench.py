"""Per-frame cost of tracking a video: against detecting on every frame, and against MediaPipe's VIDEO mode.

The frames are a real clip (edgepose.clips: a pinned photo under a known camera motion, written
as MP4 and decoded back). Everything runs on one core: edgepose in this process (pinned with
`os.sched_setaffinity`, one thread), MediaPipe's `mp.solutions.pose.Pose(static_image_mode=False)`
in its own venv pinned with `taskset` (worker `_mediapipe_video_worker.py`). One pass = the whole
clip from a fresh tracker (so frame 0 pays for the detector, as in any video); the cases alternate
pass by pass for `rounds` rounds; a case's figure is the median of its pass means, a ratio the
median over rounds of the ratio within each round, so load from the other core hits both sides.

Cases:
  track           Tracker, default options (every person, detector every 15 frames for newcomers)
  detect          the Pipeline on every frame (detector passes + keypoints, as for photos)
  track_mp        Tracker in MediaPipe's mode: one person, rounds=1, detector only when lost
  detect_mp       the Pipeline with one detector pass and one person, on every frame
  mediapipe_video MediaPipe's own VIDEO mode, same frames
  landmark_model  the bare landmark model (the session on a prepared 256x256 tensor), run right after
                  each track_mp frame: the overhead is the median of the paired differences

    python -m edgepose.benchmarks.tracking_bench [--clip bus:pan] [--rounds 5] [--json]
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from edgepose.cpu import cpu_info

from .pipeline_bench import pinned

WORKER = Path(__file__).resolve().with_name("_mediapipe_video_worker.py")
GOALS = {"track / detect": 0.6, "track_mp / mediapipe_video": 0.7}  # issue 12


@dataclass
class TrackingBench:
    clip: str
    frames: int
    size: tuple[int, int]
    cpu: str
    cpu_class: str
    rounds: int
    ms: dict[str, float] = field(default_factory=dict)  # per frame: median over rounds of each pass's mean
    frame_median_ms: dict[str, float] = field(default_factory=dict)  # median single frame over all passes
    stages_ms: dict[str, dict[str, float]] = field(default_factory=dict)  # tracking passes: mean per frame
    detector_frames: dict[str, int] = field(default_factory=dict)
    people: dict[str, float] = field(default_factory=dict)  # mean people per frame
    ratios: dict[str, float] = field(default_factory=dict)  # median over rounds of per-round ratios
    overhead_ms: float = float("nan")  # median of (track_mp frame - bare landmark model call right after it)
    engines: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_markdown(self) -> str:
        lines = [f"Tracking cost per frame on clip {self.clip} ({self.frames} frames, {self.size[0]}x{self.size[1]}), "
                 f"1 core, median of {self.rounds} interleaved passes; engines: detector {self.engines.get('detector')}, "
                 f"landmarks {self.engines.get('landmarks')}; CPU: {self.cpu}", "",
                 "| case | ms / frame (mean) | single frame (median) | detector on | people / frame |",
                 "|---|---|---|---|---|"]
        labels = {"track": "edgepose Tracker (every person, detector every 15 frames)",
                  "detect": "edgepose Pipeline on every frame (3 detector passes)",
                  "track_mp": "edgepose Tracker, MediaPipe's mode (1 person, detector when lost)",
                  "detect_mp": "edgepose Pipeline on every frame, 1 pass, 1 person",
                  "mediapipe_video": "MediaPipe Pose, VIDEO mode",
                  "landmark_model": f"bare landmark model ({self.engines.get('landmarks')}), per call"}
        for key, label in labels.items():
            if key in self.ms:
                det = self.detector_frames.get(key)
                lines.append(f"| {label} | {self.ms[key]:.2f} | {self.frame_median_ms.get(key, float('nan')):.2f} | "
                             f"{'' if det is None else f'{det}/{self.frames}'} | "
                             f"{self.people.get(key, float('nan')):.2f} |")
        lines += ["", "| ratio | measured | issue's goal |", "|---|---|---|"]
        for key, value in self.ratios.items():
            goal = GOALS.get(key)
            lines.append(f"| {key} | {value:.2f} | {'<= %.1f' % goal if goal else ''} |")
        lines += ["", f"MediaPipe's mode costs {self.overhead_ms:.2f} ms per tracked frame over the bare landmark "
                  "model (crop, decode with heatmap refinement, smoothing, tracking; median of paired samples)"]
        for key, stages in self.stages_ms.items():
            lines.append("")
            lines.append(f"{key} stages, ms per frame: " + ", ".join(f"{k} {v:.2f}" for k, v in stages.items()))
        return "\n".join(lines)


def clip_frames(spec: str, folder: Path) -> tuple[list[np.ndarray], list[Path]]:
    """The clip written as MP4, decoded back; the decoded frames also as lossless PNGs for MediaPipe."""
    import cv2

    from edgepose.clips import pinned_clip, write_clip
    from edgepose.sources import open_source

    path = write_clip(pinned_clip(spec), folder / "clip.mp4")
    with open_source(path) as source:
        frames = [f.image for f in source]
    pngs = []
    for i, frame in enumerate(frames):
        pngs.append(folder / f"{i:04d}.png")
        cv2.imwrite(str(pngs[-1]), frame)
    return frames, pngs


def _pass(step: Callable[[np.ndarray], Any], frames: list[np.ndarray]) -> list[float]:
    out = []
    for frame in frames:
        t0 = time.perf_counter()
        step(frame)
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def time_mediapipe_video(pngs: list[Path], *, passes: int = 1, warmup_passes: int = 1, cpu: int | None = 0,
                         timeout: float = 900.0) -> tuple[list[list[float]], list[int]]:
    """Per-frame ms of MediaPipe's VIDEO mode over the PNG sequence, `passes` fresh passes, pinned to `cpu`."""
    from .mediapipe_reference import _run, ensure_venv

    python = ensure_venv()
    taskset = shutil.which("taskset")
    prefix = [taskset, "-c", str(cpu)] if (cpu is not None and taskset) else []
    with tempfile.TemporaryDirectory(prefix="edgepose-mpv-") as tmp:
        req, ans = Path(tmp) / "request.json", Path(tmp) / "answer.json"
        req.write_text(json.dumps({"frames": [str(p) for p in pngs], "passes": passes, "warmup_passes": warmup_passes,
                                   "cpu": cpu, "params": {"model_complexity": 1, "min_detection_confidence": 0.5,
                                                          "smooth_landmarks": True}}))
        _run([*prefix, str(python), "-I", str(WORKER), str(req), str(ans)], "the MediaPipe VIDEO-mode worker", timeout)
        answer = json.loads(ans.read_text())
    return answer["ms"], answer["found"]


def bench_tracking(clip: str = "bus:pan", *, rounds: int = 5, cpu: int | None = 0, mediapipe: bool = True,
                   pipeline: Any = None, backend: str | None = None) -> TrackingBench:
    """Interleaved single-core per-frame cost of tracking, detecting every frame, and MediaPipe's VIDEO mode.
    `backend` is the default pipeline's (None: MNN; "auto": the fastest engine here per model)."""
    import cv2

    from edgepose import Pipeline, Tracker

    cv2.setNumThreads(1)
    if pipeline is None:
        from edgepose.demo import default_pipeline

        with pinned(cpu):  # an "auto" probe times the engines on the core the bench runs on
            pipeline = default_pipeline(backend=backend)
    single = Pipeline(pipeline.detector, pipeline.predictor, rounds=1, max_people=1)
    passes: dict[str, list[list[float]]] = {k: [] for k in ("track", "detect", "track_mp", "detect_mp",
                                                              "mediapipe_video", "landmark_model")}
    stages: dict[str, dict[str, list[float]]] = {"track": {}, "track_mp": {}}
    overhead: list[float] = []
    detector_frames: dict[str, int] = {}
    people: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="edgepose-trackbench-") as tmp:
        frames, pngs = clip_frames(clip, Path(tmp))
        h, w = frames[0].shape[:2]
        crop = pipeline.predictor.prepare(frames[0], rois=pipeline.detector.rois(
            pipeline.detector.detect(frames[0]), pipeline.predictor.spec)[:1])[0].copy()

        def tracking(name: str, pipe: Pipeline, *, paired: bool = False, **options: Any) -> None:
            """One pass; with `paired`, the bare landmark model also runs once after each frame, timed
            apart, so the overhead over the model is a difference of neighbouring samples."""
            tracker = Tracker(pipe, **options)
            counts: list[int] = []
            bare: list[float] = []

            def step(frame: np.ndarray) -> None:
                result = tracker.update(frame)
                counts.append(len(result))
                for key in ("detector_ms", "keypoints_ms", "tracking_ms"):
                    stages[name].setdefault(key, []).append(tracker.last_timing[key])

            times = []
            for frame in frames:
                times += _pass(step, [frame])
                if paired:
                    bare += _pass(lambda _: pipeline.predictor.run_tensor(crop), [frame])
            passes[name].append(times)
            if paired:
                passes["landmark_model"].append(bare)
                overhead.extend(np.subtract(times, bare)[1:])  # frame 0 also runs the detector
            detector_frames[name] = tracker.detector_runs
            people[name] = float(np.mean(counts))

        def detecting(name: str, pipe: Pipeline) -> None:
            counts: list[int] = []
            passes[name].append(_pass(lambda f: counts.append(len(pipe(f))), frames))
            detector_frames[name] = len(frames)
            people[name] = float(np.mean(counts))

        with pinned(cpu):  # warm-up pass of each case, untimed
            for _ in range(2):
                pipeline.predictor.run_tensor(crop)
            tracking("track", pipeline)
            detecting("detect", pipeline)
            for values in passes.values():
                values.clear()
            for values in stages.values():
                values.clear()
        for _ in range(rounds):
            with pinned(cpu):
                tracking("track", pipeline)
                detecting("detect", pipeline)
                tracking("track_mp", single, paired=True, detect_every=None, max_people=1)
                detecting("detect_mp", single)
            if mediapipe:
                ms, found = time_mediapipe_video(pngs, passes=1, warmup_passes=1, cpu=cpu)
                passes["mediapipe_video"] += ms
                people["mediapipe_video"] = float(np.mean(found))
    info = cpu_info()
    result = TrackingBench(clip=clip, frames=len(frames), size=(w, h), cpu=info.describe(), cpu_class=info.cpu_class,
                           rounds=rounds, detector_frames=detector_frames, people=people,
                           engines={"detector": pipeline.detector.backend.name,
                                    "landmarks": pipeline.predictor.backend.name})
    for key, values in passes.items():
        if values:
            result.ms[key] = float(np.median([np.mean(p) for p in values]))
            result.frame_median_ms[key] = float(np.median(np.concatenate(values)))
    for key, parts in stages.items():
        result.stages_ms[key] = {k: float(np.mean(v)) for k, v in parts.items()}
    def paired(a: str, b: str) -> float:
        """Median over rounds of the ratio of the two cases' pass means in that round (the passes of a
        round ran back to back, so load that changes between rounds cancels)."""
        return float(np.median([np.mean(x) / np.mean(y) for x, y in zip(passes[a], passes[b])]))

    result.ratios["track / detect"] = paired("track", "detect")
    result.ratios["track_mp / detect_mp"] = paired("track_mp", "detect_mp")
    if passes["mediapipe_video"]:
        result.ratios["track_mp / mediapipe_video"] = paired("track_mp", "mediapipe_video")
    result.overhead_ms = float(np.median(overhead))
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clip", default="bus:pan", help="PHOTO:MOTION (edgepose.clips; default bus:pan)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cpu", type=int, default=0, help="core to pin to (default 0)")
    parser.add_argument("--no-mediapipe", action="store_true", help="skip MediaPipe's VIDEO mode")
    parser.add_argument("--backend", help="engine of the default pipeline: mnn (default) or auto (fastest here)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = bench_tracking(args.clip, rounds=args.rounds, cpu=args.cpu, mediapipe=not args.no_mediapipe,
                            backend=args.backend)
    print(json.dumps(result.to_dict(), indent=1) if args.json else result.to_markdown())
    return 0


if __name__ == "__main__":
    sys.exit(main())
