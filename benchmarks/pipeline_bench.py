"""The top-down pipeline's latency beside MediaPipe's own (`mp.solutions.pose`, static mode).

Both run on one core: edgepose in this process (pinned with `os.sched_setaffinity`, single
thread), MediaPipe in its own venv pinned with `taskset` (edgepose.benchmarks.mediapipe_reference).
They alternate in rounds (ours, then MediaPipe's, `rounds` times) and the medians of all calls are
compared, so load from the other core hits both. Reported separately: the detector stage, the
landmark stage, and the pipeline with MediaPipe's single detector pass (rounds=1) and with the
default multi-person passes.

    edgepose bench pipeline [--image bus] [--rounds 5]
"""
from __future__ import annotations

import contextlib
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from edgepose.cpu import cpu_info


@dataclass
class PipelineBench:
    image: str
    people: int
    cpu: str
    cpu_class: str
    rounds: int
    calls_per_round: int
    ms: dict[str, float] = field(default_factory=dict)  # medians
    ratio_to_mediapipe: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_markdown(self) -> str:
        mp = self.ms["mediapipe"]
        lines = [f"Pipeline latency on {self.image} ({self.people} people found), 1 core, median of "
                 f"{self.rounds} interleaved rounds x {self.calls_per_round} calls; CPU: {self.cpu} ({self.cpu_class})",
                 "", "| what | ms | x MediaPipe |", "|---|---|---|"]
        for key, label in (("mediapipe", "MediaPipe Pose.process (static, complexity 1)"),
                           ("pipeline_single_pass", "edgepose pipeline, one detector pass (MediaPipe's)"),
                           ("detector", "  detector stage (one pass)"),
                           ("landmarks", "  landmark stage"),
                           ("pipeline", "edgepose pipeline, default (multi-person passes)")):
            if key in self.ms:
                lines.append(f"| {label} | {self.ms[key]:.2f} | {self.ms[key] / mp:.2f} |")
        return "\n".join(lines)


@contextlib.contextmanager
def pinned(cpu: int | None) -> Iterator[None]:
    """Run this process on one core for the block (where the OS allows it)."""
    if cpu is None or not hasattr(os, "sched_setaffinity"):
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def _time(fn, calls: int) -> list[float]:
    out = []
    for _ in range(calls):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def bench_pipeline(image: str | Path = "astronaut", *, rounds: int = 5, calls: int = 10, cpu: int | None = 0,
                   fp16: bool = True, mediapipe: bool = True) -> PipelineBench:
    """Interleaved single-core latency of the default pipeline and of MediaPipe on one photo."""
    import cv2

    from edgepose import assets
    from edgepose.demo import default_pipeline
    from edgepose.pipeline import Pipeline

    from . import mediapipe_reference as mpr

    path = assets.fetch_asset(str(image)) if str(image) in assets.PHOTO_PERSON_BOXES else Path(image)
    bgr = cv2.imread(str(path))
    if bgr is None:
        raise FileNotFoundError(f"cannot read image {path}")
    cv2.setNumThreads(1)
    multi = default_pipeline(fp16=fp16)
    single = Pipeline(multi.detector, multi.predictor, rounds=1)
    samples: dict[str, list[float]] = {k: [] for k in ("pipeline", "pipeline_single_pass", "detector", "landmarks",
                                                        "mediapipe")}
    with pinned(cpu):
        for fn in (multi, single):
            for _ in range(2):
                fn(bgr)  # warm-up
    for _ in range(rounds):
        with pinned(cpu):
            samples["pipeline"] += _time(lambda: multi(bgr), calls)
            for _ in range(calls):
                t0 = time.perf_counter()
                single(bgr)
                samples["pipeline_single_pass"].append((time.perf_counter() - t0) * 1e3)
                samples["detector"].append(single.last_timing["detector_ms"])
                samples["landmarks"].append(single.last_timing["keypoints_ms"])
        if mediapipe:
            samples["mediapipe"] += mpr.time_mediapipe(path, repeats=calls, warmup=3, cpu=cpu)
    info = cpu_info()
    ms = {k: float(np.median(v)) for k, v in samples.items() if v}
    ratios = {k: v / ms["mediapipe"] for k, v in ms.items() if "mediapipe" in ms and k != "mediapipe"}
    return PipelineBench(image=path.name, people=len(multi(bgr)), cpu=info.describe(), cpu_class=info.cpu_class,
                         rounds=rounds, calls_per_round=calls, ms=ms, ratio_to_mediapipe=ratios)
