"""What an INT8 conversion did, per engine: artifact, method, accuracy, speed, worst layers.

Data first (`to_dict`, saved as <stem>.int8.json beside the artifacts), text second
(`format_table`, what the CLI prints). `Int8Report` shares its base (`converters.report.Report`)
with the conversion report, which holds it as `.int8` when INT8 ran as stages of `convert`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..report import Report
from .evaluate import Accuracy, Speed

STATUSES = ("ok", "inaccurate", "failed")


@dataclass
class EngineResult:
    """One engine's INT8 file and what was measured on it."""

    engine: str
    fp32_artifact: Path | None = None
    artifact: Path | None = None
    status: str = "failed"
    details: dict[str, Any] = field(default_factory=dict)
    accuracy: Accuracy | None = None
    speed: Speed | None = None
    layers: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    recommendation: dict[str, Any] | None = None  # verdict (ship | marginal | do-not-ship | untimed...), reason

    def to_dict(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "status": self.status,
            "fp32_artifact": self.fp32_artifact.name if self.fp32_artifact else None,
            "artifact": self.artifact.name if self.artifact else None,
            "details": self.details,
            "accuracy": self.accuracy.to_dict() if self.accuracy else None,
            "speed": self.speed.to_dict() if self.speed else None,
            "layers": self.layers,
            "error": self.error,
            "notes": self.notes,
            "recommendation": self.recommendation,
        }


@dataclass
class Int8Report(Report):
    """All engines of one INT8 conversion; `ok` when every engine produced an accurate file."""

    default_name = "{stem}.int8.json"

    model: str
    output_dir: Path
    stem: str
    threshold_px_256: float
    strict: bool
    calibration: dict[str, Any] = field(default_factory=dict)
    holdout: dict[str, Any] = field(default_factory=dict)
    engines: list[EngineResult] = field(default_factory=list)
    report_path: Path | None = None
    cpu: dict[str, Any] = field(default_factory=dict)   # edgepose.cpu: where calibration and timing ran
    target_cpu_class: str | None = None                 # the class the settings were chosen for

    @property
    def ok(self) -> bool:
        return bool(self.engines) and all(e.status == "ok" for e in self.engines)

    @property
    def artifacts(self) -> dict[str, Path]:
        return {e.engine: e.artifact for e in self.engines if e.artifact is not None}

    def engine(self, name: str) -> EngineResult:
        for e in self.engines:
            if e.engine == name:
                return e
        raise KeyError(f"no engine {name!r}; engines: {[e.engine for e in self.engines]}")

    def to_dict(self) -> dict[str, Any]:
        return {"edgepose_int8_report": 1, "model": self.model, "output_dir": str(self.output_dir),
                "stem": self.stem, "ok": self.ok, "strict": self.strict, "threshold_px_256": self.threshold_px_256,
                "calibration": self.calibration, "holdout": self.holdout, "cpu": self.cpu,
                "target_cpu_class": self.target_cpu_class, "engines": [e.to_dict() for e in self.engines]}

    def format_table(self, *, layers: int = 8) -> str:
        cal = self.calibration
        lines = [f"INT8 {self.model}: calibrated on {cal.get('count', '?')} samples from {cal.get('source', '?')}"
                 f" (sha256 {str(cal.get('sha256', ''))[:12]}), accuracy on {self.holdout.get('count', '?')} "
                 f"held-out samples from {self.holdout.get('source', '?')}",
                 f"threshold: mean keypoint error <= {self.threshold_px_256:g} px at 256 scale",
                 f"measured on: {_cpu_line(self.cpu)}" + (
                     f"; settings for: {self.target_cpu_class}"
                     if self.target_cpu_class and self.target_cpu_class != self.cpu.get("class") else ""), ""]
        head = (f"{'engine':<12} {'method':<14} {'artifact':<28} {'mean px':>8} {'max px':>8} {'@256':>6} "
                f"{'PCK.05':>7} {'FP32 ms':>8} {'INT8 ms':>8} {'speed-up':>8}  result")
        lines += [head, "-" * len(head)]
        for e in self.engines:
            method = e.details.get("method", "-")
            if e.engine == "mnn" and "weight_method" in e.details:
                method = f"{method}/{e.details['weight_method']}"
            acc, sp = e.accuracy, e.speed
            lines.append(
                f"{e.engine:<12} {method:<14} {(e.artifact.name if e.artifact else '-'):<28} "
                f"{_f(acc and acc.mean_px, 8, 2)} {_f(acc and acc.max_px, 8, 2)} {_f(acc and acc.mean_px_256, 6, 2)} "
                f"{_f(acc and acc.pck, 7, 3)} {_f(sp and sp.fp32_ms, 8, 2)} {_f(sp and sp.int8_ms, 8, 2)} "
                f"{_f(sp and sp.speedup, 7, 2)}x  {e.status}{': ' + e.error if e.error else ''}")
        for e in self.engines:
            rec = e.recommendation or {}
            if rec:
                flag = {"ship": "ship", "marginal": "marginal", "untimed": "untimed",
                        "untimed-on-target": "untimed on the target"}.get(rec["verdict"], "WARNING")
                lines.append(f"  {e.engine}: {flag}: {rec['reason']}")
            config = e.details.get("settings")
            if config:
                lines.append(f"  {e.engine}: {config['label']} ({config['chosen']}): {config['reason']}")
                lines.append(f"  {e.engine}: accuracy holds on {config['holds_on']}")
            check = e.details.get("saturation_check")
            if check:
                lines.append(f"  {e.engine}: x86 without VNNI (emulated on {check['crops']} held-out crops): "
                             f"{check['saturated']} of {check['pairs']} int16 pair sums saturate in "
                             f"{check['layers_saturating']} of {check['layers']} layers, changing an output by up to "
                             f"{check['max_error_steps']:.1f} quantisation steps")
            for note in e.notes:
                lines.append(f"  {e.engine}: {note}")
            if e.layers:
                lines.append(f"  {e.engine}: layers that lose most ({'cosine' if 'cosine' in e.layers[0] else 'SQNR dB'}, "
                             "worst first):")
                for row in e.layers[:layers]:
                    value = row.get("cosine", row.get("sqnr_db"))
                    lines.append(f"    {value:>10.4f}  {row['layer'][:110]}")
        if self.report_path:
            lines.append(f"  report: {self.report_path}")
        return "\n".join(lines)


def _cpu_line(cpu: dict[str, Any]) -> str:
    if not cpu:
        return "unknown CPU"
    ident = f" [{cpu['ident']}]" if cpu.get("ident") else ""
    return f"{cpu.get('model_name', '?')}{ident}, {cpu.get('class', '?')}, 1 thread"


def _f(value, width: int, digits: int) -> str:
    return f"{value:>{width}.{digits}f}" if isinstance(value, (int, float)) else f"{'-':>{width}}"
