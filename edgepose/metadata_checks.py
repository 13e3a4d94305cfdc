"""Bounds on model metadata, checked when a ModelSpec is built (issue 14).

Metadata comes from model files, which can be corrupt or hostile, so every number the runtime
divides by, allocates with or loops over is checked here, naming the field: NaN and infinity
anywhere, absurd magnitudes (a std of 1e-300 turns every pixel into inf), decode parameters
such as `values_per_point` 0 (a ZeroDivisionError in the decoder), anchor grids that would
allocate gigabytes, and containers nested or sized beyond any real card.

`check_text` guards the JSON text itself (size, NaN/Infinity tokens, nesting); `check_spec`
the decoded fields. Both raise MetadataError; ModelSpec calls them.
"""
from __future__ import annotations

import json
import math
from typing import Any, Callable, Mapping

from .errors import MetadataError

MAX_TEXT_BYTES = 16 << 20  # a card with every keypoint named and long provenance is < 64 KiB
MAX_DEPTH = 16  # {"decode": {"anchors": {"strides": [..]}}} is 4
MAX_NODES = 200_000
MAX_INPUT_SIDE = 8192
MAX_INPUT_PIXELS = 1 << 26
MAX_KEYPOINTS = 10_000
MAX_ANCHORS = 1_000_000
MEAN_RANGE = 1e5  # 0..255 pixel units; anything beyond is not a mean
STD_RANGE = (1e-6, 1e6)
PADDING_RANGE = (0.01, 100.0)


def _reject_constant(name: str) -> Any:
    raise MetadataError(f"the metadata holds a {name} token; numbers in it must be finite")


