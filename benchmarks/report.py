"""Turn a BenchResult into Markdown, JSON, the reproduced tables and the table-A chart."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from .reference import CANONICAL_REFERENCE, REF_MACS
from .stats import summarize
from .table_a import build_table_a
from .table_b import build_table_b
from .table_c import build_table_c


def _table_a(result, variant: str | None):
    table = build_table_a(result, variant=variant)
    return table if table is not None and table.rows else None


# The reproduced tables, in report order: (name, build(result, table_variant) -> table or None). A table has
# markdown(), to_dict(), to_json() and may have plot(path). Adding a table is one entry here; report.md,
# report.json and <name>.{md,json[,png]} follow.
TABLES: tuple[tuple[str, Callable[[Any, str | None], Any]], ...] = (
    ("table_a", _table_a),
    ("table_b", lambda result, variant: build_table_b(result)),
    ("table_c", lambda result, variant: build_table_c(result)),
)


def built_tables(result, *, table_variant: str | None = None) -> list[tuple[str, Any]]:
    """(name, table) for every table this result has rows (or a reason to skip) for."""
    return [(name, table) for name, build in TABLES if (table := build(result, table_variant)) is not None]


def _f(v, fmt="{:.2f}", none="—"):
    return none if v is None else fmt.format(v)


def side_by_side_markdown(result) -> str:
    """One row per model, one column per variant: median ms of the raw session."""
    variants = result.variants
    models = list(dict.fromkeys(r.model for r in result.rows))
    lines = ["| model | " + " | ".join(variants) + " |", "|---|" + "---:|" * len(variants)]
    for m in models:
        cells = []
        for v in variants:
            row = result.row(m, v)
            cells.append(_f(row.session.median) if row else "—")
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def results_markdown(result) -> str:
    cpu = result.cpu
    peak = cpu.peak_gflops
    lines = ["## edgepose bench", "",
             f"CPU: {cpu.model_name}, {result.env.get('cpus')} logical CPUs; 1 thread per model; "
             f"load average at start {_fmt_load(result.env.get('loadavg_start'))}, at end "
             f"{_fmt_load(result.env.get('loadavg_end'))}.",
             f"Single-core fp32 peak: {cpu.formula()}.",
             "Assumptions: " + "; ".join(cpu.assumptions) + ".",
             f"Timing: {result.options.get('rounds')} interleaved rounds, each sample the mean of several "
             f"back-to-back calls (~{result.options.get('target_ms')} ms); ms are medians over rounds (min-max).", ""]
    ref_bits = []
    for key, samples in result.reference.items():
        s = summarize(samples)
        ref_bits.append(f"{key} {s.median:.2f} ms ({2 * REF_MACS / (s.median * 1e6):.1f} GFLOP/s, "
                        f"{2 * REF_MACS / (s.median * 1e6) / peak:.0%} of peak)")
    lines += [f"Reference workload (8 x 1x1 conv 256->256 on 28x28, {REF_MACS / 1e6:.0f} M MACs): "
              + "; ".join(ref_bits) + f". Normalised = model time / {CANONICAL_REFERENCE} time, per round.", ""]
    lines += ["### Side by side (raw session, median ms)", "", side_by_side_markdown(result), ""]
    lines += ["### All measurements", "",
              "| model | variant | session ms (min-max) | predict ms | predict overhead | normalised | "
              "params M | MACs M | file MB | peak RSS MB (model) | GFLOP/s | of peak |",
              "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in result.rows:
        s, p, g = r.session, r.predict, r.gflops()
        rss = (f"{r.rss['peak_mb']:.0f} (+{r.rss['model_mb']:.0f})" if r.rss else "—")
        lines.append(
            f"| {r.model} | {r.variant} | {s.median:.2f} ({s.min:.2f}-{s.max:.2f}) | {_f(p.median if p else None)} | "
            f"{_f(r.predict_overhead, '{:+.1%}')} | {r.normalised.median:.3f} | {_f(r.params / 1e6 if r.params else None)} | "
            f"{_f(r.macs / 1e6 if r.macs else None, '{:.0f}')} | {r.file_mb:.1f} | {rss} | {_f(g, '{:.1f}')} | "
            f"{_f(g / peak if g else None, '{:.0%}')} |")
    for _, table in built_tables(result):
        lines += ["", table.markdown()]
    if result.skipped:
        lines += ["", "Skipped: " + "; ".join(result.skipped)]
    return "\n".join(lines) + "\n"


def _fmt_load(load) -> str:
    return "—" if not load else "/".join(f"{v:.2f}" for v in load)


def write_reports(result, out_dir: str | Path, *, table_variant: str | None = None) -> dict[str, Path]:
    """report.md, report.json and, for each of TABLES with rows, <name>.md, <name>.json (and <name>.png when
    it plots: table A). Table B is written also when its MXNet fixtures were asked for but missing: it says why."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"markdown": out / "report.md", "json": out / "report.json"}
    paths["markdown"].write_text(result.markdown())
    data = result.to_dict()
    for name, table in built_tables(result, table_variant=table_variant):
        data[name] = table.to_dict()
        paths[f"{name}_markdown"] = out / f"{name}.md"
        paths[f"{name}_markdown"].write_text(table.markdown())
        paths[f"{name}_json"] = out / f"{name}.json"
        paths[f"{name}_json"].write_text(table.to_json())
        if callable(getattr(table, "plot", None)):
            paths[f"{name}_png"] = table.plot(out / f"{name}.png")
    paths["json"].write_text(json.dumps(data, indent=2, default=str))
    return paths
