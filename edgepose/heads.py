"""The head registry: one entry per head type says which outputs it reads and how it decodes.

Adding a head (a new decoder, the person detector's SSD head) is one entry here: the spec's
validation, the Predictor's output matching and the converters' parity checks all read this
table, never a list of head names of their own.

    roles          alternatives of required output roles, e.g. (("coords",), ("simdr_x", "simdr_y"))
    primary_role   the role a single-output model's only output plays
    decoder        name of the function in `edgepose.processing.decoders` (or `.ssd`) that turns
                   the outputs into keypoints; resolved on first use so this table imports nothing
    optional_roles outputs a model may add (confidences, presence, MediaPipe's refinement heatmap)
    kind           "pose" (keypoints of one person per crop, run by `Predictor`) or "detector"
                   (boxes + keypoints of every person in a frame, run by `Detector`)
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Head:
    roles: tuple[tuple[str, ...], ...]
    primary_role: str
    decoder: str
    optional_roles: frozenset[str] = frozenset({"scores", "presence"})
    kind: str = "pose"

    @property
    def all_roles(self) -> set[str]:
        return {r for option in self.roles for r in option} | set(self.optional_roles)

    def resolve_decoder(self) -> Callable:
        module, _, name = self.decoder.rpartition(".")
        return getattr(importlib.import_module(module or "edgepose.processing.decoders"), name)


_DECODERS = "edgepose.processing.decoders"

HEADS: dict[str, Head] = {
    # Graphs that end in [0, 1] coordinates (DeepPose, soft-argmax), or SimDR logits.
    "regression": Head((("coords",),), "coords", f"{_DECODERS}.decode_normalized"),
    "integral": Head((("coords",),), "coords", f"{_DECODERS}.decode_normalized"),
    "simdr": Head((("coords",), ("simdr_x", "simdr_y")), "coords", f"{_DECODERS}.decode_normalized"),
    "heatmap": Head((("heatmaps",),), "heatmaps", f"{_DECODERS}.decode_heatmap"),
    # MediaPipe landmarks; "heatmap" is BlazePose's refinement heatmap (RefineLandmarksFromHeatmap).
    "landmarks": Head((("landmarks",),), "landmarks", f"{_DECODERS}.decode_landmarks",
                      optional_roles=frozenset({"scores", "presence", "heatmap"})),
    # SSD detector (MediaPipe's pose detector): box + keypoint regressors per anchor, score logits.
    "ssd": Head((("boxes", "scores"),), "boxes", "edgepose.processing.ssd.decode_ssd",
                optional_roles=frozenset(), kind="detector"),
    # A detector whose graph already ends in boxes (x1, y1, x2, y2 in input pixels), scores and class
    # ids, e.g. GluonCV's YOLOv3 with its box_nms; rows with id -1 are padding.
    "boxes": Head((("boxes", "scores"),), "boxes", "edgepose.processing.ssd.decode_decoded_boxes",
                  optional_roles=frozenset({"classes"}), kind="detector"),
}

HEAD_TYPES: tuple[str, ...] = tuple(HEADS)
POSE_HEADS: tuple[str, ...] = tuple(n for n, h in HEADS.items() if h.kind == "pose")
DETECTOR_HEADS: tuple[str, ...] = tuple(n for n, h in HEADS.items() if h.kind == "detector")
REQUIRED_ROLES: dict[str, tuple[tuple[str, ...], ...]] = {n: h.roles for n, h in HEADS.items()}


def get_head(name: str) -> Head:
    try:
        return HEADS[name]
    except KeyError:
        from .errors import MetadataError

        raise MetadataError(f"head={name!r} is not one of {', '.join(HEADS)}") from None
