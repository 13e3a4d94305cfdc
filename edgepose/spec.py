"""Model metadata (`ModelSpec`) and the result type (`PoseResult`).

A `ModelSpec` is declared once, next to the model (a registry entry or a preset), written
by the converters into every artifact and read back by the Predictor. The runtime never
guesses preprocessing or the head type from tensor shapes: everything it needs is here.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from . import metadata_checks
from .errors import MetadataError
from .heads import HEAD_TYPES, HEADS, REQUIRED_ROLES

SCHEMA_VERSION = 1

LAYOUTS = ("NCHW", "NHWC")
COLORS = ("RGB", "BGR")
BORDERS = ("zero", "replicate")
DTYPES = ("float32",)

# Output roles per head type live in the head registry (edgepose.heads): REQUIRED_ROLES and
# HEAD_TYPES are re-exported here for callers that read them from the spec module.

# Fields a spec must have; everything else has a sensible default.
REQUIRED_FIELDS = ("input_size", "head", "num_keypoints")


@dataclass(frozen=True)
class ModelSpec:
    """Everything the runtime needs to pre-process, run and decode one pose model.

    input_size  (width, height) of the network input, pixels.
    layout      "NCHW" (ONNX, PyTorch) or "NHWC" (TFLite models keep it in MNN).
    color       channel order the network expects: "RGB" or "BGR".
    mean, std   per channel in 0..255 pixel units, in `color` order: x = (pixel - mean) / std.
                MediaPipe's [0, 1] input is mean 0, std 255.
    head        one of HEAD_TYPES (the registry in edgepose.heads); decides the decoder.
    outputs     role -> output tensor name (see REQUIRED_ROLES). Empty means "by position".
    decode      head-specific decoder parameters (e.g. landmarks' values_per_point).
    bbox_padding  how much a person box is enlarged before cropping (mmpose uses 1.25).
    border      what a crop shows outside the image: "zero" (black, mmpose) or "replicate"
                (edge pixels, MediaPipe's landmark crops).
    provenance  where the artifact came from: source file and sha256, tool versions, precision.
    """

    input_size: tuple[int, int]
    head: str
    num_keypoints: int
    name: str = ""
    layout: str = "NCHW"
    color: str = "RGB"
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    dtype: str = "float32"
    input_name: str | None = None
    outputs: Mapping[str, str] = field(default_factory=dict)
    decode: Mapping[str, Any] = field(default_factory=dict)
    keypoint_names: tuple[str, ...] = ()
    skeleton: tuple[tuple[int, int], ...] = ()
    flip_pairs: tuple[tuple[int, int], ...] = ()
    bbox_padding: float = 1.25
    border: str = "zero"
    provenance: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Normalise containers (JSON gives lists) so equality and hashing of tuples hold.
        set_ = object.__setattr__
        set_(self, "input_size", _int_pair(self.input_size, "input_size"))
        set_(self, "mean", _triple(self.mean, "mean"))
        set_(self, "std", _triple(self.std, "std"))
        set_(self, "keypoint_names", tuple(str(n) for n in self.keypoint_names))
        set_(self, "skeleton", tuple(_index_pair(p, "skeleton") for p in self.skeleton))
        set_(self, "flip_pairs", tuple(_index_pair(p, "flip_pairs") for p in self.flip_pairs))
        set_(self, "outputs", dict(self.outputs))
        set_(self, "decode", dict(self.decode))
        set_(self, "provenance", dict(self.provenance))
        self._validate()

    def _validate(self) -> None:
        def bad(msg: str) -> None:
            raise MetadataError(f"model metadata{f' of {self.name!r}' if self.name else ''}: {msg}")

        if self.head not in HEAD_TYPES:
            bad(f"head={self.head!r} is not one of {', '.join(HEAD_TYPES)}")
        if self.layout not in LAYOUTS:
            bad(f"layout={self.layout!r} is not one of {', '.join(LAYOUTS)}")
        if self.border not in BORDERS:
            bad(f"border={self.border!r} is not one of {', '.join(BORDERS)}")
        if self.color not in COLORS:
            bad(f"color={self.color!r} is not one of {', '.join(COLORS)}")
        if self.dtype not in DTYPES:
            bad(f"dtype={self.dtype!r} is not supported (use one of {', '.join(DTYPES)})")
        least = 0 if HEADS[self.head].kind == "detector" else 1  # a box-only detector has no keypoints
        if not isinstance(self.num_keypoints, int) or self.num_keypoints < least:
            bad(f"num_keypoints must be an integer >= {least} for a {self.head} head, got {self.num_keypoints!r}")
        if any(s <= 0 for s in self.std):
            bad(f"std must be positive, got {self.std}")
        if not isinstance(self.bbox_padding, (int, float)) or isinstance(self.bbox_padding, bool) \
                or not self.bbox_padding > 0:
            bad(f"bbox_padding must be a positive number, got {self.bbox_padding!r}")
        try:  # NaN/inf/absurd numbers, decode parameters, nesting and size, naming the field
            metadata_checks.check_spec(self)
        except MetadataError as exc:
            bad(str(exc))
        if self.keypoint_names and len(self.keypoint_names) != self.num_keypoints:
            bad(f"{len(self.keypoint_names)} keypoint_names for num_keypoints={self.num_keypoints}")
        for what in ("skeleton", "flip_pairs"):
            for a, b in getattr(self, what):
                if not (0 <= a < self.num_keypoints and 0 <= b < self.num_keypoints):
                    bad(f"{what} pair ({a}, {b}) is out of range for {self.num_keypoints} keypoints")
        if self.outputs:
            head = HEADS[self.head]
            if not any(all(r in self.outputs for r in option) for option in head.roles):
                need = " or ".join("+".join(o) for o in head.roles)
                bad(f"outputs {sorted(self.outputs)} lack the role(s) a {self.head} head needs: {need}")
            unknown = set(self.outputs) - head.all_roles
            if unknown:
                bad(f"unknown output role(s) {sorted(unknown)} for a {self.head} head")

    # --- serialisation -------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["input_size"] = list(self.input_size)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        d["keypoint_names"] = list(self.keypoint_names)
        d["skeleton"] = [list(p) for p in self.skeleton]
        d["flip_pairs"] = [list(p) for p in self.flip_pairs]
        return {"edgepose_spec": SCHEMA_VERSION, **d}

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=False, allow_nan=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "metadata") -> "ModelSpec":
        if not isinstance(data, Mapping):
            raise MetadataError(f"{source}: expected a JSON object, got {type(data).__name__}")
        data = dict(data)
        version = data.pop("edgepose_spec", SCHEMA_VERSION)
        if version != SCHEMA_VERSION:
            raise MetadataError(
                f"{source}: metadata schema version {version} is not supported by this edgepose "
                f"(it reads version {SCHEMA_VERSION}); upgrade edgepose or re-convert the model")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise MetadataError(f"{source}: unknown field(s) {unknown}; valid fields: {sorted(known)}")
        missing = [f for f in REQUIRED_FIELDS if data.get(f) is None]
        if missing:
            raise MetadataError(
                f"{source}: missing required field(s) {missing}; pass them explicitly "
                f"(e.g. Predictor(path, {missing[0]}=...)) or add them to the model card")
        try:
            return cls(**data)
        except MetadataError as exc:
            raise MetadataError(f"{source}: {exc}") from None
        except (TypeError, ValueError, OverflowError, RecursionError) as exc:
            raise MetadataError(f"{source}: {exc}") from None

    @classmethod
    def from_json(cls, text: str | bytes, *, source: str = "metadata") -> "ModelSpec":
        data = metadata_checks.load_json(text, source)  # size, UTF-8, NaN/Infinity tokens, nesting
        return cls.from_dict(data, source=source)

    def replace(self, **changes: Any) -> "ModelSpec":
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def with_provenance(self, **items: Any) -> "ModelSpec":
        return self.replace(provenance={**self.provenance, **items})

    @property
    def width(self) -> int:
        return self.input_size[0]

    @property
    def height(self) -> int:
        return self.input_size[1]

    def input_shape(self, batch: int = 1) -> tuple[int, int, int, int]:
        """The input tensor's shape for `batch` crops in this model's layout: (N, 3, H, W) or (N, H, W, 3)."""
        w, h = self.input_size
        return (batch, 3, h, w) if self.layout == "NCHW" else (batch, h, w, 3)


@dataclass(frozen=True)
class PoseResult:
    """Keypoints of N instances (one per bbox, or one for the whole image).

    keypoints  (N, K, 2) float32, x/y in original image pixels.
    scores     (N, K) float32 confidence per keypoint (head-dependent: sigmoid of
               visibility, soft-argmax peak, heatmap maximum, 1 - sigma).
    bboxes     (N, 4) the x1, y1, x2, y2 boxes the crops were taken from.
    extras     head-specific arrays, e.g. "presence" (N,) or "z" (N, K).
    """

    keypoints: np.ndarray
    scores: np.ndarray
    bboxes: np.ndarray
    keypoint_names: tuple[str, ...] = ()
    skeleton: tuple[tuple[int, int], ...] = ()
    extras: Mapping[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.keypoints.shape[0])

    def to_dict(self) -> dict[str, Any]:
        names = list(self.keypoint_names) or [str(i) for i in range(self.keypoints.shape[1])]
        instances = []
        for i in range(len(self)):
            inst: dict[str, Any] = {
                "bbox": [_finite(v, 2) for v in self.bboxes[i]],
                "keypoints": [
                    {"name": names[k], "x": _finite(x, 3), "y": _finite(y, 3),
                     "score": _finite(self.scores[i, k], 4)}
                    for k, (x, y) in enumerate(self.keypoints[i])
                ],
            }
            for key, value in self.extras.items():
                item = np.asarray(value[i]).round(4)
                if item.dtype.kind == "f":  # JSON has no NaN: null
                    item = np.where(np.isfinite(item), item, None)
                inst[key] = item.tolist()
            instances.append(inst)
        return {"instances": instances, "skeleton": [list(p) for p in self.skeleton]}

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)


def _finite(value: Any, digits: int) -> float | None:
    """A rounded float for JSON, or None (null) when it is NaN or infinite."""
    v = float(value)
    return round(v, digits) if np.isfinite(v) else None


def _int_pair(value: Any, name: str) -> tuple[int, int]:
    try:
        a, b = value
        pair = (int(a), int(b))
    except (TypeError, ValueError, OverflowError):
        raise MetadataError(f"{name} must be two integers (width, height), got {value!r}") from None
    if pair[0] <= 0 or pair[1] <= 0 or pair != (a, b):
        raise MetadataError(f"{name} must be two positive integers (width, height), got {value!r}")
    return pair


def _index_pair(value: Any, name: str) -> tuple[int, int]:
    try:
        a, b = value
        return int(a), int(b)
    except (TypeError, ValueError, OverflowError):
        raise MetadataError(f"each {name} entry must be a pair of keypoint indices, got {value!r}") from None


def _triple(value: Any, name: str) -> tuple[float, float, float]:
    try:
        vals = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise MetadataError(f"{name} must be three numbers (one per channel), got {value!r}") from None
    if len(vals) != 3:
        raise MetadataError(f"{name} must be three numbers (one per channel), got {value!r}")
    return vals  # type: ignore[return-value]
