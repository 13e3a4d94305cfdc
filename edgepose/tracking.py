"""Tracking people through a video: crops from the previous frame, the detector only when needed.

    from edgepose.demo import default_pipeline
    pipeline = default_pipeline()
    for frame in pipeline.track("walk.mp4"):          # any source: file, folder, glob, camera index, arrays
        print(frame.index, frame.time, frame.ids)     # stable IDs; frame.people is a PoseResult
        cv2.imshow("pose", frame.plot())

    tracker = Tracker(pipeline)                       # or frame by frame, from your own loop
    frame = tracker.update(image, t=seconds)

What MediaPipe's pose graph does in VIDEO mode, for every person:

1. **Crop from the previous frame.** Each tracked person's crop comes from their own landmarks
   in the previous frame: for BlazePose the smoothed hip-centre and full-body points, turned
   vertical, scaled 1.25 (MediaPipe's pose_landmarks_to_roi); for a model trained on person
   boxes, the box around the confident keypoints, padded as the model wants.
2. **Presence.** A crop the keypoint model scores below the presence threshold (MediaPipe's
   0.5) loses its track: nobody is drawn there, and the detector runs on that same frame.
3. **Detector only when needed:** on the first frame, while nobody is tracked, when a track is
   lost, and every `detect_every` frames to pick up people who walk in. It looks only at the rest
   of the frame: tracked people are blacked out of its copy (as the Pipeline's extra passes do),
   so it never re-finds them. With `max_people` reached it does not run at all; `max_people=1`,
   `rounds=1`, `detect_every=None` is MediaPipe's own single-person VIDEO mode.
4. **Stable IDs.** A tracked person keeps their ID from frame to frame by construction (their
   crop follows them). A person the detector finds is matched to the tracks lost in the last
   `keep_lost` frames by box overlap (IoU >= `match_iou`) and gets that ID back, else a new one.
   Two tracks that converge on one person (same keypoints) are merged, the older ID kept.
5. **Smoothing** (edgepose.smoothing): MediaPipe's One Euro filters, with its BlazePose settings
   by default; the crop for the next frame comes from the smoothed auxiliary points, as in
   MediaPipe. `smooth=False` gives the raw keypoints (and raw crops).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from .errors import FrameSizeError, InputError
from .pipeline import Pipeline, keypoint_box
from .processing.image import load_image
from .processing.roi import Roi, aligned_roi, box_roi
from .processing.ssd import iou
from .smoothing import (BLAZEPOSE_AUXILIARY, BLAZEPOSE_LANDMARKS, BLAZEPOSE_VISIBILITY_ALPHA, OneEuroParams,
                        PoseSmoother, object_scale)
from .spec import PoseResult

_UNSET: Any = object()


@dataclass
class _Track:
    id: int
    roi: Roi | None  # the crop for the next frame
    box: np.ndarray  # keypoint box in the last frame it was seen
    smoother: PoseSmoother | None
    first_frame: int
    last_frame: int
    detection_score: float = 0.0


@dataclass
class TrackedFrame:
    """One frame's result: the people (a PoseResult with extras["track_id"]), and how it was made.

    people.extras: track_id (N,) int, presence, roi (the crop each person's keypoints come from,
    cx, cy, w, h, rotation), detected (True where the detector found the person on this frame),
    plus the keypoint model's own extras (auxiliary points, z, per-keypoint presence).
    timing: detector_ms, keypoints_ms, tracking_ms (matching, smoothing, crops), total_ms.
    """

    index: int
    time: float
    people: PoseResult
    detector_ran: bool
    timing: dict[str, float] = field(default_factory=dict)
    image: np.ndarray | None = None

    @property
    def ids(self) -> list[int]:
        return [int(v) for v in self.people.extras.get("track_id", [])]

    def __len__(self) -> int:
        return len(self.people)

    def to_dict(self, *, digits: int = 2) -> dict[str, Any]:
        """One JSON-able record: frame, time, detector_ran, people with id, bbox, presence, keypoints
        as [x, y, score] in the model's keypoint order."""
        p = self.people
        presence = p.extras.get("presence")
        people = []
        for i in range(len(p)):
            people.append({
                "id": int(p.extras["track_id"][i]),
                "bbox": [round(float(v), digits) for v in p.bboxes[i]],
                "presence": round(float(presence[i]), 4) if presence is not None else None,
                "detected": bool(p.extras["detected"][i]),
                "keypoints": [[round(float(x), digits), round(float(y), digits), round(float(s), 3)]
                              for (x, y), s in zip(p.keypoints[i], p.scores[i])],
            })
        return {"frame": self.index, "time": round(self.time, 4), "detector_ran": self.detector_ran,
                "people": people}

    def plot(self, image: np.ndarray | None = None, *, score_threshold: float = 0.5) -> np.ndarray:
        """The frame with each person's skeleton, a box in their ID's colour and their ID."""
        base = image if image is not None else self.image
        if base is None:
            raise InputError("this TrackedFrame holds no image; pass the frame: frame.plot(image)")
        return draw_tracks(base, self.people, score_threshold=score_threshold)


