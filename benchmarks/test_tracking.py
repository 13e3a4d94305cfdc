"""Video tracking rows (issue 12): per-frame cost of tracking against detecting on every frame, and
against MediaPipe's VIDEO mode on the same frames, one core each, interleaved in one run.

The issue's goals are <= 0.6x of detecting every frame and <= 0.7x of MediaPipe's VIDEO mode.
Measured on AMD EPYC Zen 4 (README, "Video and cameras", Speed): tracking is 0.51-0.63x (median
0.53) of detecting every frame and costs 3-8 ms per frame over the bare landmark model; against
MediaPipe it depends on the engine running BlazePose: MNN 0.87-1.16x, the fastest engine here
(backend="auto": OpenVINO) 0.65-0.95x, because on this CPU MediaPipe's whole VIDEO-mode frame costs
about what the bare landmark model costs in any engine. The assertions are regression guards on
interleaved ratios (load cancels), not the goals.
"""
from __future__ import annotations

import pytest

# Guards that hold on both CPU classes (x86-avx512-vnni measured, x86-avx2 derived):
# track / detect: the same engine on both sides, so the CPU cancels; measured 0.51-0.63 on AMD EPYC Zen 4
# (busy 2-core machine).
DETECT_GUARD = 0.8
# track_mp / mediapipe_video with MNN: measured 0.87-1.16 on Zen 4, where MNN runs BlazePose full at 1.02x
# of LiteRT (MediaPipe's engine). On the AVX2-only AMD EPYC of issue 13, MNN's BlazePose file is 1.18-1.27x
# slower than LiteRT's, so about 1.03-1.47 is expected there; 1.7 still fails a tracker that runs the
# detector on every frame (track / detect ~1).
MEDIAPIPE_GUARD = 1.7
# MediaPipe's mode per tracked frame over the bare landmark model, as a share of that model's time, so a
# slower CPU scales both: measured 3.1-7.7 ms over a 15-23 ms model (0.15-0.45) on Zen 4.
OVERHEAD_GUARD_SHARE = 0.8


@pytest.fixture(scope="module")
def tracking_bench(bench_quick, bench_note):
    from edgepose.benchmarks.tracking_bench import bench_tracking

    result = bench_tracking("bus:pan", rounds=2 if bench_quick else 5)
    bench_note(result.to_markdown())
    return result


def test_tracking_beside_detection_and_mediapipe(tracking_bench):
    r = tracking_bench
    assert set(r.ms) >= {"track", "detect", "track_mp", "detect_mp", "mediapipe_video", "landmark_model"}
    assert r.detector_frames["track_mp"] == 1 and r.detector_frames["track"] <= 6  # frame 0 (+ every 15)
    assert r.people["track_mp"] == 1.0 == r.people["mediapipe_video"] and r.people["track"] >= 1.9
    assert r.ratios["track / detect"] <= DETECT_GUARD, r.to_markdown()
    assert r.ratios["track_mp / mediapipe_video"] <= MEDIAPIPE_GUARD, r.to_markdown()
    assert r.overhead_ms <= OVERHEAD_GUARD_SHARE * r.ms["landmark_model"], r.to_markdown()


def test_tracking_latency(benchmark, bench_quick):
    """pytest-benchmark's own timing of one tracked frame (MediaPipe's mode, after frame 0)."""
    import cv2

    from edgepose import Pipeline, Tracker
    from edgepose.clips import pinned_clip
    from edgepose.demo import default_pipeline

    base = default_pipeline()
    pipe = Pipeline(base.detector, base.predictor, rounds=1, max_people=1)
    frames = pinned_clip("bus:static").frames  # a still camera: the cycle has no jump
    cv2.setNumThreads(1)
    tracker = Tracker(pipe, detect_every=None, max_people=1)
    tracker.update(frames[0])
    state = {"i": 1}

    def step():
        frame = frames[state["i"] % len(frames)]
        state["i"] += 1
        return tracker.update(frame, state["i"] / 30.0)

    benchmark.group = "tracking"
    benchmark.extra_info.update(clip="bus:static", mode="mediapipe", threads=1)
    result = benchmark.pedantic(step, rounds=5 if bench_quick else 20, iterations=3, warmup_rounds=1)
    assert len(result.people) == 1 and not result.detector_ran
