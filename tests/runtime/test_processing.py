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


# --- the Predictor's fused crop + pack (InputPacker.crop_pack) --------------------------------------
def _old_pack(crop: np.ndarray, spec: ModelSpec) -> np.ndarray:
    """The packing as it was before crop_pack (one 3-channel crop): the figures it must keep."""
    mean, std = np.asarray(spec.mean, np.float64), np.asarray(spec.std, np.float64)
    scale, offset = 1.0 / std, -mean / std
    source = (2, 1, 0) if spec.color == "RGB" else (0, 1, 2)
    if spec.layout == "NCHW":
        planes = cv2.split(crop)
        return np.stack([cv2.addWeighted(planes[s], float(scale[c]), planes[s], 0.0, float(offset[c]),
                                         dtype=cv2.CV_32F) for c, s in enumerate(source)])
    m = np.zeros((3, 4), np.float32)
    for c, s in enumerate(source):
        m[c, s], m[c, 3] = scale[c], offset[c]
    return cv2.transform(crop.astype(np.float32), m)


LAYOUTS = [dict(layout="NCHW", color="RGB", mean=(123.675, 116.28, 103.53), std=(58.395, 57.12, 57.375)),
           dict(layout="NHWC", color="RGB", mean=(0, 0, 0), std=(255, 255, 255)),
           dict(layout="NHWC", color="BGR", mean=(10, 20, 30), std=(2, 4, 8))]


@settings(max_examples=150, deadline=None)
@given(cx=st.floats(-100, 500), cy=st.floats(-100, 400), size=st.floats(5, 900), angle=st.floats(-180, 180),
       rotate=st.booleans(), border=st.sampled_from(["zero", "replicate"]), layout=st.sampled_from(range(3)),
       out_w=st.sampled_from([64, 96, 192, 256]), out_h=st.sampled_from([64, 128, 256]), shift=st.integers(0, 3))
def test_crop_pack_gives_the_bytes_of_the_three_channel_warp(cx, cy, size, angle, rotate, border, layout,
                                                              out_w, out_h, shift):
    """Both routes (BGRA window + 4-channel warp, or the 3-channel warp) pack exactly what the
    3-channel warp and the old packing give, whatever the BGRA buffer held outside the window."""
    img = np.random.default_rng(shift).integers(0, 256, (300 + shift, 400 - shift, 3), np.uint8)
    spec = ModelSpec(input_size=(out_w, out_h), head="heatmap", num_keypoints=1, border=border, **LAYOUTS[layout])
    if rotate:
        m = cv2.getRotationMatrix2D((cx, cy), angle, out_w / size)
        m[:, 2] += (out_w / 2 - cx, out_h / 2 - cy)
    else:
        c, s = transforms.bbox_to_center_scale(np.array([cx - size / 2, cy - size / 3, cx + size / 2, cy + size / 3]),
                                               padding=1.25, aspect=out_w / out_h)
        m = transforms.crop_matrix(c, s, (out_w, out_h))
    expected = _old_pack(transforms.warp(img, m, (out_w, out_h), border=border), spec)
    for ratio in (0, 10 ** 9):  # never / always the BGRA route
        packer = InputPacker(spec)
        packer.BGRA_MAX_WINDOW_RATIO = ratio
        packer._bgra_image = np.random.default_rng(7).integers(0, 256, img.shape[:2] + (4,), np.uint8)  # garbage
        out = np.full(packer.output_shape(2), np.nan, np.float32)
        packer.crop_pack(img, np.stack([m, m]), out, border=border)
        np.testing.assert_array_equal(out[0], expected)
        np.testing.assert_array_equal(out[1], expected)


def test_pack_of_a_bgra_crop_equals_pack_of_its_bgr():
    crops = np.random.default_rng(3).integers(0, 256, (2, 16, 12, 3), np.uint8)
    bgra = np.stack([cv2.cvtColor(c, cv2.COLOR_BGR2BGRA) for c in crops])
    for kw in LAYOUTS:
        spec = ModelSpec(input_size=(12, 16), head="heatmap", num_keypoints=1, **kw)
        expected = np.stack([_old_pack(c, spec) for c in crops])
        np.testing.assert_array_equal(InputPacker(spec).pack(crops), expected)
        np.testing.assert_array_equal(InputPacker(spec).pack(bgra), expected)


@settings(max_examples=200, deadline=None)
@given(x1=coord, y1=coord, w=st.floats(0.01, 800), h=st.floats(0.01, 800), pad=st.floats(1.0, 1.5),
       out_w=st.integers(16, 512), out_h=st.integers(16, 512))
