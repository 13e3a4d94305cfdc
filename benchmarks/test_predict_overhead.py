"""Predict overhead: Predictor.predict beyond the raw session run (issue 13 item 6).

Goal: <= 5 % of the model time on both CPU classes (x86-avx512-vnni, x86-avx2), per model:
deeppose (regression), heatmap (256x256 heatmap head) and BlazePose full (pose_landmark_full,
landmarks + heatmap refinement), each the MNN FP16 file at edgepose's default precision, one
thread, a person box on the 512x512 astronaut photo.

Measured as the median over interleaved rounds of predict / raw - 1 on the same loaded
session: `raw` is Backend.run on a tensor prepare() made, `predict` the whole call (crop, pack,
run, decode, result). Each round times one sample of each (rotating order; a sample is ~100 ms of
back-to-back calls), so a drift in load hits both. Two clocks per sample: wall time, and this
thread's CPU time (`time.thread_time`; MNN runs its single thread in the caller's), which leaves
out the time slices other processes take on a shared machine; the check uses CPU time.

The check (full mode, --bench-full): fails only when the rounds show the goal missed, i.e. when
even the lower end of the median's 95 % confidence interval (order statistics of the paired
rounds) lies above the target; quick mode only reports. A model whose miss is known and measured
is an expected failure (KNOWN_MISSES, non-strict: a run that meets the goal shows as XPASS).

Figures: AMD EPYC family 25 model 17 (Zen 4; class x86-avx512-vnni), 2 cores shared with other
jobs (load 2-5), 1 thread, CPU time. "Before" is the Predictor of commit 273a00a, "after" this
work (commits e7c1b35..5235e89), timed side by side in one process, interleaved.

This check's figure, median of 31 rounds (95 % interval), four runs during the work (the first
after its first step only):

    model                before                   after
    deeppose             +14.3 .. +17.4 %         +12.2 .. +15.1 %
    heatmap              +3.1 .. +4.5 %           +2.3 .. +2.9 %
    pose_landmark_full   +8.5 .. +9.1 %           +7.0 .. +9.7 %

One run in full: deeppose +16.9 % (14.2..18.3) -> +13.1 % (11.7..15.9); pose_landmark_full
+8.5 % (7.9..9.9) -> +7.8 % (7.1..9.1); heatmap +3.1 % (2.5..4.1) -> +2.9 % (1.2..3.9).

The same work in absolute terms, less exposed to the load (400 interleaved predicts each, median
thread CPU time per call; "outside" = predict minus its own session run):

    model                outside the run, us      session run, ms     whole predict, ms
    deeppose             956 -> 719 (-25 %)       5.81 -> 5.63        6.78 -> 6.38 (-5.9 %)
    heatmap              1230 -> 994 (-19 %)      42.47 -> 42.27      43.73 -> 43.23
    pose_landmark_full   1317 -> 1141 (-13 %)     15.86 -> 15.75      17.19 -> 16.91

The session run got cheaper too (no F.const per call), which `raw` shares, so the ratio moves less
than the work. The goal is not met for deeppose and BlazePose on this CPU; the x86-avx2 class
was not measured (no such machine here).

The floor (session 5, same CPU, load 2-3): each run also times `crop`, the Predictor's own bilinear
crop of the box (InputPacker.crop: no packing, no decoding) followed by the same raw run. Its
overhead is the least any predict pays for a crop, the memory traffic that slows the next forward
pass included (touching 1 MB between two runs of deeppose costs it +2.2 %, 3 MB +7.9 %, measured
alone). 31 rounds, median (95 % interval):

    model                predict                  the crop alone
    deeppose             +15.3 % (13.9..16.9)     +9.8 % (6.9..11.3)
    heatmap              +1.9 % (1.5..3.1)        +0.9 % (0.1..1.8)
    pose_landmark_full   +8.1 % (7.4..8.8)        +3.7 % (3.5..4.5)

So 5 % is below the crop for deeppose, and leaves 1.3 % (0.2 ms) beyond it for BlazePose, whose
heatmap refinement alone takes 0.28 ms after a forward pass (0.10 ms when its code is warm: after MNN's
forward pass every numpy call runs cold, whatever its data). Also measured and not taken: the crop's
uint8 pixels fed to MNN with the cast, mean/std and channel order in the graph (deeppose: the in-graph
preprocessing costs +3.2 % of the run, the packing it replaces about as much; predict +10.9 % against
+12.0 %, within the noise), and a replicate border made by padding the source window and warping with a
constant border (152 + 54 us against 309 us warm, but not OpenCV's bytes: 1 level off on a few pixels).
Since this session `predict` asks the backend only for the outputs its head reads (BlazePose: 3 of 5;
-1.8 % of the MNN run), and `raw` asks for the same, so the ratio above is unchanged by it.

Where the time went, and what was tried (same CPU; per call, 256x256 crop of the 512x512 photo):
- the crop: OpenCV 5's bilinear warpAffine on 3 channels 264 us (zero border) / 419 us (replicate
  border, BlazePose); on 4 channels 147 / 302 us for the same bytes. So a crop that reads a small
  enough window of the image goes BGR -> BGRA window (cvtColor, 35 us for 512x512) -> 4-channel
  warp: -80 to -120 us on its own, -40 to -90 us in a whole predict (the window's 1 MB also slows
  the next forward pass a little). Faster crops that round differently were not taken, the
  results stay bit-identical: cv2.resize (133 us, fixed-point weights), a source window shifted to
  a smaller buffer (the float32 coordinates round differently: ~0.5 % of pixels 1 level off);
  MNN's own ImageProcess: tried, slower and not the same keypoints ("Routes tried", below).
- feeding MNN its internal NC4HW4 layout straight from the 4-channel crop: no measurable change of
  the forward pass (5.16 vs 5.18 ms), dropped.
- the packing: one pass per plane already (cv2.split + addWeighted with the mean/std folded into
  scale and offset, 50 us); folding mean/std into the model's first layer would leave the same
  uint8 -> float pass, so it would save nothing and was not done.
- the copy into MNN: a new F.const per call (35 us, and a slower forward) -> crops packed straight
  into a placeholder Var's host memory (Backend.input_buffer); Backend.run copies any other feed
  into the same placeholder (18 us). This speeds `raw` as much as `predict`.
- per-call Python: box checks and crop matrices in plain floats, the decoder looked up once,
  np.clip's wrappers out of the sigmoid, one gather in BlazePose's heatmap refinement (-15 %).
  After a forward pass every small numpy call runs cold (2-5x its warm time), so their count
  matters more than their size.

Routes tried and not taken:
- MNN's own C++ preprocessing, `MNN.CVImageProcess` + `MNN.CVMatrix` (MNN 3.6.1 wheel): the crop's
  crop -> image matrix in setMatrix, bilinear, BGR source, the card's colour as destFormat, mean and
  1/std as mean/normal, wrap ZERO or CLAMP_TO_EDGE for the card's border, converted in one pass
  straight into the session's input (`MNN.Tensor(var)` of the backend's placeholder Var shares its
  memory; NCHW and NHWC both written in place). Same CPU (AMD EPYC Zen 4), 1 thread, thread CPU time:
  - speed: warp + colour + normalise + layout of a 256x256 crop of the 512x512 photo 1144 us
    (deeppose, zero border) / 1492 us (BlazePose, replicate) against 250 / 427 us for crop_pack;
    with no warp at all (identity matrix) MNN still takes 150-230 us; a BGRA source 600-670 us.
    In a whole predict (31 interleaved rounds, median (95 % interval)): deeppose +31.3 % (30.2..33.6)
    against +15.8 % (13.3..16.5) for the current path; pose_landmark_full +15.0 % (13.6..16.0) against
    +7.9 % (6.5..9.9); heatmap +4.6 % (3.5..4.9) against +2.6 % (0.9..2.9). So about twice the overhead.
  - accuracy, against the current path (bilinear values up to one uint8 level apart on 0.01-4 % of the
    values, and more at the edge): wrap ZERO is not OpenCV's constant border: a sample between the last
    row/column and the outside is 0 in MNN where OpenCV blends the edge pixel with 0, a whole output row or
    column off by up to the pixel value (astronaut and bus boxes, which run past the image's edge: 0.2-0.4 %
    of values up to 214 levels). Keypoints, box crops (max / mean px): pose_landmark_full grace_hopper
    1.08 / 0.26, zidane 0.20 / 0.05, astronaut 0.07 / 0.02, bus 0.09 / 0.02; deeppose (the zoo's
    random weights) grace_hopper 0.49 / 0.24, zidane 1.04 / 0.42, astronaut and bus 24 and 61 px (the
    border); heatmap (the same) 0.02 / 0.01, 0.47 / 0.04, 255 and 290 px (the border). BlazePose
    through `edgepose.demo.default_pipeline()` (the detector's rotated ROIs, replicate border): astronaut
    0.18 / 0.04, grace_hopper 0.49 / 0.13, bus 10.4 / 0.36 (3.7 % of values one level off; the 10 px is a
    keypoint scored > 0.5); zidane: no person detected. The bar (every keypoint within 0.5 px, mean
    <= 0.2 px) is missed on both counts.
  - also: pymnn's convert refuses a source image with fewer bytes than the output tensor has values
    ("data length does not match tensor size"), and writes one crop per tensor (batches need one each).
  Not taken: the MNN backend keeps crop_pack (OpenCV).
"""
from __future__ import annotations

