"""Reproduction of table A (shared/seed_figures.md): published vs measured, as ratios to DeepPose.

Hardware differs from the write-up's (an i5-12600KF), so absolute milliseconds are shown but
not compared: each row is divided by the DeepPose row measured in the same run (median of
per-round ratios), and the rank orders are compared. The write-up's headline claims are then
checked on this machine's ratios.
"""
from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

from .stats import ranks, spearman
from .variants import TABLE_VARIANT

BASELINE_MODEL = "deeppose"
# How the published figures were taken (seed_figures.md, table A).
PUBLISHED_SETUP = ("MNN, FP16-converted model, 1 thread, Intel i5-12600KF; "
                   "5 repeats of 100 predict calls on one image, ms per call")


@dataclass(frozen=True)
class Published:
    """One row of table A: the registry model that reproduces it, and its five published timings."""

    table_id: str
    ms: tuple[float, ...]

    @property
    def median_ms(self) -> float:
        return float(statistics.median(self.ms))


# Registry model -> its row of table A, in the table's order (the `table-a` group runs them in it).
# A new row is one entry here; the model itself is registered in edgepose.models.
PUBLISHED = {
    "deeppose": Published("deeppose", (7.12, 7.01, 6.74, 6.71, 6.67)),
    "heatmap": Published("heatmap", (34.76, 34.75, 35.07, 34.76, 35.21)),
    "deeppose_x2": Published("deeppose_x2", (16.68, 15.70, 16.41, 15.97, 16.53)),
    "ipr": Published("ipr", (6.50, 6.39, 6.31, 6.34, 6.53)),
    "dsnt_deconv": Published("dsnt_deconv", (11.25, 11.05, 10.94, 11.05, 11.68)),
    "simdr": Published("simdr", (11.87, 11.71, 12.04, 11.92, 11.99)),
    "simdr_norm": Published("simdr_norm", (12.05, 12.04, 11.76, 11.49, 11.80)),
    "simdr_320_1024d": Published("simdr_320_1024d", (17.91, 17.78, 17.69, 17.42, 17.46)),
    "simdr_320": Published("simdr_320 (final)", (12.26, 12.41, 12.29, 12.33, 12.42)),
    "efficientrep_n_320": Published("efficientrep_n_320", (14.63, 14.81, 14.64, 14.68, 14.71)),
    "tokenpose_direct": Published("tokenpose_direct", (10.79, 10.92, 10.65, 10.82, 10.83)),
    "tokenpose_deconv4": Published("tokenpose_deconv4", (18.77, 17.62, 18.27, 17.98, 17.84)),
    "tokenpose_deconv3": Published("tokenpose_deconv3", (16.99, 16.86, 16.96, 16.88, 17.37)),
}


@dataclass(frozen=True)
class Claim:
    """ratio = time(numerator) / time(denominator); holds if it lies in [low, high]."""

    id: str
    text: str
    numerator: str
    denominator: str
    low: float
    high: float = float("inf")

    def check(self, ratio: float | None) -> bool | None:
        return None if ratio is None else bool(self.low <= ratio <= self.high)

    def rule(self) -> str:
        if self.high == float("inf"):
            return f"{self.numerator}/{self.denominator} >= {self.low:g}"
        return f"{self.low:g} <= {self.numerator}/{self.denominator} <= {self.high:g}"


CLAIMS = (
    Claim("final_vs_heatmap", "the final model (simdr_320) is >= 2.5x faster than the heatmap baseline",
          "heatmap", "simdr_320", 2.5),
    Claim("integral_vs_deeppose", "integral regression (ipr) costs about the same as DeepPose (within 15 %)",
          "ipr", "deeppose", 0.85, 1.15),
    Claim("width_x2_cost", "doubling the backbone width (deeppose_x2) costs >= 2x", "deeppose_x2", "deeppose", 2.0),
    Claim("heatmap_vs_deeppose", "heatmap costs ~5.2x DeepPose (within 25 %)", "heatmap", "deeppose", 3.9, 6.5),
)


@dataclass(frozen=True)
class TableRow:
    model: str
    table_id: str
    published_ms: float
    measured_ms: float
    published_ratio: float
    measured_ratio: float
    published_rank: int = 0
    measured_rank: int = 0


@dataclass(frozen=True)
class ClaimResult:
    id: str
    text: str
    rule: str
    published: float | None
    measured: float | None
    holds: bool | None  # None: a row needed was not measured


