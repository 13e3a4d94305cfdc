"""Batch throughput: images/s with 1 and 2 local workers and through Ray, in one run (issue 16).

    python -m edgepose.benchmarks.batch_bench [--images 80] [--rounds 2] [--no-ray] [--json out.json]

The inputs are copies of the pinned photos under distinct names (astronaut, grace_hopper, bus, zidane in
turn), run through the default pipeline (MediaPipe's detector + BlazePose, MNN FP16, one thread per
worker). Each configuration runs `rounds` times, interleaved (serial, 1 worker, 2 workers, Ray, then
again), into a fresh output folder each time; the best round counts (the machine is shared).

Reported per configuration: wall time and images/s end to end (start-up included: spawning workers
and loading models, or starting Ray and its actors), start-up (time to the first image's rows, the same
measure for every engine), images/s once started ((images - 1) / (wall - start-up); for Ray an
overestimate, as results reach the driver in bursts after actors have done several), and the peak
resident memory of each worker, engine start (local: until every worker holds its pipeline; Ray:
ray.init), and CPU milliseconds per image (this process and its reaped workers,
start-up included; not for Ray): on a shared machine the wall-clock scaling depends on what else runs,
the CPU cost per image does not, so equal CPU per image with 1 and 2 workers means the pool adds no
work and 2 free cores would give close to 2x. From them: scaling 1 -> 2
workers (goal: >= 1.8x on 2 cores) and Ray's overhead against the local pool (ratio of images/s).
Not a timed test: a script that prints a table (and writes JSON).
"""
from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any


def make_images(folder: Path, n: int) -> list[Path]:
    from edgepose import assets

    photos = [assets.fetch_asset(name) for name in assets.PHOTO_PERSON_BOXES]
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        src = photos[i % len(photos)]
        dst = folder / f"{i:04d}_{src.name}"
        shutil.copy(src, dst)
        out.append(dst)
    return out


def cpu_seconds() -> float:
    """CPU time (user + system) of this process and of its reaped children (the local workers)."""
    import resource

    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def serial(images: list[Path], config) -> dict[str, Any]:
    """A plain loop in this process: the reference for one worker's overhead."""
    from edgepose.batch import peak_rss_mb, process_input, expand_sources

    c0 = cpu_seconds()
    t0 = time.perf_counter()
    runner = config.build()
    first = None
    for item in expand_sources(images):
        process_input(runner, item)
        first = first or time.perf_counter() - t0
    wall = time.perf_counter() - t0
    return {"wall_s": wall, "startup_s": first, "peak_mb": {"this process": peak_rss_mb()},
            "cpu_s": cpu_seconds() - c0}


def batch(images: list[Path], config, out: Path, **options) -> dict[str, Any]:
    from edgepose.batch import run_batch

    c0 = cpu_seconds()
    s = run_batch([images[0].parent], out, config=config, **options)
    assert s.done == len(images) and s.errors == 0, (s.done, s.errors, s.error_samples[:3])
    cpu = None if s.engine == "ray" else cpu_seconds() - c0  # Ray's workers are not our children
    return {"wall_s": s.seconds, "startup_s": s.first_result_s or 0.0, "peak_mb": s.peak_mb, "workers": s.workers,
            "cpu_s": cpu, "engine_start_s": s.startup_s}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    from edgepose.batch import BatchConfig
    from edgepose.cpu import cpu_info

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=80)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--no-ray", action="store_true")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args(argv)
    config = BatchConfig().resolved()
    work = Path(tempfile.mkdtemp(prefix="edgepose-batch-bench-"))
    try:
        images = make_images(work / "images", args.images)
        runs: dict[str, list[dict[str, Any]]] = {}
        names = ["serial", "local-1", "local-2"] + ([] if args.no_ray else ["ray-2"])
        for r in range(args.rounds):
            for name in names:
                out = work / f"out-{name}-{r}"
                if name == "serial":
                    res = serial(images, config)
                elif name.startswith("local"):
                    res = batch(images, config, out, workers=int(name[-1]))
                else:
                    res = batch(images, config, out, ray=True, workers=2, ray_init={"num_cpus": 2})
                runs.setdefault(name, []).append(res)
                print(f"round {r} {name:8s} wall {res['wall_s']:6.1f} s  start-up {res['startup_s']:5.1f} s",
                      flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    n = args.images
    table = {}
    for name, results in runs.items():
        best = min(results, key=lambda x: x["wall_s"])
        steady = (n - 1) / max(best["wall_s"] - best["startup_s"], 1e-9)
        table[name] = {"wall_s": round(best["wall_s"], 2), "images_per_s": round(n / best["wall_s"], 2),
                       "startup_s": round(best["startup_s"], 2), "images_per_s_started": round(steady, 2),
                       "peak_mb_per_worker": round(max(best["peak_mb"].values()), 0) if best["peak_mb"] else None,
                       "cpu_ms_per_image": round(1e3 * best["cpu_s"] / n, 1) if best.get("cpu_s") else None,
                       "engine_start_s": round(best["engine_start_s"], 2) if best.get("engine_start_s") else None,
                       "rounds_wall_s": [round(x["wall_s"], 2) for x in results]}
    report: dict[str, Any] = {"cpu": cpu_info().describe(), "images": n, "rounds": args.rounds, "runs": table}
    one, two = table["local-1"], table["local-2"]
    report["scaling_1_to_2"] = round(two["images_per_s_started"] / one["images_per_s_started"], 2)
    report["scaling_1_to_2_end_to_end"] = round(two["images_per_s"] / one["images_per_s"], 2)
    if "ray-2" in table:
        ray = table["ray-2"]
        report["ray_over_local_2"] = round(ray["images_per_s_started"] / two["images_per_s_started"], 2)
        report["ray_over_local_2_end_to_end"] = round(ray["images_per_s"] / two["images_per_s"], 2)
    print(f"\nCPU: {report['cpu']}; {n} images (pinned photos), best of {args.rounds} interleaved rounds\n")
    print("| run | wall s | images/s | engine start s | first result s | images/s once started | CPU ms per image | "
          "peak MB per worker |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, row in table.items():
        print(f"| {name} | {row['wall_s']} | {row['images_per_s']} | {row['engine_start_s'] or '-'} | {row['startup_s']} | "
              f"{row['images_per_s_started']} | {row['cpu_ms_per_image'] or '-'} | {row['peak_mb_per_worker']} |")
    print(f"\nscaling 1 -> 2 workers: {report['scaling_1_to_2']}x once started, "
          f"{report['scaling_1_to_2_end_to_end']}x end to end")
    if "ray_over_local_2" in report:
        print(f"Ray (2 actors) / local (2 workers): {report['ray_over_local_2']} once started, "
              f"{report['ray_over_local_2_end_to_end']} end to end")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main()
