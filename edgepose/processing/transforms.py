"""Boxes, affine crops and their inverse.

Conventions follow mmpose (no rotation, pixel-index coordinates): a box is enlarged by
`padding`, widened or heightened to the input's aspect ratio, and mapped so its centre lands
on the centre of the input. Keypoints go back to the image through the inverse matrix, so any
crop, with or without a box, round-trips exactly.
"""
from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np

from ..errors import BBoxError

# Crops per call: each is a full model input in memory (256x256x3 floats = 0.8 MB), so a box list
# far beyond any frame's people is refused before anything is allocated.
MAX_INSTANCES = 1000


def validate_bboxes(bboxes: Any, image_shape: tuple[int, ...]) -> np.ndarray:
    """(N, 4) float32 x1, y1, x2, y2 boxes, checked to be non-empty and to overlap the image."""
    try:
        boxes = np.asarray(bboxes, dtype=np.float64)
    except (TypeError, ValueError):
        raise BBoxError(f"bboxes must be numbers shaped (4,) or (N, 4) as x1, y1, x2, y2; got {bboxes!r}") from None
    if boxes.ndim == 1:
        boxes = boxes[None]
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise BBoxError(f"bboxes must be shaped (4,) or (N, 4) as x1, y1, x2, y2; got shape {boxes.shape}")
    if boxes.shape[0] == 0:
        raise BBoxError("bboxes is empty; pass None to use the whole image")
    if boxes.shape[0] > MAX_INSTANCES:
        raise BBoxError(f"{boxes.shape[0]} boxes in one call; at most {MAX_INSTANCES} are cropped at once "
                        "(each needs its own input buffer): split them over several calls")
    h, w = image_shape[:2]
    with np.errstate(over="ignore"):
        # Checked as the crops use them, in float32: a box valid in float64 can collapse
        # ([100, 100, 100.000001, 100.000001]) or overflow (1e39) there.
        boxes = boxes.astype(np.float32)
    # Plain floats: per box, a handful of comparisons costs less than numpy calls would.
    for i, (x1, y1, x2, y2) in enumerate(boxes.tolist()):
        if not (math.isfinite(x1) and math.isfinite(y1) and math.isfinite(x2) and math.isfinite(y2)):
            raise BBoxError(f"bbox {i} has a non-finite coordinate: {[x1, y1, x2, y2]}")
        if x2 <= x1 or y2 <= y1:
            raise BBoxError(
                f"bbox {i} {[x1, y1, x2, y2]} is empty: it must be x1, y1, x2, y2 with x2 > x1 and y2 > y1 "
                "(if yours is x, y, w, h, convert it to x1, y1, x1 + w, y1 + h)")
        if x2 <= 0 or y2 <= 0 or x1 >= w or y1 >= h:
            raise BBoxError(f"bbox {i} {[x1, y1, x2, y2]} lies outside the {w}x{h} image")
    return boxes


def bbox_to_center_scale(bbox: np.ndarray, *, padding: float, aspect: float | None) -> tuple[np.ndarray, np.ndarray]:
    """Centre and (w, h) size of the region to crop: padded, then fixed to `aspect` (w / h)."""
    x1, y1, x2, y2 = (float(v) for v in bbox)
    center = np.array([(x1 + x2) * 0.5, (y1 + y2) * 0.5])
    scale = np.array([x2 - x1, y2 - y1]) * padding
    if aspect is not None:
        w, h = scale
        if w > h * aspect:
            scale = np.array([w, w / aspect])
        else:
            scale = np.array([h * aspect, h])
    return center, scale


def crop_matrix(center: np.ndarray, scale: np.ndarray, output_size: tuple[int, int]) -> np.ndarray:
    """2x3 affine that maps the region (centre, size) onto an output of (width, height)."""
    out_w, out_h = output_size
    sx, sy = out_w / scale[0], out_h / scale[1]
    return np.array([[sx, 0.0, out_w * 0.5 - center[0] * sx],
                     [0.0, sy, out_h * 0.5 - center[1] * sy]], dtype=np.float64)


def box_matrices(boxes: np.ndarray, *, padding: float, output_size: tuple[int, int]) -> np.ndarray:
    """(N, 2, 3) crop matrices of (N, 4) boxes: `crop_matrix(*bbox_to_center_scale(box, padding=padding,
    aspect=w / h), output_size)` for each box, the same float64 operations in plain floats."""
    out_w, out_h = output_size
    aspect = out_w / out_h
    rows = []
    for x1, y1, x2, y2 in np.asarray(boxes).tolist():
        cx, cy = (x1 + x2) * 0.5, (y1 + y2) * 0.5
        sw, sh = (x2 - x1) * padding, (y2 - y1) * padding
        if sw > sh * aspect:
            sh = sw / aspect
        else:
            sw = sh * aspect
        sx, sy = out_w / sw, out_h / sh
        rows.append(((sx, 0.0, out_w * 0.5 - cx * sx), (0.0, sy, out_h * 0.5 - cy * sy)))
    return np.array(rows, np.float64).reshape(-1, 2, 3)


