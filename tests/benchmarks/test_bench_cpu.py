"""Peak GFLOP/s from /proc/cpuinfo text."""
from __future__ import annotations

import pytest

from edgepose.benchmarks.cpu import cpu_peak, parse_cpuinfo

AVX512 = """processor\t: 0
model name\t: Intel(R) Xeon(R) Gold 6148 CPU @ 2.40GHz
cpu MHz\t\t: 2394.374
flags\t\t: fpu sse sse2 avx fma avx2 avx512f avx512bw
"""
AVX2 = """processor\t: 0
model name\t: AMD Ryzen 5 3600 6-Core Processor
cpu MHz\t\t: 3600.000
flags\t\t: fpu sse sse2 avx fma avx2
"""
SSE = """model name\t: Old CPU @ 2.00GHz
flags\t\t: fpu sse sse2
"""


def test_avx512_peak():
    p = parse_cpuinfo(AVX512)
    assert (p.isa, p.fp32_lanes, p.fma_units) == ("avx512", 16, 2)
    assert p.ghz == pytest.approx(2.394374)
    assert p.peak_gflops == pytest.approx(2 * 16 * 2 * 2.394374)
    assert "GFLOP/s" in p.formula() and p.assumptions


def test_avx2_peak_and_overrides():
    p = parse_cpuinfo(AVX2, fma_units=1, ghz=4.2)
    assert (p.isa, p.fp32_lanes) == ("avx2", 8)
    assert p.peak_gflops == pytest.approx(1 * 8 * 2 * 4.2)


def test_cpufreq_max_beats_current_mhz():
    assert parse_cpuinfo(AVX2, max_freq_khz=4_200_000).ghz == pytest.approx(4.2)


def test_clock_from_model_name_and_sse():
    p = parse_cpuinfo(SSE)
    assert (p.isa, p.fp32_lanes, p.ghz) == ("sse", 4, 2.0)


def test_this_machine():
    p = cpu_peak()
    assert p.peak_gflops > 0 and p.fp32_lanes in (4, 8, 16)
