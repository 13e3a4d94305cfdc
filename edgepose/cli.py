"""`edgepose` command line: a thin layer over the Python API.

Errors raised on purpose (edgepose.errors) become one line on stderr and exit status 1;
`--debug` shows the traceback. Build-time subcommands (convert, info, bench) import their
code only when called, so the runtime-only install keeps a working `demo` and `predict`.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import warnings
from typing import Any, Callable, Sequence

from pathlib import Path

from . import __version__
from .errors import EdgePoseError, InputError, RandomWeightsWarning
from .presets import PRESETS


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
                   repeats=args.repeats, threads=args.threads, max_people=args.max_people,
                   backend=None if args.backend == "mnn" else args.backend)
    inst = res.result
    precision = "FP32" if args.fp32 else "FP16"
    engines = res.engines or {}

    def what(path, role):
        engine = engines.get(role, "mnn")
        kind = f"MNN {precision}" if engine == "mnn" else engine
        return f"{path}  ({path.stat().st_size / 1e6:.1f} MB, {kind})"
    if res.detector is not None:
        print(f"detector   {what(res.detector, 'detector')}")
    print(f"model      {what(res.model, 'model')}")
    print(f"image      {res.image}")
    print(f"people     {len(inst)}" + ("" if len(inst) else " (no person detected)"))
    presence = inst.extras.get("presence")
    score = inst.extras.get("detection_score")
    for i in range(len(inst)):
        parts = [f"{int((inst.scores[i] >= 0.5).sum())}/{inst.keypoints.shape[1]} keypoints visible"]
        if score is not None:
            parts.append(f"detection {float(score[i]):.3f}")
        if presence is not None:
            parts.append(f"presence {float(presence[i]):.3f}")
        box = ", ".join(f"{v:.0f}" for v in inst.bboxes[i])
        print(f"  person {i}  box [{box}]  " + ", ".join(parts))
    print(f"annotated  {res.annotated}")
    print(f"json       {res.keypoints_json}")
    t = res.timing
    what = "pipeline" if res.detector is not None else "predict"
    stages = (f"; detector {t['detector_ms']:.2f} ms, keypoints {t['keypoints_ms']:.2f} ms"
              if "detector_ms" in t else "")
    print(f"latency    {what} median {t['median_ms']:.2f} ms (min {t['min_ms']:.2f}, max {t['max_ms']:.2f}) "
          f"over {args.repeats} runs, {args.threads} thread(s){stages}")
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    import cv2

    from .predictor import Predictor
    from .visualize import draw_pose

    from .demo import check_output_image, encode_png, pinned_model
    from .files import atomic_write_bytes
    from .detector import Detector
    from .pipeline import Pipeline
    from .processing.image import load_image

    predictor = Predictor(args.model, backend=args.backend, threads=args.threads)
    image = load_image(args.image)
    if args.output:  # before the model runs: the extension and the directory
        if Path(args.output).resolve() == Path(args.image).resolve():
            raise InputError(f"-o {args.output} would overwrite the input image; choose another output path")
        check_output_image(Path(args.output))
    detector = args.detector or predictor.spec.decode.get("detector")
    if args.bbox or not detector:
        result = predictor.predict(image, args.bbox or None)
    else:  # the model's card names its detector (a pinned preset), or --detector gives a file
        if not Path(detector).suffix and detector in PRESETS:
            detector = pinned_model(detector_asset(detector), detector)
        pipeline = Pipeline(Detector(detector, backend=args.backend, threads=args.threads), predictor,
                            max_people=args.max_people)
        result = pipeline(image)
    if args.output:
        out = Path(args.output)
        if out.resolve() == Path(args.image).resolve():
            raise InputError(f"-o {out} would overwrite the input image; choose another output path")
        atomic_write_bytes(out, encode_png(draw_pose(image, result, score_threshold=args.score_threshold))
                           if out.suffix.lower() == ".png" else _encode(out, draw_pose(image, result)),
                           protect=args.image)
    print(result.to_json())
    return 0


def _cmd_track(args: argparse.Namespace) -> int:
    from .video import run_track

    def make_pipeline():  # called by run_track once the source and outputs are checked
        from .demo import default_pipeline, demo_model, detector_model
        from .detector import Detector
        from .pipeline import Pipeline
        from .predictor import Predictor

        if args.model or args.detector:
            backend = None if args.backend == "mnn" else args.backend
            return Pipeline(Detector(args.detector or detector_model(fp16=not args.fp32), backend=backend,
                                     threads=args.threads),
                            Predictor(args.model or demo_model(fp16=not args.fp32), backend=backend,
                                      threads=args.threads), rounds=args.rounds)
        return default_pipeline(fp16=not args.fp32, threads=args.threads, rounds=args.rounds,
                                backend=None if args.backend == "mnn" else args.backend)

    summary = run_track(args.source, output=args.output, jsonl=args.jsonl, show=args.show, pipeline=make_pipeline,
                        fps=args.fps, max_frames=args.max_frames, progress=not args.no_progress,
                        detect_every=args.detect_every or None, max_people=args.max_people,
                        smooth=not args.no_smooth)
    t = summary.timing_ms
    print(f"source     {summary.source['name']} ({summary.source['kind']}, "
          + (f"{summary.source['size'][0]}x{summary.source['size'][1]}, " if summary.source.get("size") else "")
          + f"{summary.source['fps'] or 0:.0f} fps)")
    print(f"frames     {summary.frames} in {summary.seconds:.1f} s ({summary.fps:.1f} fps); detector ran on "
          f"{summary.detector_runs}; per frame median {t.get('total_ms', 0):.1f} ms (keypoints "
          f"{t.get('keypoints_ms', 0):.1f}, tracking {t.get('tracking_ms', 0):.1f})")
    print(f"people     {len(summary.ids)} track IDs ({', '.join(map(str, summary.ids[:20]))}"
          f"{', ...' if len(summary.ids) > 20 else ''}), at most {summary.max_people} at once")
    for kind, path in summary.outputs.items():
        print(f"{kind:10s} {path}")
    if summary.stopped:
        print(f"stopped    by {summary.stopped} after {summary.frames} frames; the outputs hold those frames",
              file=sys.stderr)
    return 130 if summary.stopped == "Ctrl-C" else 0


def _cmd_batch(args: argparse.Namespace) -> int:
    from .batch import BatchConfig, run_batch

    sources = list(args.sources)
    ray = args.ray
    if isinstance(ray, str) and ray != "" and Path(ray).exists():  # `--ray photos/ -o out`: a SOURCE, not an address
        sources.insert(0, ray)
        ray = True
    if ray == "":
        ray = True
    if not sources:
        raise InputError("give at least one SOURCE (folder, glob, image or video file, or list file)")
    config = BatchConfig(model=args.model, detector=args.detector, boxes=args.boxes, fp16=not args.fp32,
                         rounds=args.rounds, max_people=args.max_people, min_score=args.min_score)
    init = {"num_cpus": args.ray_cpus} if args.ray_cpus else None
    summary = run_batch(sources, args.output, config=config, workers=args.workers, ray=ray or None,
                        annotate=args.annotate, progress=not args.no_progress, retry_errors=args.retry_errors,
                        part_rows=args.part_rows, item_timeout=args.item_timeout, ray_init=init)
    s = summary
    print(f"inputs     {s.inputs} ({s.skipped} already in {s.out}, {s.done} run now)")
    if s.done:
        print(f"engine     {s.engine}, {s.workers} worker(s)" + (f", started in {s.startup_s:.1f} s" if s.startup_s else ""))
    print(f"done       {s.done} inputs, {s.frames} frames in {s.seconds:.1f} s ({s.items_per_s:.2f} items/s, "
          f"{s.frames_per_s:.1f} frames/s); {s.rows} rows")
    if s.recovered_rows:
        print(f"recovered  {s.recovered_rows} rows an interrupted run had journalled")
    if s.peak_mb:
        print(f"memory     peak per worker {max(s.peak_mb.values()):.0f} MB")
    for death in s.worker_deaths:
        print(f"died       {death['source']}: {death['how']} (attempt {death['attempt']})", file=sys.stderr)
    if s.errors:
        print(f"errors     {s.errors} inputs have error rows:", file=sys.stderr)
        for source, error in s.error_samples[:10]:
            print(f"  {source}: {error}", file=sys.stderr)
    print(f"parquet    {s.out}/part-*.parquet ({len(s.parts)} part(s) written now)")
    return 0


def _encode(path: Path, image) -> bytes:
    import cv2

    try:
        ok, buf = cv2.imencode(path.suffix or ".png", image)
    except cv2.error:
        ok = False
    if not ok:
        raise InputError(f"OpenCV cannot write {path.suffix!r} images; use .png or .jpg")
    return buf.tobytes()


def _source_kinds() -> str:
    from .sources import describe_kinds

    return describe_kinds()


def detector_asset(preset: str) -> str:
    """The pinned asset a detector preset converts from."""
    from .demo import DETECTOR_MODEL, DETECTOR_PRESET

    if preset != DETECTOR_PRESET:
        raise InputError(f"no pinned detector for preset {preset!r}; pass --detector FILE")
    return DETECTOR_MODEL


def _plugin(name: str) -> Any:
    """The build-time command `name` (an object with add_arguments(parser) and run(args)), registered by
    the build-time packages under the `edgepose.commands` entry point: the runtime never names them."""
    from importlib.metadata import entry_points

    found = [ep for ep in entry_points(group="edgepose.commands") if ep.name == name]
    if not found:
        raise ImportError(f"no `{name}` command is registered (entry point group edgepose.commands)")
    return found[0].load()


def _delegate(name: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        return _plugin(name).run(args)
    return run


def _lazy_arguments(name: str) -> Callable[[argparse.ArgumentParser], None]:
    def add(parser: argparse.ArgumentParser) -> None:
        try:
            _plugin(name).add_arguments(parser)
        except ImportError as exc:  # the build-time extra is not installed
            parser.set_defaults(_missing=f"{exc}; install the build tools with `pip install 'edgepose[convert]'`")
    return add


# Build-time commands: name -> help. Their code registers itself (pyproject: edgepose.commands) and
# is loaded only for the command being run.
_BUILD_COMMANDS = {
    "convert": "convert a model (ONNX, PyTorch, TFLite, MXNet) to simplified ONNX and MNN, with parity checks",
    "info": "print a model's metadata, inputs/outputs, size and operator counts",
    "bench": "measure single-thread latency of models side by side (MNN, ONNX Runtime, TFLite)",
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
    demo.add_argument("--bbox", type=_floats, help="one person box x1,y1,x2,y2 for BlazePose alone "
                      "(default: the person detector finds every person)")
    demo.add_argument("--max-people", type=int, help="keep at most this many people (default: all)")
    demo.add_argument("-o", "--output-dir", default="edgepose-demo", help="where to write the PNG and JSON")
    demo.add_argument("--fp32", action="store_true", help="convert with FP32 weights instead of FP16")
    demo.add_argument("--repeats", type=int, default=30, help="timed predict calls (default 30)")
    demo.add_argument("--threads", type=int, default=1, help="inference threads (default 1)")
    demo.add_argument("--backend", choices=["mnn", "auto"], default="mnn",
                      help="mnn (default), or auto: the fastest installed engine per model on this CPU, "
                           "measured once (MNN, LiteRT, OpenVINO on the original .tflite files)")
    demo.set_defaults(func=_cmd_demo)

    pred = sub.add_parser("predict", help="run a converted model on an image and print keypoints as JSON")
    pred.add_argument("model", help=".mnn or .onnx file carrying edgepose metadata")
    pred.add_argument("image", help="image file")
    pred.add_argument("--bbox", type=_floats, action="append", help="person box x1,y1,x2,y2 (repeatable)")
    pred.add_argument("--backend", choices=["mnn", "onnxruntime", "litert", "openvino", "auto"],
                      help="default: from the file suffix; auto: the fastest installed engine for this model "
                           "and its converted siblings on this CPU, measured once and cached")
    pred.add_argument("--detector", help="person detector (.mnn/.onnx, or a preset name such as blazepose_detector) "
                      "run first when no --bbox is given; default: the one the model's card names, if any")
    pred.add_argument("--max-people", type=int, help="keep at most this many people (default: all)")
    pred.add_argument("--threads", type=int, default=1)
    pred.add_argument("-o", "--output", help="also write an annotated image here")
    pred.add_argument("--score-threshold", type=float, default=0.5, help="drawing threshold (default 0.5)")
    pred.set_defaults(func=_cmd_predict)

    track = sub.add_parser(
        "track", help="track people through a video, image folder/glob or camera; annotated video + JSON lines",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Keypoints of every person through a stream, with stable IDs: each person's crop comes from "
                    "their previous frame, the detector runs only when needed, keypoints are smoothed (MediaPipe's "
                    "One Euro filters). Outputs are written under a temporary name and renamed at the end; "
                    "Ctrl-C stops and keeps the frames done.",
        epilog="SOURCE is one of:\n" + _source_kinds())
    track.add_argument("source", metavar="SOURCE", help="video file, image folder or glob, camera index, "
                       "or clip:PHOTO:MOTION (e.g. clip:bus:pan)")
    track.add_argument("-o", "--output", help="annotated video (.mp4 or .avi)")
    track.add_argument("--jsonl", help="one JSON line per frame: frame, time, people with id, bbox, keypoints")
    track.add_argument("--show", action="store_true", help="live window (needs GUI OpenCV: the gui extra)")
    track.add_argument("--detect-every", type=int, default=15, metavar="N",
                       help="run the detector at least every N frames for people walking in (default 15; "
                            "0: only when nobody is tracked or someone is lost, as MediaPipe)")
    track.add_argument("--max-people", type=int, help="track at most this many people (default: all)")
    track.add_argument("--no-smooth", action="store_true", help="raw keypoints (no One Euro smoothing)")
    track.add_argument("--fps", type=float, help="frame rate of an image folder (default 30), or to override a file's")
    track.add_argument("--max-frames", type=int, help="stop after this many frames")
    track.add_argument("--rounds", type=int, default=3, help="detector passes per detection (default 3)")
    track.add_argument("--model", help="keypoint model (default: BlazePose full from the pinned wheel)")
    track.add_argument("--detector", help="person detector (default: MediaPipe's, from the pinned wheel)")
    track.add_argument("--fp32", action="store_true", help="the pinned models with FP32 weights")
    track.add_argument("--backend", choices=["mnn", "auto"], default="mnn",
                       help="engine: mnn (default) or auto (each model on the fastest engine installed here, "
                            "measured once; see Backends in the README)")
    track.add_argument("--threads", type=int, default=1)
    track.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    track.set_defaults(func=_cmd_track)

    batch = sub.add_parser(
        "batch", help="run the pipeline over folders, globs, videos or list files on every core (or Ray); Parquet out",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="One row per person per frame into OUT/part-*.parquet (pyarrow: the batch extra). Resumable: "
                    "a rerun skips the inputs OUT already holds; an unreadable input is an error row; a worker "
                    "that dies is reported and its input retried once. See the README's 'Batch runs'.",
        epilog="SOURCE: a folder (walked recursively for images and videos), a glob ('clips/**/*.mp4'), an image "
               "or video file, or a list file (.txt/.lst/.list, one SOURCE per line).\n"
               "Ray: `--ray` alone starts a local Ray (or joins RAY_ADDRESS); `--ray=auto` or "
               "`--ray=ray://head:10001` joins a cluster.")
    batch.add_argument("sources", metavar="SOURCE", nargs="*", help="inputs (see below)")
    batch.add_argument("-o", "--output", required=True, metavar="OUT", help="output folder (created; resumed if it exists)")
    batch.add_argument("--workers", "-j", type=int, help="worker processes (Ray: actors); default one per core")
    batch.add_argument("--ray", nargs="?", const="", metavar="ADDRESS",
                       help="run on Ray Data (the ray extra); ADDRESS of a cluster, or none for a local one")
    batch.add_argument("--ray-cpus", type=int, help="CPUs of a local Ray started here (default: all)")
    batch.add_argument("--annotate", action="store_true", help="also write annotated images/videos to OUT/annotated/")
    batch.add_argument("--model", help="keypoint model (default: BlazePose full from the pinned wheel)")
    batch.add_argument("--detector", help="person detector (default: the one the model's card names)")
    batch.add_argument("--boxes", metavar="DIR", help="no detector: boxes per image from DIR/<relative path>.json "
                       "([[x1, y1, x2, y2], ...]; a video: {\"frames\": {\"0\": [...]}})")
    batch.add_argument("--fp32", action="store_true", help="the pinned models with FP32 weights")
    batch.add_argument("--rounds", type=int, default=3, help="detector passes per frame (default 3)")
    batch.add_argument("--max-people", type=int, help="keep at most this many people per frame")
    batch.add_argument("--min-score", type=float, help="detector score threshold (default: the model's)")
    batch.add_argument("--retry-errors", action="store_true", help="run again the inputs OUT holds error rows for")
    batch.add_argument("--item-timeout", type=float, metavar="S", help="kill a worker stuck on one input this long "
                       "(then retried once, as a crash)")
    batch.add_argument("--part-rows", type=int, default=20000, help="rows per Parquet part (default 20000)")
    batch.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    batch.set_defaults(func=_cmd_batch)

    chosen = next((a for a in (argv or []) if not a.startswith("-")), None)
    for name, help_text in _BUILD_COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:  # load build-time code only for the command being run
            _lazy_arguments(name)(p)
        p.set_defaults(func=_delegate(name))
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
    bad = _check_counts(args)
    if bad:
        print(f"edgepose {args.command}: error: {bad}", file=sys.stderr)
        return 1
    from ._text import printable  # messages can quote metadata: no raw control characters

    try:
        with _loud_warnings(args.command):
            code = int(args.func(args) or 0)
        sys.stdout.flush()  # a reader that went away (`| head`) shows here, inside the handlers
        return code
    except EdgePoseError as exc:
        if args.debug:
            raise
        print(f"edgepose {args.command}: error: {printable(exc)}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `edgepose predict ... | head`: the reader left; nothing to report
        _silence_stdout()
        return 1
    except OSError as exc:  # an output the command could not write (disk full, read-only, ...)
        if args.debug:
            raise
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        print(f"edgepose {args.command}: error: {printable(exc.strerror or exc)}{printable(where)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("edgepose: interrupted", file=sys.stderr)
        return 130


@contextlib.contextmanager
def _loud_warnings(command: str):
    """A model with random weights (provenance `weights: random-init`) is said on stderr, once per
    model and run, as one plain line before the output: its keypoints are noise. Python's default
    display (file:line, once per process, hidden by some warning filters) is not enough for that."""
    from ._text import printable

    seen: set[str] = set()
    show = warnings.showwarning

    def route(message, category, filename, lineno, file=None, line=None):
        if not issubclass(category, RandomWeightsWarning):
            return show(message, category, filename, lineno, file, line)
        text = str(message)
        if text not in seen:
            seen.add(text)
            print(f"edgepose {command}: WARNING: {printable(text)}", file=sys.stderr, flush=True)

    with warnings.catch_warnings():
        warnings.simplefilter("always", RandomWeightsWarning)
        warnings.showwarning = route
        yield


# Counts that must be at least 1 (0 where noted); checked before any work, one line on error.
_COUNTS = {"threads": 1, "repeats": 1, "max_people": 1, "rounds": 1, "max_frames": 1, "detect_every": 0}
MAX_THREADS = 256


def _check_counts(args: argparse.Namespace) -> str | None:
    for name, low in _COUNTS.items():
        value = getattr(args, name, None)
        if value is not None and value < low:
            return f"--{name.replace('_', '-')} must be at least {low}, got {value}"
    threads = getattr(args, "threads", None)
    if threads is not None and threads > MAX_THREADS:
        return f"--threads {threads} is more than {MAX_THREADS}; use at most the number of cores"
    return None


def _silence_stdout() -> None:
    """Point fd 1 at /dev/null so Python's final flush does not raise again on the closed pipe."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


if __name__ == "__main__":
    sys.exit(main())
