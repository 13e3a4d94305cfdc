"""`edgepose convert` and `edgepose info`: argument parsing and printing over the converters' API.

edgepose/cli.py imports this module only for these two subcommands. Heavy imports (torch,
onnx, onnxsim) happen inside the API calls, so `edgepose info model.mnn` needs the runtime only.
The parsed flags become a ConvertOptions and an Int8Options here, once (so every INT8 flag is
checked before minutes of FP32 conversion); no argparse Namespace goes further than this module.
Errors are raised as edgepose.errors exceptions; the top-level CLI prints them in one line.
"""
from __future__ import annotations

import argparse
import json
import sys
import textwrap
from typing import Any

from edgepose.spec import HEAD_TYPES

SPEC_FLAGS = ("head", "num_keypoints", "input_size", "layout", "color", "mean", "std", "spec_name",
              "bbox_padding", "input_name")


def _shape(text: str) -> tuple[int, ...]:
    try:
        dims = tuple(int(v) for v in text.replace("x", ",").replace(" ", "").split(",") if v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers like 1,3,256,192, got {text!r}") from None
    if not dims or any(d <= 0 for d in dims):
        raise argparse.ArgumentTypeError(f"expected positive integers like 1,3,256,192, got {text!r}")
    return dims


def _size(text: str) -> tuple[int, int]:
    dims = _shape(text)
    if len(dims) != 2:
        raise argparse.ArgumentTypeError(f"expected WIDTH,HEIGHT like 192,256, got {text!r}")
    return dims  # type: ignore[return-value]


def _triple(text: str) -> tuple[float, float, float]:
    try:
        vals = tuple(float(v) for v in text.replace(" ", "").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected three comma-separated numbers, got {text!r}") from None
    if len(vals) != 3:
        raise argparse.ArgumentTypeError(f"expected three comma-separated numbers (one per channel), got {text!r}")
    return vals  # type: ignore[return-value]


def add_convert_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = textwrap.fill(
        "Convert a model to simplified ONNX and MNN (FP32, and FP16 weights with --fp16), embedding the model "
        "card in every file and checking after each stage, with the real runtimes, that the outputs still "
        "match. Files: <stem>.onnx (PyTorch/MXNet sources), <stem>.sim.onnx, <stem>.dense.tflite (TFLite "
        "sources with sparse weights, DENSIFY folded into constants), <stem>.mnn, <stem>.fp16.mnn, "
        "<stem>.int8.mnn / <stem>.int8.onnx (--int8), <stem>.report.json. An .mnn source gets its FP16 and "
        "INT8 copies. A stage beyond tolerance stops the conversion (exit 1) unless --no-strict.", 78)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = ("examples:\n"
                     "  edgepose convert model.onnx --fp16\n"
                     "  edgepose convert pose_landmark_full.tflite --preset blazepose_full --fp16 -o out/\n"
                     "  edgepose convert pose_detection.tflite --preset blazepose_detector --fp16 -o out/\n"
                     "  edgepose convert deeppose --weights best.pth --fp16\n"
                     "  edgepose convert net.pt --input-shape 1,3,256,192 --meta card.json\n"
                     "  edgepose convert x-symbol.json --params x-0000.params --input-shape 1,3,256,192")
    parser.add_argument("source", help="an .onnx, .tflite, .mnn or TorchScript (.pt/.pth/.ts) file, an MXNet "
                                       "<name>-symbol.json, or a model-zoo name (edgepose.models.list_models())")
    io = parser.add_argument_group("input and output")
    io.add_argument("-o", "--output-dir", help="directory for the artifacts (default: beside the source file, "
                                               "or the current directory for a zoo name)")
    io.add_argument("--name", help="file-name stem of the artifacts (default: the source's name)")
    io.add_argument("--input-shape", type=_shape, metavar="N,C,H,W",
                    help="input shape for PyTorch/MXNet sources (default: from the model card), or to fix "
                         "dynamic dimensions of an ONNX model")
    io.add_argument("--weights", metavar="PTH", help="trained checkpoint for a zoo model (a state dict, or "
                                                     "{'state_dict': ...}; prefixes like module. are handled)")
    io.add_argument("--params", metavar="PARAMS", help="MXNet weights (x-0000.params) for a -symbol.json source")
    stages = parser.add_argument_group("stages")
    stages.add_argument("--fp16", action="store_true", help="also write <stem>.fp16.mnn with FP16 weights")
    stages.add_argument("--static-batch", action="store_true",
                        help="export a fixed batch (default: dynamic batch dimension)")
    stages.add_argument("--no-simplify", action="store_true", help="skip onnxsim")
    stages.add_argument("--opset", type=int, default=17, help="ONNX opset for PyTorch export (default 17)")
    stages.add_argument("--timeout", type=float, default=900.0, metavar="SECONDS",
                        help="stop the native MNN converter after this long (default 900)")
    check = parser.add_argument_group("parity check")
    check.add_argument("--no-strict", action="store_true",
                       help="keep an artifact that fails its parity check and exit 0 (a warning instead)")
    check.add_argument("--image", action="append", default=None, metavar="PATH",
                       help="photo to include in the parity inputs (repeatable; default: a cached pinned photo)")
    check.add_argument("--no-photo", action="store_true", help="parity on random inputs only")
    meta = parser.add_argument_group("model card (metadata embedded in every artifact)")
    meta.add_argument("--meta", metavar="CARD.JSON", help="model card JSON (as ModelSpec.to_json writes)")
    meta.add_argument("--preset", metavar="NAME", help="metadata of a known external model (a GluonCV classifier name gives the input shape only): "
                                                       f"{', '.join(_preset_names())}")
    meta.add_argument("--head", choices=HEAD_TYPES,
                      help="head type; this and the flags below override single fields of the card")
    meta.add_argument("--num-keypoints", type=int, metavar="K", help="number of keypoints")
    meta.add_argument("--input-size", type=_size, metavar="W,H", help="network input width,height in pixels")
    meta.add_argument("--layout", choices=("NCHW", "NHWC"), help="input layout")
    meta.add_argument("--color", choices=("RGB", "BGR"), help="channel order the network expects")
    meta.add_argument("--mean", type=_triple, metavar="R,G,B", help="per-channel mean in 0..255 units")
    meta.add_argument("--std", type=_triple, metavar="R,G,B", help="per-channel std in 0..255 units")
    meta.add_argument("--spec-name", metavar="NAME", help="model name stored in the card")
    meta.add_argument("--bbox-padding", type=float, metavar="F", help="person-box enlargement before cropping (e.g. 1.25)")
    meta.add_argument("--input-name", metavar="NAME", help="the image input's tensor name")
    out = parser.add_argument_group("output")
    out.add_argument("--json", action="store_true", help="print the report as JSON instead of a table")
    out.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    from .quantize.cli import add_int8_arguments

    add_int8_arguments(parser)


def _preset_names() -> list[str]:
    from edgepose.presets import list_presets

    from .mxnet.presets import CLASSIFIERS

    return list_presets() + sorted(CLASSIFIERS)


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    out = {}
    for flag in SPEC_FLAGS:
        value = getattr(args, flag, None)
        if value is not None:
            out["name" if flag == "spec_name" else flag] = value
    return out


def convert_options(args: argparse.Namespace):
    """The conversion flags as a ConvertOptions (checked: a bad --timeout or --name fails here)."""
    from .options import ConvertOptions

    images: Any = None
    if args.no_photo:
        images = []
    elif args.image:
        images = args.image
    return ConvertOptions(
        output_dir=args.output_dir, spec=args.meta, preset=args.preset, meta=_overrides(args),
        input_shape=args.input_shape, weights=args.weights, params=args.params, name=args.name,
        fp16=args.fp16, dynamic_batch=not args.static_batch, simplify=not args.no_simplify,
        strict=not args.no_strict, images=images, opset=args.opset, timeout=args.timeout,
        progress=not args.quiet and not args.json)


_INT8_ONLY = ("calib", "calib_count", "int8_holdout", "keep_float", "ort_activations", "ort_weight_range",
              "int8_cpu_class")


def int8_options(args: argparse.Namespace):
    """The INT8 flags as an Int8Options, or None without --int8. Every check runs here, once:
    an INT8 flag without --int8, --int8 without --calib, a missing folder, an unknown method."""
    from edgepose.errors import CalibrationError, ConversionError

    from .quantize.api import Int8Options
    from .quantize.cli import route_methods

    if not getattr(args, "int8", False):
        given = [f for f in _INT8_ONLY if getattr(args, f, None)]
        if getattr(args, "ort_float_fallback", None) is False:
            given.append("no_ort_float_fallback")
        if given:
            raise ConversionError(f"--{given[0].replace('_', '-')} is an INT8 option; add --int8")
        return None
    if not args.calib:
        raise CalibrationError("--int8 needs --calib DIR (a folder of photos like the model will see) "
                               "or --calib pinned:person / pinned:hand")
    rounds = args.int8_speed_rounds
    return Int8Options(
        calib=args.calib, engines=(args.engine,), mnn_weight_method=args.weight_method,
        ort_activations=args.ort_activations, ort_weight_range=args.ort_weight_range,
        ort_float_fallback=args.ort_float_fallback, cpu_class=args.int8_cpu_class, calib_count=args.calib_count,
        holdout=args.int8_holdout,
        keep_float=tuple(args.keep_float or ()), threshold_px_256=args.int8_threshold,
        strict=not args.int8_no_strict, layer_report=args.layer_report, speed=rounds > 0,
        speed_rounds=max(rounds, 1), progress=not getattr(args, "quiet", False), **route_methods(args.method))


def run_convert(args: argparse.Namespace) -> int:
    from .mnn_native import terminate_cleanly

    int8 = int8_options(args)  # before spending minutes on the FP32 stages
    options = convert_options(args)
    with terminate_cleanly():  # SIGTERM: the native child killed, .part files and scratch removed
        return _run_convert(args.source, options, int8, as_json=args.json)


def _run_convert(source: str, options, int8, *, as_json: bool) -> int:
    from edgepose.errors import EdgePoseError, ParityError

    from .pipeline import convert

    try:
        report = convert(source, options=options, int8=int8)
    except EdgePoseError as exc:  # show the figures, then let the top level print the one-line error
        report = exc.report
        int8_ran = report is not None and any(s.precision == "int8" for s in report.stages)
        if report is not None and (isinstance(exc, ParityError) or int8_ran):
            print(report.to_json() if as_json else report.format_table())
            sys.stdout.flush()
        raise
    print(report.to_json() if as_json else report.format_table())
    sys.stdout.flush()
    _warn_kept_failures(report)
    return 0 if report.ok else 1


def _warn_kept_failures(report) -> None:
    """--no-strict keeps a file whose parity check failed and exits 0: say so on stderr, one line a stage,
    so a script that only reads the exit status still leaves a trace a person sees."""
    for stage in report.stages:
        if stage.status == "parity-warning":
            worst = stage.parity.worst if stage.parity is not None else None
            what = f" (worst output {worst.name})" if worst is not None else ""
            print(f"edgepose convert: WARNING: {stage.name} FAILED its parity check{what} and was kept "
                  f"only because of --no-strict: {stage.artifact}", file=sys.stderr)


def add_info_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = ("Print a model file's edgepose metadata, inputs and outputs, size and operator counts "
                          "(.mnn, .onnx, .tflite).")
    parser.add_argument("model", help="an .mnn, .onnx or .tflite file")
    parser.add_argument("--json", action="store_true", help="print the information as JSON")


def run_info(args: argparse.Namespace) -> int:
    from .info import format_info, model_info

    info = model_info(args.model)
    print(json.dumps(info, indent=2) if args.json else format_info(info))
    return 0


class _Command:
    """What the runtime CLI loads through the `edgepose.commands` entry point."""

    def __init__(self, add_arguments, run):
        self.add_arguments, self.run = add_arguments, run


CONVERT_COMMAND = _Command(add_convert_arguments, run_convert)
INFO_COMMAND = _Command(add_info_arguments, run_info)
