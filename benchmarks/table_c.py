"""Table C of shared/seed_figures.md: FP32 vs INT8, single thread, speed-up per engine.

GluonCV's figures are images/s at batch 128 on a 36-core VNNI machine; ours are batch-1,
one-thread latencies, so only the speed-up ratios are comparable. Each speed-up here is the
median of per-round ratios FP32 / INT8 of the same engine in the same interleaved run
(MNN: mnn-fp32 vs mnn-int8; ONNX Runtime: ort-fp32 vs ort-int8).

Zoo and MXNet-fixture models have random weights: the INT8 keypoint error of zoo models is
shown (from the INT8 step's report) but says nothing about trained models.

Two ways in, one table: `build_table_c(bench_result)` from an interleaved benchmark run, and
`table_c_from_int8_report(report)` from the INT8 step's own timing of one model, e.g.

    report = int8_report_for("deeppose", output_dir="out/")      # zoo name, .onnx or .tflite
    print(table_c_from_int8_report(report).markdown())
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

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
    fp32_ms: float | None
    int8_ms: float | None
    speedup: float | None
    published_speedup: float | None = None
    published_fp32_ips: float | None = None
    published_int8_ips: float | None = None
    method: str | None = None
    mean_px_256: float | None = None
    max_px_256: float | None = None
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
            lines.append(f"| {r.model} | {r.engine} | {_f(r.fp32_ms)} | {_f(r.int8_ms)} | {_f(r.speedup, '{:.2f}x')} | "
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
                mean_px_256=acc.get("mean_px_256"), max_px_256=acc.get("max_px_256"), pck=acc.get("pck"),
                status=acc.get("status") or ("accuracy not checked (ImageNet classifier)"
                                             if model.startswith(PREFIX) else None)))
    return TableC(rows) if rows else None


def _speedup(fp32_row, int8_row) -> float | None:
    from .stats import paired_ratio

    return paired_ratio(fp32_row.session_ms, int8_row.session_ms)


# --- from the INT8 step's own report (one model, its own FP32 vs INT8 timing) ---------------
def table_c_from_int8_report(report) -> TableC:
    """One row per engine of an Int8Report: its interleaved FP32 / INT8 ms (1 thread), keypoint error, status."""
    rows = []
    for e in report.engines:
        acc, sp = e.accuracy, e.speed
        pub = PUBLISHED.get(report.model)
        rows.append(TableCRow(
            model=report.model, engine=e.engine, fp32_ms=sp.fp32_ms if sp else None,
            int8_ms=sp.int8_ms if sp else None, speedup=sp.speedup if sp else None,
            published_speedup=pub[2] if pub else None, published_fp32_ips=pub[0] if pub else None,
            published_int8_ips=pub[1] if pub else None, method=e.details.get("method"),
            mean_px_256=acc.mean_px_256 if acc else None, max_px_256=acc.max_px_256 if acc else None,
            pck=acc.pck if acc else None,
            status=f"failed: {e.error}" if e.error and e.status == "failed" else e.status))
    return TableC(rows)


def int8_report_for(model: str | Path, *, output_dir: str | Path, calib: Any = None,
                    fp32: Mapping[str, str | Path] | None = None, spec=None, preset: str | None = None,
                    options=None, engines: Sequence[str] = ("mnn", "onnxruntime")):
    """FP32 files (converted here unless `fp32` is given) -> INT8 per engine, timed and checked: an Int8Report.

    model    a zoo name, or an .onnx / .tflite file (preset= for a TFLite model without a card).
    calib    default: the pinned photos that fit the model ("pinned:hand" for hand models).
    options  Int8Options; default: non-strict (zoo models have random weights: the speed is the point).
    """
    from edgepose.converters import convert
    from edgepose.converters.quantize import Int8Options, fp32_artifacts_from_report, quantize_int8
    from edgepose.converters.quantize.samples import kind_for

    out = Path(output_dir)
    if fp32 is None:
        conv = convert(model, output_dir=out, spec=spec, preset=preset, strict=False)
        given = model if isinstance(model, (str, Path)) and Path(model).is_file() else None
        fp32 = fp32_artifacts_from_report(conv, given)
        stem = conv.stem
        name = (conv.spec or {}).get("name") or stem
    else:
        stem = name = Path(next(iter(fp32.values()))).name.split(".")[0]
    opts = options or Int8Options(engines=tuple(engines), strict=False, progress=False)
    return quantize_int8(fp32, calib=calib or f"pinned:{kind_for(str(name))}", spec=spec, output_dir=out,
                         stem=stem, options=opts)
