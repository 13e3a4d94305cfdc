"""ONNX Runtime INT8 settings side by side on this CPU: accuracy on the held-out crops and
single-thread speed (all files interleaved in one loop), for U8S8 with full-range, pair-safe and
7-bit (reduce_range) weights, and S8S8 full / 7-bit, each with the default mixed precision
(ort_engine.float_fallback: the activation tensors that cost most stay float). The figures behind `ort_engine.select_config`
and converters/quantize/README.md.

    python -m edgepose.converters.quantize.configs hand_landmark_lite hand_landmark_full -o int8-configs
    python -m edgepose.converters.quantize.configs --evaluate int8-configs      # re-score the files made

`--evaluate` scores files made earlier with this machine's ONNX Runtime kernels (no timing). Under
QEMU user mode with an AVX2-only CPU model, ONNX Runtime picks its AVX2 (no VNNI) kernels, whose
`vpmaddubsw` saturation QEMU emulates, so any x86 host can show what an AVX2-only CPU computes:

    qemu-x86_64 -cpu EPYC-Rome .venv/bin/python -m edgepose.converters.quantize.configs --evaluate int8-configs

(`edgepose.cpu` reports `x86-avx2` there: /proc/cpuinfo is the host's, but the SIMD flags come from
CPUID, which QEMU emulates. The whole CPU-sensitive test modules run that way too, e.g.
`qemu-x86_64 -cpu EPYC-Rome .venv/bin/python -m pytest tests/quantize/test_quant_engines.py --timeout 4000`.)
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

CONFIGS = {"U8S8": ("uint8", "full"), "U8S8-pair-safe": ("uint8", "pair-safe"), "U8S8-7bit": ("uint8", "7bit"),
           "S8S8": ("int8", "full"), "S8S8-7bit": ("int8", "7bit")}


def make(model: str, out: Path, *, configs: Sequence[str] = tuple(CONFIGS), rounds: int = 15,
         calls: int = 10, calib_count: int | None = None) -> dict[str, Any]:
    """INT8 files of a pinned TFLite model (an asset name) per config, scored and timed here."""
    from edgepose import assets
    from edgepose.cpu import cpu_info
    from edgepose.presets import get_preset

    from .api import Int8Options, quantize_int8
    from .samples import kind_for
    from .tflite_onnx import tflite_to_onnx

    folder = out / model
    folder.mkdir(parents=True, exist_ok=True)
    fp32 = folder / f"{model}.onnx"
    if not fp32.exists():
        tflite_to_onnx(assets.fetch_asset(model), fp32, get_preset(model))
    calib = f"pinned:{kind_for(model)}"
    rows: dict[str, Any] = {}
    for label in configs:
        acts, weights = CONFIGS[label]
        report = quantize_int8({"onnx": fp32}, calib=calib, output_dir=folder / label, stem=model,
                               options=Int8Options(engines=("onnxruntime",), ort_activations=acts, ort_weight_range=weights,
                                                   strict=False, speed=False, progress=False, layer_report=True,
                                                   calib_count=calib_count))
        e = report.engine("onnxruntime")
        if e.accuracy is None:
            rows[label] = {"error": e.error}
            continue
        profile = e.details.get("optimized_graph", {})
        rows[label] = {"file": str(e.artifact.relative_to(out)), **_acc(e.accuracy),
                       "saturation_check": e.details.get("saturation_check"), "pair_safe": e.details.get("pair_safe"),
                       "error_split": {k: v for k, v in e.details.get("error_split", {}).items() if k.startswith("w")},
                       "float_compute": profile.get("float_compute"), "int8_compute": profile.get("int8_compute"),
                       "float_fallback": _fallback(e.details.get("float_fallback"))}
    files = {label: out / r["file"] for label, r in rows.items() if "file" in r}
    speed = interleaved(fp32, files, _holdout(fp32, calib).tensors(_spec(fp32))[:1], rounds=rounds, calls=calls)
    for label, s in speed.items():
        if label in rows:
            rows[label].update(s)
    return {"model": model, "cpu": cpu_info().to_dict(), "fp32_ms": speed["fp32"]["ms"], "configs": rows,
            "calibration": calib, "calib_count": calib_count, "rounds": rounds, "calls_per_round": calls}


def evaluate(out: Path) -> list[dict[str, Any]]:
    """Accuracy of every INT8 file under `out` (as `make` laid them out) with this machine's kernels."""
    from .evaluate import accuracy
    from .samples import kind_for

    results = []
    for folder in sorted(p for p in out.iterdir() if p.is_dir()):
        fp32 = folder / f"{folder.name}.onnx"
        if not fp32.exists():
            continue
        hold = _holdout(fp32, f"pinned:{kind_for(folder.name)}")
        rows = {}
        for label in CONFIGS:
            int8 = folder / label / f"{folder.name}.int8.onnx"
            if int8.exists():
                rows[label] = _acc(accuracy(fp32, int8, _spec(fp32), hold))
        results.append({"model": folder.name, "configs": rows})
    return results


