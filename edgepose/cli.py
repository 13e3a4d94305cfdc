"""`edgepose` command line: a thin layer over the Python API.

Errors raised on purpose (edgepose.errors) become one line on stderr and exit status 1;
`--debug` shows the traceback. Build-time subcommands (convert, info, bench) import their
code only when called, so the runtime-only install keeps a working `demo` and `predict`.
"""
from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
from typing import Callable, Sequence

from . import __version__
from .errors import EdgePoseError


def _floats(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.replace(" ", "").split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
    if len(values) != 4:
        raise argparse.ArgumentTypeError(f"a bbox is 4 numbers x1,y1,x2,y2, got {text!r}")
    return values


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    res = run_demo(image=args.image, bbox=args.bbox, output_dir=args.output_dir, fp16=not args.fp32,
                   repeats=args.repeats, threads=args.threads)
    inst = res.result
    presence = inst.extras.get("presence")
    print(f"model      {res.model}  ({res.model.stat().st_size / 1e6:.1f} MB, MNN {'FP32' if args.fp32 else 'FP16'})")
    print(f"image      {res.image}")
    print(f"keypoints  {inst.keypoints.shape[1]} per person, {int((inst.scores >= 0.5).sum())} visible"
          + (f", person presence {float(presence[0]):.3f}" if presence is not None else ""))
    print(f"annotated  {res.annotated}")
    print(f"json       {res.keypoints_json}")
    t = res.timing
    print(f"latency    predict median {t['median_ms']:.2f} ms (min {t['min_ms']:.2f}, max {t['max_ms']:.2f}) "
          f"over {args.repeats} runs, {args.threads} thread(s)")
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    import cv2

    from .predictor import Predictor
    from .visualize import draw_pose

    predictor = Predictor(args.model, backend=args.backend, threads=args.threads)
    image = cv2.imread(args.image, cv2.IMREAD_COLOR) if isinstance(args.image, str) else None
    result = predictor.predict(image if image is not None else args.image, args.bbox or None)
    if args.output:
        cv2.imwrite(args.output, draw_pose(image, result, score_threshold=args.score_threshold))
    print(result.to_json())
    return 0


def _delegate(module: str, runner: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        return getattr(importlib.import_module(module), runner)(args)
    return run


def _lazy_arguments(module: str, adder: str) -> Callable[[argparse.ArgumentParser], None]:
    def add(parser: argparse.ArgumentParser) -> None:
        try:
            getattr(importlib.import_module(module), adder)(parser)
        except ImportError as exc:  # the build-time extra is not installed
            parser.set_defaults(_missing=f"{exc}; install the build tools with `pip install 'edgepose[convert]'`")
    return add


# name -> (help, add-arguments, run); build-time ones resolve their module only when chosen.
_BUILD_COMMANDS = {
    "convert": ("convert a model (ONNX, PyTorch, TFLite, MXNet) to simplified ONNX and MNN, with parity checks",
                "edgepose.converters.cli", "add_convert_arguments", "run_convert"),
    "info": ("print a model's metadata, inputs/outputs, size and operator counts",
             "edgepose.converters.cli", "add_info_arguments", "run_info"),
    "bench": ("measure single-thread latency of models side by side (MNN, ONNX Runtime, TFLite)",
              "edgepose.benchmarks.cli", "add_bench_arguments", "run_bench"),
}


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edgepose", description="CPU edge inference for keypoint/pose models.")
    parser.add_argument("--version", action="version", version=f"edgepose {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    parser.add_argument("-v", "--verbose", action="store_true", help="show progress logs")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = sub.add_parser("demo", help="run MediaPipe BlazePose (real weights) on a real photo; the main job",
                          description="Fetch BlazePose from the pinned mediapipe wheel, convert it to MNN FP16 "
                                      "with metadata, run it on a photo, write an annotated PNG and JSON, print latency.")
    demo.add_argument("--image", help="an image path, or a pinned photo: astronaut (default), grace_hopper, bus, zidane")
    demo.add_argument("--bbox", type=_floats, help="person box x1,y1,x2,y2 (default: the whole image)")
    demo.add_argument("-o", "--output-dir", default="edgepose-demo", help="where to write the PNG and JSON")
    demo.add_argument("--fp32", action="store_true", help="convert with FP32 weights instead of FP16")
    demo.add_argument("--repeats", type=int, default=30, help="timed predict calls (default 30)")
    demo.add_argument("--threads", type=int, default=1, help="inference threads (default 1)")
    demo.set_defaults(func=_cmd_demo)

    pred = sub.add_parser("predict", help="run a converted model on an image and print keypoints as JSON")
    pred.add_argument("model", help=".mnn or .onnx file carrying edgepose metadata")
    pred.add_argument("image", help="image file")
    pred.add_argument("--bbox", type=_floats, action="append", help="person box x1,y1,x2,y2 (repeatable)")
    pred.add_argument("--backend", choices=["mnn", "onnxruntime"], help="default: from the file suffix")
    pred.add_argument("--threads", type=int, default=1)
    pred.add_argument("-o", "--output", help="also write an annotated image here")
    pred.add_argument("--score-threshold", type=float, default=0.5, help="drawing threshold (default 0.5)")
    pred.set_defaults(func=_cmd_predict)

    chosen = next((a for a in (argv or []) if not a.startswith("-")), None)
    for name, (help_text, module, adder, runner) in _BUILD_COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:  # import build-time code only for the command being run
            _lazy_arguments(module, adder)(p)
        p.set_defaults(func=_delegate(module, runner))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    if getattr(args, "_missing", None):
        print(f"edgepose {args.command}: {args._missing}", file=sys.stderr)
        return 1
    try:
        return int(args.func(args) or 0)
    except EdgePoseError as exc:
        if args.debug:
            raise
        print(f"edgepose {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("edgepose: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