@dataclass
class TableA:
    variant: str
    rows: list[TableRow]
    claims: list[ClaimResult]
    rank_correlation: float | None
    cpu: str

    def to_dict(self) -> dict:
        return {"variant": self.variant, "baseline": BASELINE_MODEL, "cpu": self.cpu,
                "rank_correlation_spearman": self.rank_correlation,
                "rows": [asdict(r) for r in self.rows], "claims": [asdict(c) for c in self.claims]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def markdown(self) -> str:
        lines = [f"### Table A reproduced ({self.variant}, 1 thread, ratios to {BASELINE_MODEL} in the same run)", "",
                 f"Published: {PUBLISHED_SETUP}.", "",
                 "| model | published ms | our ms | published ratio | our ratio | published rank | our rank |",
                 "|---|---:|---:|---:|---:|---:|---:|"]
        for r in self.rows:
            lines.append(f"| {r.table_id} | {r.published_ms:.2f} | {r.measured_ms:.2f} | {r.published_ratio:.2f} | "
                         f"{r.measured_ratio:.2f} | {r.published_rank} | {r.measured_rank} |")
        if self.rank_correlation is not None:
            lines += ["", f"Rank correlation (Spearman) published vs ours: {self.rank_correlation:.2f}"]
        lines += ["", "| headline claim | rule | published | ours | holds here |", "|---|---|---:|---:|---|"]
        for c in self.claims:
            fmt = (lambda v: "—" if v is None else f"{v:.2f}")
            verdict = {True: "yes", False: "**no**", None: "not measured"}[c.holds]
            lines.append(f"| {c.text} | {c.rule} | {fmt(c.published)} | {fmt(c.measured)} | {verdict} |")
        return "\n".join(lines) + "\n"

    def plot(self, path: str | Path) -> Path:
        """Grouped bars: published vs measured ratio to DeepPose per model (PNG, Agg backend)."""
        import matplotlib

        matplotlib.use("Agg", force=True)
        import matplotlib.pyplot as plt

        rows = sorted(self.rows, key=lambda r: r.published_ratio)
        x = range(len(rows))
        fig, ax = plt.subplots(figsize=(max(6.0, 0.75 * len(rows) + 2), 4.5), dpi=110)
        ax.bar([i - 0.2 for i in x], [r.published_ratio for r in rows], 0.4, label="published (i5-12600KF)",
               color="#8da0cb")
        ax.bar([i + 0.2 for i in x], [r.measured_ratio for r in rows], 0.4, label="measured here", color="#fc8d62")
        ax.axhline(1.0, color="0.4", lw=0.8, ls="--")
        ax.set_xticks(list(x))
        ax.set_xticklabels([r.model for r in rows], rotation=40, ha="right", fontsize=8)
        ax.set_ylabel(f"time / {BASELINE_MODEL} time")
        ax.set_title(f"Table A: latency relative to {BASELINE_MODEL} ({self.variant}, 1 thread)\n{self.cpu}",
                     fontsize=9)
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path)
        plt.close(fig)
        return path


def published_median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def build_table_a(result, *, variant: str | None = None) -> TableA | None:
    """Table A from a BenchResult, for `variant` (default: the write-up's setting if measured).

    None when the DeepPose row (the baseline) was not measured in that variant.
    """
    candidates = [variant] if variant else [TABLE_VARIANT, "mnn-fp16", *result.variants]
    chosen = next((v for v in candidates if result.row(BASELINE_MODEL, v) is not None), None)
    if chosen is None:
        return None
    base = result.row(BASELINE_MODEL, chosen)
    if not base.published_ms:
        return None
    base_pub = published_median(base.published_ms)
    raw = []
    for row in result.rows:
        if row.variant != chosen or not row.published_ms:
            continue
        pub = published_median(row.published_ms)
        raw.append(dict(model=row.model, table_id=row.table_id or row.model, published_ms=pub,
                        measured_ms=row.session.median, published_ratio=pub / base_pub,
                        measured_ratio=result.ratio(row.model, BASELINE_MODEL, chosen)))
    pr = ranks([r["published_ratio"] for r in raw])
    mr = ranks([r["measured_ratio"] for r in raw])
    rows = [TableRow(**r, published_rank=a, measured_rank=b) for r, a, b in zip(raw, pr, mr)]
    rho = spearman([r.published_ratio for r in rows], [r.measured_ratio for r in rows]) if len(rows) >= 2 else None
    pub_of = {r.model: r.published_ms for r in rows}
    claims = []
    for c in CLAIMS:
        published = pub_of[c.numerator] / pub_of[c.denominator] if c.numerator in pub_of and c.denominator in pub_of else None
        measured = result.ratio(c.numerator, c.denominator, chosen)
        claims.append(ClaimResult(c.id, c.text, c.rule(), published, measured, c.check(measured)))
    return TableA(variant=chosen, rows=rows, claims=claims, rank_correlation=rho,
                  cpu=f"{result.cpu.model_name} ({result.cpu.isa})")
