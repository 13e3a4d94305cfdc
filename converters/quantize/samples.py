"""Calibration and held-out samples built from the four pinned photos (edgepose.assets).

Only four real photos are pinned, so more samples are made from them, documented here:
every box is used as is, mirrored (the photo flipped left-right with the box), and at
several scales and small shifts of the box (the crops a detector's jitter would give).
`zidane` is held out entirely: it is never used for calibration and is the accuracy set.

Boxes (x1, y1, x2, y2, image pixels) were chosen by eye on gridded renders of the photos.
Hands: the only clear hands are the two in `bus` held by the man in black (chest and phone),
the left man's hanging hand, and Zidane's pointing hand; `astronaut` and `grace_hopper`
show none, so the hand calibration set comes from `bus` alone.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import cv2
import numpy as np

HOLDOUT_PHOTO = "zidane"

PERSON_BOXES: dict[str, tuple[tuple[float, float, float, float], ...]] = {
    "astronaut": ((95.0, 10.0, 470.0, 512.0),),
    "grace_hopper": ((20.0, 0.0, 490.0, 1000.0),),
    "bus": ((45.0, 395.0, 250.0, 910.0),      # man in the light coat
            (220.0, 400.0, 350.0, 860.0),     # man in black
            (660.0, 400.0, 810.0, 880.0)),    # walker cut by the right edge
    "zidane": ((740.0, 40.0, 1150.0, 720.0),  # Ancelotti
               (120.0, 200.0, 1150.0, 720.0)),  # Zidane, arm stretched out
}

HAND_BOXES: dict[str, tuple[tuple[float, float, float, float], ...]] = {
    "bus": ((235.0, 497.0, 290.0, 542.0),     # hand on the chest (man in black)
            (253.0, 640.0, 292.0, 692.0),     # hand holding a phone
            (45.0, 743.0, 80.0, 815.0)),      # the light-coat man's hanging hand
    "zidane": ((950.0, 395.0, 1155.0, 495.0),),  # pointing hand
}

KINDS = {"person": PERSON_BOXES, "hand": HAND_BOXES}

# Augmentation per box: mirror x scale x shift (fractions of the box size).
SCALES = {"person": (0.9, 1.0, 1.15), "hand": (0.85, 1.0, 1.15)}
SHIFTS = ((0.0, 0.0), (0.06, 0.0), (0.0, -0.06))


@dataclass(frozen=True)
class PhotoSample:
    """One crop request: a (possibly mirrored) photo and a box in it."""

    name: str          # e.g. "bus#1.flip.s1.15.d1"
    photo: str
    image: np.ndarray  # BGR uint8
    box: tuple[float, float, float, float]


def kind_for(spec_name: str) -> str:
    """Which pinned set suits a model: "hand" for hand models, else "person"."""
    return "hand" if "hand" in (spec_name or "").lower() else "person"


def _variants(box, width: int, *, scales, shifts, flip: bool) -> Iterator[tuple[str, tuple[float, ...]]]:
    x1, y1, x2, y2 = box
    if flip:
        x1, x2 = width - x2, width - x1
    cx, cy, w, h = (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1
    for s in scales:
        for d, (dx, dy) in enumerate(shifts):
            ncx, ncy, nw, nh = cx + dx * w, cy + dy * h, w * s, h * s
            yield f"s{s:g}.d{d}", (ncx - nw / 2, ncy - nh / 2, ncx + nw / 2, ncy + nh / 2)


def pinned_samples(kind: str, split: str, *, augment: bool = True) -> list[PhotoSample]:
    """Samples of `kind` ("person" | "hand") for `split` ("calibration" | "holdout")."""
    from edgepose.assets import fetch_asset

    if kind not in KINDS:
        raise ValueError(f"unknown sample kind {kind!r}; use one of {sorted(KINDS)}")
    if split not in ("calibration", "holdout"):
        raise ValueError(f"split must be 'calibration' or 'holdout', got {split!r}")
    scales = SCALES[kind] if augment else (1.0,)
    shifts = SHIFTS if augment else ((0.0, 0.0),)
    out: list[PhotoSample] = []
    for photo, boxes in KINDS[kind].items():
        if (photo == HOLDOUT_PHOTO) != (split == "holdout"):
            continue
        image = cv2.imread(str(fetch_asset(photo)), cv2.IMREAD_COLOR)
        mirrored = np.ascontiguousarray(image[:, ::-1])
        for i, box in enumerate(boxes):
            for flip in ((False, True) if augment else (False,)):
                for tag, b in _variants(box, image.shape[1], scales=scales, shifts=shifts, flip=flip):
                    name = f"{photo}#{i}{'.flip' if flip else ''}.{tag}"
                    out.append(PhotoSample(name, photo, mirrored if flip else image, tuple(float(v) for v in b)))
    return out