def whole_image_matrix(image_shape: tuple[int, ...], output_size: tuple[int, int]) -> np.ndarray:
    """The whole image stretched onto the input, no padding (used when no box is given)."""
    h, w = image_shape[:2]
    return crop_matrix(np.array([w * 0.5, h * 0.5]), np.array([float(w), float(h)]), output_size)


BORDERS = {"zero": cv2.BORDER_CONSTANT, "replicate": cv2.BORDER_REPLICATE}


def warp(image: np.ndarray, matrix: np.ndarray, output_size: tuple[int, int], out: np.ndarray | None = None,
         *, border: str = "zero") -> np.ndarray:
    """Bilinear affine crop. Outside the image: black ("zero", as mmpose) or the edge pixels
    repeated ("replicate", as MediaPipe's landmark crops)."""
    return cv2.warpAffine(image, matrix, output_size, dst=out, flags=cv2.INTER_LINEAR,
                          borderMode=BORDERS[border], borderValue=(0, 0, 0))


def source_window(matrix: np.ndarray, output_size: tuple[int, int], image_shape: tuple[int, ...],
                  margin: int = 2) -> tuple[int, int, int, int]:
    """The image pixels `warp(image, matrix, output_size)` can read, as x0, y0, x1, y1 (ends excluded).

    The crop's corners mapped back to the image, widened by the bilinear neighbour and `margin`
    pixels (OpenCV maps in float32), clipped to the image; never empty, so it always holds the
    edge pixels a replicated border repeats.
    """
    (a, b, c), (d, e, f) = np.asarray(matrix, np.float64).tolist()
    h, w = image_shape[:2]
    det = a * e - b * d
    if det == 0 or not math.isfinite(det):
        return 0, 0, w, h
    # The inverse affine, as cv2.invertAffineTransform computes it.
    ia, ib, id_, ie = e / det, -b / det, -d / det, a / det
    ic, if_ = -ia * c - ib * f, -id_ * c - ie * f
    out_w, out_h = output_size
    ax, bx, ay, by = ia * (out_w - 1), ib * (out_h - 1), id_ * (out_w - 1), ie * (out_h - 1)
    if not math.isfinite(ic + if_ + ax + bx + ay + by):
        return 0, 0, w, h
    # The extremes over the crop's corners: each term at its own end of the crop.
    lo_x, hi_x = ic + min(ax, 0.0) + min(bx, 0.0), ic + max(ax, 0.0) + max(bx, 0.0)
    lo_y, hi_y = if_ + min(ay, 0.0) + min(by, 0.0), if_ + max(ay, 0.0) + max(by, 0.0)
    if not (abs(lo_x) < 2 ** 30 and abs(hi_x) < 2 ** 30 and abs(lo_y) < 2 ** 30 and abs(hi_y) < 2 ** 30):
        return 0, 0, w, h
    x0 = min(max(math.floor(lo_x) - margin, 0), w - 1)
    y0 = min(max(math.floor(lo_y) - margin, 0), h - 1)
    x1 = max(min(math.floor(hi_x) + margin + 2, w), x0 + 1)
    y1 = max(min(math.floor(hi_y) + margin + 2, h), y0 + 1)
    return x0, y0, x1, y1


def invert(matrix: np.ndarray) -> np.ndarray:
    return cv2.invertAffineTransform(matrix)


def inverse_affine(matrix: np.ndarray) -> np.ndarray:
    """cv2.invertAffineTransform of a 2x3 float64 matrix, the same operations in plain floats (the
    same bits: checked on 200 000 random matrices), without the cost of a call into OpenCV."""
    (a, b, c), (d, e, f) = matrix.tolist()
    det = a * e - b * d
    det = 1.0 / det if det != 0 else 0.0
    a11, a22, a12, a21 = e * det, a * det, -b * det, -d * det
    return np.array([[a11, a12, -a11 * c - a12 * f], [a21, a22, -a21 * c - a22 * f]])


def to_image(points: np.ndarray, matrices: np.ndarray) -> np.ndarray:
    """(N, K, 2) points in crop i's input pixels -> image pixels, through the inverse of matrices[i]."""
    if len(matrices) == 1:
        return apply_affine(points[0], inverse_affine(matrices[0]))[None]
    return np.stack([apply_affine(points[i], inverse_affine(m)) for i, m in enumerate(matrices)])


def apply_affine(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Map (..., 2) points through a 2x3 affine matrix."""
    pts = np.asarray(points, dtype=np.float64)
    return (pts @ matrix[:, :2].T + matrix[:, 2]).astype(np.float32)
