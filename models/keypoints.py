"""MPII (16 keypoints) metadata and the ImageNet normalisation every model here was set up for."""
from __future__ import annotations

from edgepose.presets import IMAGENET_MEAN, IMAGENET_STD  # noqa: F401 - re-exported for the model zoo

MPII_KEYPOINTS: tuple[str, ...] = (
    "right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle",
    "pelvis", "thorax", "upper_neck", "head_top",
    "right_wrist", "right_elbow", "right_shoulder", "left_shoulder", "left_elbow", "left_wrist",
)

# Limbs as drawn by mmpose's MPII dataset info.
MPII_SKELETON: tuple[tuple[int, int], ...] = (
    (0, 1), (1, 2), (2, 6), (6, 3), (3, 4), (4, 5),
    (6, 7), (7, 8), (8, 9),
    (8, 12), (12, 11), (11, 10),
    (8, 13), (13, 14), (14, 15),
)

# Left/right keypoints swapped by a horizontal flip.
MPII_FLIP_PAIRS: tuple[tuple[int, int], ...] = ((0, 5), (1, 4), (2, 3), (10, 15), (11, 14), (12, 13))

# ImageNet statistics (IMAGENET_MEAN / IMAGENET_STD, 0..255 pixel units, RGB) are defined once, in
# the runtime's presets, and re-exported from here.