def id_colour(track_id: int) -> tuple[int, int, int]:
    """A distinct, stable BGR colour per ID (golden-ratio hues)."""
    import cv2

    hue = int((track_id * 0.618033988749895 % 1.0) * 179)
    hsv = np.uint8([[[hue, 200, 255]]])
    return tuple(int(v) for v in cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0])


def draw_tracks(image: np.ndarray, people: PoseResult, *, score_threshold: float = 0.5) -> np.ndarray:
    import cv2

    from .visualize import draw_pose

    canvas = draw_pose(image, people, score_threshold=score_threshold, draw_boxes=False)
    thick = max(1, round(max(image.shape[:2]) / 300))
    scale = max(0.4, max(image.shape[:2]) / 1200)
    for i, tid in enumerate(people.extras.get("track_id", [])):
        colour = id_colour(int(tid))
        x1, y1, x2, y2 = (int(round(v)) for v in people.bboxes[i])
        cv2.rectangle(canvas, (x1, y1), (x2, y2), colour, thick, cv2.LINE_AA)
        label = f"#{int(tid)}"
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
        ty = max(th + 2, y1)
        cv2.rectangle(canvas, (x1, ty - th - base - 2), (x1 + tw + 4, ty), colour, -1)
        cv2.putText(canvas, label, (x1 + 2, ty - base), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thick,
                    cv2.LINE_AA)
    return canvas


