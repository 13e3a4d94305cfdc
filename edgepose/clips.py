"""Short video clips made from a still photo by a known camera motion: footage whose truth is known.

    from edgepose.clips import make_clip, write_clip
    clip = make_clip(cv2.imread("bus.jpg"), "pan")     # frames + the photo -> frame affine of each
    expected = clip.project(keypoints_in_photo)         # (N, K, 2): where those points are in each frame
    write_clip(clip, "bus_pan.mp4")                     # through cv2.VideoWriter (mp4v)

A motion moves a virtual camera over the photo: each frame is the photo warped by a 2x3 affine
(a window centred on a photo point, zoomed, rotated about the frame centre, scaled to the frame).
Frames get seeded Gaussian sensor noise (default sigma 2 grey levels), so a still camera still
gives the frame-to-frame jitter a real one does. The same clips are the `clip:PHOTO:MOTION`
source of `edgepose track` (photos: the pinned astronaut, grace_hopper, bus, zidane).

Motions (t runs 0 -> 1 over the clip):
  static  the whole photo, still (noise only)
  pan     window 80 % of the photo, sliding across 16 % of its width
  zoom    window from the whole photo to 1/1.3 of it, on the photo centre
  rotate  window 80 % of the photo, rolling -8 -> +8 -> -8 degrees
  shake   window 80 % of the photo, jumping a few pixels every frame (hand-held camera)
  sweep   a narrow window (half the photo height wide, or square for a wide photo) crossing
          the whole photo from outside one edge to outside the other: everyone enters and leaves
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from .errors import InputError, OutputError

# t -> (centre x, centre y as fractions of the photo, zoom >= 1 over the window, roll in degrees)
Path_ = Callable[[float], tuple[float, float, float, float]]


@dataclass(frozen=True)
class Motion:
    path: Path_
    window: str = "photo"  # "photo": the photo's aspect; "narrow": a vertical strip (sweep)
    frames: int = 45


def _shake(t: float) -> tuple[float, float, float, float]:
    k = int(round(t * 1000))
    rng = np.random.default_rng(k)
    dx, dy = rng.uniform(-0.01, 0.01, 2)
    return 0.5 + dx, 0.5 + dy, 1.25, 0.0


MOTIONS: dict[str, Motion] = {
    "static": Motion(lambda t: (0.5, 0.5, 1.0, 0.0), frames=45),
    "pan": Motion(lambda t: (0.42 + 0.16 * t, 0.5, 1.25, 0.0), frames=45),
    "zoom": Motion(lambda t: (0.5, 0.5, 1.0 + 0.3 * t, 0.0), frames=45),
    "rotate": Motion(lambda t: (0.5, 0.5, 1.25, -8.0 * math.cos(2 * math.pi * t)), frames=45),
    "shake": Motion(_shake, frames=45),
    "sweep": Motion(lambda t: (-0.45 + 1.9 * t, 0.5, 1.0, 0.0), window="narrow", frames=90),
}


@dataclass
class Clip:
    """Frames (BGR uint8) and, for each, the 2x3 affine taking photo pixels to frame pixels."""

    frames: list[np.ndarray]
    matrices: np.ndarray  # (N, 2, 3)
    fps: float
    name: str = ""

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def size(self) -> tuple[int, int]:
        h, w = self.frames[0].shape[:2]
        return w, h

    def project(self, points: np.ndarray) -> np.ndarray:
        """Photo points (..., 2) -> their place in every frame, (N, ..., 2)."""
        pts = np.asarray(points, np.float64)
        return np.stack([pts @ m[:, :2].T + m[:, 2] for m in self.matrices]).astype(np.float32)

    def visible(self, box: np.ndarray, fraction: float = 1.0) -> np.ndarray:
        """(N,) whether at least `fraction` of a photo box x1, y1, x2, y2 lies inside each frame."""
        x1, y1, x2, y2 = (float(v) for v in box)
        gx, gy = np.meshgrid(np.linspace(x1, x2, 9), np.linspace(y1, y2, 9))
        grid = self.project(np.stack([gx.ravel(), gy.ravel()], -1))
        w, h = self.size
        inside = (grid[..., 0] >= 0) & (grid[..., 0] < w) & (grid[..., 1] >= 0) & (grid[..., 1] < h)
        return inside.mean(-1) >= fraction - 1e-9


def clip_matrix(photo_size: tuple[int, int], frame_size: tuple[int, int], centre: tuple[float, float],
                zoom: float, roll_deg: float, scale: float) -> np.ndarray:
    """2x3 affine photo -> frame: `centre` (photo px) to the frame centre, zoomed, rolled."""
    fw, fh = frame_size
    s = scale * zoom
    a = math.radians(roll_deg)
    c, sn = math.cos(a) * s, math.sin(a) * s
    cx, cy = centre
    return np.array([[c, -sn, fw / 2.0 - (c * cx - sn * cy)],
                     [sn, c, fh / 2.0 - (sn * cx + c * cy)]], np.float64)


def make_clip(photo: np.ndarray, motion: str | Motion = "pan", *, frames: int | None = None,
              scale: float = 0.5, noise: float = 2.0, fps: float = 30.0, seed: int = 0,
              name: str = "") -> Clip:
    """A clip of the photo under a named motion (see MOTIONS). `scale` sizes the frame against
    the photo (0.5: a 1080-pixel photo gives 540-pixel frames); `noise` is the sensor noise's
    sigma in grey levels (0: none). Outside the photo the frame is black."""
    if isinstance(motion, str):
        if motion not in MOTIONS:
            raise InputError(f"unknown clip motion {motion!r}; motions: {', '.join(MOTIONS)}")
        spec = MOTIONS[motion]
        name = name or motion
    else:
        spec = motion
    if not isinstance(photo, np.ndarray) or photo.dtype != np.uint8 or photo.ndim != 3 or photo.shape[2] != 3:
        raise InputError("make_clip needs a BGR uint8 photo (H, W, 3)")
    n = int(frames or spec.frames)
    if n < 1:
        raise InputError(f"a clip needs at least one frame, got frames={n}")
    ph, pw = photo.shape[:2]
    win_w = pw if spec.window == "photo" else (min(pw, ph) if pw > ph else ph / 2.0)
    win_h = ph
    frame_size = (int(round(win_w * scale / 2)) * 2, int(round(win_h * scale / 2)) * 2)
    rng = np.random.default_rng(seed)
    out, mats = [], []
    for i in range(n):
        t = i / (n - 1) if n > 1 else 0.0
        fx, fy, zoom, roll = spec.path(t)
        m = clip_matrix((pw, ph), frame_size, (fx * pw, fy * ph), zoom, roll, scale)
        frame = cv2.warpAffine(photo, m, frame_size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        if noise > 0:
            jitter = rng.normal(0.0, noise, frame.shape)
            frame = np.clip(frame.astype(np.float32) + jitter, 0, 255).astype(np.uint8)
        out.append(frame)
        mats.append(m)
    return Clip(out, np.stack(mats), float(fps), name)


def pinned_clip(spec: str) -> Clip:
    """`PHOTO:MOTION` (e.g. `bus:pan`; the motion defaults to pan) -> that clip of a pinned photo."""
    from . import assets

    photo, _, motion = spec.partition(":")
    motion = motion or "pan"
    if photo not in assets.PHOTO_PERSON_BOXES:
        raise InputError(f"clip:{spec}: unknown photo {photo!r}; pinned photos: "
                         f"{', '.join(assets.PHOTO_PERSON_BOXES)} (e.g. clip:bus:pan)")
    image = cv2.imread(str(assets.fetch_asset(photo)), cv2.IMREAD_COLOR)
    return make_clip(image, motion, name=f"{photo}:{motion}")


def write_clip(clip: Clip, path: str | Path, *, fourcc: str = "mp4v") -> Path:
    """Write the clip with cv2.VideoWriter (frames as they are: the file is lossy)."""
    out = Path(path)
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*fourcc), clip.fps, clip.size)
    if not writer.isOpened():
        raise OutputError(f"OpenCV cannot write {out} with codec {fourcc!r}; try a .mp4 (mp4v) or .avi (MJPG) path")
    try:
        for frame in clip.frames:
            writer.write(frame)
    finally:
        writer.release()
    return out
