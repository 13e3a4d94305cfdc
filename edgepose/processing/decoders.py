"""Head decoders: raw model outputs -> keypoints in input pixels, scores and extras.

One function per head type, chosen by `ModelSpec.head` (never guessed from shapes). Every
decoder returns coordinates in the network input's pixel frame; the Predictor maps them to
the image through the inverse crop transform.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Mapping

import numpy as np

from ..errors import MetadataError, ShapeError

if TYPE_CHECKING:  # the spec module imports the head registry, which names these functions
    from ..spec import ModelSpec

Decoded = tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # np.clip's values through the bare ufuncs: np.clip's Python wrappers cost more than the maths here.
    x = np.minimum(np.maximum(x, -60), 60)
    return (1.0 / (1.0 + np.exp(-x))).astype(np.float32, copy=False)


def _softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _expect(outputs: Mapping[str, np.ndarray], role: str, spec: ModelSpec, ndim: int) -> np.ndarray:
    array = outputs[role]
    if array.ndim != ndim:
        raise ShapeError(f"output {role!r} of a {spec.head} head should have {ndim} dimensions, got shape {array.shape}")
    return array


def decode_normalized(spec: ModelSpec, outputs: Mapping[str, np.ndarray]) -> Decoded:
    """Regression, integral (soft-argmax) and SimDR graphs that end in [0, 1] coordinates."""
    if "coords" not in outputs:
        return decode_simdr_logits(spec, outputs)
    coords = _expect(outputs, "coords", spec, 3)
    if coords.shape[1:] != (spec.num_keypoints, 2):
        raise ShapeError(f"coords output has shape {coords.shape}, expected (N, {spec.num_keypoints}, 2)")
    xy = coords.astype(np.float32, copy=False) * np.array(spec.input_size, np.float32)
    if "scores" in outputs:
        scores = outputs["scores"].reshape(coords.shape[0], spec.num_keypoints).astype(np.float32, copy=False)
    else:
        scores = np.ones(coords.shape[:2], np.float32)  # the graph gives no confidence
    return xy, scores, {}


def decode_simdr_logits(spec: ModelSpec, outputs: Mapping[str, np.ndarray]) -> Decoded:
    """SimDR / SimCC 1-D logits: argmax per axis divided by the split ratio (mmpose's SimCC)."""
    sx = _expect(outputs, "simdr_x", spec, 3)
    sy = _expect(outputs, "simdr_y", spec, 3)
    ratio = float(spec.decode.get("split_ratio", sx.shape[-1] / spec.input_size[0]))
    x = sx.argmax(-1).astype(np.float32) / ratio
    y = sy.argmax(-1).astype(np.float32) / ratio
    scores = 0.5 * (_softmax(sx).max(-1) + _softmax(sy).max(-1))
    return np.stack([x, y], -1), scores.astype(np.float32), {}


def refine_peaks(heatmaps: np.ndarray, peaks: np.ndarray) -> np.ndarray:
    """Sub-pixel refinement: one Newton step on the log-heatmap around each integer peak.

    For a Gaussian peak the log is a quadratic, so the step lands on the true centre
    (DARK, Zhang et al. 2020, without the blur). Peaks on the border keep their integer place.
    """
    n, k, h, w = heatmaps.shape
    out = peaks.astype(np.float32).copy()
    px, py = peaks[..., 0].astype(np.int64), peaks[..., 1].astype(np.int64)
    inner = (px >= 1) & (px < w - 1) & (py >= 1) & (py < h - 1)  # border peaks keep their integer place
    # Every peak at once, on its 3x3 neighbourhood only (the log of the whole maps and a loop over
    # the peaks cost ~0.3 ms per person): the same float32 operations, the same values.
    cx, cy = np.clip(px, 1, max(w - 2, 1)), np.clip(py, 1, max(h - 2, 1))
    rows = (cy[..., None] + np.arange(-1, 2))[..., :, None]  # (n, k, 3, 1)
    cols = (cx[..., None] + np.arange(-1, 2))[..., None, :]  # (n, k, 1, 3)
    at = ((np.arange(n)[:, None] * k + np.arange(k)) * (h * w))[..., None, None] + np.minimum(rows, h - 1) * w \
        + np.minimum(cols, w - 1)
    m = np.log(np.maximum(np.ascontiguousarray(heatmaps).reshape(-1)[at], 1e-10))  # (n, k, 3, 3): m[.., y, x]
    dx = 0.5 * (m[..., 1, 2] - m[..., 1, 0])
    dy = 0.5 * (m[..., 2, 1] - m[..., 0, 1])
    dxx = m[..., 1, 2] - 2 * m[..., 1, 1] + m[..., 1, 0]
    dyy = m[..., 2, 1] - 2 * m[..., 1, 1] + m[..., 0, 1]
    dxy = 0.25 * (m[..., 2, 2] - m[..., 2, 0] - m[..., 0, 2] + m[..., 0, 0])
    det = dxx * dyy - dxy * dxy
    use = inner & (dxx < 0) & (det > 0)  # a proper maximum: the Hessian is negative definite
    if use.any():
        with np.errstate(divide="ignore", invalid="ignore"):
            off = np.stack([-(dyy * dx - dxy * dy) / det, -(dxx * dy - dxy * dx) / det], -1)
        out[use] += np.clip(off[use], -0.5, 0.5)
    return out


def decode_heatmap(spec: ModelSpec, outputs: Mapping[str, np.ndarray]) -> Decoded:
    """Argmax per map, sub-pixel refinement, scaled from heatmap to input pixels."""
    hm = _expect(outputs, "heatmaps", spec, 4).astype(np.float32, copy=False)
    if spec.layout == "NHWC" and hm.shape[-1] == spec.num_keypoints and hm.shape[1] != spec.num_keypoints:
        hm = hm.transpose(0, 3, 1, 2)
    n, k, h, w = hm.shape
    if k != spec.num_keypoints:
        raise ShapeError(f"heatmaps output has {k} maps, expected num_keypoints={spec.num_keypoints}")
    flat = hm.reshape(n, k, -1)
    idx = flat.argmax(-1)
    scores = np.take_along_axis(flat, idx[..., None], -1)[..., 0]
    peaks = np.stack([idx % w, idx // w], -1)
    if spec.decode.get("refine", "taylor") == "taylor":
        xy = refine_peaks(hm, peaks)
    else:
        xy = peaks.astype(np.float32)
    xy *= np.array([spec.input_size[0] / w, spec.input_size[1] / h], np.float32)
    return xy, scores.astype(np.float32), {}


def decode_landmarks(spec: ModelSpec, outputs: Mapping[str, np.ndarray]) -> Decoded:
    """MediaPipe-style landmarks: per point x, y (input pixels), z, visibility, presence logits."""
    raw = outputs["landmarks"]
    vpp = int(spec.decode.get("values_per_point", 3))
    n = raw.shape[0]
    if raw.size % (n * vpp):
        raise ShapeError(f"landmarks output of shape {raw.shape} is not a whole number of {vpp}-value points")
    every = raw.reshape(n, -1, vpp).astype(np.float32)
    pts = every[:, : spec.num_keypoints]
    if pts.shape[1] < spec.num_keypoints:
        raise ShapeError(f"landmarks output holds {pts.shape[1]} points, fewer than num_keypoints={spec.num_keypoints}")
    xy_all = every[..., :2].copy()
    refine = spec.decode.get("heatmap_refine")
    if refine and "heatmap" in outputs:
        channels = np.asarray(outputs["heatmap"]).shape[-1 if spec.layout == "NHWC" else 1]
        m = min(xy_all.shape[1], channels)
        xy_all[:, :m] = refine_from_heatmap(xy_all[:, :m], outputs["heatmap"], spec,
                                            kernel_size=int(refine.get("kernel_size", 7)),
                                            min_confidence=float(refine.get("min_confidence", 0.5)))
    xy = xy_all[:, : spec.num_keypoints].copy()
    extras: dict[str, np.ndarray] = {}
    if xy_all.shape[1] > spec.num_keypoints:
        # Points past the named ones (BlazePose: hip centre and full-body point, then 4 more) are
        # what MediaPipe derives the next frame's ROI from when it tracks.
        extras["auxiliary"] = xy_all[:, spec.num_keypoints:].copy()
    vis = spec.decode.get("visibility_index")
    scores = _sigmoid(pts[..., vis]) if vis is not None else np.ones(pts.shape[:2], np.float32)
    if spec.decode.get("presence_index") is not None:
        extras["keypoint_presence"] = _sigmoid(pts[..., spec.decode["presence_index"]])
    if spec.decode.get("z_index") is not None:
        extras["z"] = pts[..., spec.decode["z_index"]].copy()
    if "presence" in outputs:
        flag = outputs["presence"].reshape(n, -1)[:, 0].astype(np.float32)
        extras["presence"] = _sigmoid(flag) if spec.decode.get("presence_activation") == "sigmoid" else flag
    return xy, scores, extras


def refine_from_heatmap(xy: np.ndarray, heatmap: np.ndarray, spec: ModelSpec, *, kernel_size: int,
                        min_confidence: float) -> np.ndarray:
    """BlazePose's landmark refinement (MediaPipe's RefineLandmarksFromHeatmapCalculator).

    Each landmark moves to the sigmoid-weighted mean cell of a kernel_size window of its own
    heatmap channel around it, when the window's peak confidence reaches `min_confidence`. Kept
    as MediaPipe computes it, truncation and cell-index (not cell-centre) coordinates included,
    so the landmarks agree with MediaPipe's pipeline.
    """
    hm = np.asarray(heatmap, np.float32)
    n, k = xy.shape[:2]
    if hm.ndim == 3:
        hm = hm[None]
    if hm.ndim != 4:
        raise ShapeError(f"heatmap output should be 4-D (N, H, W, C), got shape {hm.shape}")
    if spec.layout == "NCHW" and hm.shape[1] >= k and hm.shape[-1] < k:
        hm = hm.transpose(0, 2, 3, 1)
    _, hh, hw, channels = hm.shape
    if channels < k:
        raise ShapeError(f"heatmap has {channels} channels for {k} landmarks")
    in_w, in_h = spec.input_size
    out = xy.copy()
    off = (kernel_size - 1) // 2
    # All landmarks at once (a per-landmark loop cost ~2.3 ms per person; this ~0.15 ms, same results
    # to float32 rounding): each landmark's kernel_size x kernel_size window, cells outside the
    # heatmap masked out, as the clipped window of MediaPipe's loop.
    # Columns and rows side by side ([..., 0] and [..., 1]): half the numpy calls, the same values.
    cr = np.trunc(xy / np.array([in_w, in_h], np.float32) * np.array([hw, hh], np.float32))  # C++ float -> int
    col = cr[..., 0]
    ok = (cr >= 0).all(-1) & (col < min(hw, hh))  # sic: MediaPipe checks col against both sizes
    steps = np.arange(-off, off + 1)
    cells = np.where(ok[..., None], cr, 0).astype(np.int64)[..., None] + steps  # (n, k, 2, kernel)
    limit = np.array([[hw], [hh]])
    within = (cells >= 0) & (cells < limit)
    cols, rows, cols_in, rows_in = cells[..., 0, :], cells[..., 1, :], within[..., 0, :], within[..., 1, :]
    inside = rows_in[..., :, None] & cols_in[..., None, :]
    # One gather from the flat heatmap (hm[i, row, col, j] for every window cell), cheaper than a
    # four-array fancy index on these small arrays; the same values.
    flat = np.ascontiguousarray(hm).reshape(-1)
    clipped = np.minimum(np.maximum(cells, 0), limit - 1)
    base = (np.arange(n) * (hh * hw * channels))[:, None] + np.arange(k)  # (n, k)
    at = (clipped[..., 1, :] * (hw * channels) + base[..., None])[..., :, None] + (clipped[..., 0, :] * channels)[..., None, :]
    conf = np.where(inside, _sigmoid(flat[at]), np.float32(0))  # (n, k, kernel, kernel)
    total = conf.sum(axis=(-2, -1), dtype=np.float32)
    use = ok & rows_in.any(-1) & cols_in.any(-1) & (conf.max(axis=(-2, -1)) >= min_confidence) & (total > 0)
    denom = np.where(use, total, 1).astype(np.float64)
    x = (conf * cols[..., None, :]).sum(axis=(-2, -1), dtype=np.float64) / hw / denom * in_w
    y = (conf * rows[..., :, None]).sum(axis=(-2, -1), dtype=np.float64) / hh / denom * in_h
    out[..., 0] = np.where(use, x, out[..., 0])
    out[..., 1] = np.where(use, y, out[..., 1])
    return out


def decode(spec: ModelSpec, outputs: Mapping[str, np.ndarray]) -> Decoded:
    """Keypoints of a pose head; the decoder is the head registry's entry for `spec.head`."""
    from ..heads import HEADS

    head = HEADS.get(spec.head)
    if head is None or head.kind != "pose":
        raise MetadataError(f"no keypoint decoder for head {spec.head!r}; pose heads: "
                            f"{', '.join(n for n, h in HEADS.items() if h.kind == 'pose')}")
    return head.resolve_decoder()(spec, outputs)