class Tracker:
    """Keypoints of every person through a stream of frames, with stable IDs (see the module doc).

    pipeline            the detector + keypoint model (edgepose.Pipeline); its `rounds` and
                        presence threshold apply.
    detect_every        run the detector at least every this many frames (new people walking in);
                        None: only when nobody is tracked or a track is lost (MediaPipe).
    max_people          track at most this many (default: the pipeline's); once reached, the
                        detector does not run until someone is lost.
    smooth              One Euro smoothing of keypoints, scores and crops (MediaPipe's filters).
    landmark_filter, roi_filter, visibility_alpha   the smoothing settings (MediaPipe's BlazePose
                        ones by default: edgepose.smoothing).
    keep_lost           frames a lost track's ID waits to be claimed back by a new detection.
    match_iou           box overlap for a new detection to take a lost track's ID.
    fps                 frame rate assumed when update() is not given a time.
    """

    def __init__(self, pipeline: Pipeline, *, detect_every: int | None = 15, max_people: int | None = _UNSET,
                 smooth: bool = True, landmark_filter: OneEuroParams = BLAZEPOSE_LANDMARKS,
                 roi_filter: OneEuroParams = BLAZEPOSE_AUXILIARY,
                 visibility_alpha: float | None = BLAZEPOSE_VISIBILITY_ALPHA, keep_lost: int = 10,
                 match_iou: float = 0.3, fps: float = 30.0) -> None:
        if not isinstance(pipeline, Pipeline):
            raise InputError(f"Tracker needs an edgepose.Pipeline, got {type(pipeline).__name__}")
        if detect_every is not None and (not isinstance(detect_every, int) or detect_every < 1):
            raise InputError(f"detect_every must be a positive integer or None, got {detect_every!r}")
        if max_people is _UNSET:
            max_people = pipeline.max_people
        if max_people is not None and (not isinstance(max_people, int) or max_people < 1):
            raise InputError(f"max_people must be a positive integer or None, got {max_people!r}")
        if not isinstance(keep_lost, int) or keep_lost < 0:
            raise InputError(f"keep_lost must be a non-negative integer, got {keep_lost!r}")
        if not 0.0 < match_iou <= 1.0:
            raise InputError(f"match_iou must lie in (0, 1], got {match_iou!r}")
        if not (isinstance(fps, (int, float)) and math.isfinite(fps) and fps > 0):
            raise InputError(f"fps must be a positive number, got {fps!r}")
        self.pipeline = pipeline
        self.detect_every = detect_every
        self.max_people = max_people
        self.smooth = bool(smooth)
        self._filters = (landmark_filter, roi_filter, visibility_alpha)
        self.keep_lost = keep_lost
        self.match_iou = float(match_iou)
        self.fps = float(fps)
        spec = pipeline.predictor.spec
        self._aligned = spec.decode.get("crop") == "aligned"
        self._recipe: Mapping[str, Any] = pipeline.detector.spec.decode.get("alignment") or {}
        # MediaPipe smooths (and crops from) only the auxiliary points the alignment uses.
        self._roi_points = max(int(self._recipe.get("start", 0)), int(self._recipe.get("end", 1))) + 1
        self.reset()

    def reset(self) -> None:
        """Forget every track (a new stream, or a cut in this one)."""
        self._tracks: list[_Track] = []
        self._lost: list[tuple[int, _Track]] = []  # (frame lost at, track)
        self._next_id = 1
        self._size: tuple[int, int] | None = None
        self._last_detection: int | None = None
        self.frames = 0
        self.detector_runs = 0
        self.last_timing: dict[str, float] = {}

    @property
    def tracked_ids(self) -> list[int]:
        return [tr.id for tr in self._tracks]

    # --- one frame -------------------------------------------------------------------
    def update(self, image: Any, t: float | None = None) -> TrackedFrame:
        """Track one frame (BGR array or path); `t` in seconds (default: frame number / fps)."""
        t_start = time.perf_counter()
        img = load_image(image)
        h, w = img.shape[:2]
        if self._size is None:
            self._size = (w, h)
        elif self._size != (w, h):
            raise FrameSizeError(
                f"frame {self.frames} is {w}x{h} but this stream started at {self._size[0]}x{self._size[1]}; "
                "the tracked crops belong to the old size: call tracker.reset() first for a new stream, "
                "or resize the frames to one size")
        index = self.frames
        self.frames += 1
        t = index / self.fps if t is None else float(t)
        pipe = self.pipeline
        pred = pipe.predictor

        # 1. Keypoints on each tracked person's crop from the previous frame.
        t0 = time.perf_counter()
        active = [tr for tr in self._tracks if tr.roi is not None and _usable(tr.roi, w, h)]
        lost = [tr for tr in self._tracks if not (tr.roi is not None and _usable(tr.roi, w, h))]
        people: list[dict[str, Any]] = []
        if active:
            res = pred.predict(img, rois=[tr.roi for tr in active])
            presence = _presence(res)
            for i, tr in enumerate(active):
                if presence[i] >= pipe.presence_threshold:
                    people.append(_person(res, i, presence[i], tr.roi, track=tr, detected=False))
                else:
                    lost.append(tr)
        people = self._merge_duplicates(people, lost)
        t_kp = time.perf_counter() - t0

        # 2. The detector, on the rest of the frame, only when needed.
        run = (not people or bool(lost) or self._last_detection is None
               or (self.detect_every is not None and index - self._last_detection >= self.detect_every))
        if self.max_people is not None and len(people) >= self.max_people:
            run = False
        t_det = 0.0
        if run:
            known = _as_result(people, pred.spec) if people else None
            new = pipe.find_new(img, known, limit=self.max_people)
            t_det = pipe.last_timing["detector_ms"] / 1e3
            t_kp += pipe.last_timing["keypoints_ms"] / 1e3
            self._last_detection = index
            self.detector_runs += 1
            presence = _presence(new)
            tracked = list(people)
            for j in range(len(new)):
                roi = Roi(*(float(v) for v in new.extras["roi"][j]))
                person = _person(new, j, presence[j], roi, track=None, detected=True)
                if any(_same_person(person, other) for other in tracked):
                    continue  # the detector found part of someone already tracked
                person["detection_score"] = float(new.extras["detection_score"][j])
                people.append(person)

        # 3. IDs, smoothing, the next crops.
        self._retire(lost, index)
        tracks: list[_Track] = []
        for person in people:
            tr = person["track"] or self._claim(person, index)
            tr.last_frame = index
            if tr.smoother is not None:
                aux = person["auxiliary"]
                lead = aux[:self._roi_points] if aux is not None else None  # what the next crop comes from
                kp, sc, lead = tr.smoother(person["keypoints"], person["scores"], lead, t)
                if aux is not None:
                    aux = aux.copy()
                    aux[:self._roi_points] = lead
                person.update(keypoints=kp, scores=sc, auxiliary=aux)
            person["track"] = tr
            tr.box = keypoint_box(person["keypoints"], person["scores"])
            tr.roi = self._next_roi(person)
            tracks.append(tr)
        self._tracks = tracks
        people.sort(key=lambda p: p["track"].id)
        result = _as_result(people, pred.spec)
        t_end = time.perf_counter()
        self.last_timing = {"detector_ms": t_det * 1e3, "keypoints_ms": t_kp * 1e3,
                            "tracking_ms": (t_end - t_start - t_det - t_kp) * 1e3,
                            "total_ms": (t_end - t_start) * 1e3, "detector_ran": float(run),
                            "people": float(len(result))}
        return TrackedFrame(index, t, result, run, dict(self.last_timing), img)

    # --- helpers ---------------------------------------------------------------------
    def _new_smoother(self) -> PoseSmoother | None:
        if not self.smooth:
            return None
        landmarks, roi, alpha = self._filters
        return PoseSmoother(landmarks, roi, alpha)

    def _claim(self, person: dict[str, Any], index: int) -> _Track:
        """A newly detected person: the ID of a recently lost track they overlap, or a new one."""
        box = keypoint_box(person["keypoints"], person["scores"])
        self._lost = [(at, tr) for at, tr in self._lost if index - at <= self.keep_lost]
        if self._lost:
            overlaps = iou(box, np.stack([tr.box for _, tr in self._lost]))
            best = int(np.argmax(overlaps))
            if overlaps[best] >= self.match_iou:
                _, tr = self._lost.pop(best)
                tr.smoother = self._new_smoother()
                tr.detection_score = person.get("detection_score", 0.0)
                return tr
        tr = _Track(self._next_id, None, box, self._new_smoother(), index, index,
                    person.get("detection_score", 0.0))
        self._next_id += 1
        return tr

    def _retire(self, lost: list[_Track], index: int) -> None:
        for tr in lost:
            tr.roi = None
            self._lost.append((index, tr))
        self._lost = [(at, tr) for at, tr in self._lost if index - at <= self.keep_lost]

    def _merge_duplicates(self, people: list[dict[str, Any]], lost: list[_Track]) -> list[dict[str, Any]]:
        """Two tracks whose keypoints coincide follow one person (a crop drifted onto a neighbour as
        its own person left): the person stays with the track whose last box fits them best, the
        other track is lost."""
        def fit(person: dict[str, Any]) -> float:
            box = keypoint_box(person["keypoints"], person["scores"])
            return float(iou(box, person["track"].box[None])[0])

        keep: list[dict[str, Any]] = []
        for person in sorted(people, key=lambda p: (-fit(p), p["track"].id)):
            if any(_same_person(person, other) for other in keep):
                lost.append(person["track"])
                continue
            keep.append(person)
        return keep

    def _next_roi(self, person: dict[str, Any]) -> Roi | None:
        aux = person["auxiliary"]
        if self._aligned and aux is not None and len(aux) >= 2:
            start, end = int(self._recipe.get("start", 0)), int(self._recipe.get("end", 1))
            roi = aligned_roi(aux, start=start, end=end,
                              target_angle_deg=float(self._recipe.get("target_angle_deg", 90.0)),
                              scale=float(self._recipe.get("scale", 1.25)))
        else:
            spec = self.pipeline.predictor.spec
            box = keypoint_box(person["keypoints"], person["scores"])
            if box[2] - box[0] <= 1 or box[3] - box[1] <= 1:
                return None
            roi = box_roi(box, padding=spec.bbox_padding, aspect=spec.input_size[0] / spec.input_size[1])
        if not all(math.isfinite(v) for v in (roi.cx, roi.cy, roi.width, roi.height, roi.rotation)) or roi.width < 4:
            return None
        return roi


