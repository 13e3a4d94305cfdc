"""The parity measures themselves: what counts as a difference, a keypoint move, a failure."""
from __future__ import annotations

import numpy as np
import pytest

from edgepose.converters.parity import compare, keypoints_px, make_input_sets, preprocess
from edgepose.converters.report import Tolerance
from edgepose.spec import ModelSpec

TOL = Tolerance(rtol=1e-3, atol=1e-5, min_cosine=0.99999, max_px=0.05)
REG = ModelSpec(input_size=(192, 256), head="regression", num_keypoints=3, outputs={"coords": "coords"})
HM = ModelSpec(input_size=(64, 64), head="heatmap", num_keypoints=2, outputs={"heatmaps": "hm"})
LM = ModelSpec(input_size=(256, 256), head="landmarks", num_keypoints=2, layout="NHWC",
               outputs={"landmarks": "lm"}, decode={"values_per_point": 5})


def _one(ref, cand, spec, tol=TOL):
    (out,) = compare([ref], [cand], spec=spec, tolerance=tol)
    return out


def test_identical_outputs_pass_with_zero_error():
    x = np.random.default_rng(0).random((2, 3, 2)).astype(np.float32)
    out = _one({"coords": x}, {"coords": x.copy()}, REG)
    assert out.passed and out.max_abs == 0 and out.cosine == pytest.approx(1.0) and out.keypoint_px == 0


def test_coordinate_error_is_reported_in_input_pixels():
    ref = np.full((1, 3, 2), 0.5, np.float32)
    cand = ref.copy()
    cand[0, 1] += (0.01, 0.0)  # 1% of the width (192 px) = 1.92 px
    out = _one({"coords": ref}, {"coords": cand}, REG)
    assert out.keypoint_px == pytest.approx(1.92, rel=1e-4)
    assert out.max_abs == pytest.approx(0.01, rel=1e-4) and out.max_rel == pytest.approx(0.02, rel=1e-3)
    assert not out.passed and any("keypoints moved up to 1.92 px" in f for f in out.failures)
    assert any("max abs error" in f for f in out.failures)


def test_error_is_judged_against_the_outputs_own_range():
    rng = np.random.default_rng(1)
    big = (rng.standard_normal((1, 1000)) * 1000).astype(np.float32)
    noisy = big + (rng.standard_normal(big.shape) * 0.05).astype(np.float32)  # 5e-5 of a ~3000 range
    assert _one({"logits": big}, {"logits": noisy}, None).passed
    small = big / 1e4
    assert not _one({"logits": small}, {"logits": small + 0.05}, None).passed


def test_heatmap_argmax_swap_between_tied_peaks_is_not_a_move():
    ref = np.zeros((1, 2, 16, 16), np.float32)
    ref[0, 0, 4, 4] = 1.0
    ref[0, 0, 12, 12] = 1.0 - 1e-6  # a near-tie: any rounding may pick either peak
    ref[0, 1, 8, 8] = 1.0
    cand = ref.copy()
    cand[0, 0, 12, 12] += 3e-6  # now the other peak wins, by less than the allowed error (1e-3)
    out = _one({"hm": ref}, {"hm": cand}, HM, Tolerance(rtol=1e-3, atol=1e-7, min_cosine=0.999, max_px=0.5))
    assert out.passed and out.keypoint_px == 0.0
    moved = ref.copy()
    moved[0, 1, 8, 8] = 0.0
    moved[0, 1, 2, 10] = 1.0  # a real move: 2 cells in x, 6 in y, 4 px per cell (64 px input, 16 cells)
    out = _one({"hm": ref}, {"hm": moved}, HM, Tolerance(rtol=1e-3, atol=1e-7, min_cosine=0.0, max_px=0.5))
    assert out.keypoint_px == pytest.approx(np.hypot(2 * 4, 6 * 4)) and not out.passed


