"""Real footage for the video tests: clips of the pinned photos under a known camera motion
(edgepose.clips), written with cv2.VideoWriter (mp4v) and decoded back through the video source,
so the tests see lossy, noisy frames whose true motion is known exactly.

`truth(clip, people)`: where the people found on the first decoded frame are in every frame,
by the clip's photo -> frame affines (the reference: the static Pipeline on frame 0).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from edgepose.clips import Clip, pinned_clip, write_clip
from edgepose.sources import open_source


@dataclass
class Footage:
    clip: Clip  # the frames before encoding, and the true affines
    path: Path  # the mp4
    frames: list[np.ndarray]  # as decoded from the mp4


@pytest.fixture(scope="session")
def pipeline():
    from edgepose.demo import default_pipeline

    return default_pipeline()


@pytest.fixture(scope="session")
def footage(tmp_path_factory):
    """footage("bus:pan") -> Footage, written once per session."""
    root = tmp_path_factory.mktemp("clips")
    cache: dict[str, Footage] = {}

    def get(spec: str) -> Footage:
        if spec not in cache:
            clip = pinned_clip(spec)
            path = write_clip(clip, root / f"{spec.replace(':', '_')}.mp4")
            with open_source(path) as source:
                frames = [f.image for f in source]
            assert len(frames) == len(clip)
            cache[spec] = Footage(clip, path, frames)
        return cache[spec]

    return get


def truth(clip: Clip, keypoints0: np.ndarray) -> np.ndarray:
    """(N, K, 2): keypoints seen on frame 0 carried through the clip's true motion."""
    m0 = np.vstack([clip.matrices[0], [0, 0, 1]])
    back = np.linalg.inv(m0)[:2]
    photo = np.asarray(keypoints0, np.float64) @ back[:, :2].T + back[:, 2]
    return clip.project(photo)


def inside(points: np.ndarray, size: tuple[int, int], margin: float = 8.0) -> np.ndarray:
    w, h = size
    return ((points[..., 0] >= margin) & (points[..., 0] < w - margin)
            & (points[..., 1] >= margin) & (points[..., 1] < h - margin))
