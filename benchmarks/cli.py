"""`edgepose bench`: a thin layer over edgepose.benchmarks.run_benchmark.

    edgepose bench                                  # table A models, all variants, report in bench-out/
    edgepose bench --quick                          # CI setting: 3 models, 2 variants, few rounds
    edgepose bench deeppose heatmap -V mnn-fp16,ort-fp32 --rounds 9
    edgepose bench pose_landmark_full               # MediaPipe BlazePose: TFLite reference vs MNN
    edgepose bench model.onnx other.mnn             # files
    edgepose bench --writeup deeppose               # the write-up's method: 5 x 100 calls, `elapse X ms`
    edgepose bench table-b                          # table B: pruned ResNets (MXNet fixtures; built if missing)
    edgepose bench table-c int8-tflite              # table C: FP32 vs INT8 (MNN, ONNX Runtime)
    edgepose bench pipeline --image bus             # detector + landmarks vs MediaPipe's Pose.process, 1 core
    edgepose bench tracking bus:pan                 # video: tracking vs every-frame detection vs MediaPipe VIDEO

Tables go to stdout (or JSON with --json), progress to stderr.

Extras (pyproject.toml): registry models need `torch` and `convert` (torch -> ONNX -> onnxsim -> MNN;
ONNX Runtime and LiteRT come with `convert`), the reports' table-A chart needs `bench`:
    pip install -e ".[bench,convert,torch]"
Only .mnn/.onnx files: `bench` (+ `ort` for ort-* variants). The MXNet fixtures (table-b/c) build
their own venv on first use (network). The pytest suite (`pytest benchmarks/`) needs `bench` too.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys

from edgepose.errors import EdgePoseError

from .variants import DEFAULT_VARIANTS, QUICK_VARIANTS, TABLE_VARIANT

log = logging.getLogger(__name__)

# Module a bench run may import -> the pyproject extra that installs it.
EXTRAS = {"torch": "torch", "onnx": "convert", "onnxsim": "convert", "tflite2onnx": "convert", "tflite": "convert",
          "onnxruntime": "ort", "ai_edge_litert": "demo", "openvino": "openvino", "matplotlib": "bench",
          "tqdm": "bench", "pytest_benchmark": "bench"}
NEEDS = 'needs the extras bench, convert and torch for registry models: pip install -e ".[bench,convert,torch]"'


class MissingExtraError(EdgePoseError, ImportError):
    """A module of an optional extra is not installed; the message names the pip command."""


def missing_extra(exc: ImportError) -> MissingExtraError | None:
    """The error to show for an ImportError raised during a run: which extra installs the missing module
    (None when the module belongs to no extra: that is a bug, not an installation to fix)."""
    module = (exc.name or "").split(".")[0]
    extra = EXTRAS.get(module)
    if extra is None:
        return None
    return MissingExtraError(f"{module} is not installed: install the `{extra}` extra, pip install -e \".[{extra}]\" "
                             f"(from a clone) or pip install 'edgepose[{extra}]'; edgepose bench {NEEDS}")


def add_bench_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = f"edgepose bench {NEEDS}; ort-* variants need `ort`, tflite `demo` (both in `convert`)."
    parser.add_argument("models", nargs="*",
                        help="registry names, groups (table-a [default], all, quick, table-b, table-c, int8-tflite), "
                             "`pipeline` (the top-down pipeline beside MediaPipe's own), `tracking [PHOTO:MOTION]` "
                             "(video tracking beside MediaPipe's VIDEO mode), "
                             "pinned TFLite assets (pose_landmark_full, hand_landmark_lite, hand_landmark_full), "
                             "mxnet:<GluonCV fixture> (e.g. mxnet:resnet50_v1d) or .onnx/.mnn/.tflite files")
    parser.add_argument("-V", "--variants",
                        help=f"comma-separated variants (default {','.join(DEFAULT_VARIANTS)}; quick: "
                             f"{','.join(QUICK_VARIANTS)}; table-b: mnn-fp32,ort-fp32; table-c: "
                             "mnn-fp32,mnn-int8,ort-fp32,ort-int8); see edgepose.benchmarks.variants")
    parser.add_argument("--quick", action="store_true",
                        help="CI setting: models deeppose, heatmap, simdr_320; variants mnn-fp16, ort-fp32; 5 short rounds")
    parser.add_argument("--rounds", type=int, help="interleaved rounds, i.e. samples per case (default 7; quick 5)")
    parser.add_argument("--warmup", type=int, help="untimed calls per case before timing (default 3; quick 2)")
    parser.add_argument("--sample-ms", type=float, help="target duration of one sample (default 100; quick 30)")
    parser.add_argument("--no-predict", action="store_true", help="time the raw session only")
    parser.add_argument("--no-memory", action="store_true", help="skip peak-RSS child processes")
    parser.add_argument("--image", default="astronaut", help="photo for predict: a pinned photo name or a path")
    parser.add_argument("--bbox", help="person box x1,y1,x2,y2 for predict (default: the pinned photo's box)")
    parser.add_argument("--whole-image", action="store_true", help="predict on the whole image (no box)")
    parser.add_argument("-o", "--output-dir", default="bench-out",
                        help="where report.md, report.json and table_a.{md,json,png} go (default bench-out)")
    parser.add_argument("--json", action="store_true", help="print the full JSON result to stdout instead of Markdown")
    parser.add_argument("--table-variant", help=f"variant used for table A (default {TABLE_VARIANT} if measured)")
    parser.add_argument("--save-baseline", metavar="PATH", nargs="?", const="default",
                        help="merge this run's normalised figures into a baseline JSON "
                             "(default benchmarks/baselines/normalised.json)")
    parser.add_argument("--compare-baseline", metavar="PATH", nargs="?", const="default",
                        help="compare with a normalised baseline; exit 3 on a slowdown beyond --threshold")
    parser.add_argument("--threshold", type=float,
                        help="allowed normalised slowdown (default 0.30; quick 1.0 and only if the run was stable)")
    parser.add_argument("--writeup", action="store_true",
                        help="the write-up's method instead: per model, 5 repeats of 100 predict calls on one "
                             "input-sized image, printing `elapse X ms`")
    parser.add_argument("--calls", type=int, default=100, help="--writeup: calls per repeat (default 100)")
    parser.add_argument("--repeats", type=int, default=5, help="--writeup: repeats (default 5)")
    parser.add_argument("--fma-units", type=int, help="override the assumed FMA units per core (peak GFLOP/s)")
    parser.add_argument("--ghz", type=float, help="override the clock used for peak GFLOP/s")
    parser.add_argument("--cache-dir", help="where converted models are cached (default: edgepose's cache dir/bench)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    parser.add_argument("--no-build-fixtures", action="store_true",
                        help="do not build missing MXNet fixtures for mxnet:* models (table B/C); skip them instead")


def _bbox(text: str | None):
    if not text:
        return None
    vals = [float(v) for v in text.split(",")]
    if len(vals) != 4:
        raise SystemExit(f"--bbox needs x1,y1,x2,y2, got {text!r}")
    return vals


def pin_single_thread() -> None:
    """One thread everywhere in this process: OpenCV's pool and torch's too (runtimes get threads=1 per
    session); torch with 2 threads on this shared 2-core machine ran 10-100x slower under load."""
    import os

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)
    try:
        import cv2

        cv2.setNumThreads(1)
    except ImportError:
        pass


def timing_options(args) -> dict:
    """The timing flags `bench engines` and `bench levers` share (--quick, --rounds, --warmup, --sample-ms,
    --cache-dir, --no-progress) as their keyword arguments."""
    from pathlib import Path

    kwargs = {"rounds": args.rounds or (5 if args.quick else 11), "warmup": args.warmup or (2 if args.quick else 3),
              "target_ms": args.sample_ms or (30.0 if args.quick else 100.0), "progress": not args.no_progress}
    if args.cache_dir:
        kwargs["cache"] = Path(args.cache_dir)
    return kwargs


def _options(args):
    from .harness import BenchOptions
    from .models_source import group_variants

    base = BenchOptions.quick() if args.quick else BenchOptions()
    changes = {"progress": not args.no_progress, "predict": not args.no_predict, "memory": not args.no_memory,
               "image": args.image, "fma_units": args.fma_units, "ghz": args.ghz}
    if args.models:
        changes["models"] = tuple(args.models)
    if args.variants:
        changes["variants"] = tuple(v for v in args.variants.split(",") if v.strip())
    elif group_variants(args.models):
        changes["variants"] = group_variants(args.models)
    changes["build_fixtures"] = not getattr(args, "no_build_fixtures", False)
    for field, value in (("rounds", args.rounds), ("warmup", args.warmup), ("target_ms", args.sample_ms)):
        if value is not None:
            changes[field] = value
    if args.whole_image:
        changes["bbox"] = ()
    elif args.bbox:
        changes["bbox"] = _bbox(args.bbox)
    if args.cache_dir:
        from pathlib import Path

        changes["cache"] = Path(args.cache_dir)
    return BenchOptions(**{**base.__dict__, **changes})


def run_writeup(args) -> int:
    from pathlib import Path

    from .harness import default_cache, load_bench_image
    from .models_source import expand_names, resolve_for
    from .variants import parse_variants
    from .writeup import writeup_method

    variants = parse_variants(args.variants or TABLE_VARIANT)
    cache = Path(args.cache_dir) if args.cache_dir else default_cache()
    image, _ = load_bench_image(args.image, ())
    for name in expand_names(args.models or (["quick"] if args.quick else None)):
        source = resolve_for(name, variants, cache=cache, build_fixtures=not args.no_build_fixtures)
        for v in source.applicable(variants):
            print(f"{name} {v.name} ({args.repeats} x {args.calls} calls, 1 thread)", flush=True)
            writeup_method(source, v, image, calls=args.calls, repeats=args.repeats,
                           emit=lambda line: print(line, flush=True))
    return 0


def run_tracking_bench(args) -> int:
    """`edgepose bench tracking [PHOTO:MOTION]`: tracking vs detecting every frame vs MediaPipe VIDEO mode."""
    from .tracking_bench import bench_tracking

    clip = args.models[1] if len(args.models) > 1 else "bus:pan"
    result = bench_tracking(clip, rounds=args.rounds or 5)
    print(json.dumps(result.to_dict(), indent=2) if args.json else result.to_markdown())
    return 0


def run_pipeline_bench(args) -> int:
    """`edgepose bench pipeline`: detector + landmarks beside MediaPipe's own pipeline, one core."""
    from .pipeline_bench import bench_pipeline

    result = bench_pipeline(args.image, rounds=args.rounds or 5)
    print(json.dumps(result.to_dict(), indent=2) if args.json else result.to_markdown())
    return 0


