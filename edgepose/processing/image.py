"""Validate images and turn crops into the network's input tensor."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..errors import ImageError
from ..spec import ModelSpec
from . import transforms


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

    `crop_pack` is the Predictor's whole pre-processing: each crop warped from the image and
    packed into `out` (the backend's own input memory where it has some), every intermediate a
    buffer of this packer's, reused from call to call (one packer per thread). Where the crop
    reads a small enough part of the image, that part is first turned BGRA (in a buffer of the
    image's size, the rest left untouched) and warped as 4 channels: OpenCV's 8-bit bilinear
    warp is much slower on 3 channels than on 4, and gives the same bytes (a property test checks
    it). AMD EPYC Zen 4 (AVX-512/VNNI), 1 thread, 256x256 crop of a 512x512 photo:
    warpAffine 3 channels 264 us (zero border) / 419 us (replicate); cvtColor of the 512x512
    source to BGRA 35 us + warpAffine 4 channels 147 / 302 us.
    """

    # The BGRA route is taken when the image window a crop reads is at most this many times the
    # crop's own pixel count: the conversion costs ~0.13 ns per source pixel, the 4-channel warp
    # saves ~1.8 ns per crop pixel (Zen 4, above), so it pays up to ~13x; 8 leaves a margin.
    BGRA_MAX_WINDOW_RATIO = 8
    # The BGRA buffer is image-sized (only the windows crops read are written, so only their pages
    # are ever touched); beyond this size (a 4K frame is 33 MB) crops take the 3-channel warp.
    BGRA_MAX_IMAGE_BYTES = 32 << 20

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        mean = np.asarray(spec.mean, np.float64)
        std = np.asarray(spec.std, np.float64)
        self._scale = 1.0 / std
        self._offset = -mean / std
        # Which BGR plane feeds each output channel.
        self._source = (2, 1, 0) if spec.color == "RGB" else (0, 1, 2)
        self._weights = [(src, float(self._scale[c]), float(self._offset[c])) for c, src in enumerate(self._source)]
        matrix = np.zeros((3, 4), np.float32)
        for c, src in enumerate(self._source):
            matrix[c, src] = self._scale[c]
            matrix[c, 3] = self._offset[c]
        self._matrix = matrix
        self._nchw = spec.layout == "NCHW"
        w, h = spec.input_size
        self._size = (int(w), int(h))
        self._buffers: dict[int, np.ndarray] = {}
        self._planes: dict[int, list[np.ndarray]] = {}  # channels -> (h, w) uint8 planes (NCHW)
        self._bgr: np.ndarray | None = None  # (h, w, 3) uint8: a BGRA crop's BGR (NHWC)
        self._float: np.ndarray | None = None  # (h, w, 3) float32: the crop as floats (NHWC)
        self._crops: dict[tuple[int, int], np.ndarray] = {}  # (n, channels) -> (n, h, w, c) uint8 crops
        self._bgra_image: np.ndarray | None = None  # (H, W, 4) uint8, only the windows crops read are valid

    def output_shape(self, n: int) -> tuple[int, int, int, int]:
        return self.spec.input_shape(n)

    def buffer(self, n: int) -> np.ndarray:
        """This packer's float32 input tensor for `n` crops (reused)."""
        shape = self.output_shape(n)
        buf = self._buffers.get(n)
        if buf is None or buf.shape != shape:
            buf = self._buffers[n] = np.empty(shape, np.float32)
        return buf

    def pack(self, crops: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """(N, H, W, 3) BGR (or 4: BGRA, alpha ignored) uint8 -> contiguous (N, C, H, W) or
        (N, H, W, C) float32, in `out` if given, else in this packer's reused buffer."""
        n, h, w, channels = crops.shape
        if out is None:
            shape = (n, 3, h, w) if self._nchw else (n, h, w, 3)
            out = self._buffers.get(n)
            if out is None or out.shape != shape:
                out = self._buffers[n] = np.empty(shape, np.float32)
        for i in range(n):
            self._pack_one(crops[i], out[i])
        return out

    def _pack_one(self, crop: np.ndarray, out: np.ndarray) -> None:
        h, w, channels = crop.shape
        if self._nchw:
            planes = self._planes.get(channels)
            if planes is None or planes[0].shape != (h, w):
                planes = self._planes[channels] = [np.empty((h, w), np.uint8) for _ in range(channels)]
            cv2.split(crop, planes)
            for c, (src, scale, offset) in enumerate(self._weights):
                cv2.addWeighted(planes[src], scale, planes[src], 0.0, offset, dst=out[c], dtype=cv2.CV_32F)
            return
        if self._float is None or self._float.shape != (h, w, 3):
            self._float = np.empty((h, w, 3), np.float32)
            self._bgr = np.empty((h, w, 3), np.uint8)
        if channels == 4:
            crop = cv2.cvtColor(crop, cv2.COLOR_BGRA2BGR, dst=self._bgr)
        np.copyto(self._float, crop)
        cv2.transform(self._float, self._matrix, dst=out)

    def crop_pack(self, image: np.ndarray, matrices: np.ndarray, out: np.ndarray, *, border: str = "zero") -> np.ndarray:
        """Warp each 2x3 crop matrix's crop of the BGR `image` and pack it into out[i]."""
        self._crop_each(image, matrices, border, out)
        return out

    def crop(self, image: np.ndarray, matrices: np.ndarray, *, border: str = "zero") -> np.ndarray:
        """The uint8 crops alone, (N, h, w, 3 or 4), as crop_pack warps them (its buffer, reused): what
        any bilinear crop costs, which the predict-overhead benchmark times as the floor of `predict`."""
        return self._crop_each(image, matrices, border, None)

    def _crop_each(self, image: np.ndarray, matrices: np.ndarray, border: str, out: np.ndarray | None) -> np.ndarray:
        size = self._size
        n = len(matrices)
        height, width = image.shape[:2]
        windows = [transforms.source_window(m, size, image.shape) for m in matrices]
        area = sum((x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in windows)
        channels = 4 if (area <= self.BGRA_MAX_WINDOW_RATIO * n * size[0] * size[1]
                         and height * width * 4 <= self.BGRA_MAX_IMAGE_BYTES) else 3
        crops = self._crops.get((n, channels))
        if crops is None:
            crops = self._crops[(n, channels)] = np.empty((n, size[1], size[0], channels), np.uint8)
        if channels == 4:
            source = self._bgra_image
            if source is None or source.shape[:2] != (height, width):
                source = self._bgra_image = np.empty((height, width, 4), np.uint8)
        else:
            source = image
        for i, m in enumerate(matrices):
            if channels == 4:
                x0, y0, x1, y1 = windows[i]
                window = source[y0:y1, x0:x1]
                converted = cv2.cvtColor(image[y0:y1, x0:x1], cv2.COLOR_BGR2BGRA, dst=window)
                if converted is not window:  # OpenCV wrote elsewhere (not seen): put it in place
                    np.copyto(window, converted)
            transforms.warp(source, m, size, out=crops[i], border=border)
            if out is not None:
                self._pack_one(crops[i], out[i])
        return crops
