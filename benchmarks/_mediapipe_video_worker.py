"""Worker for edgepose.benchmarks.tracking_bench: times MediaPipe's VIDEO mode, inside the MediaPipe venv ONLY.

Run as a script by that venv's python (never imported by edgepose), pinned by the caller
(`taskset -c N`): reads one JSON request, writes one JSON answer.

    python _mediapipe_video_worker.py REQUEST.json ANSWER.json

Request: {"frames": [png paths], "passes": n, "warmup_passes": n, "cpu": k | null,
          "params": {"model_complexity": 1, "min_detection_confidence": 0.5, "smooth_landmarks": true}}
Answer:  {"ms": [[per-frame ms of pass 1], ...], "found": [people per frame, last pass], "affinity": [...]}

Each pass is a fresh `mp.solutions.pose.Pose(static_image_mode=False)` over the whole sequence,
as a user runs a video: the first frame runs the detector, the rest track. Frames are read and
converted to RGB before timing; only `Pose.process` is timed.
"""
from __future__ import annotations

import json
import os
import sys
import time

import cv2
import mediapipe
import numpy as np
from mediapipe.python.solutions import pose as mp_pose


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[0]) as fh:
        req = json.load(fh)
    cpu = req.get("cpu")
    if cpu is not None and os.sched_getaffinity(0) != {cpu}:
        os.sched_setaffinity(0, {cpu})
    frames = []
    for path in req["frames"]:
        bgr = cv2.imread(path, cv2.IMREAD_COLOR)
        if bgr is None:
            raise ValueError(f"cv2.imread could not read {path}")
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    params = req["params"]
    passes, found = [], []
    for p in range(req["warmup_passes"] + req["passes"]):
        times, found = [], []
        with mp_pose.Pose(static_image_mode=False, model_complexity=params["model_complexity"],
                          smooth_landmarks=params.get("smooth_landmarks", True), enable_segmentation=False,
                          min_detection_confidence=params["min_detection_confidence"]) as pose:
            for rgb in frames:
                t0 = time.perf_counter()
                res = pose.process(rgb)
                times.append((time.perf_counter() - t0) * 1e3)
                found.append(int(res.pose_landmarks is not None))
        if p >= req["warmup_passes"]:
            passes.append(times)
    answer = {"ms": passes, "found": found, "affinity": sorted(os.sched_getaffinity(0)),
              "versions": {"mediapipe": mediapipe.__version__, "numpy": np.__version__, "cv2": cv2.__version__}}
    tmp = argv[1] + ".part"
    with open(tmp, "w") as fh:
        json.dump(answer, fh)
    os.replace(tmp, argv[1])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
