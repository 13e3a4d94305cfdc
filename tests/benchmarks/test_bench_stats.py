"""Harness maths: summaries, paired ratios, overhead, ranks."""
from __future__ import annotations

import math

import pytest
pytest.importorskip("hypothesis")  # build-time extra (dev): skip without it
from hypothesis import given, strategies as st

from edgepose.benchmarks.stats import paired_ratio, paired_ratios, ranks, relative_overhead, spearman, summarize

positive = st.floats(min_value=0.01, max_value=1e4, allow_nan=False, allow_infinity=False)


def test_summary_of_known_samples():
    s = summarize([5.0, 1.0, 3.0, 2.0, 4.0])
    assert (s.n, s.median, s.min, s.max, s.mean) == (5, 3.0, 1.0, 5.0, 3.0)
    assert s.iqr == pytest.approx(2.0)
    assert s.rel_spread == pytest.approx(2.0 / 3.0)


@pytest.mark.parametrize("bad", [[], [1.0, float("nan")], [float("inf")]])
def test_summary_rejects_bad_samples(bad):
    with pytest.raises(ValueError):
        summarize(bad)


@given(st.lists(st.tuples(positive, positive, positive), min_size=1, max_size=30))
def test_paired_ratio_cancels_a_per_round_load_factor(rounds):
    """A load factor common to both cases in a round does not change the paired ratio."""
    a = [x for x, _, _ in rounds]
    b = [y for _, y, _ in rounds]
    load = [f for _, _, f in rounds]
    plain = paired_ratio(a, b)
    loaded = paired_ratio([x * f for x, f in zip(a, load)], [y * f for y, f in zip(b, load)])
    assert math.isclose(plain, loaded, rel_tol=1e-9)


def test_paired_ratio_is_robust_where_ratio_of_medians_is_not():
    # Round-by-round the model is exactly 2x the baseline; the load swings 3x between rounds.
    base = [1.0, 3.0, 1.0, 3.0, 3.0]
    model = [2.0, 6.0, 2.0, 6.0, 6.0]
    assert paired_ratio(model, base) == pytest.approx(2.0)


def test_paired_inputs_must_match():
    with pytest.raises(ValueError):
        paired_ratios([1.0, 2.0], [1.0])
    with pytest.raises(ValueError):
        paired_ratios([1.0], [0.0])


def test_relative_overhead():
    assert relative_overhead([10.5, 21.0, 10.4], [10.0, 20.0, 10.0]) == pytest.approx(0.05)


def test_ranks_and_spearman():
    assert ranks([3.0, 1.0, 2.0]) == [3, 1, 2]
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    with pytest.raises(ValueError):
        spearman([1.0], [1.0])
