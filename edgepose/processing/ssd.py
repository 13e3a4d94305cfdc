"""SSD detector heads: anchors, box + keypoint decoding and non-maximum suppression.

Follows MediaPipe's calculators so a converted MediaPipe detector gives MediaPipe's boxes:
`SsdAnchorsCalculator` (anchor grid), `TensorsToDetectionsCalculator` (regressors relative to
anchors, sigmoid scores) and `NonMaxSuppressionCalculator` (weighted blending of overlapping
boxes, or plain NMS through OpenCV). Every parameter comes from the model's metadata
(`ModelSpec.decode`), written from the options in MediaPipe's graph; nothing is model-specific
here. Coordinates are in input pixels of the (letterboxed) detector input.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import cv2
import numpy as np

from ..errors import MetadataError, ShapeError

if TYPE_CHECKING:
    from ..spec import ModelSpec


@dataclass(frozen=True)
class RawDetections:
    """Detections in detector-input pixels, best first.

    boxes      (N, 4) x1, y1, x2, y2
    scores     (N,)   probabilities
    keypoints  (N, K, 2) x, y
    """

    boxes: np.ndarray
    scores: np.ndarray
    keypoints: np.ndarray

    def __len__(self) -> int:
        return int(self.scores.shape[0])


# --- anchors ------------------------------------------------------------------------------------
def _scale(min_scale: float, max_scale: float, index: int, count: int) -> float:
    return (min_scale + max_scale) * 0.5 if count == 1 else min_scale + (max_scale - min_scale) * index / (count - 1)


@functools.lru_cache(maxsize=8)
def _anchors_cached(key: tuple) -> np.ndarray:
    return _generate(**dict(key))


def ssd_anchors(options: Mapping[str, Any]) -> np.ndarray:
    """(A, 4) anchors as x_center, y_center, width, height, normalised to the input (cached)."""
    key = tuple(sorted((k, tuple(v) if isinstance(v, (list, tuple)) else v) for k, v in options.items()))
    return _anchors_cached(key)


def _generate(*, num_layers: int, strides: Sequence[int], input_size: Sequence[int], min_scale: float,
              max_scale: float, anchor_offset: Sequence[float] = (0.5, 0.5),
              aspect_ratios: Sequence[float] = (1.0,), fixed_anchor_size: bool = False,
              reduce_boxes_in_lowest_layer: bool = False, interpolated_scale_aspect_ratio: float = 1.0) -> np.ndarray:
    """The anchor grid of MediaPipe's SsdAnchorsCalculator (layers sharing a stride share a grid)."""
    if len(strides) != num_layers:
        raise MetadataError(f"ssd anchors: {len(strides)} strides for num_layers={num_layers}")
    in_w, in_h = int(input_size[0]), int(input_size[1])
    out: list[tuple[float, float, float, float]] = []
    layer = 0
    while layer < num_layers:
        ratios: list[float] = []
        scales: list[float] = []
        last = layer
        while last < num_layers and strides[last] == strides[layer]:
            scale = _scale(min_scale, max_scale, last, num_layers)
            if last == 0 and reduce_boxes_in_lowest_layer:
                ratios += [1.0, 2.0, 0.5]
                scales += [0.1, scale, scale]
            else:
                for ratio in aspect_ratios:
                    ratios.append(float(ratio))
                    scales.append(scale)
                if interpolated_scale_aspect_ratio > 0:
                    nxt = 1.0 if last == num_layers - 1 else _scale(min_scale, max_scale, last + 1, num_layers)
                    scales.append(math.sqrt(scale * nxt))
                    ratios.append(float(interpolated_scale_aspect_ratio))
            last += 1
        sizes = [(s * math.sqrt(r), s / math.sqrt(r)) for s, r in zip(scales, ratios)]  # (w, h)
        stride = strides[layer]
        fh, fw = math.ceil(in_h / stride), math.ceil(in_w / stride)
        for y in range(fh):
            for x in range(fw):
                cx, cy = (x + anchor_offset[0]) / fw, (y + anchor_offset[1]) / fh
                for w, h in sizes:
                    out.append((cx, cy, 1.0, 1.0) if fixed_anchor_size else (cx, cy, w, h))
        layer = last
    return np.asarray(out, np.float32)