def interleaved(fp32: Path, files: dict[str, Path], x: np.ndarray, *, rounds: int, calls: int,
                warmup: int = 5) -> dict[str, dict[str, float]]:
    """1-thread latency of FP32 and every INT8 file, each round running all of them in a rotated
    order; per file the median ms and the median per-round ratio FP32 / INT8."""
    from edgepose.backends import open_backend

    models = {"fp32": open_backend(fp32, threads=1), **{k: open_backend(v, threads=1) for k, v in files.items()}}
    names = {k: m.input_names[0] for k, m in models.items()}
    x = np.ascontiguousarray(x)
    for _ in range(warmup):
        for k, m in models.items():
            m.run({names[k]: x})
    order = list(models)
    times: dict[str, list[float]] = {k: [] for k in order}
    for r in range(rounds):
        for k in order[r % len(order):] + order[:r % len(order)]:
            t0 = time.perf_counter()
            for _ in range(calls):
                models[k].run({names[k]: x})
            times[k].append((time.perf_counter() - t0) * 1e3 / calls)
    fp = np.array(times["fp32"])
    return {k: {"ms": float(np.median(t)), "speedup": float(np.median(fp / np.array(t)))} for k, t in times.items()}


def _fallback(details: dict[str, Any] | None) -> dict[str, Any] | None:
    """What the mixed-precision step kept float (ort_engine.float_fallback), in brief."""
    if not details:
        return None
    return {"tensors": len(details.get("tensors", [])), "nodes": len(details.get("nodes", [])),
            "float_macs_share": details.get("float_macs_share"), "calib_px_before": details.get("calib_px_before"),
            "calib_px_after": details.get("calib_px_after"), "timing": details.get("timing"),
            "seconds": details.get("seconds")}


def _spec(fp32: Path):
    from edgepose.predictor import Predictor

    return Predictor(fp32).spec


def _holdout(fp32: Path, calib: str):
    from edgepose.predictor import Predictor

    from .calibration import load_calibration

    return load_calibration(calib, Predictor(fp32), split="holdout", progress=False)


def _acc(a) -> dict[str, Any]:
    return {"mean_px_256": round(a.mean_px_256, 3), "max_px_256": round(a.max_px_256, 2), "pck": round(a.pck, 4),
            "samples": a.samples}


def format_rows(result: dict[str, Any]) -> str:
    cpu = result.get("cpu") or {}
    lines = [f"{result['model']} on {cpu.get('model_name', '?')} ({cpu.get('class', '?')}); FP32 "
             f"{result.get('fp32_ms', float('nan')):.2f} ms" if "fp32_ms" in result else result["model"],
             f"{'config':<15} {'mean px':>8} {'max px':>7} {'PCK':>6} {'INT8 ms':>8} {'speed-up':>8}  split w8a16/w16a8"]
    for label, r in result["configs"].items():
        if "error" in r:
            lines.append(f"{label:<15} failed: {r['error']}")
            continue
        split = r.get("error_split") or {}
        sat = r.get("saturation_check") or {}
        lines.append(f"{label:<15} {r['mean_px_256']:>8.2f} {r['max_px_256']:>7.1f} {r['pck']:>6.3f} "
                     f"{r.get('ms', float('nan')):>8.2f} {r.get('speedup', float('nan')):>7.2f}x  "
                     f"{split.get('w8a16', '-')}/{split.get('w16a8', '-')}"
                     + (f"  no-VNNI saturated pairs {sat['saturated']}/{sat['pairs']}" if sat else "")
                     + (f"  float: {r['float_fallback']['tensors']} tensors, {r['float_fallback']['float_macs_share']:.1%}"
                        " of MACs" if r.get("float_fallback") else ""))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m edgepose.converters.quantize.configs", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="*", default=["hand_landmark_lite", "hand_landmark_full"])
    p.add_argument("-o", "--output", type=Path, default=Path("int8-configs"))
    p.add_argument("--evaluate", type=Path, metavar="DIR", help="only re-score the INT8 files under DIR")
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--calib-count", type=int, default=None, help="calibration crops (default: up to 64)")
    p.add_argument("--configs", default=",".join(CONFIGS), help=f"comma-separated subset of {', '.join(CONFIGS)}")
    args = p.parse_args(argv)
    if args.evaluate:
        results = evaluate(args.evaluate)
        for r in results:
            print(format_rows(r))
        print(json.dumps(results, indent=1))
        return 0
    out = []
    for model in args.models:
        r = make(model, args.output, configs=[c for c in args.configs.split(",") if c], rounds=args.rounds,
                 calib_count=args.calib_count)
        print(format_rows(r), flush=True)
        out.append(r)
    (args.output / "configs.json").write_text(json.dumps(out, indent=1) + "\n")
    print(f"written: {args.output / 'configs.json'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
