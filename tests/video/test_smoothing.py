"""edgepose.smoothing against a line-by-line transcription of MediaPipe's filters
(mediapipe/util/filtering/one_euro_filter.cc, low_pass_filter.cc) and on synthetic signals."""
from __future__ import annotations

import math

import numpy as np
import pytest

from edgepose.errors import InputError
from edgepose.smoothing import (BLAZEPOSE_AUXILIARY, BLAZEPOSE_LANDMARKS, LandmarkSmoother, LowPass, OneEuroFilter,
                                OneEuroParams, PoseSmoother, aligned_scale, object_scale)


class MediaPipeOneEuro:
    """One scalar, as MediaPipe's C++ does it (timestamps in ns, 0 = unset)."""

    def __init__(self, frequency, min_cutoff, beta, derivate_cutoff):
        self.frequency, self.min_cutoff, self.beta, self.dcutoff = frequency, min_cutoff, beta, derivate_cutoff
        self.x = self.dx = None  # LowPassFilter: (raw, stored) once initialised
        self.last_time = 0

    def alpha(self, cutoff):
        te = 1.0 / self.frequency
        tau = 1.0 / (2 * math.pi * cutoff)
        return 1.0 / (1.0 + tau / te)

    @staticmethod
    def low_pass(state, value, alpha):
        result = value if state is None else alpha * value + (1.0 - alpha) * state[1]
        return (value, result), result

    def apply(self, t_ns, value_scale, value):
        if self.last_time >= t_ns:
            return value
        if self.last_time != 0 and t_ns != 0:
            self.frequency = 1.0 / ((t_ns - self.last_time) * 1e-9)
        self.last_time = t_ns
        dvalue = (value - self.x[0]) * value_scale * self.frequency if self.x is not None else 0.0
        self.dx, edvalue = self.low_pass(self.dx, dvalue, self.alpha(self.dcutoff))
        cutoff = self.min_cutoff + self.beta * abs(edvalue)
        self.x, out = self.low_pass(self.x, value, self.alpha(cutoff))
        return out


@pytest.mark.parametrize("params", [BLAZEPOSE_LANDMARKS, BLAZEPOSE_AUXILIARY, OneEuroParams(1.0, 0.007, 1.0)])
def test_one_euro_matches_mediapipe_transcription(params):
    rng = np.random.default_rng(1)
    n, k = 120, 7
    signal = np.cumsum(rng.normal(0, 3, (n, k)), axis=0) + rng.normal(0, 1, (n, k))
    times = np.cumsum(rng.uniform(0.025, 0.045, n))  # uneven frame times, seconds
    scales = rng.uniform(50, 400, n)
    ours = OneEuroFilter(params)
    ref = [MediaPipeOneEuro(params.frequency, params.min_cutoff, params.beta, params.derivate_cutoff)
           for _ in range(k)]
    for i in range(n):
        got = ours.filter(signal[i], times[i], 1.0 / scales[i])
        want = [ref[j].apply(int(round(times[i] * 1e9)), 1.0 / scales[i], signal[i, j]) for j in range(k)]
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)  # (ns-rounded timestamps)


def test_first_value_passes_and_old_timestamps_change_nothing():
    f = OneEuroFilter(BLAZEPOSE_LANDMARKS)
    np.testing.assert_array_equal(f.filter(np.array([5.0, 6.0]), 1.0), [5.0, 6.0])
    a = f.filter(np.array([9.0, 9.0]), 1.1)
    np.testing.assert_array_equal(f.filter(np.array([100.0, 100.0]), 1.1), [100.0, 100.0])  # same time
    b = f.filter(np.array([9.0, 9.0]), 1.2)
    assert np.all(a < 9.0) and np.all(b > a) and np.all(b < 9.0)  # the 100s left no trace
    f.reset()
    np.testing.assert_array_equal(f.filter(np.array([1.0, 2.0]), 0.5), [1.0, 2.0])


def test_still_points_are_smoothed_and_moving_points_follow():
    rng = np.random.default_rng(0)
    fps, n = 30.0, 150
    person = rng.uniform(100, 300, (33, 2))
    smoother = LandmarkSmoother(BLAZEPOSE_LANDMARKS)
    # Half a pixel of white noise on a 200 px person: cut 5.5x (measured). The filter opens with
    # speed, and beta = 80 reads larger noise as motion: 1 px is cut 3.4x, 1.5 px 2.6x.
    raw = [person + rng.normal(0, 0.5, person.shape) for i in range(n)]
    still = [smoother(r, i / fps) for i, r in enumerate(raw)]

    def jitter(seq):
        return np.mean([np.linalg.norm(b - a, axis=-1).mean() for a, b in zip(seq[60:], seq[61:])])

    assert jitter(still) < jitter(raw) / 4, (jitter(raw), jitter(still))
    smoother.reset()
    speed = 4.0  # px per frame, a brisk walk for a 200 px person
    moving = [smoother(person + [speed * i, 0] + rng.normal(0, 0.5, person.shape), i / fps) for i in range(n)]
    lag = np.mean([(person[:, 0] + speed * i - moving[i][:, 0]).mean() for i in range(60, n)])
    assert 0 < lag < 2 * speed, lag  # under two frames behind


def test_object_scale_decides_the_speed_and_tiny_objects_pass_unfiltered():
    pts = np.array([[0.0, 0.0], [10.0, 30.0]])
    assert object_scale(pts) == 20.0 and aligned_scale(pts) == pytest.approx(2 * math.hypot(10, 30))
    smoother = LandmarkSmoother(OneEuroParams(min_cutoff=0.1, beta=80.0, min_allowed_object_scale=5.0))
    tiny = np.array([[1.0, 1.0], [2.0, 2.0]])
    smoother(tiny, 0.0)
    np.testing.assert_array_equal(smoother(tiny + 50, 0.1), tiny + 50)
    # the same move is "faster" for a smaller person, so it is followed more closely
    a, b = LandmarkSmoother(BLAZEPOSE_LANDMARKS), LandmarkSmoother(BLAZEPOSE_LANDMARKS)
    start = np.array([[100.0, 100.0], [110.0, 200.0]])
    a(start, 0.0, 50.0), b(start, 0.0, 500.0)
    assert a(start + 5, 1 / 30, 50.0)[0, 0] > b(start + 5, 1 / 30, 500.0)[0, 0]


def test_pose_smoother_takes_the_scale_from_the_alignment_points():
    smoother = PoseSmoother()
    kp = np.zeros((33, 2)) + [[i, 2 * i] for i in range(33)]
    aux = np.array([[50.0, 100.0], [50.0, 20.0], [0, 0], [0, 0], [0, 0], [0, 0]])
    out = smoother(kp, np.full(33, 0.9), aux, 0.0)
    np.testing.assert_allclose(out[0], kp)
    assert out[2].shape == (6, 2)
    out = smoother(kp + 3, np.full(33, 0.1), aux + 3, 1 / 30)
    np.testing.assert_allclose(out[1], 0.1 * 0.1 + 0.9 * 0.9)  # visibility low-pass, alpha 0.1
    assert np.all(out[0] < kp + 3) and np.all(out[0] > kp)


def test_low_pass_and_parameter_checks():
    lp = LowPass(0.25)
    assert lp(np.array([4.0]))[0] == 4.0 and lp(np.array([8.0]))[0] == 5.0
    with pytest.raises(InputError, match="alpha"):
        LowPass(1.5)
    for bad in ({"min_cutoff": 0}, {"derivate_cutoff": -1}, {"frequency": float("nan")}, {"beta": -1.0}):
        with pytest.raises(InputError):
            OneEuroParams(**bad)
