"""Fixtures for the harness-maths tests: BenchResults built from chosen samples."""
from __future__ import annotations

import pytest

from edgepose.benchmarks.cpu import parse_cpuinfo
from edgepose.benchmarks.harness import BenchResult, Row

CPU = parse_cpuinfo("model name\t: Test CPU @ 3.00GHz\nflags\t\t: avx2 fma\n")
PUBLISHED = {"deeppose": (6.74,), "heatmap": (34.76,), "ipr": (6.39,), "deeppose_x2": (16.41,), "simdr_320": (12.33,)}


def result_from(ms: dict[str, list[float]], *, variant="mnn-fp16@normal", ref=None, predict=None) -> BenchResult:
    rounds = len(next(iter(ms.values())))
    ref = ref or [10.0] * rounds
    rows = [Row(model=m, variant=variant, path=f"/x/{m}.mnn", file_mb=1.0, session_ms=list(s),
                predict_ms=(predict or {}).get(m), ref_ms=ref, params=1000, macs=10**8,
                table_id=m, published_ms=PUBLISHED.get(m)) for m, s in ms.items()]
    return BenchResult(rows=rows, reference={"ref-mnn": ref}, cpu=CPU, env={"cpus": 2}, options={"rounds": rounds})


@pytest.fixture
def make_result():
    """make_result({model: [ms per round]}, variant=..., ref=[...], predict={...}) -> BenchResult."""
    return result_from