# --- decoding -----------------------------------------------------------------------------------
def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -80.0, 80.0)))


def decode_ssd(spec: "ModelSpec", outputs: Mapping[str, np.ndarray], *,
               min_score: float | None = None) -> list[RawDetections]:
    """Per batch item: scored, thresholded, suppressed detections in input pixels."""
    d = spec.decode
    try:
        anchor_opts = dict(d["anchors"])
    except KeyError:
        raise MetadataError(f"{spec.name or 'the detector'}: metadata decode.anchors is missing; "
                            "re-convert with the detector's preset (e.g. --preset blazepose_detector)") from None
    anchor_opts.setdefault("input_size", spec.input_size)
    anchors = ssd_anchors(anchor_opts)
    raw_boxes = np.asarray(outputs["boxes"], np.float32)
    raw_scores = np.asarray(outputs["scores"], np.float32)
    n = raw_boxes.shape[0]
    num_coords = int(d.get("num_coords", raw_boxes.shape[-1]))
    raw_boxes = raw_boxes.reshape(n, -1, num_coords)
    raw_scores = raw_scores.reshape(n, raw_boxes.shape[1], -1)
    if raw_boxes.shape[1] != len(anchors):
        raise ShapeError(f"detector output has {raw_boxes.shape[1]} boxes but its anchors give {len(anchors)}; "
                         "the metadata's anchor options do not match this model")
    threshold = float(d.get("min_score", 0.5) if min_score is None else min_score)
    results = []
    for i in range(n):
        boxes, keypoints = _decode_boxes(raw_boxes[i], anchors, d, spec.num_keypoints)
        logits = raw_scores[i].max(-1)  # one class for person detectors; best class otherwise
        clip = d.get("score_clipping")
        if clip:
            logits = np.clip(logits, -float(clip), float(clip))
        scores = _sigmoid(logits) if d.get("sigmoid_score", True) else logits
        keep = scores >= threshold
        boxes, keypoints, scores = boxes[keep], keypoints[keep], scores[keep]
        scale = np.array(spec.input_size, np.float32)
        boxes, keypoints, scores = suppress(boxes, keypoints, scores, d.get("nms", {}))
        results.append(RawDetections(boxes * np.tile(scale, 2), scores.astype(np.float32), keypoints * scale))
    return results


def decode_decoded_boxes(spec: "ModelSpec", outputs: Mapping[str, np.ndarray], *,
                         min_score: float | None = None) -> list[RawDetections]:
    """A graph that ends in detections already (boxes, scores, optional class ids): keep the wanted
    classes above the threshold (padding rows carry id -1 or score < 0), best first, NMS if asked."""
    d = spec.decode
    boxes = np.asarray(outputs["boxes"], np.float32)
    n = boxes.shape[0]
    boxes = boxes.reshape(n, -1, 4)
    scores = np.asarray(outputs["scores"], np.float32).reshape(n, boxes.shape[1])
    classes = (np.asarray(outputs["classes"], np.float32).reshape(n, boxes.shape[1])
               if "classes" in outputs else np.zeros_like(scores))
    wanted = d.get("class_ids")
    threshold = float(d.get("min_score", 0.5) if min_score is None else min_score)
    scale = np.tile(np.array(spec.input_size, np.float32), 2) if d.get("normalized", False) else 1.0
    k = spec.num_keypoints
    results = []
    for i in range(n):
        keep = (scores[i] >= threshold) & (classes[i] >= 0)
        if wanted is not None:
            keep &= np.isin(classes[i].round().astype(np.int64), np.asarray(wanted, np.int64))
        b, s = boxes[i][keep] * scale, scores[i][keep]
        order = np.argsort(-s, kind="stable")
        b, s = b[order], s[order]
        kp = np.zeros((len(s), k, 2), np.float32)
        if d.get("nms"):
            b, kp, s = suppress(b, kp, s, d["nms"])
        results.append(RawDetections(b.astype(np.float32), s.astype(np.float32), kp))
    return results


