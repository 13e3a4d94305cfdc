"""Latency harness: `edgepose bench`, its Python API and the pytest-benchmark suite.

    from edgepose.benchmarks import run_benchmark, write_reports
    result = run_benchmark(["deeppose", "heatmap"], variants=["mnn-fp16", "ort-fp32"], rounds=5)
    write_reports(result, "bench-out")          # report.md, report.json, table_a.{md,json,png}, table_b/c.{md,json}
    run_benchmark(["table-c"], variants=["mnn-fp32", "mnn-int8", "ort-fp32", "ort-int8"])  # FP32 vs INT8

Names resolve lazily: importing this package loads neither MNN nor torch.
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "run_benchmark": "harness",
    "BenchOptions": "harness",
    "BenchResult": "harness",
    "Row": "harness",
    "write_reports": "report",
    "build_table_a": "table_a",
    "CLAIMS": "table_a",
    "build_table_b": "table_b",
    "build_table_c": "table_c",
    "locate_fixtures": "mxnet_source",
    "build_fixtures": "mxnet_source",
    "save_baseline": "baseline",
    "load_baseline": "baseline",
    "compare": "baseline",
    "writeup_method": "writeup",
    "parse_variant": "variants",
    "Variant": "variants",
    "cpu_peak": "cpu",
    "graph_cost": "macs",
    "peak_rss": "memory",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
