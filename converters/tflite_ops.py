"""Which TFLite operators MNN's converter takes, checked before it runs.

Why check first: MNN 3.6.1's TFLite converter stops at the first builtin op it lacks, logs
`NOT_SUPPORTED_OP: [ X ]` plus "Convert error, please check your file format." and still
returns success; a custom op other than the two it knows makes it log "Now Only support Custom
op of 'TFLite_Detection_PostProcess'" and then crash (SIGSEGV) without naming the op (seen on
MediaPipe's face_landmark_with_attention.tflite). Reading the model's operator codes first names
every unsupported operator at once, before any tool or runtime is started.

MNN_BUILTINS was measured, not copied from MNN's sources: `python -m
edgepose.converters.measure_tflite_ops` converts a one-operator model per builtin code and
keeps the codes MNN does not refuse. It is applied only with the MNN version it was measured
on; with another version only the custom-op check runs (MNN's own log still names a refused
builtin, see mnn_native). MNN_CUSTOM_OPS are the custom codes MNN's CustomTflite.cpp handles.
"""
from __future__ import annotations

import importlib.metadata
import logging
from pathlib import Path
from typing import Mapping

from edgepose.errors import UnsupportedOperatorError

from . import tflite_model as tm

log = logging.getLogger(__name__)

MEASURED_WITH_MNN = "3.6.1"
MNN_CUSTOM_OPS = frozenset({"Convolution2DTransposeBias", "TFLite_Detection_PostProcess"})
MNN_BUILTINS = frozenset({
    "ABS", "ADD", "AVERAGE_POOL_2D", "BATCH_MATMUL", "BATCH_TO_SPACE_ND", "CAST", "CEIL", "CONCATENATION",
    "CONV_2D", "COS", "DEPTHWISE_CONV_2D", "DEPTH_TO_SPACE", "DEQUANTIZE", "DIV", "EQUAL", "EXP",
    "EXPAND_DIMS", "FILL", "FLOOR", "FLOOR_DIV", "FLOOR_MOD", "FULLY_CONNECTED", "GATHER", "GREATER",
    "GREATER_EQUAL", "HARD_SWISH", "LEAKY_RELU", "LESS", "LESS_EQUAL", "LOG", "LOGICAL_AND", "LOGISTIC",
    "MAXIMUM", "MAX_POOL_2D", "MEAN", "MINIMUM", "MIRROR_PAD", "MUL", "NEG", "NOT_EQUAL", "ONE_HOT", "PACK",
    "PAD", "PADV2", "POW", "PRELU", "QUANTIZE", "RANGE", "REDUCE_ANY", "REDUCE_MAX", "REDUCE_MIN",
    "REDUCE_PROD", "RELU", "RELU6", "RESHAPE", "RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR", "ROUND", "RSQRT",
    "SELECT", "SHAPE", "SIN", "SLICE", "SOFTMAX", "SPACE_TO_BATCH_ND", "SPACE_TO_DEPTH", "SPLIT", "SQRT",
    "SQUARE", "SQUARED_DIFFERENCE", "SQUEEZE", "STRIDED_SLICE", "SUB", "SUM", "TANH", "TILE", "TOPK_V2",
    "TRANSPOSE", "TRANSPOSE_CONV", "UNPACK", "ZEROS_LIKE",
})

# Operators edgepose rewrites away before MNN sees the model, and where.
REWRITES = {"DENSIFY": "converters.tflite_densify folds DENSIFY into dense constants (edgepose convert does "
                       "this itself, writing <stem>.dense.tflite)"}


def mnn_version() -> str | None:
    try:
        return importlib.metadata.version("MNN")
    except importlib.metadata.PackageNotFoundError:
        return None


def unsupported_operators(path: str | Path, *, rewritten: frozenset[str] | set[str] = frozenset()
                          ) -> tuple[dict[str, int], set[str]]:
    """({operator: uses} of the operators MNN's converter cannot take, the custom ones' names).

    `rewritten` names operators a rewrite removes before MNN runs (they are not reported).
    """
    check_builtins = mnn_version() == MEASURED_WITH_MNN
    if not check_builtins:
        log.debug("MNN %s: builtin table measured with %s, checking custom ops only", mnn_version(), MEASURED_WITH_MNN)
    bad: dict[str, int] = {}
    customs: set[str] = set()
    for name, custom in tm.graph_operators(path):
        if name in rewritten:
            continue
        if custom and name not in MNN_CUSTOM_OPS:
            customs.add(name)
        elif custom or not check_builtins or name in MNN_BUILTINS:
            continue
        bad[name] = bad.get(name, 0) + 1
    return bad, customs


def check_mnn_can_convert(path: str | Path, *, rewritten: frozenset[str] | set[str] = frozenset()) -> None:
    """Raise UnsupportedOperatorError naming every operator of the model MNN's converter lacks."""
    bad, customs = unsupported_operators(path, rewritten=rewritten)
    if bad:
        raise unsupported_error(Path(path), bad, customs=customs)


def unsupported_error(path: Path, bad: Mapping[str, int], *, customs=frozenset()) -> UnsupportedOperatorError:
    """The error for operators MNN cannot convert: names, kinds, counts and what to do."""
    listed = ", ".join(f"{name} ({'custom' if name in customs else 'builtin'}, x{n})" for name, n in bad.items())
    hints = [REWRITES[name] for name in bad if name in REWRITES]
    if any(name in customs for name in bad):
        hints.append(f"MNN's TFLite converter knows only the custom ops {', '.join(sorted(MNN_CUSTOM_OPS))}")
    if any(name not in REWRITES for name in bad):
        hints.append("cut the graph before them or replace them with builtin ops, or keep the model on TFLite")
    err = UnsupportedOperatorError(
        f"MNN {mnn_version() or ''} cannot convert {path.name}: unsupported TFLite operator(s) {listed}; "
        + "; ".join(hints), operator=next(iter(bad)))
    err.operators = list(bad)  # type: ignore[attr-defined]  # every one, in graph order
    return err