def test_landmarks_use_x_y_of_the_first_k_points():
    ref = np.zeros((1, 3 * 5), np.float32)  # 3 points (one auxiliary) x (x, y, z, vis, presence)
    ref[0, :] = np.arange(15)
    cand = ref.copy()
    cand[0, 2] += 100.0  # z of point 0: not a displacement
    cand[0, 10] += 100.0  # x of the auxiliary point 2: beyond num_keypoints
    assert _one({"lm": ref}, {"lm": cand}, LM, Tolerance(1.0, 1e9, 0.0, 0.01)).keypoint_px == 0.0
    cand[0, 6] += 3.0  # y of point 1
    assert keypoints_px("landmarks", cand, LM)[0, 1, 1] == ref[0, 6] + 3.0
    assert _one({"lm": ref}, {"lm": cand}, LM, Tolerance(1.0, 1e9, 0.0, 0.01)).keypoint_px == pytest.approx(3.0)


def test_nan_shape_and_missing_outputs_fail_clearly():
    x = np.ones((1, 4), np.float32)
    bad = x.copy()
    bad[0, 1] = np.nan
    assert _one({"o": x}, {"o": bad}, None).failures == ["non-finite values (NaN/Inf) in the candidate output"]
    out = _one({"o": x}, {"o": np.ones((1, 5), np.float32)}, None)
    assert out.failures == ["candidate output is shape (1, 5), reference has shape (1, 4)"]
    assert _one({"o": x}, {"other": x}, None).failures[0].startswith("candidate output is missing")


def test_cosine_catches_a_structural_error_that_stays_small():
    rng = np.random.default_rng(2)
    ref = rng.standard_normal((1, 64)).astype(np.float32)
    cand = ref.copy()
    cand[0, :32] = ref[0, 32:]  # halves swapped (a layout bug)
    out = _one({"o": ref}, {"o": cand}, None, Tolerance(rtol=10.0, atol=1e-5, min_cosine=0.999, max_px=1.0))
    assert out.cosine < 0.5 and any("cosine similarity" in f for f in out.failures)


def test_preprocess_follows_the_spec():
    img = np.zeros((10, 20, 3), np.uint8)
    img[..., 0] = 10  # B
    img[..., 2] = 250  # R
    spec = ModelSpec(input_size=(4, 2), head="regression", num_keypoints=1, color="RGB",
                     mean=(250, 0, 10), std=(2, 1, 5))
    x = preprocess(img, spec)
    assert x.shape == (1, 3, 2, 4) and x.dtype == np.float32
    np.testing.assert_allclose(x[0, :, 0, 0], [0.0, 0.0, 0.0], atol=1e-6)  # R, G, B each at its own mean
    nhwc = preprocess(img, spec.replace(layout="NHWC", color="BGR", mean=(0, 0, 0), std=(1, 1, 1)))
    assert nhwc.shape == (1, 2, 4, 3) and tuple(nhwc[0, 0, 0]) == (10.0, 0.0, 250.0)


def test_input_sets_add_photos_only_where_the_spec_fits(tmp_path):
    import cv2

    photo = tmp_path / "p.png"
    cv2.imwrite(str(photo), np.full((30, 40, 3), 128, np.uint8))
    sets = make_input_sets({"input": (2, 3, 256, 192)}, spec=REG, images=[photo])
    assert [s.name for s in sets] == ["random(batch 2)", "photo:p.png"]
    assert sets[1].feeds["input"].shape == (1, 3, 256, 192)
    noise = sets[0].feeds["input"]
    assert 0.0 <= noise.min() and noise.max() <= 255.0 and noise.std() > 50  # raw pixels: mean 0, std 1 spec
    assert [s.name for s in make_input_sets({"input": (1, 3, 32, 32)}, spec=REG, images=[photo])] == ["random(batch 1)"]
    plain = make_input_sets({"a": (1, 4), "b": (1, 2)}, spec=None, images=[photo])
    assert len(plain) == 1 and set(plain[0].feeds) == {"a", "b"}
