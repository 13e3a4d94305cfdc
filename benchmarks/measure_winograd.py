"""Measure MNN's WINOGRAD_MEMORY_LEVEL hint: accuracy and single-thread speed per level.

    python -m edgepose.benchmarks.measure_winograd [models...] [--rounds 15] [--calls 20] [--json out.json]

Models are what `edgepose bench` resolves (registry names, `table-a`, pinned TFLite assets such as
`pose_landmark_full`, `mxnet:<fixture>`, files). For each, the MNN FP32 file is loaded once per level
(0-3, 3 is MNN's default) and compared with its source in the source's own runtime (ONNX Runtime
for ONNX, LiteRT for TFLite) on one random input: max relative error (to the output's range) per
level. Speed: one thread, rounds interleaved over the levels in a fresh random order each round,
median of `calls` per round, median over rounds; reported as a ratio to level 3.
This is how the default in edgepose.backends.mnn (DEFAULT_WINOGRAD_LEVEL) was chosen.
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

import numpy as np

LEVELS = (0, 1, 2, 3)


def _feeds(runner, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    feeds = {}
    for t in runner.inputs:
        shape = tuple(d if isinstance(d, int) and d > 0 else 1 for d in t.shape)
        feeds[t.name] = rng.uniform(-1.0, 1.0, shape).astype(np.float32)
    return feeds


def _rel(a: np.ndarray, ref: np.ndarray) -> float:
    a, ref = np.asarray(a, np.float64).reshape(-1), np.asarray(ref, np.float64).reshape(-1)
    scale = max(float(np.abs(ref).max(initial=0.0)), 1e-12)
    return float(np.abs(a - ref).max(initial=0.0)) / scale


def measure_model(name: str, *, cache: Path, rounds: int, calls: int, seed: int = 0,
                  levels: tuple[int, ...] = LEVELS) -> dict:
    from edgepose.backends import open_backend
    from edgepose.benchmarks.models_source import resolve

    source = resolve(name, cache=cache, weights=("fp32",))
    mnn_path = source.artifacts[("mnn", "fp32")]
    if ("tflite", "fp32") in source.artifacts:
        ref_runner = open_backend(source.artifacts[("tflite", "fp32")], "litert", threads=1)
    elif source.onnx is not None:
        ref_runner = open_backend(source.onnx, "onnxruntime", threads=1)
    else:
        ref_runner = None
    # MNN shares one CPU runtime between runtime managers of the same configuration, so a module picks
    # its kernels with the hint most recently set in the process, at its first run (or resize). Each
    # backend is therefore run right after it is made: its kernels are then fixed (same shapes after).
    backends: dict[int, object] = {}
    errors: dict[int, float | None] = {}
    feeds = ref = None
    for lv in levels:
        be = backends[lv] = open_backend(mnn_path, "mnn", threads=1, winograd_level=lv)
        if feeds is None:
            feeds = _feeds(be, seed)
            ref = ref_runner.run(feeds) if ref_runner is not None else None
        out = be.run(feeds)
        # Outputs matched by position: MNN and the source name them alike, but a TFLite file may not.
        errors[lv] = None if ref is None else max(_rel(o, r) for o, r in zip(out.values(), ref.values()))
    for be in backends.values():  # warm-up
        for _ in range(3):
            be.run(feeds)
    per_round: dict[int, list[float]] = {lv: [] for lv in levels}
    order = list(levels)
    rnd = random.Random(seed)
    for _ in range(rounds):
        rnd.shuffle(order)
        for lv in order:
            be = backends[lv]
            times = []
            for _ in range(calls):
                t0 = time.perf_counter()
                be.run(feeds)
                times.append(time.perf_counter() - t0)
            per_round[lv].append(statistics.median(times) * 1e3)
    ms = {lv: statistics.median(v) for lv, v in per_round.items()}
    # Per-round ratio to level 3, then the median: robust to a round slowed by a neighbour.
    base = 3 if 3 in levels else levels[-1]
    ratios = {lv: statistics.median(a / b for a, b in zip(per_round[lv], per_round[base])) for lv in levels}
    return {"model": name, "mnn": str(mnn_path), "reference": getattr(ref_runner, "name", None),
            "max_rel_error": {str(k): v for k, v in errors.items()},
            "median_ms": {str(k): round(v, 3) for k, v in ms.items()},
            "ratio_to_level3": {str(k): round(v, 3) for k, v in ratios.items()},
            "per_round_ms": {str(k): [round(t, 3) for t in v] for k, v in per_round.items()}}


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", default=["table-a", "pose_landmark_full", "hand_landmark_lite",
                                                      "hand_landmark_full"])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--cache", type=Path, default=None, help="conversion cache (default: edgepose's bench cache)")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--levels", default="0,1,2,3", help="levels to compare (default 0,1,2,3; ratios are to 3)")
    args = parser.parse_args(argv)
    from edgepose.assets import cache_dir
    from edgepose.benchmarks.models_source import expand_names

    cache = args.cache or (cache_dir() / "bench")
    rows = []
    for name in expand_names(args.models):
        levels = tuple(int(v) for v in args.levels.split(","))
        row = measure_model(name, cache=cache, rounds=args.rounds, calls=args.calls, levels=levels)
        rows.append(row)
        err = "  ".join(f"L{k} {v:.1e}" if v is not None else f"L{k} -" for k, v in row["max_rel_error"].items())
        spd = "  ".join(f"L{k} {row['median_ms'][k]:.2f} ms ({row['ratio_to_level3'][k]:.3f})" for k in row["median_ms"])
        print(f"{name:20s} err: {err}\n{'':20s} speed: {spd}", file=sys.stderr, flush=True)
    import os

    result = {"cpu": _cpu(), "rounds": args.rounds, "calls": args.calls, "load_average": os.getloadavg(),
              "rows": rows}
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