def _decode_boxes(raw: np.ndarray, anchors: np.ndarray, d: Mapping[str, Any], num_keypoints: int):
    """Regressors -> normalised (A, 4) x1, y1, x2, y2 boxes and (A, K, 2) keypoints."""
    sx, sy, sw, sh = (float(v) for v in d["box_scale"])  # x_scale, y_scale, w_scale, h_scale
    off = int(d.get("box_coord_offset", 0))
    ax, ay, aw, ah = anchors.T
    if d.get("reverse_output_order", True):  # x, y, w, h
        cx, cy, w, h = raw[:, off], raw[:, off + 1], raw[:, off + 2], raw[:, off + 3]
    else:  # y, x, h, w
        cy, cx, h, w = raw[:, off], raw[:, off + 1], raw[:, off + 2], raw[:, off + 3]
    cx = cx / sx * aw + ax
    cy = cy / sy * ah + ay
    w = w / sw * aw
    h = h / sh * ah
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1)
    koff = int(d.get("keypoint_coord_offset", 4))
    vpk = int(d.get("values_per_keypoint", 2))
    kp = raw[:, koff:koff + num_keypoints * vpk].reshape(-1, num_keypoints, vpk)[..., :2]
    if not d.get("reverse_output_order", True):
        kp = kp[..., ::-1]
    kx = kp[..., 0] / sx * aw[:, None] + ax[:, None]
    ky = kp[..., 1] / sy * ah[:, None] + ay[:, None]
    return boxes.astype(np.float32), np.stack([kx, ky], -1).astype(np.float32)


# --- non-maximum suppression ----------------------------------------------------------------------
def iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Intersection over union of one x1, y1, x2, y2 box with (N, 4) boxes."""
    x1 = np.maximum(box[0], boxes[:, 0])
    y1 = np.maximum(box[1], boxes[:, 1])
    x2 = np.minimum(box[2], boxes[:, 2])
    y2 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = area + areas - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def suppress(boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray, options: Mapping[str, Any]):
    """Weighted (MediaPipe's blending) or plain NMS; returns the survivors best first."""
    threshold = float(options.get("iou_threshold", 0.3))
    algorithm = options.get("algorithm", "weighted")
    limit = options.get("max_detections")
    if len(scores) == 0:
        return boxes, keypoints, scores
    if algorithm == "weighted":
        b, k, s = _weighted_nms(boxes, keypoints, scores, threshold)
    elif algorithm == "default":
        keep = np.asarray(cv2.dnn.NMSBoxes(
            [[float(x1), float(y1), float(x2 - x1), float(y2 - y1)] for x1, y1, x2, y2 in boxes],
            [float(v) for v in scores], 0.0, threshold), np.int64).reshape(-1)
        b, k, s = boxes[keep], keypoints[keep], scores[keep]
    else:
        raise MetadataError(f"unknown NMS algorithm {algorithm!r}; use 'weighted' or 'default'")
    if limit is not None and int(limit) > 0:
        b, k, s = b[: int(limit)], k[: int(limit)], s[: int(limit)]
    return b, k, s


def _weighted_nms(boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray, threshold: float):
    """Each kept box is the score-weighted mean of the boxes it overlaps by more than `threshold`
    (itself included); its score stays the best one (MediaPipe's WeightedNonMaxSuppression)."""
    order = np.argsort(-scores, kind="stable")
    out_b, out_k, out_s = [], [], []
    while order.size:
        top = order[0]
        overlap = iou(boxes[top], boxes[order]) > threshold
        overlap[0] = True  # a degenerate (zero-area) box still removes itself
        members = order[overlap]
        weights = scores[members][:, None]
        total = float(weights.sum())
        out_b.append((boxes[members] * weights).sum(0) / total)
        out_k.append((keypoints[members] * weights[:, :, None]).sum(0) / total)
        out_s.append(scores[top])
        order = order[~overlap]
    return (np.asarray(out_b, np.float32), np.asarray(out_k, np.float32), np.asarray(out_s, np.float32))
