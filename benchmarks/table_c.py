"""Table C of shared/seed_figures.md: FP32 vs INT8, single thread, speed-up per engine.

GluonCV's figures are images/s at batch 128 on a 36-core VNNI machine; ours are batch-1,
one-thread latencies, so only the speed-up ratios are comparable. Each speed-up here is the
median of per-round ratios FP32 / INT8 of the same engine in the same interleaved run
(MNN: mnn-fp32 vs mnn-int8; ONNX Runtime: ort-fp32 vs ort-int8).

Zoo and MXNet-fixture models have random weights: the INT8 keypoint error of zoo models is
shown (from the INT8 step's report) but says nothing about trained models.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from .mxnet_source import PREFIX

# model -> (FP32 images/s, INT8 images/s, speed-up), GluonCV on AWS C5.18xlarge, batch 128.
PUBLISHED = {
    "resnet50_v1": (122.02, 276.72, 2.27),
    "mobilenet1.0": (375.33, 1016.39, 2.71),
}
ENGINES = (("mnn", "mnn-fp32", "mnn-int8"), ("onnxruntime", "ort-fp32", "ort-int8"))


@dataclass
class TableCRow:
    model: str
    engine: str
    fp32_ms: float
    int8_ms: float
    speedup: float | None
    published_speedup: float | None = None
    published_fp32_ips: float | None = None
    published_int8_ips: float | None = None
    method: str | None = None
    mean_px_256: float | None = None
    pck: float | None = None
    status: str | None = None

    @property
    def relative(self) -> float | None:
        """measured / published speed-up."""
        if self.speedup is None or not self.published_speedup:
            return None
        return self.speedup / self.published_speedup


@dataclass
class TableC:
    rows: list[TableCRow]

    def to_dict(self) -> dict[str, Any]:
        return {"rows": [{**asdict(r), "relative": r.relative} for r in self.rows]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def markdown(self) -> str:
        lines = ["### Table C: FP32 vs INT8, one thread (GluonCV VNNI batch-128 figures beside)", "",
                 "Speed-up = median of per-round ratios FP32 / INT8, same engine, same interleaved run. "
                 "GluonCV's images/s (batch 128, 36 cores) are not comparable with our ms; their speed-up is.", "",
                 "| model | engine | FP32 ms | INT8 ms | speed-up | published speed-up (FP32 -> INT8 img/s) | "
                 "ours / published | INT8 method | INT8 vs FP32 mean px @256 | PCK@0.05 | INT8 status |",
                 "|---|---|---:|---:|---:|---:|---:|---|---:|---:|---|"]
        for r in self.rows:
            pub = (f"{r.published_speedup:.2f}x ({r.published_fp32_ips:g} -> {r.published_int8_ips:g})"
                   if r.published_speedup else "—")
            lines.append(f"| {r.model} | {r.engine} | {r.fp32_ms:.2f} | {r.int8_ms:.2f} | {_f(r.speedup, '{:.2f}x')} | "
                         f"{pub} | {_f(r.relative)} | {r.method or '—'} | {_f(r.mean_px_256)} | {_f(r.pck, '{:.3f}')} | "
                         f"{r.status or '—'} |")
        return "\n".join(lines) + "\n"


def _f(v, fmt: str = "{:.2f}") -> str:
    return "—" if v is None else fmt.format(v)


def build_table_c(result) -> TableC | None:
    """Rows for every model measured both FP32 and INT8 on an engine; None when there are none."""
    int8_info = {s["name"]: (s.get("int8") or {}).get("engines", {}) for s in result.sources}
    rows = []
    for model in dict.fromkeys(r.model for r in result.rows):
        base = model[len(PREFIX):] if model.startswith(PREFIX) else model
        for engine, fp32_v, int8_v in ENGINES:
            a, b = result.row(model, fp32_v), result.row(model, int8_v)
            if a is None or b is None:
                continue
            pub = PUBLISHED.get(base)
            acc = int8_info.get(model, {}).get(engine, {})
            method = acc.get("method") or ("EMA" if engine == "mnn" else "minmax")
            rows.append(TableCRow(
                model=model, engine=engine, fp32_ms=a.session.median, int8_ms=b.session.median,
                speedup=_speedup(a, b),
                published_speedup=pub[2] if pub else None, published_fp32_ips=pub[0] if pub else None,
                published_int8_ips=pub[1] if pub else None, method=method,
                mean_px_256=acc.get("mean_px_256"), pck=acc.get("pck"),
                status=acc.get("status") or ("accuracy not checked (ImageNet classifier)"
                                             if model.startswith(PREFIX) else None)))
    return TableC(rows) if rows else None


def _speedup(fp32_row, int8_row) -> float | None:
    from .stats import paired_ratio

    return paired_ratio(fp32_row.session_ms, int8_row.session_ms)
