"""Table B of shared/seed_figures.md: GluonCV pruned ResNets, speed-up over the original.

GluonCV published one speed-up per pruned model (hardware and batch not stated). Here each
pruned model and its original are converted from the MXNet fixtures (random weights; latency
does not depend on them), timed in the same interleaved run with one thread, and the speed-up
is the median of per-round ratios original / pruned, per runtime. The MAC ratio (from the ONNX
graphs) is shown beside it: it is what a compute-bound runtime would reach.

The two pruned resnet101_v1d models are also compared with each other (published 2.02 / 1.8 =
1.12x). An original missing from an older fixture set leaves its rows without a speed-up (noted).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from .mxnet_source import BUILD_COMMAND, FIXTURES_MODULE, PREFIX

# pruned model -> (original, published speed-up, published top-1)
PUBLISHED = {
    "resnet18_v1b_0.89": ("resnet18_v1b", 2.0, 67.2),
    "resnet50_v1d_0.86": ("resnet50_v1d", 1.68, 78.02),
    "resnet50_v1d_0.48": ("resnet50_v1d", 3.3, 74.66),
    "resnet50_v1d_0.37": ("resnet50_v1d", 5.01, 70.71),
    "resnet50_v1d_0.11": ("resnet50_v1d", 8.78, 63.22),
    "resnet101_v1d_0.76": ("resnet101_v1d", 1.8, 79.46),
    "resnet101_v1d_0.73": ("resnet101_v1d", 2.02, 78.89),
}
# (faster, slower) pairs of pruned models compared with each other when their original is missing.
PAIRS = (("resnet101_v1d_0.73", "resnet101_v1d_0.76"),)
VARIANTS = ("mnn-fp32", "ort-fp32")


@dataclass
class TableBRow:
    model: str
    original: str
    published_speedup: float
    published_top1: float
    measured: dict[str, float | None] = field(default_factory=dict)   # variant -> speed-up
    ms: dict[str, float | None] = field(default_factory=dict)         # variant -> median ms (pruned)
    original_ms: dict[str, float | None] = field(default_factory=dict)
    mac_ratio: float | None = None
    note: str = ""


@dataclass
class TableB:
    variants: list[str]
    rows: list[TableBRow]
    pairs: list[dict[str, Any]]
    skipped: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"variants": self.variants, "rows": [asdict(r) for r in self.rows], "pairs": self.pairs,
                "skipped": self.skipped}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def markdown(self) -> str:
        lines = ["### Table B: pruned ResNets, speed-up over the original (GluonCV vs measured)", ""]
        if self.skipped:
            return "\n".join(lines + [f"Skipped: {self.skipped}", ""])
        lines += ["One thread, interleaved rounds, speed-up = median of per-round ratios original / pruned; "
                  "MAC ratio from the ONNX graphs. Published: GluonCV model zoo (its hardware).", "",
                  "| model | top-1 (published) | speed-up published | "
                  + " | ".join(f"{v} ms (original)" for v in self.variants) + " | "
                  + " | ".join(f"speed-up {v}" for v in self.variants) + " | MAC ratio |",
                  "|---|---:|---:|" + "---:|" * (2 * len(self.variants)) + "---:|"]
        for r in self.rows:
            ms = [f"{_f(r.ms.get(v))} ({_f(r.original_ms.get(v))})" for v in self.variants]
            sp = [_f(r.measured.get(v), "{:.2f}x", r.note and "n/a") for v in self.variants]
            lines.append(f"| {r.model} | {r.published_top1:g} | {r.published_speedup:g}x | " + " | ".join(ms)
                         + " | " + " | ".join(sp) + f" | {_f(r.mac_ratio, '{:.2f}x')} |")
        notes = sorted({r.note for r in self.rows if r.note})
        for p in self.pairs:
            measured = ", ".join(f"{v} {_f(p['measured'].get(v), '{:.2f}x')}" for v in self.variants)
            lines += ["", f"{p['faster']} vs {p['slower']} (same original): published "
                      f"{p['published']:.2f}x, measured {measured}, MAC ratio {_f(p['mac_ratio'], '{:.2f}x')}."]
        lines += [""] + [f"Note: {n}" for n in notes]
        return "\n".join(lines) + "\n"


def _f(v, fmt: str = "{:.2f}", none: str = "—") -> str:
    return none if v is None else fmt.format(v)


def _macs(result, model: str) -> int | None:
    return next((r.macs for r in result.rows if r.model == model and r.macs), None)


def _ratio_rows(result, a: str, b: str, variants) -> dict[str, float | None]:
    return {v: result.ratio(a, b, v) for v in variants}


def build_table_b(result, *, variants=VARIANTS) -> TableB | None:
    """Table B from a BenchResult holding `mxnet:` fixture rows; None when it holds none of them."""
    measured = {r.model for r in result.rows}
    wanted = [m for m in PUBLISHED if f"{PREFIX}{m}" in measured]
    missing_fixtures = next((s for s in result.skipped if "MXNet fixtures" in s), None)
    if not wanted:
        if missing_fixtures:
            hint = "" if BUILD_COMMAND in missing_fixtures else f" (build: {BUILD_COMMAND})"
            return TableB(list(variants), [], [], skipped=f"{missing_fixtures}{hint}")
        return None
    variants = [v for v in variants if any(r.variant == v for r in result.rows if r.model.startswith(PREFIX))]
    rows = []
    for m in wanted:
        original, speedup, top1 = PUBLISHED[m]
        pm, po = f"{PREFIX}{m}", f"{PREFIX}{original}"
        row = TableBRow(model=m, original=original, published_speedup=speedup, published_top1=top1)
        for v in variants:
            r, o = result.row(pm, v), result.row(po, v)
            row.ms[v] = r.session.median if r else None
            row.original_ms[v] = o.session.median if o else None
        if po in measured:
            row.measured = _ratio_rows(result, po, pm, variants)
            a, b = _macs(result, po), _macs(result, pm)
            row.mac_ratio = a / b if a and b else None
        else:
            row.measured = {v: None for v in variants}
            row.note = (f"the unpruned {original} is not among the MXNet fixtures "
                        f"({FIXTURES_MODULE} MODELS), so it has no measured speed-up")
        rows.append(row)
    pairs = []
    for faster, slower in PAIRS:
        if f"{PREFIX}{faster}" in measured and f"{PREFIX}{slower}" in measured:
            a, b = _macs(result, f"{PREFIX}{slower}"), _macs(result, f"{PREFIX}{faster}")
            pairs.append({"faster": faster, "slower": slower,
                          "published": PUBLISHED[faster][1] / PUBLISHED[slower][1],
                          "measured": _ratio_rows(result, f"{PREFIX}{slower}", f"{PREFIX}{faster}", variants),
                          "mac_ratio": a / b if a and b else None})
    return TableB(list(variants), rows, pairs)
