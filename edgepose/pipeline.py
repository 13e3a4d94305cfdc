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
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np

from .detector import Detections, Detector
from .errors import InputError
from .predictor import Predictor
from .processing.image import load_image
from .spec import PoseResult

if TYPE_CHECKING:
    from .tracking import TrackedFrame


class Pipeline:
    """Detector + keypoint predictor.

    max_people          keep at most this many people (best detections first); None = all.
    presence_threshold  drop people whose crop the keypoint model scores below this presence
                        (default: the model's metadata, MediaPipe's 0.5 for BlazePose; models
                        without a presence output keep every detection).
    rounds              detector passes per frame. MediaPipe's pose detector finds the most
                        salient person or two of a crowd (one of four people in bus.jpg), so after
                        each pass the people found are blacked out of a copy of the frame and the
                        detector runs again, until a pass finds nobody new or `rounds` is reached.
                        Keypoints are always computed on the original frame. rounds=1 is
                        MediaPipe's own single pass; a frame with one person costs one extra
                        detector run.
    """

    def __init__(self, detector: Detector, predictor: Predictor, *, max_people: int | None = None,
                 presence_threshold: float | None = None, rounds: int = 3) -> None:
        if not isinstance(rounds, int) or rounds < 1:
            raise InputError(f"rounds must be a positive integer, got {rounds!r}")
        self.rounds = rounds
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
                   min_score: float | None = None, rounds: int = 3) -> "Pipeline":
        """Open both models (each file carries its own metadata)."""
        return cls(Detector(detector, backend=backend, threads=threads, min_score=min_score),
                   Predictor(predictor, backend=backend, threads=threads),
                   max_people=max_people, presence_threshold=presence_threshold, rounds=rounds)

    def __call__(self, image: Any) -> PoseResult:
        """Every person in `image` (BGR array or path): boxes, detection scores, keypoints, presence."""
        img = load_image(image)
        found, t_det, t_kp = self._search(img, [], self.max_people)
        result = _concat(found, self.predictor.spec)
        if self.max_people is not None:
            result = _take(result, self.max_people)
        self.last_timing = {"detector_ms": t_det * 1e3, "keypoints_ms": t_kp * 1e3, "people": float(len(result))}
        return result

    def find_new(self, image: Any, known: PoseResult | None = None, *, limit: int | None = None) -> PoseResult:
        """The people in `image` who are not among `known` (e.g. those a tracker already follows).

        The known people are blacked out of a copy of the frame before the first detector pass and
        anyone found again is dropped; otherwise as a call (detector passes up to `rounds`, presence
        gate, keypoints on the original frame). Stops once known + new reach `limit` people.
        """
        img = load_image(image)
        known_parts = [known] if known is not None and len(known) else []
        found, t_det, t_kp = self._search(img, known_parts, limit)
        result = _concat(found, self.predictor.spec)
        if limit is not None:
            result = _take(result, max(0, limit - sum(len(p) for p in known_parts)))
        self.last_timing = {"detector_ms": t_det * 1e3, "keypoints_ms": t_kp * 1e3, "people": float(len(result))}
        return result

    def _search(self, img: np.ndarray, known: list[PoseResult], limit: int | None
                ) -> tuple[list[PoseResult], float, float]:
        """Detector passes over `img` with the `known` people blacked out; the new people found,
        and the seconds spent in the detector and in the keypoint model."""
        t_det = t_kp = 0.0
        found: list[PoseResult] = list(known)
        new: list[PoseResult] = []
        work = img
        for people in known:
            work = _black_out(work, people)
        for round_ in range(self.rounds):
            t0 = time.perf_counter()
            detections = self.detector.detect(work)
            t1 = time.perf_counter()
            t_det += t1 - t0
            people = self._people(img, detections) if len(detections) else None
            t_kp += time.perf_counter() - t1
            if people is not None:
                people = _drop_duplicates(people, found)
            if people is None or len(people) == 0:
                break
            found.append(people)
            new.append(people)
            if limit is not None and sum(len(p) for p in found) >= limit:
                break
            if round_ + 1 < self.rounds:
                work = _black_out(work, people)
        return new, t_det, t_kp

    def _people(self, image: np.ndarray, detections: Detections) -> PoseResult:
        """Keypoints for each detection, presence-gated; extras carry score, ROI and detector box."""
        spec = self.predictor.spec
        rois = self.detector.rois(detections, spec)
        result = self.predictor.predict(image, rois=rois)
        extras = dict(result.extras)
        extras["detection_score"] = detections.scores.astype(np.float32)
        extras["roi"] = np.array([r.to_list() for r in rois], np.float32).reshape(-1, 5)
        extras["detection_box"] = detections.boxes.astype(np.float32)
        # The person's box: around the confident keypoints for a MediaPipe model (its detector's
        # own box is the face, its crop a loose rotated square), else the detector's box.
        if spec.decode.get("crop") == "aligned":
            boxes = np.stack([keypoint_box(result.keypoints[i], result.scores[i]) for i in range(len(result))])
        else:
            boxes = detections.boxes
        keep = np.ones(len(rois), bool)
        if "presence" in extras:
            keep = np.asarray(extras["presence"]) >= self.presence_threshold
        return PoseResult(keypoints=result.keypoints[keep], scores=result.scores[keep],
                          bboxes=np.asarray(boxes, np.float32)[keep], keypoint_names=result.keypoint_names,
                          skeleton=result.skeleton, extras={k: np.asarray(v)[keep] for k, v in extras.items()})

    predict = __call__

    def track(self, frames: Any, *, fps: float | None = None, **options: Any) -> Iterator["TrackedFrame"]:
        """Track people through a stream: a video file, an image folder or glob, a camera index, or
        an iterable of BGR arrays (edgepose.sources). Yields a TrackedFrame per frame (people with
        stable IDs in `.people.extras["track_id"]`); `options` go to edgepose.tracking.Tracker
        (detect_every, max_people, smooth, ...). `fps` sets the rate of images and arrays."""
        from .sources import open_source
        from .tracking import Tracker

        tracker = Tracker(self, **options)
        with open_source(frames, fps=fps) as source:
            for frame in source:
                yield tracker.update(frame.image, frame.time)

    def describe(self) -> dict[str, Any]:
        return {"detector": self.detector.describe(), "predictor": self.predictor.describe(),
                "max_people": self.max_people, "presence_threshold": self.presence_threshold}

    def __repr__(self) -> str:
        return f"Pipeline({self.detector!r}, {self.predictor!r})"