import gc
import math
import time
import warnings

import numpy as np
import pytest

from edgepose.benchmarks.harness import load_bench_image
from edgepose.benchmarks.models_source import resolve
from edgepose.benchmarks.runners import open_session
from edgepose.benchmarks.timing import calls_per_sample, round_order
from edgepose.benchmarks.variants import parse_variant

TARGET = 0.05
MODELS = ("deeppose", "heatmap", "pose_landmark_full")
VARIANT = "mnn-fp16"
# Measured misses: model -> why it is expected to stay above TARGET (figures in the docstring).
KNOWN_MISSES: dict[str, str] = {
    "deeppose": "goal missed: +12 to +15 % on AMD EPYC Zen 4 (x86-avx512-vnni) after the issue-13 work, "
                "from +14 to +17 %; below reach there: the bilinear crop alone, before any packing or "
                "decoding, costs +9.8 % (95 % CI +6.9..+11.3 %) of its 5.2 ms run",
    "pose_landmark_full": "goal missed: +7 to +10 % on AMD EPYC Zen 4 (x86-avx512-vnni) after the issue-13 work, "
                          "from +8.5 to +9 %; the replicate-border crop alone costs +3.7 % (+3.5..+4.5 %) of its "
                          "15 ms run, which leaves 1.3 % (0.2 ms) for packing, the heatmap refinement (0.28 ms "
                          "after a forward pass) and the rest",
}


