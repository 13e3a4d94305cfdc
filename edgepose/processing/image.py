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
    """Turns BGR uint8 crops into the float tensor a model wants, reusing its buffers.

    Colour order, mean/std and layout all come from the spec. Normalisation is folded into
    one scale and one offset per channel so packing costs two in-place array operations.
    """

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        mean = np.asarray(spec.mean, np.float32)
        std = np.asarray(spec.std, np.float32)
        # The crop arrives BGR; mean/std are given in the network's colour order.
        self._swap = spec.color == "RGB"
        self._scale = (1.0 / std).astype(np.float32)
        self._offset = (-mean / std).astype(np.float32)
        self._buffers: dict[int, np.ndarray] = {}

    def pack(self, crops: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) BGR uint8 -> (N, C, H, W) or (N, H, W, C) float32 in a reused buffer."""
        n = crops.shape[0]
        buf = self._buffers.get(n)
        if buf is None:
            buf = self._buffers[n] = np.empty(crops.shape, np.float32)
        src = crops[..., ::-1] if self._swap else crops
        np.multiply(src, self._scale, out=buf)
        buf += self._offset
        if self.spec.layout == "NCHW":
            return buf.transpose(0, 3, 1, 2)
        return buf
