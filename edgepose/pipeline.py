"""Pipeline: person detector -> one crop per person -> keypoints, for every person in a frame.

    from edgepose import Pipeline
    pipe = Pipeline.from_files("pose_detection.mnn", "pose_landmark_full.mnn")
    result = pipe(cv2.imread("bus.jpg"))          # a PoseResult with one instance per person
    for person in result.people(): print(person.bbox, person.score, person.presence)

What MediaPipe's pose graph does for one person, done for each: the detector's keypoints give a
rotated, aligned ROI (or, for a model trained on person boxes, the detector's box padded as that
model wants), the keypoint model runs on that crop, and landmarks return through the inverse of
the crop. A crop the keypoint model says holds no person (presence below the threshold) is
dropped, so no skeleton is drawn for it.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from .detector import Detections, Detector
from .errors import InputError
from .predictor import Predictor
from .processing.image import load_image
from .spec import PoseResult


class Pipeline:
    """Detector + keypoint predictor.

    max_people          keep at most this many people (best detections first); None = all.
    presence_threshold  drop people whose crop the keypoint model scores below this presence
                        (default: the model's metadata, MediaPipe's 0.5 for BlazePose; models
                        without a presence output keep every detection).
    """

    def __init__(self, detector: Detector, predictor: Predictor, *, max_people: int | None = None,
                 presence_threshold: float | None = None) -> None:
        if not isinstance(detector, Detector):
            raise InputError(f"detector must be an edgepose.Detector, got {type(detector).__name__}")
        if not isinstance(predictor, Predictor):
            raise InputError(f"predictor must be an edgepose.Predictor, got {type(predictor).__name__}")
        if max_people is not None and (not isinstance(max_people, int) or max_people < 1):
            raise InputError(f"max_people must be a positive integer or None, got {max_people!r}")
        self.detector = detector
        self.predictor = predictor
        self.max_people = max_people
        default = predictor.spec.decode.get("presence_threshold", 0.5)
        self.presence_threshold = float(default if presence_threshold is None else presence_threshold)
        self.last_timing: dict[str, float] = {}

    @classmethod
    def from_files(cls, detector: str | Path, predictor: str | Path, *, backend: str | None = None,
                   threads: int = 1, max_people: int | None = None, presence_threshold: float | None = None,
                   min_score: float | None = None) -> "Pipeline":
        """Open both models (each file carries its own metadata)."""
        return cls(Detector(detector, backend=backend, threads=threads, min_score=min_score),
                   Predictor(predictor, backend=backend, threads=threads),
                   max_people=max_people, presence_threshold=presence_threshold)

    def detect(self, image: Any) -> Detections:
        detections = self.detector.detect(image)
        if self.max_people is not None and len(detections) > self.max_people:
            n = self.max_people
            detections = Detections(detections.boxes[:n], detections.scores[:n], detections.keypoints[:n],
                                    detections.keypoint_names)
        return detections

    def __call__(self, image: Any) -> PoseResult:
        """Every person in `image` (BGR array or path): boxes, detection scores, keypoints, presence."""
        img = load_image(image)
        t0 = time.perf_counter()
        detections = self.detect(img)
        t1 = time.perf_counter()
        spec = self.predictor.spec
        rois = self.detector.rois(detections, spec)
        if rois:
            result = self.predictor.predict(img, rois=rois)
        else:
            result = _empty(spec)
        t2 = time.perf_counter()
        self.last_timing = {"detector_ms": (t1 - t0) * 1e3, "keypoints_ms": (t2 - t1) * 1e3,
                            "people": float(len(rois))}
        extras = dict(result.extras)
        extras["detection_score"] = detections.scores.astype(np.float32)
        extras["roi"] = np.array([r.to_list() for r in rois], np.float32).reshape(-1, 5)
        extras["detection_box"] = detections.boxes.astype(np.float32)
        # The person's box: the aligned crop for a MediaPipe model (its detector's own box is the
        # face), else the detector's box the crop was padded from.
        boxes = result.bboxes if spec.decode.get("crop") == "aligned" else detections.boxes
        keep = np.ones(len(rois), bool)
        if "presence" in extras:
            keep = np.asarray(extras["presence"]) >= self.presence_threshold
        return PoseResult(keypoints=result.keypoints[keep], scores=result.scores[keep],
                          bboxes=np.asarray(boxes, np.float32)[keep], keypoint_names=result.keypoint_names,
                          skeleton=result.skeleton, extras={k: np.asarray(v)[keep] for k, v in extras.items()})

    predict = __call__

    def describe(self) -> dict[str, Any]:
        return {"detector": self.detector.describe(), "predictor": self.predictor.describe(),
                "max_people": self.max_people, "presence_threshold": self.presence_threshold}

    def __repr__(self) -> str:
        return f"Pipeline({self.detector!r}, {self.predictor!r})"


def _empty(spec) -> PoseResult:
    k = spec.num_keypoints
    return PoseResult(keypoints=np.zeros((0, k, 2), np.float32), scores=np.zeros((0, k), np.float32),
                      bboxes=np.zeros((0, 4), np.float32), keypoint_names=spec.keypoint_names,
                      skeleton=spec.skeleton, extras={"presence": np.zeros((0,), np.float32)})
