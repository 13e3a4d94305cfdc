"""Boxes, affine crops and their inverse.

Conventions follow mmpose (no rotation, pixel-index coordinates): a box is enlarged by
`padding`, widened or heightened to the input's aspect ratio, and mapped so its centre lands
on the centre of the input. Keypoints go back to the image through the inverse matrix, so any
crop, with or without a box, round-trips exactly.
"""
from __future__ import annotations

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
        boxes = boxes.astype(np.float32).astype(np.float64)
    for i, (x1, y1, x2, y2) in enumerate(boxes):
        if not np.all(np.isfinite([x1, y1, x2, y2])):
            raise BBoxError(f"bbox {i} has a non-finite coordinate: {boxes[i].tolist()}")
        if x2 <= x1 or y2 <= y1:
            raise BBoxError(
                f"bbox {i} {boxes[i].tolist()} is empty: it must be x1, y1, x2, y2 with x2 > x1 and y2 > y1 "
                "(if yours is x, y, w, h, convert it to x1, y1, x1 + w, y1 + h)")
        if x2 <= 0 or y2 <= 0 or x1 >= w or y1 >= h:
            raise BBoxError(f"bbox {i} {boxes[i].tolist()} lies outside the {w}x{h} image")
    return boxes.astype(np.float32)


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


def invert(matrix: np.ndarray) -> np.ndarray:
    return cv2.invertAffineTransform(matrix)


def apply_affine(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Map (..., 2) points through a 2x3 affine matrix."""
    pts = np.asarray(points, dtype=np.float64)
    return (pts @ matrix[:, :2].T + matrix[:, 2]).astype(np.float32)