def _usable(roi: Roi, w: int, h: int) -> bool:
    """The crop still overlaps the frame by a meaningful part (else the person has left)."""
    x1, y1, x2, y2 = roi.bbox()
    ix = max(0.0, min(x2, w) - max(x1, 0.0))
    iy = max(0.0, min(y2, h) - max(y1, 0.0))
    return ix * iy >= 0.05 * max(1.0, (x2 - x1) * (y2 - y1)) and roi.width >= 4


def _presence(result: PoseResult) -> np.ndarray:
    if "presence" in result.extras:
        return np.asarray(result.extras["presence"], np.float32)
    return result.scores.mean(1) if len(result) else np.zeros((0,), np.float32)


_PERSON_EXTRAS = ("z", "keypoint_presence")


def _person(result: PoseResult, i: int, presence: float, roi: Roi, *, track: _Track | None,
            detected: bool) -> dict[str, Any]:
    aux = result.extras.get("auxiliary")
    return {"keypoints": result.keypoints[i], "scores": result.scores[i],
            "auxiliary": aux[i] if aux is not None else None, "presence": float(presence), "roi": roi,
            "track": track, "detected": detected,
            "extras": {k: np.asarray(result.extras[k][i]) for k in _PERSON_EXTRAS if k in result.extras}}


