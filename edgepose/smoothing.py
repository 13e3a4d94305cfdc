"""Temporal smoothing of keypoints: MediaPipe's One Euro landmark filter, vectorised.

    from edgepose.smoothing import PoseSmoother
    smoother = PoseSmoother()                          # MediaPipe's BlazePose settings
    keypoints, scores, aux = smoother(keypoints, scores, aux, t=frame_index / fps)

What the pinned MediaPipe (0.10.14) does in VIDEO mode, with its numbers. They are read from the
PoseLandmarkFiltering subgraph compiled into that wheel's `_framework_bindings` library (a test
checks them there when the MediaPipe reference venv exists); the public repository's
pose_landmark_filtering.pbtxt of 2020-2022 has older ones (0.1 / 40 and 0.01 / 1.0, object scale
from the landmarks' own box):

- landmarks: a One Euro filter per coordinate, min_cutoff 0.05, beta 80, derivate_cutoff 1.0;
- auxiliary landmarks (hip centre, full-body point: the next frame's crop comes from them):
  min_cutoff 0.01, beta 10, derivate_cutoff 1.0, so the crop is steady when the person is still
  and still follows a fast move;
- the speed each filter sees is divided by the person's scale: twice the distance between the two
  raw auxiliary points (the side of the square AlignmentPointsRects builds on them), so the same
  settings hold for a person 100 or 1000 pixels tall; without auxiliary points (other models),
  the mean of the width and height of the keypoints' box (MediaPipe's default);
- visibility: a low-pass filter, alpha 0.1.

The One Euro filter (Casiez et al., CHI 2012) is an exponential filter whose cutoff rises with
the signal's speed: still points are smoothed hard, moving ones pass with little lag. The
sampling rate comes from the timestamps (30 Hz until two timestamps give it). MediaPipe also
smooths z and the world landmarks; edgepose's z stays raw.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import InputError


@dataclass(frozen=True)
class OneEuroParams:
    """One Euro filter settings (MediaPipe's LandmarksSmoothingCalculatorOptions.OneEuroFilter).

    min_cutoff   cutoff frequency (Hz) of a still signal: lower = smoother and laggier.
    beta         how fast the cutoff rises with speed (speed in object sizes per second).
    derivate_cutoff  cutoff frequency (Hz) of the speed estimate.
    frequency    sampling rate (Hz) used until two timestamps give the real one.
    min_allowed_object_scale  below this object scale (pixels) points pass unfiltered.
    """

    min_cutoff: float = 1.0
    beta: float = 0.0
    derivate_cutoff: float = 1.0
    frequency: float = 30.0
    min_allowed_object_scale: float = 1e-6

    def __post_init__(self) -> None:
        for name in ("min_cutoff", "derivate_cutoff", "frequency"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise InputError(f"OneEuroParams.{name} must be a positive number, got {value!r}")
        if not (math.isfinite(self.beta) and self.beta >= 0):
            raise InputError(f"OneEuroParams.beta must be >= 0, got {self.beta!r}")


# PoseLandmarkFiltering as compiled into mediapipe==0.10.14 (see the module doc)
BLAZEPOSE_LANDMARKS = OneEuroParams(min_cutoff=0.05, beta=80.0, derivate_cutoff=1.0)
BLAZEPOSE_AUXILIARY = OneEuroParams(min_cutoff=0.01, beta=10.0, derivate_cutoff=1.0)
BLAZEPOSE_VISIBILITY_ALPHA = 0.1


def _alpha(cutoff: np.ndarray | float, frequency: float) -> np.ndarray | float:
    """Exponential smoothing factor for a cutoff frequency at a sampling rate (MediaPipe's GetAlpha)."""
    te = 1.0 / frequency
    tau = 1.0 / (2.0 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / te)


class OneEuroFilter:
    """One Euro filters for every element of an array, sharing timestamps and value scale.

    `filter(values, t, value_scale)` returns the filtered values (same shape). A timestamp not
    after the previous one returns the values unfiltered and changes nothing (as MediaPipe).
    """

    def __init__(self, params: OneEuroParams = OneEuroParams()) -> None:
        self.params = params
        self.reset()

    def reset(self) -> None:
        self._raw: np.ndarray | None = None  # last raw value
        self._value: np.ndarray | None = None  # last filtered value
        self._speed: np.ndarray | None = None  # filtered speed
        self._time: float | None = None
        self._frequency = float(self.params.frequency)

    def filter(self, values: np.ndarray, t: float, value_scale: float = 1.0) -> np.ndarray:
        x = np.asarray(values, np.float64)
        if self._time is not None:
            if t <= self._time:
                return x.copy()
            self._frequency = 1.0 / (t - self._time)
        self._time = float(t)
        p = self.params
        if self._raw is None or self._raw.shape != x.shape:
            self._raw, self._value, self._speed = x.copy(), x.copy(), np.zeros_like(x)
            return x.copy()
        speed = (x - self._raw) * value_scale * self._frequency
        self._speed += _alpha(p.derivate_cutoff, self._frequency) * (speed - self._speed)
        a = _alpha(p.min_cutoff + p.beta * np.abs(self._speed), self._frequency)
        self._value += a * (x - self._value)
        self._raw = x.copy()
        return self._value.copy()


def object_scale(points: np.ndarray) -> float:
    """Mean of the width and height of the box around the points (MediaPipe's GetObjectScale)."""
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    if not len(pts):
        return 0.0
    span = pts.max(0) - pts.min(0)
    return float(span.sum() / 2.0)


def aligned_scale(auxiliary: np.ndarray, start: int = 0, end: int = 1) -> float:
    """A person's scale from their alignment points: the side of the square MediaPipe's
    AlignmentPointsRectsCalculator builds on them (twice the start -> end distance)."""
    pts = np.asarray(auxiliary, np.float64)
    return float(2.0 * np.hypot(*(pts[end] - pts[start])))


class LandmarkSmoother:
    """MediaPipe's LandmarksSmoothingCalculator (one_euro_filter) on (K, 2) points in pixels.
    The object scale is given (MediaPipe's OBJECT_SCALE_ROI), else the points' own box."""

    def __init__(self, params: OneEuroParams = BLAZEPOSE_LANDMARKS) -> None:
        self.params = params
        self._filter = OneEuroFilter(params)

    def reset(self) -> None:
        self._filter.reset()

    def __call__(self, points: np.ndarray, t: float, scale: float | None = None) -> np.ndarray:
        pts = np.asarray(points, np.float64)
        scale = object_scale(pts) if scale is None else float(scale)
        if not scale >= self.params.min_allowed_object_scale:
            return pts.astype(np.float32)
        return self._filter.filter(pts, t, 1.0 / scale).astype(np.float32)


class LowPass:
    """MediaPipe's LowPassFilter on an array: the first value as is, then alpha*new + (1-alpha)*old."""

    def __init__(self, alpha: float) -> None:
        if not 0.0 <= alpha <= 1.0:
            raise InputError(f"a low-pass alpha must lie in [0, 1], got {alpha!r}")
        self.alpha = float(alpha)
        self._value: np.ndarray | None = None

    def reset(self) -> None:
        self._value = None

    def __call__(self, values: np.ndarray) -> np.ndarray:
        x = np.asarray(values, np.float64)
        if self._value is None or self._value.shape != x.shape:
            self._value = x.copy()
        else:
            self._value = self.alpha * x + (1.0 - self.alpha) * self._value
        return self._value.astype(np.float32)


class PoseSmoother:
    """One person's keypoints, scores and auxiliary points over time, as MediaPipe smooths them.

    landmarks / auxiliary   One Euro settings (default: MediaPipe's BlazePose ones).
    visibility_alpha        low-pass factor of the keypoint scores (None: scores stay raw).
    `__call__(keypoints (K, 2), scores (K,), auxiliary (A, 2) or None, t seconds)` returns the
    three smoothed. `reset()` when the person is lost (MediaPipe resets on an empty frame).
    """

    def __init__(self, landmarks: OneEuroParams = BLAZEPOSE_LANDMARKS,
                 auxiliary: OneEuroParams = BLAZEPOSE_AUXILIARY,
                 visibility_alpha: float | None = BLAZEPOSE_VISIBILITY_ALPHA) -> None:
        self.landmarks = LandmarkSmoother(landmarks)
        self.auxiliary = LandmarkSmoother(auxiliary)
        self.visibility = LowPass(visibility_alpha) if visibility_alpha is not None else None

    def reset(self) -> None:
        self.landmarks.reset()
        self.auxiliary.reset()
        if self.visibility is not None:
            self.visibility.reset()

    def __call__(self, keypoints: np.ndarray, scores: np.ndarray, auxiliary: np.ndarray | None,
                 t: float) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Smoothed (keypoints, scores, auxiliary). With two or more auxiliary points the object
        scale comes from the first two (raw), as MediaPipe's BlazePose graph does."""
        scale = aligned_scale(auxiliary) if auxiliary is not None and len(auxiliary) >= 2 else None
        kp = self.landmarks(keypoints, t, scale)
        sc = self.visibility(scores) if self.visibility is not None else np.asarray(scores, np.float32)
        aux = self.auxiliary(auxiliary, t, scale) if auxiliary is not None else None
        return kp, sc, aux