def keypoint_box(keypoints: np.ndarray, scores: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """x1, y1, x2, y2 around a person's confident keypoints (all of them if none is confident)."""
    pts = keypoints[scores >= threshold] if (scores >= threshold).sum() >= 2 else keypoints
    return np.concatenate([pts.min(0), pts.max(0)]).astype(np.float32)


def _drop_duplicates(people: PoseResult, found: list[PoseResult], iou_threshold: float = 0.5) -> PoseResult:
    """People of a later detector pass that are someone already found (keypoint boxes overlap)."""
    from .processing.ssd import iou

    earlier = [keypoint_box(p.keypoints[i], p.scores[i]) for p in found for i in range(len(p))]
    keep = np.ones(len(people), bool)
    mine: list[np.ndarray] = []
    for i in range(len(people)):
        box = keypoint_box(people.keypoints[i], people.scores[i])
        others = earlier + mine
        if others and float(iou(box, np.stack(others)).max()) > iou_threshold:
            keep[i] = False
        else:
            mine.append(box)
    return _take_mask(people, keep)


def _black_out(image: np.ndarray, people: PoseResult, margin: float = 0.1) -> np.ndarray:
    """A copy of the frame with each person's keypoint box (plus a margin) painted black, the
    colour of the detector's own letterbox padding, so the next pass looks elsewhere."""
    out = image.copy()
    h, w = out.shape[:2]
    for i in range(len(people)):
        x1, y1, x2, y2 = keypoint_box(people.keypoints[i], people.scores[i])
        m = margin * max(x2 - x1, y2 - y1)
        xa, ya = int(max(0, np.floor(x1 - m))), int(max(0, np.floor(y1 - m)))
        xb, yb = int(min(w, np.ceil(x2 + m))), int(min(h, np.ceil(y2 + m)))
        if xb > xa and yb > ya:
            out[ya:yb, xa:xb] = 0
    return out


def _take_mask(result: PoseResult, keep: np.ndarray) -> PoseResult:
    return PoseResult(keypoints=result.keypoints[keep], scores=result.scores[keep], bboxes=result.bboxes[keep],
                      keypoint_names=result.keypoint_names, skeleton=result.skeleton,
                      extras={k: np.asarray(v)[keep] for k, v in result.extras.items()})


def _take(result: PoseResult, n: int) -> PoseResult:
    keep = np.zeros(len(result), bool)
    keep[:n] = True
    return _take_mask(result, keep)


def _concat(parts: list[PoseResult], spec) -> PoseResult:
    if not parts:
        return _empty(spec)
    keys = set.intersection(*(set(p.extras) for p in parts))
    return PoseResult(keypoints=np.concatenate([p.keypoints for p in parts]),
                      scores=np.concatenate([p.scores for p in parts]),
                      bboxes=np.concatenate([p.bboxes for p in parts]),
                      keypoint_names=parts[0].keypoint_names, skeleton=parts[0].skeleton,
                      extras={k: np.concatenate([np.asarray(p.extras[k]) for p in parts]) for k in sorted(keys)})


def _empty(spec) -> PoseResult:
    k = spec.num_keypoints
    return PoseResult(keypoints=np.zeros((0, k, 2), np.float32), scores=np.zeros((0, k), np.float32),
                      bboxes=np.zeros((0, 4), np.float32), keypoint_names=spec.keypoint_names,
                      skeleton=spec.skeleton,
                      extras={"presence": np.zeros((0,), np.float32), "detection_score": np.zeros((0,), np.float32),
                              "roi": np.zeros((0, 5), np.float32), "detection_box": np.zeros((0, 4), np.float32)})
