"""Boxes, affine crops and their inverse (property-based), and input packing."""
from __future__ import annotations

import cv2
import numpy as np
import pytest; pytest.importorskip("hypothesis")  # noqa: E702 - build-time extra (dev): skip without it
from hypothesis import given, settings
from hypothesis import strategies as st

from edgepose.processing import transforms
from edgepose.processing.image import InputPacker
from edgepose.spec import ModelSpec

coord = st.floats(-500, 1500, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(x1=coord, y1=coord, w=st.floats(1, 800), h=st.floats(1, 800), pad=st.floats(1.0, 1.5),
       out_w=st.integers(16, 512), out_h=st.integers(16, 512))
def test_crop_maps_box_centre_to_input_centre_and_round_trips(x1, y1, w, h, pad, out_w, out_h):
    center, scale = transforms.bbox_to_center_scale(np.array([x1, y1, x1 + w, y1 + h]), padding=pad,
                                                    aspect=out_w / out_h)
    assert np.isclose(scale[0] / scale[1], out_w / out_h)          # aspect fixed
    assert scale[0] >= w * pad - 1e-6 and scale[1] >= h * pad - 1e-6  # box fully inside the crop
    m = transforms.crop_matrix(center, scale, (out_w, out_h))
    np.testing.assert_allclose(transforms.apply_affine(center, m), [out_w / 2, out_h / 2], atol=1e-3)
    pts = np.random.default_rng(0).uniform(-100, 600, (17, 2))
    back = transforms.apply_affine(transforms.apply_affine(pts, m), transforms.invert(m))
    np.testing.assert_allclose(back, pts, atol=2e-3)


def test_warp_agrees_with_opencv_three_point_affine():
    img = np.random.default_rng(1).integers(0, 255, (300, 400, 3), np.uint8)
    center, scale = transforms.bbox_to_center_scale(np.array([50, 40, 250, 280]), padding=1.25, aspect=0.75)
    m = transforms.crop_matrix(center, scale, (192, 256))
    src = np.float32([center, center + [0, -scale[1] / 2], center + [-scale[0] / 2, -scale[1] / 2]])
    ref = cv2.getAffineTransform(src, np.float32([[96, 128], [96, 0], [0, 0]]))
    np.testing.assert_allclose(m, ref, atol=1e-9)
    assert transforms.warp(img, m, (192, 256)).shape == (256, 192, 3)


def test_whole_image_matrix_stretches_without_padding():
    m = transforms.whole_image_matrix((300, 400, 3), (256, 192))
    np.testing.assert_allclose(transforms.apply_affine([[0, 0], [400, 300]], m), [[0, 0], [256, 192]], atol=1e-5)


def test_packer_applies_colour_mean_std_and_layout():
    crops = np.random.default_rng(2).integers(0, 255, (2, 8, 6, 3), np.uint8)
    spec = ModelSpec(input_size=(6, 8), head="heatmap", num_keypoints=1, color="RGB", layout="NCHW",
                     mean=(10, 20, 30), std=(2, 4, 8))
    out = InputPacker(spec).pack(crops)
    expected = ((crops[..., ::-1].astype(np.float32) - [10, 20, 30]) / [2, 4, 8]).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-5)
    bgr = ModelSpec(input_size=(6, 8), head="heatmap", num_keypoints=1, color="BGR", layout="NHWC")
    np.testing.assert_array_equal(InputPacker(bgr).pack(crops), crops.astype(np.float32))
