"""Worker for edgepose.benchmarks.mediapipe_reference: runs inside the MediaPipe venv ONLY.

Run as a script by that venv's python (never imported by edgepose): it reads one JSON request
file and writes one JSON answer file, so nothing that native code prints to stdout/stderr can
corrupt the answer. Uses stdlib + mediapipe + cv2 + numpy.

    python _mediapipe_worker.py REQUEST.json ANSWER.json

Request: {"mode": "pose", "images": [paths], "params": {...}} or
         {"mode": "time", "image": path, "params": {...}, "repeats": n, "warmup": n, "cpu": k|null}

The graph is MediaPipe's own `pose_landmark_cpu.binarypb`, exactly what `mp.solutions.pose.Pose`
runs, with the same side packets and calculator options; it is built through `SolutionBase`
directly (rather than `Pose`) for two reasons:
  * extra outputs: the graph also declares `pose_detection` (the first detection after NMS),
    `pose_rect_from_detection` (the ROI the landmark model ran on, in static mode) and
    `pose_rect_from_landmarks` (the ROI the next video frame would use); `pose_detections`
    (every detection the detector kept) is an internal stream that can be observed all the same;
  * `Pose.process` clears each landmark's `presence`; `SolutionBase.process` keeps it.
Landmarks are identical to `Pose.process` on the four pinned photos (checked when this was written).
The "time" mode times the public `mp.solutions.pose.Pose` itself, as a user would run it.
"""
from __future__ import annotations

import json
import os
import sys
import time

import cv2
import mediapipe
import numpy as np
from mediapipe.python.solution_base import SolutionBase
from mediapipe.python.solutions import pose as mp_pose

GRAPH = "mediapipe/modules/pose_landmark/pose_landmark_cpu.binarypb"
# Only the "full" landmark model ships in the wheel; Pose would download lite/heavy from GitHub.
SHIPPED_MODELS = {1: "mediapipe/modules/pose_landmark/pose_landmark_full.tflite"}
OUTPUTS = ["pose_landmarks", "pose_world_landmarks", "pose_detection", "pose_detections",
           "pose_rect_from_detection", "pose_rect_from_landmarks"]


def check_model(model_complexity: int) -> None:
    root = os.path.dirname(os.path.dirname(os.path.abspath(mediapipe.__file__)))
    model = SHIPPED_MODELS.get(model_complexity)
    if model is None or not os.path.isfile(os.path.join(root, model)):
        raise ValueError(f"model_complexity={model_complexity}: its landmark model is not in the "
                         f"mediapipe wheel (only {sorted(SHIPPED_MODELS)} is) and is not downloaded")


class PoseWithInternals(SolutionBase):
    """`mp.solutions.pose.Pose` (same graph, side packets and options) observing more streams."""

    def __init__(self, *, static_image_mode=True, model_complexity=1, smooth_landmarks=True,
                 min_detection_confidence=0.5, min_tracking_confidence=0.5):
        check_model(model_complexity)
        # Side packets and options copied from mediapipe/python/solutions/pose.py (0.10.14).
        super().__init__(
            binary_graph_path=GRAPH,
            side_inputs={
                "model_complexity": model_complexity,
                "smooth_landmarks": smooth_landmarks and not static_image_mode,
                "enable_segmentation": False,
                "smooth_segmentation": False,
                "use_prev_landmarks": not static_image_mode,
            },
            calculator_params={
                "posedetectioncpu__TensorsToDetectionsCalculator.min_score_thresh": min_detection_confidence,
                "poselandmarkbyroicpu__tensorstoposelandmarksandsegmentation__ThresholdingCalculator.threshold":
                    min_tracking_confidence,
            },
            outputs=OUTPUTS)

    def process(self, image: np.ndarray):
        return super().process(input_data={"image": image})


def make_pose(params: dict) -> PoseWithInternals:
    if params.get("enable_segmentation"):
        raise ValueError("enable_segmentation=True is not supported by this reference tool")
    keys = ("static_image_mode", "model_complexity", "smooth_landmarks", "min_detection_confidence",
            "min_tracking_confidence")
    return PoseWithInternals(**{k: params[k] for k in keys if k in params})


def read_rgb(path: str) -> np.ndarray:
    bgr = cv2.imread(path, cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"cv2.imread could not read {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def detection_json(det, w: int, h: int) -> dict:
    loc = det.location_data
    box = loc.relative_bounding_box
    return {
        "score": float(det.score[0]) if det.score else None,
        "bbox_rel": [box.xmin, box.ymin, box.width, box.height],
        "bbox_px": [box.xmin * w, box.ymin * h, box.width * w, box.height * h],
        # pose detector keypoints: hips centre, full-body circle point, shoulders centre, upper-body point
        "keypoints_px": [[kp.x * w, kp.y * h] for kp in loc.relative_keypoints],
    }


def rect_json(rect, w: int, h: int) -> dict:
    return {"x_center": rect.x_center * w, "y_center": rect.y_center * h,
            "width": rect.width * w, "height": rect.height * h, "rotation": rect.rotation}


def result_json(res, w: int, h: int) -> dict:
    out: dict = {"width": w, "height": h, "found": res.pose_landmarks is not None}
    if res.pose_landmarks is not None:
        out["landmarks"] = [[lm.x * w, lm.y * h, lm.z, lm.visibility, lm.presence]
                            for lm in res.pose_landmarks.landmark]
    if res.pose_world_landmarks is not None:
        out["world_landmarks"] = [[lm.x, lm.y, lm.z] for lm in res.pose_world_landmarks.landmark]
    out["detection"] = detection_json(res.pose_detection, w, h) if res.pose_detection is not None else None
    out["detections"] = [detection_json(d, w, h) for d in (res.pose_detections or [])]
    for name, stream in (("roi_from_detection", res.pose_rect_from_detection),
                         ("roi_from_landmarks", res.pose_rect_from_landmarks)):
        out[name] = rect_json(stream, w, h) if stream is not None else None
    return out


def run_pose(req: dict) -> dict:
    results = []
    with make_pose(req["params"]) as pose:
        for path in req["images"]:
            rgb = read_rgb(path)
            h, w = rgb.shape[:2]
            results.append(result_json(pose.process(rgb), w, h))
    return {"results": results}


def run_time(req: dict) -> dict:
    cpu = req.get("cpu")
    if cpu is not None and os.sched_getaffinity(0) != {cpu}:
        os.sched_setaffinity(0, {cpu})  # taskset was not available; threads started later inherit it
    rgb = read_rgb(req["image"])
    params = req["params"]
    check_model(params["model_complexity"])
    times = []
    # The public class itself, as a user would run it (no extra streams observed).
    with mp_pose.Pose(static_image_mode=True, model_complexity=params["model_complexity"],
                      enable_segmentation=False,
                      min_detection_confidence=params["min_detection_confidence"]) as pose:
        for i in range(req["warmup"] + req["repeats"]):
            t0 = time.perf_counter()
            pose.process(rgb)
            dt = (time.perf_counter() - t0) * 1e3
            if i >= req["warmup"]:
                times.append(dt)
    return {"ms": times, "affinity": sorted(os.sched_getaffinity(0))}


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[0]) as fh:
        req = json.load(fh)
    answer = run_pose(req) if req["mode"] == "pose" else run_time(req)
    answer["versions"] = {"mediapipe": mediapipe.__version__, "numpy": np.__version__,
                          "cv2": cv2.__version__}
    tmp = argv[1] + ".part"
    with open(tmp, "w") as fh:
        json.dump(answer, fh)
    os.replace(tmp, argv[1])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
