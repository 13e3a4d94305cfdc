"""Regions of interest: rotated rectangles, the crops they define, and the letterbox.

A `Roi` is a rotated rectangle in image pixels. Its crop maps the rectangle's corners onto the
corners of the model input (top-left -> (0, 0), top-right -> (W, 0), bottom-left -> (0, H)), the
mapping MediaPipe's ImageToTensorCalculator builds with `cv::boxPoints`, so keypoints decoded in
input pixels go back to the image through the inverse of the same affine.

Two ways to get a person's ROI from a detection, one per kind of pose model:
- `aligned_roi`: MediaPipe's AlignmentPointsRects + RectTransformation. The detector's keypoints
  give the centre and size; the rotation turns the start->end vector to a target angle (BlazePose:
  hip centre -> full-body point, made vertical); the square is then scaled.
- `box_roi`: an axis-aligned top-down box (mmpose style), for models trained on person boxes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Roi:
    """A rotated rectangle in image pixels; rotation in radians, clockwise in image coordinates
    (y down), as MediaPipe's NormalizedRect.rotation."""

    cx: float
    cy: float
    width: float
    height: float
    rotation: float = 0.0

    def corners(self) -> np.ndarray:
        """(4, 2) top-left, top-right, bottom-right, bottom-left corners of the rotated rectangle."""
        c, s = math.cos(self.rotation), math.sin(self.rotation)
        half = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], np.float64) * [self.width / 2, self.height / 2]
        rot = np.array([[c, -s], [s, c]])
        return half @ rot.T + [self.cx, self.cy]

    def bbox(self) -> np.ndarray:
        """The axis-aligned x1, y1, x2, y2 box around the rectangle."""
        pts = self.corners()
        return np.concatenate([pts.min(0), pts.max(0)]).astype(np.float32)

    def to_list(self) -> list[float]:
        return [round(float(v), 4) for v in (self.cx, self.cy, self.width, self.height, self.rotation)]


def roi_matrix(roi: Roi, output_size: tuple[int, int]) -> np.ndarray:
    """2x3 affine from image pixels to an output of (width, height): the ROI's corners onto the
    output's corners (MediaPipe's ImageToTensorCalculator convention)."""
    out_w, out_h = output_size
    tl, tr, _, bl = roi.corners()
    src = np.array([tl, tr, bl], np.float32)
    dst = np.array([[0, 0], [out_w, 0], [0, out_h]], np.float32)
    import cv2

    return cv2.getAffineTransform(src, dst).astype(np.float64)


def letterbox_roi(roi: Roi, output_size: tuple[int, int]) -> tuple[Roi, tuple[float, float, float, float]]:
    """The ROI widened or heightened to the output's aspect ratio (image content keeps its shape),
    and the padding as fractions of the output (left, top, right, bottom)."""
    out_w, out_h = output_size
    tensor_aspect = out_h / out_w
    roi_aspect = roi.height / roi.width
    if tensor_aspect > roi_aspect:
        pad = (1.0 - roi_aspect / tensor_aspect) / 2.0
        padded = Roi(roi.cx, roi.cy, roi.width, roi.width * tensor_aspect, roi.rotation)
        return padded, (0.0, pad, 0.0, pad)
    pad = (1.0 - tensor_aspect / roi_aspect) / 2.0
    padded = Roi(roi.cx, roi.cy, roi.height / tensor_aspect, roi.height, roi.rotation)
    return padded, (pad, 0.0, pad, 0.0)


def image_roi(width: int, height: int) -> Roi:
    return Roi(width / 2.0, height / 2.0, float(width), float(height), 0.0)


def _normalize_radians(angle: float) -> float:
    return angle - 2 * math.pi * math.floor((angle + math.pi) / (2 * math.pi))


def aligned_roi(keypoints: np.ndarray, *, start: int, end: int, target_angle_deg: float = 90.0,
                scale: float = 1.25, square_long: bool = True) -> Roi:
    """MediaPipe's ROI from detection keypoints (pixels): centre = keypoint `start`, size = twice
    its distance to keypoint `end`, rotated so start->end points at the target angle, scaled."""
    x0, y0 = (float(v) for v in keypoints[start])
    x1, y1 = (float(v) for v in keypoints[end])
    size = 2.0 * math.hypot(x1 - x0, y1 - y0)
    rotation = _normalize_radians(math.radians(target_angle_deg) - math.atan2(-(y1 - y0), x1 - x0))
    w = h = size
    if not square_long:
        pass  # alignment boxes are square already; kept for clarity of the option
    return Roi(x0, y0, w * scale, h * scale, rotation)


def box_roi(box: np.ndarray, *, padding: float, aspect: float) -> Roi:
    """An axis-aligned top-down ROI from an x1, y1, x2, y2 box: padded, then fixed to `aspect` (w/h)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    w, h = (x2 - x1) * padding, (y2 - y1) * padding
    if w > h * aspect:
        h = w / aspect
    else:
        w = h * aspect
    return Roi((x1 + x2) / 2.0, (y1 + y2) / 2.0, w, h, 0.0)


def check_rois(rois, image_shape: tuple[int, ...]) -> list[Roi]:
    """The ROIs as a list, each finite, non-empty and overlapping the image; a clear error otherwise."""
    from ..errors import BBoxError
    from .transforms import MAX_INSTANCES

    items = list(rois)
    if not items:
        raise BBoxError("rois is empty; pass None to use the whole image")
    if len(items) > MAX_INSTANCES:
        raise BBoxError(f"{len(items)} ROIs in one call; at most {MAX_INSTANCES} are cropped at once: split them")
    h, w = image_shape[:2]
    for i, roi in enumerate(items):
        if not isinstance(roi, Roi):
            raise BBoxError(f"roi {i} is a {type(roi).__name__}; expected edgepose.processing.roi.Roi")
        values = (roi.cx, roi.cy, roi.width, roi.height, roi.rotation)
        if not all(math.isfinite(v) for v in values):
            raise BBoxError(f"roi {i} has a non-finite value: {roi}")
        if roi.width <= 0 or roi.height <= 0:
            raise BBoxError(f"roi {i} is empty (width {roi.width}, height {roi.height})")
        x1, y1, x2, y2 = roi.bbox()
        if x2 <= 0 or y2 <= 0 or x1 >= w or y1 >= h:
            raise BBoxError(f"roi {i} {roi.to_list()} lies outside the {w}x{h} image")
    return items