def median_interval(values, confidence: float = 0.95) -> tuple[float, float, float]:
    """Median of `values` and a distribution-free confidence interval for it (order statistics)."""
    x = sorted(float(v) for v in values)
    n = len(x)
    alpha = (1.0 - confidence) / 2
    # Largest j with P(Binomial(n, 1/2) < j) <= alpha: [x_(j), x_(n+1-j)] (1-based) covers the median.
    j, cdf = 0, 0.0
    while j < n and cdf + math.comb(n, j) / 2 ** n <= alpha:
        cdf += math.comb(n, j) / 2 ** n
        j += 1
    lo = x[j - 1] if j >= 1 else -math.inf
    hi = x[n - j] if j >= 1 else math.inf
    return float(np.median(x)), lo, hi


def interleave_two_clocks(cases, *, rounds: int, warmup: int, target_ms: float):
    """{case: {"wall": [ms...], "cpu": [ms...]}}, one sample per case per round, orders rotating."""
    keys = list(cases)
    numbers = {}
    for key in keys:
        for _ in range(warmup):
            cases[key]()
        t0 = time.perf_counter()
        cases[key]()
        numbers[key] = calls_per_sample((time.perf_counter() - t0) * 1e3, target_ms)
    out = {key: {"wall": [], "cpu": []} for key in keys}
    for r in range(rounds):
        for key in round_order(keys, r):
            fn, number = cases[key], numbers[key]
            enabled = gc.isenabled()
            gc.disable()
            try:
                w0, c0 = time.perf_counter(), time.thread_time()
                for _ in range(number):
                    fn()
                c1, w1 = time.thread_time(), time.perf_counter()
            finally:
                if enabled:
                    gc.enable()
            out[key]["wall"].append((w1 - w0) * 1e3 / number)
            out[key]["cpu"].append((c1 - c0) * 1e3 / number)
    return out


