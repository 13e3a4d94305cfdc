"""The write-up's own timing method, reproduced as it was described (seed_figures.md, table A).

One session with numThread 1; then `repeats` times: `calls` back-to-back predict calls on one
image of the model's input size, printing `elapse X ms` with X the mean milliseconds per call.
No warm-up beyond what the first repeat does, no interleaving: the figures are meant to be
comparable with the published ones, not to be robust. Use run_benchmark for those.
"""
from __future__ import annotations

import time
from typing import Callable

import numpy as np

from .models_source import ModelSource
from .runners import open_session
from .variants import Variant


def input_sized_image(source: ModelSource, image: np.ndarray) -> np.ndarray:
    """The photo resized to the model's input size (the write-up fed one 256x256 / 320x320 image)."""
    import cv2

    if source.spec is None:
        return image
    w, h = source.spec.input_size
    return cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)


def writeup_method(source: ModelSource, variant: Variant, image: np.ndarray, *, calls: int = 100,
                   repeats: int = 5, emit: Callable[[str], None] | None = None) -> list[float]:
    """Mean ms per call of each repeat; `emit` receives each `elapse X ms` line."""
    img = input_sized_image(source, image)
    session = open_session(source, variant, image=img, bboxes=None)
    fn = session.predict or session.raw
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        ms = (time.perf_counter() - t0) * 1e3 / calls
        out.append(ms)
        if emit is not None:
            emit(f"elapse {ms:.2f} ms")
    return out
