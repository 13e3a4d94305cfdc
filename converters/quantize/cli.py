"""INT8 flags for `edgepose convert`.

    edgepose convert model.onnx --int8 --calib photos/ [--engine mnn|onnxruntime|both]
                                [--method EMA|KL|ADMM|minmax|entropy|percentile] [--calib-count N]

The converter CLI adds the flags with `add_int8_arguments(parser)` and turns them into an
Int8Options once (converters.cli.int8_options, with `route_methods` for --method); `convert`
runs the engines as stages (converters.quantize.stage).
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Iterable

from edgepose.cpu import CLASSES
from edgepose.errors import ConversionError

from . import mnn_engine, ort_engine
from .api import DEFAULT_THRESHOLD_PX_256

_MNN = {m.lower(): m for m in mnn_engine.FEATURE_METHODS}
_ORT = {m: m for m in ort_engine.METHODS}


def add_int8_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group(
        "INT8 quantisation",
        "calibrate on photos cropped exactly as the Predictor crops them; check keypoints against FP32 on "
        "held-out photos and time both (1 thread); write <stem>.int8.mnn / <stem>.int8.onnx and <stem>.int8.json")
    g.add_argument("--int8", action="store_true", help="also write INT8 files (needs --calib)")
    g.add_argument("--calib", metavar="DIR", help="folder of calibration images (+ optional boxes.json: "
                   '{"img.jpg": [[x1, y1, x2, y2], ...]}), or pinned:person / pinned:hand (the pinned photos)')
    g.add_argument("--engine", default="both", choices=("mnn", "onnxruntime", "ort", "both"),
                   help="which runtime's INT8 to produce (default both)")
    g.add_argument("--method", action="append", default=None, metavar="NAME",
                   help="calibration method, routed by name: MNN EMA (default) | KL | ADMM; ONNX Runtime "
                        "minmax (default) | entropy | percentile (repeatable, one per engine)")
    g.add_argument("--weight-method", default="MAX_ABS", type=str.upper, choices=mnn_engine.WEIGHT_METHODS,
                   help="MNN weight quantisation (default MAX_ABS)")
    g.add_argument("--ort-activations", default=None, choices=ort_engine.ACTIVATIONS,
                   help="ONNX Runtime activation type: uint8 (U8S8, the default: fastest) or int8 (S8S8; on x86 "
                        "ONNX Runtime runs it on the same U8S8 kernels)")
    g.add_argument("--ort-weight-range", default=None, choices=ort_engine.WEIGHT_RANGES,
                   help="ONNX Runtime int8 weight range: full (8 bits), pair-safe (per channel the widest range "
                        "whose int16 pair sums stay within int16 on the calibration crops) or 7bit (reduce_range). "
                        "Default: full on CPUs with VNNI/AMX and Arm, pair-safe on other x86, whose U8S8 kernels "
                        "(vpmaddubsw) saturate otherwise")
    g.add_argument("--no-ort-float-fallback", dest="ort_float_fallback", action="store_false", default=None,
                   help="ONNX Runtime: quantise every tensor (no mixed precision). By default the few activation "
                        "tensors 8 bits hurt most on the calibration crops stay float, within a speed budget")
    g.add_argument("--int8-cpu-class", default=None, choices=CLASSES, metavar="CLASS",
                   help="choose the INT8 settings for this CPU class instead of this machine's (e.g. x86-avx2 "
                        "to make a file for AVX2-only CPUs on a VNNI machine); accuracy and speed are still "
                        f"measured here. One of: {', '.join(CLASSES)}")
    g.add_argument("--calib-count", type=int, metavar="N",
                   help="calibration samples to use, spread over the set (default: up to 64); more than the "
                        "folder gives is an error")
    g.add_argument("--int8-holdout", metavar="DIR", help="photos for the accuracy check (default: every 5th "
                   "calibration image is held out; for pinned:* the held-out pinned photo)")
    g.add_argument("--keep-float", action="append", default=None, metavar="LAYER",
                   help="leave a layer in float: 'first' (first conv), 'head' (last conv before each output) or "
                        "an op/node name (repeatable)")
    g.add_argument("--int8-threshold", type=float, default=DEFAULT_THRESHOLD_PX_256, metavar="PX",
                   help=f"largest mean keypoint error vs FP32, px at 256-pixel input scale "
                        f"(default {DEFAULT_THRESHOLD_PX_256:g}); above it the conversion fails")
    g.add_argument("--int8-no-strict", action="store_true", help="keep an INT8 file that misses the threshold")
    g.add_argument("--layer-report", action="store_true",
                   help="list the layers that lose most (MNN debug cosine for KL/ADMM; ORT qdq_loss_debug)")
    g.add_argument("--int8-speed-rounds", type=int, default=12, metavar="N",
                   help="interleaved timing rounds FP32/INT8 (0 = do not time)")


def route_methods(methods: Iterable[str] | None) -> dict[str, str]:
    """--method values -> {"mnn_method": ..., "ort_method": ...}; unknown names list the valid ones."""
    out: dict[str, str] = {}
    for raw in methods or ():
        key = raw.strip().lower()
        if key in _MNN:
            out["mnn_method"] = _MNN[key]
        elif key in _ORT:
            out["ort_method"] = _ORT[key]
        else:
            raise ConversionError(f"unknown --method {raw!r}; MNN: {', '.join(mnn_engine.FEATURE_METHODS)}; "
                                  f"ONNX Runtime: {', '.join(ort_engine.METHODS)}")
    return out


def fp32_artifacts_from_report(report, source: str | Path | None = None) -> dict[str, Path]:
    """{"mnn", "onnx", "tflite"} FP32 files of a ConversionReport (+ the source if it is .tflite/.onnx)."""
    out: dict[str, Path] = {}
    for stage in report.stages:
        if stage.artifact is None or stage.precision != "fp32":
            continue
        suffix = stage.artifact.suffix
        if suffix == ".mnn":
            out["mnn"] = stage.artifact
        elif suffix == ".onnx":
            out["onnx"] = stage.artifact  # the last ONNX stage (the simplified one) wins
    if source is not None:
        src = Path(source)
        if src.suffix == ".tflite" and src.is_file():
            out["tflite"] = src
        elif src.suffix == ".onnx" and src.is_file() and "onnx" not in out:
            out["onnx"] = src
    return out
