"""The top-down pipeline (MediaPipe's detector + BlazePose, MNN FP16) beside MediaPipe's own pipeline.

The row the detector issue asks for: end-to-end single-core latency on a photo, measured in the
same run as mp.solutions.pose's Pose.process pinned to one core, with the detector and landmark
stages apart. The issue's goal is <= 0.5x MediaPipe's time; measured here it is about 1.0x (see
benchmarks/README.md, "Top-down pipeline"): the two models cost what they cost in any engine, and
MediaPipe's own overhead on top of them is small on these CPUs. The assertion is a regression
guard on the ratio (interleaved, so machine load cancels), not the goal.
"""
from __future__ import annotations

import cv2
import pytest

from edgepose import assets

# Single-pass pipeline (MNN FP16) / MediaPipe (LiteRT): measured 1.03-1.05 on AMD EPYC Zen 4
# (x86-avx512-vnni). On the AVX2-only AMD EPYC of issue 13, MNN's BlazePose file is 1.18-1.27x slower
# than LiteRT's, and its detector ~1.3-1.4x (1.33x on Zen 4), so ~1.2-1.35 is expected there.
RATIO_GUARD = 1.6


@pytest.fixture(scope="module")
def pipeline_bench(bench_quick, bench_note):
    from edgepose.benchmarks.pipeline_bench import bench_pipeline

    result = bench_pipeline("astronaut", rounds=2 if bench_quick else 5, calls=5 if bench_quick else 10)
    bench_note(result.to_markdown())
    return result


def test_pipeline_beside_mediapipe(pipeline_bench):
    r = pipeline_bench
    assert r.people == 1
    assert set(r.ms) >= {"mediapipe", "pipeline_single_pass", "detector", "landmarks", "pipeline"}
    assert r.ms["detector"] + r.ms["landmarks"] <= r.ms["pipeline_single_pass"] * 1.05
    assert r.ratio_to_mediapipe["pipeline_single_pass"] <= RATIO_GUARD, r.to_markdown()


def test_pipeline_latency(benchmark, bench_quick):
    from edgepose.demo import default_pipeline

    pipe = default_pipeline(rounds=1)
    image = cv2.imread(str(assets.fetch_asset("astronaut")))
    benchmark.group = "pipeline"
    benchmark.extra_info.update(image="astronaut.png", rounds=1, threads=1)
    result = benchmark.pedantic(pipe, args=(image,), rounds=3 if bench_quick else 10, iterations=3, warmup_rounds=1)
    assert len(result) == 1