def overheads(t, clock: str, case: str = "predict") -> list[float]:
    return [p / r - 1.0 for p, r in zip(t[case][clock], t["raw"][clock])]


def crop_then_run(session, image, boxes):
    """The floor of any predict: the Predictor's own bilinear crop of the box (its packer's warp, no
    packing, no decoding), then the same raw run. Its overhead is what a crop costs on this CPU,
    the model's caches included (the crop's memory traffic slows the next forward pass too)."""
    from edgepose.processing.image import InputPacker

    predictor = session.predictor
    _, matrices, _ = predictor.prepare(image, boxes)
    packer = InputPacker(predictor.spec)
    border, raw = predictor.spec.border, session.raw

    def run():
        packer.crop(image, matrices, border=border)
        return raw()
    return run


@pytest.mark.parametrize("model", MODELS)
def test_predict_overhead(model, bench_cache, bench_quick, pytestconfig):
    from edgepose.benchmarks.cli import pin_single_thread
    from edgepose.cpu import cpu_class, describe_cpu

    pin_single_thread()
    source = resolve(model, cache=bench_cache, weights=("fp16",))
    assert source.spec is not None and source.spec.input_size == (256, 256)
    image, boxes = load_bench_image("astronaut", None)
    session = open_session(source, parse_variant(VARIANT), image=image, bboxes=boxes)
    assert session.predict is not None, f"{model}: no Predictor for the {VARIANT} file"
    rounds = 11 if bench_quick else 31
    t = interleave_two_clocks({"raw": session.raw, "predict": session.predict,
                               "crop": crop_then_run(session, image, boxes)}, rounds=rounds, warmup=3,
                              target_ms=40.0 if bench_quick else 100.0)
    cpu, cpu_lo, cpu_hi = median_interval(overheads(t, "cpu"))
    wall = float(np.median(overheads(t, "wall")))
    floor, floor_lo, floor_hi = median_interval(overheads(t, "cpu", "crop"))
    raw_ms = float(np.median(t["raw"]["cpu"]))
    note = (f"predict overhead [{cpu_class()}] {model} ({VARIANT}, 256x256, box on a 512x512 photo): "
            f"{cpu:+.1%} CPU time (95% CI {cpu_lo:+.1%}..{cpu_hi:+.1%}), {wall:+.1%} wall, of the "
            f"{raw_ms:.2f} ms session run; the crop alone {floor:+.1%} ({floor_lo:+.1%}..{floor_hi:+.1%}); "
            f"target <= {TARGET:.0%}; median of {rounds} interleaved rounds; {describe_cpu()}")
    state = getattr(pytestconfig, "_edgepose_bench", None)
    if state is None:
        state = pytestconfig._edgepose_bench = {"notes": []}
    state.setdefault("notes", []).append(note)
    print(note)
    if cpu > TARGET:
        warnings.warn(f"above the {TARGET:.0%} target: {note}", stacklevel=1)
    if bench_quick:
        return  # quick mode (CI, few rounds): the figure only
    if cpu_lo > TARGET and model in KNOWN_MISSES:
        pytest.xfail(f"{KNOWN_MISSES[model]}; this run: {note}")
    assert cpu_lo <= TARGET, f"goal missed: {note}"


def test_median_interval_covers_the_median():
    med, lo, hi = median_interval(range(31))
    assert med == 15 and lo == 9 and hi == 21  # x_(10), x_(22): P(Bin(31, .5) <= 9) = 0.015
    assert median_interval([1.0]) == (1.0, -math.inf, math.inf)


def test_predict_overhead_in_run(bench_result):
    """The same figure from the session's big interleaved run, reported for every measured row."""
    rows = [r for r in bench_result.rows if r.predict_ms]
    if not rows:
        pytest.skip("no predict measurements in this run")
    for r in rows:
        assert r.predict_overhead is not None and r.predict_overhead > -0.5, r.key  # predict includes the run
