"""Interleaved timing: every case is timed once per round, rounds repeat, orders rotate.

Why interleave: on a shared, noisy machine the load drifts. Timing A for a minute and then B
for a minute compares two different machines; timing A, B, C, then C, B, A, ... spreads the
drift evenly, and per-round ratios (edgepose.benchmarks.stats.paired_ratio) cancel most of it.

One sample = the mean of `number` back-to-back calls, in ms per call; `number` is chosen per
case so that a sample lasts about `target_ms` (short calls are batched, long ones are not).
"""
from __future__ import annotations

import gc
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

Clock = Callable[[], float]


@dataclass
class CaseTiming:
    """Per-round samples (ms per call) of one case, and how many calls each sample averaged."""

    key: str
    number: int
    samples: list[float] = field(default_factory=list)


def time_calls(fn: Callable[[], Any], number: int, *, clock: Clock = time.perf_counter) -> float:
    """Milliseconds per call of `number` back-to-back calls, with the garbage collector paused."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        t0 = clock()
        for _ in range(number):
            fn()
        return (clock() - t0) * 1e3 / number
    finally:
        if enabled:
            gc.enable()


def calls_per_sample(estimate_ms: float, target_ms: float, *, max_number: int = 1000) -> int:
    """How many calls make one sample last about target_ms (at least 1)."""
    if estimate_ms <= 0:
        return max_number
    return int(max(1, min(max_number, round(target_ms / estimate_ms))))


def round_order(keys: list[str], round_index: int) -> list[str]:
    """Rounds come in pairs: an order, then the same order reversed; each pair rotates by one.

    Two cases give AB BA BA AB ..., three ABC CBA BCA ACB ...: every case goes first, last and
    next to every other in turn, so a drift in load does not favour one of them.
    """
    if not keys:
        return []
    shift = (round_index // 2) % len(keys)
    order = keys[shift:] + keys[:shift]
    return order[::-1] if round_index % 2 else order


def interleave(cases: Mapping[str, Callable[[], Any]], *, rounds: int, warmup: int = 2,
               target_ms: float = 100.0, number: int | None = None, clock: Clock = time.perf_counter,
               progress: Callable[[int], Any] | None = None) -> dict[str, CaseTiming]:
    """Time every case once per round for `rounds` rounds; returns per-case samples.

    warmup   untimed calls per case before anything is timed (caches, lazy allocations);
    number   calls per sample for every case; None = calibrate each case to ~target_ms;
    progress called with 1 after each timed sample (e.g. a tqdm's update).
    """
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    keys = list(cases)
    result: dict[str, CaseTiming] = {}
    for key in keys:
        fn = cases[key]
        for _ in range(max(0, warmup)):
            fn()
        n = number if number is not None else calls_per_sample(time_calls(fn, 1, clock=clock), target_ms)
        result[key] = CaseTiming(key, int(n))
    for r in range(rounds):
        for key in round_order(keys, r):
            result[key].samples.append(time_calls(cases[key], result[key].number, clock=clock))
            if progress is not None:
                progress(1)
    return result
