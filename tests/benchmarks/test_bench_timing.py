"""Interleaved timing logic, on a virtual clock so the figures are exact."""
from __future__ import annotations

import pytest

from edgepose.benchmarks.timing import calls_per_sample, interleave, round_order, time_calls


class VirtualClock:
    """Seconds that advance only when a case 'runs' (each call adds its cost)."""

    def __init__(self):
        self.now = 0.0
        self.log: list[str] = []

    def __call__(self) -> float:
        return self.now

    def case(self, name: str, cost_ms: float):
        def run():
            self.now += cost_ms / 1e3
            self.log.append(name)
        return run


def test_time_calls_is_ms_per_call():
    clock = VirtualClock()
    assert time_calls(clock.case("a", 2.5), 8, clock=clock) == pytest.approx(2.5)


def test_calls_per_sample():
    assert calls_per_sample(5.0, 100.0) == 20
    assert calls_per_sample(300.0, 100.0) == 1
    assert calls_per_sample(0.0, 100.0, max_number=50) == 50


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_round_order_rotates_and_covers(n):
    keys = [f"k{i}" for i in range(n)]
    firsts = set()
    for r in range(2 * n):
        order = round_order(keys, r)
        assert sorted(order) == keys
        firsts.add(order[0])
    assert firsts == set(keys)  # every case gets to go first in some round


def test_interleave_samples_calibration_and_order():
    clock = VirtualClock()
    cases = {"fast": clock.case("fast", 1.0), "slow": clock.case("slow", 40.0), "mid": clock.case("mid", 10.0)}
    ticks = []
    out = interleave(cases, rounds=4, warmup=1, target_ms=80.0, clock=clock, progress=ticks.append)
    assert {k: v.number for k, v in out.items()} == {"fast": 80, "slow": 2, "mid": 8}
    for key, cost in (("fast", 1.0), ("slow", 40.0), ("mid", 10.0)):
        assert out[key].samples == pytest.approx([cost] * 4)
    assert len(ticks) == 12
    timed = clock.log[3 + 3:]  # after 1 warm-up + 1 calibration call per case
    blocks = []
    for name in timed:
        if not blocks or blocks[-1] != name:
            blocks.append(name)
    assert len(blocks) >= 4 * 3 - 3  # one block per case per round (adjacent rounds may merge)
    assert blocks[:3] != blocks[3:6]  # the order changes between rounds


def test_interleave_needs_rounds():
    with pytest.raises(ValueError):
        interleave({"a": lambda: None}, rounds=0)


def test_two_cases_alternate_abba():
    assert [round_order(["a", "b"], r) for r in range(4)] == [["a", "b"], ["b", "a"], ["b", "a"], ["a", "b"]]
