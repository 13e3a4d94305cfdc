"""Decoders: known peaks and coordinates come back where they were put."""
from __future__ import annotations

import numpy as np
import pytest

from edgepose.processing.decoders import decode, refine_peaks
from edgepose.spec import ModelSpec


def gaussian_maps(centres, size=(48, 64), sigma=2.0):
    h, w = size
    ys, xs = np.mgrid[0:h, 0:w]
    return np.stack([np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * sigma ** 2)) for cx, cy in centres])[None]


@pytest.mark.parametrize("centre", [(10.3, 20.7), (31.5, 5.25), (50.9, 40.1)])
def test_heatmap_subpixel_peak(centre):
    spec = ModelSpec(input_size=(256, 192), head="heatmap", num_keypoints=1)
    xy, scores, _ = decode(spec, {"heatmaps": gaussian_maps([centre]).astype(np.float32)})
    np.testing.assert_allclose(xy[0, 0], np.array(centre) * 4, atol=0.05)  # 64x48 maps -> 256x192 input
    assert scores[0, 0] > 0.8


def test_refinement_beats_integer_argmax():
    centre = (20.4, 11.6)
    hm = gaussian_maps([centre]).astype(np.float32)
    refined = refine_peaks(hm, np.array([[[20, 12]]]))
    assert np.abs(refined[0, 0] - centre).max() < 0.02


def test_normalised_coords_scale_to_input_pixels():
    spec = ModelSpec(input_size=(320, 256), head="regression", num_keypoints=2)
    coords = np.array([[[0.5, 0.5], [0.25, 1.0]]], np.float32)
    xy, scores, _ = decode(spec, {"coords": coords, "scores": np.array([[0.9, 0.1]], np.float32)})
    np.testing.assert_allclose(xy[0], [[160, 128], [80, 256]])
    np.testing.assert_allclose(scores[0], [0.9, 0.1])


def test_simdr_logits_argmax_over_split_ratio():
    spec = ModelSpec(input_size=(192, 256), head="simdr", num_keypoints=1, decode={"split_ratio": 2.0},
                     outputs={"simdr_x": "x", "simdr_y": "y"})
    sx, sy = np.zeros((1, 1, 384), np.float32), np.zeros((1, 1, 512), np.float32)
    sx[0, 0, 101], sy[0, 0, 300] = 10, 10
    xy, _, _ = decode(spec, {"simdr_x": sx, "simdr_y": sy})
    np.testing.assert_allclose(xy[0, 0], [50.5, 150.0])


def test_landmarks_split_values_and_activate_visibility():
    spec = ModelSpec(input_size=(256, 256), head="landmarks", num_keypoints=2,
                     decode={"values_per_point": 5, "z_index": 2, "visibility_index": 3, "presence_index": 4})
    raw = np.array([[10, 20, -3, 0, 100], [30, 40, 5, 100, -100], [1, 1, 1, 1, 1]], np.float32).reshape(1, -1)
    xy, scores, extras = decode(spec, {"landmarks": raw, "presence": np.array([[0.7]], np.float32)})
    np.testing.assert_allclose(xy[0], [[10, 20], [30, 40]])
    np.testing.assert_allclose(scores[0], [0.5, 1.0], atol=1e-6)
    np.testing.assert_allclose(extras["z"][0], [-3, 5])
    np.testing.assert_allclose(extras["presence"], [0.7])
