"""Numeric parity between two artifacts of the same model, run with the real runtimes.

Inputs: random tensors in the model's input domain (noise images pre-processed per the spec,
or standard normal values when there is no spec) at batch 2 where the batch is dynamic, plus
real photos resized to the input and pre-processed per the spec (colour order, mean/std,
layout). Per output: max abs error, max rel error (to the output's range), cosine similarity,
and keypoint displacement in input pixels for pose outputs.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from edgepose.errors import ConversionError, EdgePoseError
from edgepose.heads import HEADS
from edgepose.spec import ModelSpec

from .report import OutputParity, Tolerance

log = logging.getLogger(__name__)

# Set from measurements (python -m edgepose.converters.measure_tolerances; 4 photos + random inputs):
# fp32  worst seen: max rel 3.9e-4 (BlazePose segmentation logits, range 1.7e3, MNN vs TFLite; TFLite's
#       own XNNPACK and built-in kernels already differ by 4.6e-4 there); zoo models <= 2e-5;
#       1 - cosine <= 2.2e-9; keypoints <= 0.015 px. Tolerance ~2.5x the worst relative error.
# fp16  MNN FP16 weights. Trained weights (GluonCV simple_pose_resnet18 via MXNet->ONNX): max rel
#       9.6e-6, 1 - cosine 5e-11, 0 px. Small random-init nets: max rel <= 1.4e-3. Random-init zoo
#       models are ill-conditioned (max rel up to 0.1, 1 - cosine up to 4.8e-3, coords moving 25 px),
#       so for a zoo name converted without --weights the FP16 check is informative only.
#       Cosine is the main guard: converter bugs (layout, padding, resize mode) drop it below 0.99.
TOLERANCES: dict[str, Tolerance] = {
    "fp32": Tolerance(rtol=1e-3, atol=1e-5, min_cosine=0.99999, max_px=0.05),
    "fp16": Tolerance(rtol=2e-2, atol=1e-4, min_cosine=0.999, max_px=1.0),
}

POSE_ROLES = ("coords", "heatmaps", "landmarks")


@dataclass
class InputSet:
    """One named batch of feeds both artifacts of a stage are run on."""

    name: str
    feeds: dict[str, np.ndarray]


def tolerance_for(precision: str, overrides: Mapping[str, Tolerance] | None = None) -> Tolerance:
    table = {**TOLERANCES, **(overrides or {})}
    if precision not in table:
        raise ValueError(f"no parity tolerance for precision {precision!r}; known: {sorted(table)}")
    return table[precision]


# --- inputs -------------------------------------------------------------------------------
def preprocess(image_bgr: np.ndarray, spec: ModelSpec) -> np.ndarray:
    """A whole BGR uint8 image as a (1, ...) network input, prepared as the Predictor prepares it."""
    from edgepose.processing import transforms
    from edgepose.processing.image import InputPacker

    # Exactly the Predictor's whole-image path: one affine warp, then its packer.
    matrix = transforms.whole_image_matrix(image_bgr.shape, spec.input_size)
    crop = transforms.warp(image_bgr, matrix, spec.input_size)
    return InputPacker(spec).pack(crop[None]).copy()


def read_image(image: str | Path | np.ndarray) -> tuple[str, np.ndarray]:
    """(label, BGR uint8 array) for a path or an array, validated as the Predictor validates."""
    from edgepose.processing.image import load_image

    label = "photo:array" if isinstance(image, np.ndarray) else f"photo:{Path(image).name}"
    return label, load_image(image)

def image_input(spec: ModelSpec | None, shapes: Mapping[str, Sequence[int]]) -> str | None:
    """The input a photo can be fed to: the spec's image input when its shape matches the spec."""
    if spec is None:
        return None
    name = spec.input_name if spec.input_name in shapes else (next(iter(shapes)) if len(shapes) == 1 else None)
    if name is None:
        return None
    shape = tuple(shapes[name])
    return name if len(shape) == 4 and shape[1:] == spec.input_shape()[1:] else None


def make_input_sets(shapes: Mapping[str, Sequence[int]], *, spec: ModelSpec | None = None,
                    images: Sequence[Any] = (), dtypes: Mapping[str, str] | None = None,
                    seed: int = 0) -> list[InputSet]:
    """Random feeds at the given shapes, plus one set per photo where the spec allows it."""
    rng = np.random.default_rng(seed)
    img_name = image_input(spec, shapes)
    feeds: dict[str, np.ndarray] = {}
    for name, shape in shapes.items():
        dtype = np.dtype((dtypes or {}).get(name, "float32"))
        if dtype.kind in "iub":
            feeds[name] = np.zeros(shape, dtype)
        elif name == img_name:
            h, w = spec.input_size[1], spec.input_size[0]
            noise = rng.integers(0, 256, (shape[0], h, w, 3), dtype=np.uint8)
            feeds[name] = np.concatenate([preprocess(im, spec) for im in noise])
        else:
            feeds[name] = rng.standard_normal(shape).astype(dtype)
    sets = [InputSet(f"random(batch {next(iter(shapes.values()))[0] if shapes else 1})", feeds)]
    if images and img_name is None:
        log.info("photos skipped: no spec, or the model's input does not match the spec's image size")
        return sets
    for image in images:
        label, bgr = read_image(image)
        photo = {k: v[:1] for k, v in feeds.items()}
        photo[img_name] = preprocess(bgr, spec)
        sets.append(InputSet(label, photo))
    return sets


