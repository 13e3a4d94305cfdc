"""The MediaPipe reference tool, run for real: mediapipe==0.10.14 in its own venv on the pinned photos.

The first test that needs the venv builds it (about 20 s with a reachable package index; cached
under the edgepose cache dir afterwards). Results are cached too, so the tests that check the
first run itself use a fresh cache root with the same venv.
"""
from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest

from edgepose.benchmarks import mediapipe_reference as mpr

NOSE, LEFT_HIP, RIGHT_HIP = 0, 23, 24


@pytest.fixture(scope="module")
def reference(photos) -> dict[str, dict]:
    """MediaPipe's result for each pinned photo (default parameters)."""
    names = sorted(photos)
    return dict(zip(names, mpr.mediapipe_pose([photos[n] for n in names])))


@pytest.fixture
def fresh_cache(photos, tmp_path, monkeypatch):
    """An empty result cache, same venv (photos are resolved before the cache root moves)."""
    venv = mpr.ensure_venv().parent.parent
    monkeypatch.setenv("EDGEPOSE_MEDIAPIPE_VENV", str(venv))
    monkeypatch.setenv("EDGEPOSE_CACHE", str(tmp_path))
    return tmp_path / "mediapipe-reference"


def test_astronaut_landmarks(reference):
    r = reference["astronaut"]
    assert r["found"] and (r["width"], r["height"]) == (512, 512)
    lm = np.array(r["landmarks"])
    assert lm.shape == (33, 5)
    visible = lm[lm[:, 3] > 0.5]
    assert len(visible) >= 13  # the face and shoulders at least
    assert np.all((visible[:, 0] >= 0) & (visible[:, 0] < 512) & (visible[:, 1] >= 0) & (visible[:, 1] < 512))
    assert lm[NOSE, 1] < min(lm[LEFT_HIP, 1], lm[RIGHT_HIP, 1])
    assert np.all((lm[:, 3:] >= 0) & (lm[:, 3:] <= 1))  # visibility, presence are probabilities


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper", "bus"])
def test_detection_gives_roi(reference, name):
    """In static mode the landmark ROI is the detection's: centred on the hips keypoint, square,
    2 x 1.25 x the hips-to-circle distance wide (MediaPipe's AlignmentPointsRectsCalculator + RectTransformation)."""
    r = reference[name]
    assert r["found"]
    det, roi = r["detection"], r["roi_from_detection"]
    assert 0.5 <= det["score"] <= 1 and len(det["keypoints_px"]) == 4
    assert len(r["detections"]) >= 1 and r["detections"][0] == det
    (hx, hy), (cx, cy) = det["keypoints_px"][:2]
    assert roi["x_center"] == pytest.approx(hx, abs=1e-3) and roi["y_center"] == pytest.approx(hy, abs=1e-3)
    assert roi["width"] == pytest.approx(roi["height"], rel=1e-5)
    assert roi["width"] == pytest.approx(2.5 * math.hypot(cx - hx, cy - hy), rel=1e-4)
    assert abs(roi["rotation"]) < 0.5  # people standing upright
    assert r["roi_from_landmarks"] is not None


def test_zidane_below_default_threshold(photos, reference):
    """MediaPipe's own detector scores zidane.jpg's person 0.38: nobody at the default 0.5."""
    assert not reference["zidane"]["found"] and reference["zidane"]["detection"] is None
    low = mpr.mediapipe_pose([photos["zidane"]], min_detection_confidence=0.3)[0]
    assert low["found"] and 0.3 <= low["detection"]["score"] < 0.5


def test_no_person_in_grey_array():
    r = mpr.mediapipe_pose([np.full((256, 256, 3), 128, np.uint8)])[0]
    assert r["found"] is False and r["image"] is None
    assert (r["width"], r["height"]) == (256, 256)
    assert r["detection"] is None and r["detections"] == [] and "landmarks" not in r


def test_array_equals_file(photos, reference):
    """A BGR array goes through a lossless PNG: same result as the file (channel order kept)."""
    bgr = cv2.imread(str(photos["astronaut"]), cv2.IMREAD_COLOR)
    r = mpr.mediapipe_pose([bgr])[0]
    assert r["landmarks"] == reference["astronaut"]["landmarks"]


def test_cache_returns_identical_results(photos, fresh_cache):
    images = [photos["astronaut"], photos["bus"]]
    first = mpr.mediapipe_pose(images)
    files = sorted(fresh_cache.glob("*.json"))
    assert len(files) == 2
    assert mpr.mediapipe_pose(images) == first
    # the second call read the cache: an entry edited on disk comes back as edited
    entry = json.loads(files[0].read_text())
    entry["landmarks"][0][0] = -1.0
    files[0].write_text(json.dumps(entry))
    assert {r["landmarks"][0][0] for r in mpr.mediapipe_pose(images)} & {-1.0}
    # other parameters are another key
    mpr.mediapipe_pose(images[:1], min_detection_confidence=0.6)
    assert len(list(fresh_cache.glob("*.json"))) == 3


def test_video_mode_tracks(photos, fresh_cache):
    """static_image_mode=False: the second frame is tracked from the first frame's landmarks (no detector)."""
    a = photos["astronaut"]
    first, second = mpr.mediapipe_pose([a, a], static_image_mode=False)
    assert first["found"] and second["found"]
    assert first["detection"] is not None and second["detection"] is None


def test_time_mediapipe(photos):
    ms = mpr.time_mediapipe(photos["astronaut"], repeats=3, warmup=1)
    assert len(ms) == 3 and all(0 < t < 5000 for t in ms)


def test_worker_error_shows_stderr(tmp_path, fresh_cache):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(mpr.MediaPipeReferenceError, match="cv2.imread could not read"):
        mpr.mediapipe_pose([bad])


def test_unshipped_model_refused():
    with pytest.raises(ValueError, match="only \\(1,\\) ships"):
        mpr.mediapipe_pose([np.zeros((8, 8), np.uint8)], model_complexity=2)