def test_box_matrices_are_the_crop_matrices_to_the_bit(x1, y1, w, h, pad, out_w, out_h):
    box = np.array([[x1, y1, x1 + w, y1 + h]], np.float32)
    c, s = transforms.bbox_to_center_scale(box[0], padding=pad, aspect=out_w / out_h)
    expected = transforms.crop_matrix(c, s, (out_w, out_h))
    got = transforms.box_matrices(box, padding=pad, output_size=(out_w, out_h))
    assert got.shape == (1, 2, 3) and got.dtype == np.float64
    assert np.array_equal(got[0], expected, equal_nan=True)


def test_source_window_is_clipped_and_never_empty():
    m = transforms.crop_matrix(np.array([50.0, 40.0]), np.array([100.0, 80.0]), (64, 64))
    x0, y0, x1, y1 = transforms.source_window(m, (64, 64), (480, 640, 3))
    assert (x0, y0) == (0, 0) and 100 <= x1 <= 104 and 80 <= y1 <= 84
    far = transforms.crop_matrix(np.array([-500.0, -500.0]), np.array([10.0, 10.0]), (64, 64))
    assert transforms.source_window(far, (64, 64), (480, 640, 3)) == (0, 0, 1, 1)
    assert transforms.source_window(np.zeros((2, 3)), (64, 64), (480, 640, 3)) == (0, 0, 640, 480)


def test_to_image_inverts_each_crop():
    ms = np.stack([transforms.crop_matrix(np.array([50.0 + i, 40.0]), np.array([100.0, 80.0 + i]), (64, 48))
                   for i in range(3)])
    pts = np.random.default_rng(0).uniform(0, 64, (3, 5, 2)).astype(np.float32)
    got = transforms.to_image(pts, ms)
    for i in range(3):
        np.testing.assert_array_equal(got[i], transforms.apply_affine(pts[i], transforms.invert(ms[i])))
    np.testing.assert_array_equal(transforms.to_image(pts[:1], ms[:1]), got[:1])


@settings(max_examples=300, deadline=None)
@given(m=st.lists(st.floats(-1e4, 1e4), min_size=6, max_size=6), axis_aligned=st.booleans())
def test_inverse_affine_is_opencvs_to_the_bit(m, axis_aligned):
    matrix = np.array(m, np.float64).reshape(2, 3)
    if axis_aligned:
        matrix[0, 1] = matrix[1, 0] = 0.0
    assert np.array_equal(transforms.inverse_affine(matrix), cv2.invertAffineTransform(matrix), equal_nan=True)


def _refine_peaks_loop(heatmaps: np.ndarray, peaks: np.ndarray) -> np.ndarray:
    """decoders.refine_peaks as it was, one peak at a time: the figures the vectorised one keeps."""
    n, k, h, w = heatmaps.shape
    out = peaks.astype(np.float32).copy()
    with np.errstate(divide="ignore"):
        logh = np.log(np.maximum(heatmaps, 1e-10))
    for i in range(n):
        for j in range(k):
            px, py = int(peaks[i, j, 0]), int(peaks[i, j, 1])
            if not (1 <= px < w - 1 and 1 <= py < h - 1):
                continue
            m = logh[i, j]
            dx = 0.5 * (m[py, px + 1] - m[py, px - 1])
            dy = 0.5 * (m[py + 1, px] - m[py - 1, px])
            dxx = m[py, px + 1] - 2 * m[py, px] + m[py, px - 1]
            dyy = m[py + 1, px] - 2 * m[py, px] + m[py - 1, px]
            dxy = 0.25 * (m[py + 1, px + 1] - m[py + 1, px - 1] - m[py - 1, px + 1] + m[py - 1, px - 1])
            det = dxx * dyy - dxy * dxy
            if dxx < 0 and det > 0:
                out[i, j] += np.clip([-(dyy * dx - dxy * dy) / det, -(dxx * dy - dxy * dx) / det], -0.5, 0.5)
    return out


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10 ** 6), n=st.integers(1, 3), size=st.sampled_from([(64, 48), (5, 3), (3, 3)]),
       noise=st.booleans())
def test_vectorised_peak_refinement_gives_the_loops_values(seed, n, size, noise):
    from edgepose.processing.decoders import refine_peaks

    rng = np.random.default_rng(seed)
    h, w = size
    ys, xs = np.mgrid[0:h, 0:w]
    hm = np.stack([np.stack([np.exp(-((xs - rng.uniform(-2, w + 1)) ** 2 + (ys - rng.uniform(-2, h + 1)) ** 2)
                                    / (2 * rng.uniform(0.5, 3) ** 2)) * rng.uniform(0, 1) for _ in range(5)])
                   for _ in range(n)]).astype(np.float32)
    if noise:
        hm += rng.normal(0, 0.05, hm.shape).astype(np.float32)
    hm[0, 0] = 0.0
    flat = hm.reshape(n, 5, -1)
    idx = flat.argmax(-1)
    peaks = np.stack([idx % w, idx // w], -1)
    np.testing.assert_array_equal(refine_peaks(hm, peaks), _refine_peaks_loop(hm, peaks))