def default_photos() -> list[Path]:
    """Real photos already in edgepose's asset cache (never downloads); empty if none is cached."""
    try:
        from edgepose import assets
    except ImportError:  # the runtime's asset module is optional here
        return []
    found = []
    for name in ("astronaut", "grace_hopper"):
        try:
            if name in assets.ASSETS and assets.asset_path(name).is_file():
                found.append(assets.asset_path(name))
        except (OSError, AttributeError, KeyError):
            continue
    return found[:1]


# --- comparison -----------------------------------------------------------------------------
def output_roles(spec: ModelSpec | None, names: Sequence[str]) -> dict[str, str]:
    """Output name -> role, from the spec's outputs or (if it lists none) by position."""
    if spec is None:
        return {}
    if spec.outputs:
        return {name: role for role, name in spec.outputs.items()}
    first = HEADS[spec.head].primary_role
    return {names[0]: first} if names else {}


def keypoints_px(role: str, array: np.ndarray, spec: ModelSpec) -> np.ndarray | None:
    """(M, K, 2) keypoint positions in input pixels from a pose output, or None if it does not fit."""
    k = spec.num_keypoints
    w, h = spec.input_size
    a = np.asarray(array, np.float64)
    n = a.shape[0] if a.ndim else 1
    if role == "coords" and a.size == n * k * 2:
        return a.reshape(n, k, 2) * np.array([w, h], np.float64)
    if role == "landmarks":  # (N, P*vpp) with P >= K (BlazePose adds 6 auxiliary points after the 33)
        vpp = int(spec.decode.get("values_per_point", 3))
        per = a.size // max(n, 1)
        if per % vpp == 0 and per // vpp >= k:
            return a.reshape(n, per // vpp, vpp)[:, :k, :2]
    if role == "heatmaps" and a.ndim == 4:
        maps = a if spec.layout == "NCHW" else a.transpose(0, 3, 1, 2)
        if maps.shape[1] != k:
            return None
        hh, ww = maps.shape[2:]
        idx = maps.reshape(n, k, -1).argmax(-1)
        ys, xs = np.divmod(idx, ww)
        return np.stack([xs * (w / ww), ys * (h / hh)], -1).astype(np.float64)
    return None


def _heatmap_flip_explained(ref: np.ndarray, cand: np.ndarray, spec: ModelSpec, allowed: float) -> np.ndarray:
    """(M, K) True where the argmax swapped between two peaks that tie within the allowed error.

    Two peaks closer than the tolerance in both artifacts may swap places under any rounding;
    that is not a conversion fault. A real move (one peak gone, another risen) is not a tie.
    """
    maps_r = ref if spec.layout == "NCHW" else ref.transpose(0, 3, 1, 2)
    maps_c = cand if spec.layout == "NCHW" else cand.transpose(0, 3, 1, 2)
    n, k = maps_r.shape[:2]
    flat_r = maps_r.reshape(n, k, -1).astype(np.float64)
    flat_c = maps_c.reshape(n, k, -1).astype(np.float64)
    idx_r, idx_c = flat_r.argmax(-1), flat_c.argmax(-1)

    def at(flat, idx):
        return np.take_along_axis(flat, idx[..., None], -1)[..., 0]

    gap_r = at(flat_r, idx_r) - at(flat_r, idx_c)
    gap_c = at(flat_c, idx_c) - at(flat_c, idx_r)
    return (gap_r <= allowed) & (gap_c <= allowed)


def _cosines(ref: np.ndarray, cand: np.ndarray) -> float:
    """Smallest per-sample cosine similarity (1.0 for two all-zero samples, and for empty outputs:
    a detector's boxes after NMS can be (0, 4) on random inputs)."""
    if ref.size == 0:
        return 1.0
    r = ref.reshape(ref.shape[0] if ref.ndim > 1 else 1, -1).astype(np.float64)
    c = cand.reshape(r.shape).astype(np.float64)
    nr, nc = np.linalg.norm(r, axis=1), np.linalg.norm(c, axis=1)
    dots = (r * c).sum(1)
    cos = np.where((nr == 0) & (nc == 0), 1.0, dots / np.maximum(nr * nc, 1e-300))
    return float(cos.min())


def compare(ref_sets: Sequence[Mapping[str, np.ndarray]], cand_sets: Sequence[Mapping[str, np.ndarray]], *,
            spec: ModelSpec | None, tolerance: Tolerance) -> list[OutputParity]:
    """Per-output parity over all input sets (ref_sets[i] and cand_sets[i] came from the same feeds)."""
    names = list(ref_sets[0])
    roles = output_roles(spec, names)
    results = []
    for name in names:
        role = roles.get(name)
        refs = [np.asarray(s[name]) for s in ref_sets]
        cands = []
        failures: list[str] = []
        for s, r in zip(cand_sets, refs):
            c = np.asarray(s.get(name)) if name in s else None
            if c is None or c.size != r.size:
                got = "missing" if c is None else f"shape {tuple(c.shape)}"
                hint = ""
                if c is not None and c.ndim == r.ndim and c.shape[1:] == r.shape[1:]:
                    hint = (" (a data-dependent size, e.g. a detector's box count after NMS: the two runtimes "
                            "disagree on how many rows there are)")
                failures.append(f"candidate output is {got}, reference has shape {tuple(r.shape)}{hint}")
                c = np.full_like(r, np.nan, dtype=np.float32)
            cands.append(c.reshape(r.shape))
        finite = all(np.isfinite(r).all() for r in refs)
        cfinite = all(np.isfinite(c).all() for c in cands)
        scale = max(float(np.abs(r).max()) if r.size else 0.0 for r in refs) if finite else float("inf")
        if finite and cfinite:
            max_abs = max(float(np.abs(c.astype(np.float64) - r).max()) if r.size else 0.0
                          for r, c in zip(refs, cands))
            cosine = min(_cosines(r, c) for r, c in zip(refs, cands))
        else:
            max_abs, cosine = float("inf"), float("nan")
            if not failures:
                where = "reference" if not finite else "candidate"
                failures.append(f"non-finite values (NaN/Inf) in the {where} output")
        max_rel = max_abs / scale if scale > 0 else (0.0 if max_abs == 0 else float("inf"))
        allowed = tolerance.allowed_abs(scale) if np.isfinite(scale) else float("inf")
        px = None
        if spec is not None and role in POSE_ROLES and not failures:
            px = _keypoint_displacement(role, refs, cands, spec, allowed)
        if not failures and max_abs > tolerance.atol:  # below atol every difference is noise
            if max_abs > allowed:
                failures.append(f"max abs error {max_abs:.3g} > allowed {allowed:.3g} "
                                f"(atol {tolerance.atol:g} + rtol {tolerance.rtol:g} x range {scale:.3g})")
            if cosine < tolerance.min_cosine:
                failures.append(f"cosine similarity {cosine:.6f} < {tolerance.min_cosine}")
        if px is not None and px > tolerance.max_px:
            failures.append(f"keypoints moved up to {px:.3g} px > {tolerance.max_px} px")
        results.append(OutputParity(
            name=name, shape=tuple(int(v) for v in refs[0].shape), max_abs=max_abs, max_rel=max_rel,
            cosine=cosine, scale=scale, allowed_abs=allowed, keypoint_px=px, role=role, failures=failures))
    return results


def _keypoint_displacement(role: str, refs, cands, spec: ModelSpec, allowed: float) -> float | None:
    worst = None
    for r, c in zip(refs, cands):
        kr, kc = keypoints_px(role, r, spec), keypoints_px(role, c, spec)
        if kr is None or kc is None:
            return None
        d = np.linalg.norm(kr - kc, axis=-1)
        if role == "heatmaps":
            d = np.where(_heatmap_flip_explained(r, c, spec, allowed), 0.0, d)
        worst = max(worst or 0.0, float(d.max()) if d.size else 0.0)
    return worst


# --- running ---------------------------------------------------------------------------------
def run_sets(runner, sets: Sequence[InputSet], *, what: str) -> list[dict[str, np.ndarray]]:
    """Run every input set; a run failure becomes a ConversionError that says which artifact and inputs."""
    outs = []
    for s in sets:
        try:
            outs.append(runner.run(s.feeds))
        except (EdgePoseError, RuntimeError, ValueError) as exc:
            shapes = {k: tuple(v.shape) for k, v in s.feeds.items()}
            hint = ""
            if any(v.shape[0] > 1 for v in s.feeds.values() if v.ndim):
                hint = (" - a batch size baked in at export time (e.g. view(1, ...) or a traced batch) "
                        "breaks the dynamic batch; fix the model or convert with a static batch "
                        "(dynamic_batch=False / --static-batch)")
            err = ConversionError(f"{what} failed to run on {s.name} inputs {shapes}: "
                                  f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}{hint}")
            raise err from exc
    return outs