def load_json(text: str | bytes, source: str) -> Any:
    """json.loads with the guards: size, valid UTF-8, no NaN/Infinity, bounded nesting."""
    if isinstance(text, (bytes, bytearray)):
        if len(text) > MAX_TEXT_BYTES:
            raise MetadataError(f"{source}: {len(text)} bytes of metadata (at most {MAX_TEXT_BYTES})")
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MetadataError(f"{source}: the metadata is not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
    if not isinstance(text, str):
        raise MetadataError(f"{source}: expected JSON text, got {type(text).__name__}")
    if len(text) > MAX_TEXT_BYTES:
        raise MetadataError(f"{source}: {len(text)} characters of metadata (at most {MAX_TEXT_BYTES})")
    depth = _bracket_depth(text)
    if depth > MAX_DEPTH:
        raise MetadataError(f"{source}: the metadata is nested {depth} levels deep (at most {MAX_DEPTH})")
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except MetadataError as exc:
        raise MetadataError(f"{source}: {exc}") from None
    except RecursionError:
        raise MetadataError(f"{source}: the metadata is nested too deeply") from None
    except (ValueError, TypeError) as exc:
        raise MetadataError(f"{source}: not valid JSON ({exc})") from None


def _bracket_depth(text: str) -> int:
    """Deepest [ / { nesting outside strings, without recursion (so without RecursionError)."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > MAX_DEPTH:
                    return deepest
        elif ch in "]}":
            depth -= 1
    return deepest


def check_tree(value: Any, where: str) -> None:
    """Plain JSON values only, finite numbers, bounded depth and size (iterative: no recursion)."""
    stack = [(value, where, 0)]
    nodes = 0
    while stack:
        item, path, depth = stack.pop()
        nodes += 1
        if nodes > MAX_NODES:
            raise MetadataError(f"{where} holds more than {MAX_NODES} values")
        if depth > MAX_DEPTH:
            raise MetadataError(f"{path} is nested deeper than {MAX_DEPTH} levels")
        if isinstance(item, bool) or item is None or isinstance(item, str):
            continue
        if isinstance(item, (int, float)):
            if isinstance(item, float) and not math.isfinite(item):
                raise MetadataError(f"{path} is {item}; numbers in the metadata must be finite")
            continue
        if isinstance(item, Mapping):
            for k, v in item.items():
                if not isinstance(k, str):
                    raise MetadataError(f"{path} has a non-string key {k!r}")
                stack.append((v, f"{path}.{k}", depth + 1))
            continue
        if isinstance(item, (list, tuple)):
            for i, v in enumerate(item):
                stack.append((v, f"{path}[{i}]", depth + 1))
            continue
        try:  # numpy scalars and the like: a number, checked as one
            number = float(item)
        except (TypeError, ValueError):
            raise MetadataError(f"{path} is a {type(item).__name__}; metadata holds JSON values only") from None
        if not math.isfinite(number):
            raise MetadataError(f"{path} is {number}; numbers in the metadata must be finite")


# --- the fields -------------------------------------------------------------------------------
def _number(value: Any, field: str, low: float | None = None, high: float | None = None, *,
            low_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise MetadataError(f"{field} must be a number, got {value!r}") from None
    v = float(value)
    if not math.isfinite(v):
        raise MetadataError(f"{field} must be a finite number, got {value!r}")
    if low is not None and (v < low or (low_open and v == low)):
        raise MetadataError(f"{field} must be {'>' if low_open else '>='} {low:g}, got {value!r}")
    if high is not None and v > high:
        raise MetadataError(f"{field} must be <= {high:g}, got {value!r}")
    return v


def _integer(value: Any, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise MetadataError(f"{field} must be an integer, got {value!r}")
    if not low <= value <= high:
        raise MetadataError(f"{field} must be between {low} and {high}, got {value!r}")
    return value


def _flag(value: Any, field: str) -> None:
    if not isinstance(value, bool):
        raise MetadataError(f"{field} must be true or false, got {value!r}")


def _choice(value: Any, field: str, options: tuple[str, ...]) -> None:
    if value not in options:
        raise MetadataError(f"{field} must be one of {', '.join(map(repr, options))}, got {value!r}")


def _mapping(value: Any, field: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise MetadataError(f"{field} must be an object, got {value!r}")
    return value


def _numbers(value: Any, field: str, count: int | None, check: Callable[[Any, str], Any]) -> list:
    if not isinstance(value, (list, tuple)):
        raise MetadataError(f"{field} must be a list, got {value!r}")
    if count is not None and len(value) != count:
        raise MetadataError(f"{field} must hold {count} values, got {len(value)}")
    return [check(v, f"{field}[{i}]") for i, v in enumerate(value)]


def check_spec(spec: Any) -> None:
    """Numbers and decode parameters of a ModelSpec (already type-normalised by it)."""
    w, h = spec.input_size
    if w > MAX_INPUT_SIDE or h > MAX_INPUT_SIDE or w * h > MAX_INPUT_PIXELS:
        raise MetadataError(f"input_size ({w}, {h}) is beyond any model input (at most {MAX_INPUT_SIDE} a side); "
                            "the card is corrupt")
    if isinstance(spec.num_keypoints, bool) or spec.num_keypoints > MAX_KEYPOINTS:
        raise MetadataError(f"num_keypoints must be an integer between 1 and {MAX_KEYPOINTS}, got {spec.num_keypoints!r}")
    for c, m in enumerate(spec.mean):
        _number(m, f"mean[{c}]", -MEAN_RANGE, MEAN_RANGE)
    for c, s in enumerate(spec.std):
        _number(s, f"std[{c}]", *STD_RANGE)
    _number(spec.bbox_padding, "bbox_padding", *PADDING_RANGE)
    for what in ("outputs",):
        for role, name in getattr(spec, what).items():
            if not isinstance(name, str):
                raise MetadataError(f"{what}.{role} must be a tensor name (a string), got {name!r}")
    if spec.input_name is not None and not isinstance(spec.input_name, str):
        raise MetadataError(f"input_name must be a string, got {spec.input_name!r}")
    check_tree(spec.decode, "decode")
    check_tree(spec.provenance, "provenance")
    check_decode(spec.head, spec.decode, spec.num_keypoints, spec.input_size)


def check_decode(head: str, d: Mapping[str, Any], num_keypoints: int, input_size: tuple[int, int]) -> None:
    """The decode parameters each decoder reads, checked where a bad value would divide by zero,
    index out of range or allocate without bound."""
    if "presence_threshold" in d:
        _number(d["presence_threshold"], "decode.presence_threshold", -1e6, 1e6)
    for key in ("crop", "detector"):
        if key in d and not isinstance(d[key], str):
            raise MetadataError(f"decode.{key} must be a string, got {d[key]!r}")
    if "letterbox" in d:
        _flag(d["letterbox"], "decode.letterbox")
    if head == "landmarks":
        vpp = _integer(d.get("values_per_point", 3), "decode.values_per_point", 2, 64)
        for key in ("z_index", "visibility_index", "presence_index"):
            if d.get(key) is not None:
                _integer(d[key], f"decode.{key}", 0, vpp - 1)
        if "presence_activation" in d:
            _choice(d["presence_activation"], "decode.presence_activation", ("none", "sigmoid"))
        if d.get("heatmap_refine"):
            r = _mapping(d["heatmap_refine"], "decode.heatmap_refine")
            _integer(r.get("kernel_size", 7), "decode.heatmap_refine.kernel_size", 1, 255)
            _number(r.get("min_confidence", 0.5), "decode.heatmap_refine.min_confidence", -1e6, 1e6)
    elif head == "simdr":
        if "split_ratio" in d:
            _number(d["split_ratio"], "decode.split_ratio", 0.0, 1e4, low_open=True)
    elif head == "heatmap":
        if "refine" in d and not isinstance(d["refine"], str):
            raise MetadataError(f"decode.refine must be a string such as 'taylor', got {d['refine']!r}")
    elif head == "ssd":
        _check_ssd(d, num_keypoints, input_size)


def _check_ssd(d: Mapping[str, Any], num_keypoints: int, input_size: tuple[int, int]) -> None:
    for key in ("anchors", "box_scale"):
        if key not in d:
            raise MetadataError(f"decode.{key} is missing: an SSD head needs its anchor options and box scale "
                                "(convert with the detector's preset, e.g. --preset blazepose_detector)")
    if "anchors" in d:
        a = _mapping(d["anchors"], "decode.anchors")
        layers = _integer(a.get("num_layers"), "decode.anchors.num_layers", 1, 32)
        strides = _numbers(a.get("strides"), "decode.anchors.strides", layers,
                           lambda v, f: _integer(v, f, 1, 1 << 16))
        _number(a.get("min_scale"), "decode.anchors.min_scale", 1e-6, 1e3)
        _number(a.get("max_scale"), "decode.anchors.max_scale", 1e-6, 1e3)
        if "anchor_offset" in a:
            _numbers(a["anchor_offset"], "decode.anchors.anchor_offset", 2, lambda v, f: _number(v, f, -1e3, 1e3))
        ratios = _numbers(a.get("aspect_ratios", [1.0]), "decode.anchors.aspect_ratios", None,
                          lambda v, f: _number(v, f, 0.0, 1e3, low_open=True))
        if not 1 <= len(ratios) <= 64:
            raise MetadataError(f"decode.anchors.aspect_ratios must hold 1 to 64 ratios, got {len(ratios)}")
        for key in ("fixed_anchor_size", "reduce_boxes_in_lowest_layer"):
            if key in a:
                _flag(a[key], f"decode.anchors.{key}")
        if "interpolated_scale_aspect_ratio" in a:
            _number(a["interpolated_scale_aspect_ratio"], "decode.anchors.interpolated_scale_aspect_ratio", -1e3, 1e3)
        unknown = set(a) - {"num_layers", "strides", "min_scale", "max_scale", "anchor_offset", "aspect_ratios",
                            "fixed_anchor_size", "reduce_boxes_in_lowest_layer",
                            "interpolated_scale_aspect_ratio", "input_size"}
        if unknown:
            raise MetadataError(f"decode.anchors has unknown option(s) {sorted(unknown)}")
        w, h = input_size
        per_cell = len(ratios) + 3
        count = sum(-(-h // s) * -(-w // s) for s in strides) * per_cell
        if count > MAX_ANCHORS:
            raise MetadataError(f"decode.anchors would make ~{count} anchors (at most {MAX_ANCHORS}); "
                                "the strides do not fit the input size")
    num_coords = _integer(d.get("num_coords", 4 + 2 * num_keypoints), "decode.num_coords", 4, 1 << 16)
    _integer(d.get("box_coord_offset", 0), "decode.box_coord_offset", 0, num_coords - 4)
    vpk = _integer(d.get("values_per_keypoint", 2), "decode.values_per_keypoint", 2, 64)
    koff = _integer(d.get("keypoint_coord_offset", 4), "decode.keypoint_coord_offset", 0, num_coords)
    if "num_coords" in d and koff + num_keypoints * vpk > num_coords:
        raise MetadataError(f"decode: {num_keypoints} keypoints x {vpk} values from offset {koff} do not fit "
                            f"num_coords={num_coords}")
    if "box_scale" in d:
        scales = _numbers(d["box_scale"], "decode.box_scale", 4, lambda v, f: _number(v, f, -1e9, 1e9))
        if any(abs(s) < 1e-3 for s in scales):  # it divides every regressor
            raise MetadataError(f"decode.box_scale values must be at least 1e-3 in size, got {d['box_scale']!r}")
    for key in ("reverse_output_order", "sigmoid_score"):
        if key in d:
            _flag(d[key], f"decode.{key}")
    if d.get("score_clipping"):
        _number(d["score_clipping"], "decode.score_clipping", 0.0, 1e6, low_open=True)
    if "min_score" in d:
        _number(d["min_score"], "decode.min_score", -1e6, 1e6)
    if "nms" in d:
        nms = _mapping(d["nms"], "decode.nms")
        if "algorithm" in nms:
            _choice(nms["algorithm"], "decode.nms.algorithm", ("weighted", "default"))
        if "iou_threshold" in nms:
            _number(nms["iou_threshold"], "decode.nms.iou_threshold", 0.0, 1.0)
        if nms.get("max_detections") is not None:
            _integer(nms["max_detections"], "decode.nms.max_detections", 0, MAX_ANCHORS)
    if "alignment" in d and d["alignment"]:
        al = _mapping(d["alignment"], "decode.alignment")
        _integer(al.get("start"), "decode.alignment.start", 0, num_keypoints - 1)
        _integer(al.get("end"), "decode.alignment.end", 0, num_keypoints - 1)
        _number(al.get("target_angle_deg", 90.0), "decode.alignment.target_angle_deg", -1e4, 1e4)
        _number(al.get("scale", 1.25), "decode.alignment.scale", 0.0, 100.0, low_open=True)