def _same_person(a: dict[str, Any], b: dict[str, Any], tolerance: float = 0.1, share: float = 0.5) -> bool:
    """At least `share` of the keypoints of a and b coincide (within `tolerance` of the larger
    person's scale): two crops on one person, even when one of them sees only part of the body."""
    scale = max(object_scale(a["keypoints"]), object_scale(b["keypoints"]), 1.0)
    d = np.linalg.norm(np.asarray(a["keypoints"], np.float64) - b["keypoints"], axis=-1)
    return float((d < tolerance * scale).mean()) >= share


def _as_result(people: list[dict[str, Any]], spec) -> PoseResult:
    k = spec.num_keypoints
    n = len(people)
    kp = np.stack([p["keypoints"] for p in people]).astype(np.float32) if n else np.zeros((0, k, 2), np.float32)
    sc = np.stack([p["scores"] for p in people]).astype(np.float32) if n else np.zeros((0, k), np.float32)
    boxes = (np.stack([keypoint_box(p["keypoints"], p["scores"]) for p in people]) if n
             else np.zeros((0, 4), np.float32))
    extras: dict[str, np.ndarray] = {
        "track_id": np.array([p["track"].id if p["track"] is not None else -1 for p in people], np.int64),
        "presence": np.array([p["presence"] for p in people], np.float32),
        "detected": np.array([p["detected"] for p in people], bool),
        "roi": np.array([p["roi"].to_list() for p in people], np.float32).reshape(-1, 5),
    }
    if n and all(p["auxiliary"] is not None for p in people):
        extras["auxiliary"] = np.stack([p["auxiliary"] for p in people]).astype(np.float32)
    for key in _PERSON_EXTRAS:
        if n and all(key in p["extras"] for p in people):
            extras[key] = np.stack([p["extras"][key] for p in people])
    return PoseResult(keypoints=kp, scores=sc, bboxes=boxes.astype(np.float32), keypoint_names=spec.keypoint_names,
                      skeleton=spec.skeleton, extras=extras)
