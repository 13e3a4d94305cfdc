"""How much INT8 changes the keypoints (held-out photos), and how much faster it runs.

Accuracy: the FP32 and INT8 files of one engine run on the same Predictor tensors; keypoints
are decoded by the runtime's own decoder. Errors are reported at the network input's scale
(mean, max), rescaled to a 256-pixel input (`mean_px_256`, the threshold's unit), and as
PCK@0.05: the share of keypoints whose INT8 position lies within 5% of the box's longer side
of the FP32 position, measured in image pixels.

Models with a presence output (MediaPipe's hand/pose flag) are scored on the samples where the
FP32 model reports presence >= 0.5, the ones an application keeps; the all-sample figures are
reported beside them (`all_mean_px_256`).

Speed: one thread, the two models timed in alternating blocks (AB, BA, AB, ...) so drift
and neighbours' load hit both alike; medians of per-call times and of per-round ratios.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgepose.heads import HEADS
from edgepose.processing.decoders import decode
from edgepose.spec import ModelSpec

from .calibration import CalibrationSet

PCK_FRACTION = 0.05
PRESENCE_MIN = 0.5


@dataclass
class Accuracy:
    samples: int
    keypoints: int
    mean_px: float
    max_px: float
    mean_px_256: float
    max_px_256: float
    pck: float
    worst_sample: str
    all_samples: int = 0
    all_mean_px_256: float = 0.0
    all_max_px_256: float = 0.0
    gate: str = "none"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Speed:
    fp32_ms: float
    int8_ms: float
    speedup: float
    rounds: int
    calls_per_round: int
    threads: int = 1
    options: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def keypoints(backend, spec: ModelSpec, tensors: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """(N, K, 2) keypoints in input pixels and (N,) presence (None without that output), one run per sample."""
    name = spec.input_name or backend.input_names[0]
    roles = dict(spec.outputs) or {HEADS[spec.head].primary_role: backend.output_names[0]}
    out, presence = [], []
    for i in range(len(tensors)):
        raw = backend.run({name: tensors[i:i + 1]})
        xy, _, extras = decode(spec, {role: raw[n] for role, n in roles.items()})
        out.append(xy[0])
        if "presence" in extras:
            presence.append(float(np.asarray(extras["presence"]).ravel()[0]))
    return np.stack(out), (np.array(presence) if len(presence) == len(out) else None)


def presence_gate(presence: np.ndarray | None, count: int) -> tuple[np.ndarray, str]:
    """(mask, description) of the samples scored: those FP32 sees a presence in, if it has that output."""
    if presence is not None and (presence >= PRESENCE_MIN).any():
        return presence >= PRESENCE_MIN, f"FP32 presence >= {PRESENCE_MIN}"
    return np.ones(count, bool), "none"


def keypoint_error(reference, spec: ModelSpec, tensors: np.ndarray):
    """error(backend) -> mean keypoint distance to `reference`'s (px at 256 scale) on `tensors`,
    over the samples the reference sees a presence in (as `accuracy` gates them)."""
    ref, presence = keypoints(_open(reference), spec, tensors)
    keep, _ = presence_gate(presence, len(ref))
    scale = 256.0 / max(spec.input_size)

    def error(backend) -> float:
        xy, _ = keypoints(_open(backend), spec, tensors)
        return float(np.linalg.norm(xy - ref, axis=-1)[keep].mean() * scale)

    return error


def accuracy(fp32, int8, spec: ModelSpec, holdout: CalibrationSet) -> Accuracy:
    """INT8 vs FP32 keypoints on the held-out crops (backends, or paths opened with one thread)."""
    fp32, int8 = _open(fp32), _open(int8)
    tensors = holdout.tensors(spec)
    (a, presence), (b, _) = keypoints(fp32, spec, tensors), keypoints(int8, spec, tensors)
    all_dist = np.linalg.norm(a - b, axis=-1)  # (N, K) input pixels
    scale_256 = 256.0 / max(spec.input_size)
    keep, gate = presence_gate(presence, len(all_dist))
    dist = all_dist[keep]
    # Input pixels -> image pixels: divide by the crop's scale (the matrix's x scale; no rotation).
    to_image = 1.0 / np.abs(holdout.matrices[:, 0, 0]) if holdout.matrices is not None else np.ones(len(dist))
    limits = np.array([PCK_FRACTION * _box_side(b, holdout, i) for i, b in enumerate(holdout.boxes)])
    correct = (all_dist * to_image[:, None] <= limits[:, None])[keep]
    kept_names = [n for n, k in zip(holdout.names, keep) if k]
    worst = int(np.argmax(dist.mean(axis=1)))
    return Accuracy(samples=len(dist), keypoints=int(dist.size), mean_px=float(dist.mean()), max_px=float(dist.max()),
                    mean_px_256=float(dist.mean() * scale_256), max_px_256=float(dist.max() * scale_256),
                    pck=float(correct.mean()), worst_sample=kept_names[worst], all_samples=len(all_dist),
                    all_mean_px_256=float(all_dist.mean() * scale_256),
                    all_max_px_256=float(all_dist.max() * scale_256), gate=gate)


def _box_side(box, holdout: CalibrationSet, i: int) -> float:
    if box is not None:
        return float(max(box[2] - box[0], box[3] - box[1]))
    # Whole image: the side that the crop matrix maps onto the input.
    m = holdout.matrices[i]
    h, w = holdout.crops.shape[1:3]
    return float(max(w / abs(m[0, 0]), h / abs(m[1, 1])))


def interleaved_speed(fp32, int8, tensor: np.ndarray, *, input_name: str | None = None, rounds: int = 12,
                      calls: int = 10, warmup: int = 5) -> Speed:
    """Single-thread latency of two models on one tensor, interleaved ABAB / BABA, medians."""
    fp32, int8 = _open(fp32), _open(int8)
    name_a = input_name or fp32.input_names[0]
    name_b = input_name or int8.input_names[0]
    x = np.ascontiguousarray(tensor[:1])

    def run_block(backend, name) -> float:
        t0 = time.perf_counter()
        for _ in range(calls):
            backend.run({name: x})
        return (time.perf_counter() - t0) * 1e3 / calls

    for _ in range(warmup):
        fp32.run({name_a: x})
        int8.run({name_b: x})
    ta, tb, ratios = [], [], []
    for r in range(rounds):
        if r % 2 == 0:
            a = run_block(fp32, name_a)
            b = run_block(int8, name_b)
        else:
            b = run_block(int8, name_b)
            a = run_block(fp32, name_a)
        ta.append(a)
        tb.append(b)
        ratios.append(a / b)
    return Speed(fp32_ms=float(np.median(ta)), int8_ms=float(np.median(tb)), speedup=float(np.median(ratios)),
                 rounds=rounds, calls_per_round=calls)


def _open(model):
    if isinstance(model, (str, Path)):
        from edgepose.backends import open_backend

        return open_backend(model, threads=1)
    return model
