"""Summary statistics for noisy timings: medians, spreads and paired (same-round) ratios.

Why paired ratios: on a shared machine the load changes from second to second. Two cases
timed in the same round see the same load, so the median of their per-round ratios is far
steadier than the ratio of their separate medians.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np


@dataclass(frozen=True)
class Summary:
    """Median / min / max / mean and the relative spread (IQR / median) of one set of samples."""

    n: int
    median: float
    min: float
    max: float
    mean: float
    iqr: float

    @property
    def rel_spread(self) -> float:
        """IQR divided by the median: 0.05 means the middle half of the samples lies within 5 %."""
        return self.iqr / self.median if self.median else math.inf

    def to_dict(self) -> dict:
        return {**asdict(self), "rel_spread": self.rel_spread}


def summarize(samples: Sequence[float]) -> Summary:
    """Summary of a non-empty sequence of finite samples."""
    arr = np.asarray(list(samples), dtype=np.float64)
    if arr.size == 0:
        raise ValueError("no samples to summarise")
    if not np.all(np.isfinite(arr)):
        raise ValueError("samples must be finite")
    q1, q3 = np.percentile(arr, [25, 75])
    return Summary(n=int(arr.size), median=float(np.median(arr)), min=float(arr.min()),
                   max=float(arr.max()), mean=float(arr.mean()), iqr=float(q3 - q1))


def paired_ratios(numerator: Sequence[float], denominator: Sequence[float]) -> list[float]:
    """Per-round ratios a[i] / b[i] of two cases timed in the same rounds."""
    if len(numerator) != len(denominator):
        raise ValueError(f"paired samples differ in length: {len(numerator)} vs {len(denominator)}")
    if any(d <= 0 for d in denominator):
        raise ValueError("denominator samples must be positive")
    return [float(a) / float(b) for a, b in zip(numerator, denominator)]


def paired_ratio(numerator: Sequence[float], denominator: Sequence[float]) -> float:
    """Median of the per-round ratios (see module docstring)."""
    return float(np.median(paired_ratios(numerator, denominator)))


def relative_overhead(total: Sequence[float], part: Sequence[float]) -> float:
    """Median over rounds of (total - part) / part, e.g. predict beyond the raw session run."""
    return float(np.median([r - 1.0 for r in paired_ratios(total, part)]))


def ranks(values: Sequence[float]) -> list[int]:
    """1-based rank of each value, smallest first (ties share the order they appear in)."""
    order = sorted(range(len(values)), key=lambda i: (values[i], i))
    out = [0] * len(values)
    for rank, i in enumerate(order, start=1):
        out[i] = rank
    return out


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman rank correlation of two equally long sequences (1 = same order)."""
    if len(a) != len(b) or len(a) < 2:
        raise ValueError("need two sequences of the same length >= 2")
    ra, rb = np.asarray(ranks(a), float), np.asarray(ranks(b), float)
    ra -= ra.mean()
    rb -= rb.mean()
    denom = math.sqrt(float((ra ** 2).sum() * (rb ** 2).sum()))
    return float((ra * rb).sum() / denom) if denom else 1.0