def run_bench(args) -> int:
    """`edgepose bench`; a module missing from an extra is one MissingExtraError naming the pip command."""
    try:
        return _run_bench(args)
    except ModuleNotFoundError as exc:
        error = missing_extra(exc)
        if error is None:
            raise
        raise error from exc


def _run_bench(args) -> int:
    from pathlib import Path

    from . import baseline as bl
    from .harness import run_benchmark
    from .report import write_reports

    pin_single_thread()
    if args.writeup:
        return run_writeup(args)
    if args.models == ["pipeline"]:
        return run_pipeline_bench(args)
    if args.models and args.models[0] == "tracking":
        return run_tracking_bench(args)
    if args.models and args.models[0] == "engines":  # engine x model matrix + the backend="auto" pick
        from .engine_matrix import run_engines_command

        return run_engines_command(args)
    if args.models and args.models[0] == "levers":  # MNN's own levers against edgepose's MNN default
        from .mnn_levers import run_levers_command

        return run_levers_command(args)
    opts = _options(args)
    result = run_benchmark(options=opts)
    paths = write_reports(result, args.output_dir, table_variant=args.table_variant)
    status = 0
    lines = []
    if args.compare_baseline:
        path = bl.DEFAULT_BASELINE if args.compare_baseline == "default" else Path(args.compare_baseline)
        threshold = args.threshold if args.threshold is not None else (bl.QUICK_THRESHOLD if args.quick else bl.DEFAULT_THRESHOLD)
        comparisons = bl.compare(result, bl.load_baseline(path), threshold=threshold, lenient=args.quick)
        lines = [c.describe() for c in comparisons]
        if any(c.failed for c in comparisons):
            status = 3
    if args.save_baseline:
        path = bl.DEFAULT_BASELINE if args.save_baseline == "default" else Path(args.save_baseline)
        saved = bl.save_baseline(result, path)
        print(f"baseline saved: {saved}", file=sys.stderr)
    if args.json:
        data = json.loads(paths["json"].read_text())
        if lines:
            data["baseline_comparison"] = lines
        print(json.dumps(data, indent=2))
    else:
        print(result.markdown())
        if lines:
            print("Baseline comparison (normalised):")
            print("\n".join(f"  {line}" for line in lines))
        print(f"Reports: {', '.join(str(p) for p in paths.values())}")
    return status


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edgepose.benchmarks.cli", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_bench_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    return run_bench(args)


if __name__ == "__main__":
    sys.exit(main())


class _Command:
    """What the runtime CLI loads through the `edgepose.commands` entry point."""

    def __init__(self, add_arguments, run):
        self.add_arguments, self.run = add_arguments, run


BENCH_COMMAND = _Command(add_bench_arguments, run_bench)
