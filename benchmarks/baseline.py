"""The normalised baseline: model time / reference time, saved as JSON and compared later.

Milliseconds saved on one machine mean little on another, or on the same machine under a
different load. The normalised figure (see edgepose.benchmarks.reference) divides both out
to first order, so a committed baseline (benchmarks/baselines/normalised.json) still flags a
real slowdown elsewhere. Comparisons are by key "model|variant".

Verdicts: ok, faster, new (no baseline entry), slower (a failure), warn (slower than the
threshold but the run itself was noisy). A slowdown beyond the threshold fails when the run
was stable (IQR/median <= 10 %); a noisy run fails only beyond twice the threshold, and in
lenient (quick/CI) mode not at all.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable

SCHEMA = "edgepose.bench-baseline/1"
DEFAULT_BASELINE = Path(__file__).resolve().parent / "baselines" / "normalised.json"
DEFAULT_THRESHOLD = 0.30        # full runs: fail beyond +30 % normalised time
QUICK_THRESHOLD = 1.0           # quick (CI) runs: only a doubling can fail ...
STABLE_SPREAD = 0.10            # ... and only when the run's IQR/median was below 10 %


@dataclass(frozen=True)
class Comparison:
    key: str
    baseline: float | None
    current: float
    spread: float
    change: float | None  # current / baseline - 1
    status: str           # ok | faster | slower | warn | new

    @property
    def failed(self) -> bool:
        return self.status == "slower"

    def describe(self) -> str:
        if self.baseline is None:
            return f"{self.key}: new (normalised {self.current:.3f}, no baseline entry)"
        return (f"{self.key}: {self.status} - normalised {self.current:.3f} vs baseline {self.baseline:.3f} "
                f"({self.change:+.0%}, run spread {self.spread:.0%})")


def entries_from_result(result) -> dict[str, dict]:
    out = {}
    for row in result.rows:
        norm = row.normalised
        out[row.key] = {"normalised": norm.median, "rel_spread": norm.rel_spread, "ms": row.session.median,
                        "predict_overhead": row.predict_overhead}
    return out


def load_baseline(path: str | Path = DEFAULT_BASELINE) -> dict:
    path = Path(path)
    if not path.is_file():
        return {"schema": SCHEMA, "entries": {}}
    data = json.loads(path.read_text())
    if data.get("schema") != SCHEMA:
        raise ValueError(f"{path} is not an edgepose benchmark baseline (schema {data.get('schema')!r}, "
                         f"expected {SCHEMA!r}); save a new one with --bench-save-baseline")
    return data


def save_baseline(result, path: str | Path = DEFAULT_BASELINE, *, merge: bool = True) -> Path:
    """Write (or update, keeping other keys) the normalised baseline from a BenchResult."""
    path = Path(path)
    data = load_baseline(path) if merge else {"schema": SCHEMA, "entries": {}}
    data["entries"].update(entries_from_result(result))
    data["reference"] = "ref-mnn"
    data["saved"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    data["machine"] = {"cpu": result.cpu.model_name, "isa": result.cpu.isa, "versions": result.env.get("versions")}
    data["entries"] = dict(sorted(data["entries"].items()))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


def judge(current: float, spread: float, baseline: float | None, *, threshold: float, lenient: bool = False,
          stable_spread: float = STABLE_SPREAD) -> tuple[str, float | None]:
    """(verdict, change) for one normalised figure against its baseline."""
    if baseline is None or baseline <= 0:
        return "new", None
    change = current / baseline - 1.0
    if change > threshold:
        stable = spread <= stable_spread
        if stable or (not lenient and change > 2 * threshold):
            return "slower", change
        return "warn", change
    if change < -threshold:
        return "faster", change
    return "ok", change


def compare(result, baseline: dict, *, threshold: float = DEFAULT_THRESHOLD, lenient: bool = False,
            keys: Iterable[str] | None = None) -> list[Comparison]:
    """Compare each row's normalised median with the baseline entry of the same key."""
    entries = baseline.get("entries", {})
    wanted = set(keys) if keys is not None else None
    out = []
    for key, cur in entries_from_result(result).items():
        if wanted is not None and key not in wanted:
            continue
        base = entries.get(key, {}).get("normalised")
        status, change = judge(cur["normalised"], cur["rel_spread"], base, threshold=threshold, lenient=lenient)
        out.append(Comparison(key, base, cur["normalised"], cur["rel_spread"], change, status))
    return out


def comparisons_to_dict(items: list[Comparison]) -> list[dict]:
    return [asdict(c) for c in items]
