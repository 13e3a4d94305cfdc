"""What a conversion did: one `StageResult` per transformation, gathered in a `ConversionReport`.

The report is data first (to_dict / JSON beside the artifacts) and text second (the table
the CLI prints). A new kind of stage needs no change here: it is one more StageResult with its
own precision and parity figures. INT8 stages also fill the INT8 part (`ConversionReport.int8`,
a converters.quantize Int8Report); both report types share the `Report` base.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgepose.files import atomic_write_text

# A stage in one of these states did not produce a usable artifact: the report is not ok.
FAILED_STATUSES = ("failed", "inaccurate")


@dataclass(frozen=True)
class Tolerance:
    """When a converted artifact still counts as "the same model".

    An output passes when max_abs <= atol + rtol * (largest |reference| value of that output),
    its cosine similarity to the reference is >= min_cosine, and (for pose outputs) no
    keypoint moved more than max_px input pixels. Scaling by the output's own range keeps one
    tolerance usable for [0, 1] coordinates and for logits in the thousands alike.
    """

    rtol: float
    atol: float
    min_cosine: float
    max_px: float

    def allowed_abs(self, scale: float) -> float:
        return self.atol + self.rtol * scale


@dataclass
class OutputParity:
    """Agreement of one output between the reference and the candidate artifact.

    max_abs      largest |candidate - reference| over all inputs.
    max_rel      max_abs divided by the reference's largest magnitude (the output's scale);
                 an element-wise ratio would explode on near-zero values.
    cosine       smallest cosine similarity over the input sets (flattened output).
    keypoint_px  largest keypoint displacement in input pixels, for pose outputs (coords x size,
                 heatmap argmax, landmark x/y); None for other outputs.
    failures     why it failed; empty when it passed.
    """

    name: str
    shape: tuple[int, ...]
    max_abs: float
    max_rel: float
    cosine: float
    scale: float
    allowed_abs: float
    keypoint_px: float | None = None
    role: str | None = None
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def badness(self) -> float:
        """How far past (or inside) its tolerance this output is; the worst output has the largest."""
        ratio = self.max_abs / self.allowed_abs if self.allowed_abs > 0 else math.inf
        return ratio + (1000.0 if self.failures else 0.0)


@dataclass
class ParityResult:
    """One stage's check: reference vs candidate on the same inputs, per output."""

    reference: str
    candidate: str
    precision: str
    tolerance: Tolerance
    inputs: list[str]
    outputs: list[OutputParity]

    @property
    def passed(self) -> bool:
        return all(o.passed for o in self.outputs)

    @property
    def worst(self) -> OutputParity | None:
        return max(self.outputs, key=lambda o: o.badness) if self.outputs else None

    def describe_failure(self) -> str:
        bad = [o for o in self.outputs if not o.passed]
        if not bad:
            return "all outputs within tolerance"
        worst = max(bad, key=lambda o: o.badness)
        return f"output {worst.name!r}: {'; '.join(worst.failures)}"


@dataclass
class StageResult:
    """One transformation: its artifact, how long it took, what it changed, and its parity check."""

    name: str
    source: str
    artifact: Path | None
    precision: str
    seconds: float = 0.0
    size_bytes: int | None = None
    parity: ParityResult | None = None
    details: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    status: str = "ok"  # ok | parity-warning | failed | inaccurate (INT8 beyond its threshold)

    @property
    def passed(self) -> bool:
        return self.status == "ok"


class Report:
    """What every report shares: files in `output_dir` named after `stem`, whether all went well
    (`ok`), a JSON copy beside the files (`save`, at `report_path`) and a table (`format_table`).

    Subclasses (ConversionReport, quantize.Int8Report) are dataclasses declaring those fields and
    `default_name`, the JSON file's name pattern.
    """

    output_dir: Path
    stem: str
    strict: bool
    report_path: Path | None
    default_name = "{stem}.report.json"

    @property
    def ok(self) -> bool:
        raise NotImplementedError

    @property
    def artifacts(self) -> dict[str, Path]:
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    def format_table(self) -> str:
        raise NotImplementedError

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, default=json_default)

    def save(self, path: str | Path | None = None) -> Path:
        """Write the JSON atomically (default: report_path, else <output_dir>/<default_name>)."""
        path = Path(path) if path else self.report_path or self.output_dir / self.default_name.format(stem=self.stem)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, self.to_json() + "\n", error=OSError)
        self.report_path = path
        return path


@dataclass
class ConversionReport(Report):
    """Everything a conversion produced; returned by `convert` and saved as <stem>.report.json.

    int8  the INT8 figures (calibration, accuracy, speed, verdict per engine) when INT8 stages ran.
    """

    source: str
    output_dir: Path
    stem: str
    strict: bool
    stages: list[StageResult] = field(default_factory=list)
    spec: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    report_path: Path | None = None
    int8: Any = None

    @property
    def ok(self) -> bool:
        return self.error is None and all(s.status not in FAILED_STATUSES for s in self.stages)

    @property
    def artifacts(self) -> dict[str, Path]:
        """Stage name -> artifact path, for the stages that wrote one."""
        return {s.name: s.artifact for s in self.stages if s.artifact is not None}

    def stage(self, name: str) -> StageResult:
        for s in self.stages:
            if s.name == name:
                return s
        raise KeyError(f"no stage {name!r}; stages: {[s.name for s in self.stages]}")

    # --- serialisation -----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        def stage_dict(s: StageResult) -> dict[str, Any]:
            d = asdict(s)
            d["artifact"] = s.artifact.name if s.artifact else None
            if s.parity is not None:
                d["parity"]["passed"] = s.parity.passed
                worst = s.parity.worst
                d["parity"]["worst_output"] = worst.name if worst else None
                for o, od in zip(s.parity.outputs, d["parity"]["outputs"]):
                    od["passed"] = o.passed
            return d

        return {
            "edgepose_report": 1,
            "source": self.source,
            "output_dir": str(self.output_dir),
            "stem": self.stem,
            "ok": self.ok,
            "strict": self.strict,
            "error": self.error,
            "warnings": list(self.warnings),
            "spec": self.spec,
            "stages": [stage_dict(s) for s in self.stages],
            "summary": self.summary_dict(),
            "int8": self.int8.to_dict() if self.int8 is not None else None,
        }

    def summary_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for s in self.stages:
            if "nodes_before" in s.details:
                out["onnx_nodes_before"] = s.details["nodes_before"]
                out["onnx_nodes_after"] = s.details["nodes_after"]
        fp32 = next((s for s in self.stages if s.details.get("format") == "mnn" and s.precision == "fp32"
                     and s.artifact), None)
        fp16 = next((s for s in self.stages if s.details.get("format") == "mnn" and s.precision == "fp16"
                     and s.artifact), None)
        if fp32 and fp16 and fp32.size_bytes and fp16.size_bytes:
            out["fp16_bytes_saved"] = fp32.size_bytes - fp16.size_bytes
            out["fp16_size_ratio"] = round(fp16.size_bytes / fp32.size_bytes, 4)
        return out

    # --- text ----------------------------------------------------------------------------
    def format_table(self) -> str:
        """The per-stage, per-output parity table and the summary, as plain text."""
        head = f"{'stage':<17} {'artifact':<30} {'size':>9} {'output':<16} {'max abs':>9} " \
               f"{'max rel':>9} {'cosine':>10} {'kp px':>8}  result"
        lines = [head, "-" * len(head)]
        for s in self.stages:
            art = s.artifact.name if s.artifact else "-"
            size = _human(s.size_bytes) if s.size_bytes else "-"
            outs = s.parity.outputs if s.parity else []
            if not outs:
                lines.append(f"{s.name:<17} {art:<30} {size:>9} {s.details.get('check', '(not checked)'):<16}"
                             f"{'':>41}  {s.status}")
                continue
            for i, o in enumerate(outs):
                px = f"{o.keypoint_px:.4f}" if o.keypoint_px is not None else "-"
                first = i == 0
                lines.append(
                    f"{s.name if first else '':<17} {art if first else '':<30} {size if first else '':>9} "
                    f"{_clip(o.name, 16):<16} {o.max_abs:>9.2e} {o.max_rel:>9.2e} {o.cosine:>10.7f} {px:>8}  "
                    f"{'ok' if o.passed else 'FAIL: ' + '; '.join(o.failures)}")
        lines.append("")
        lines += self.summary_lines()
        if self.int8 is not None:
            lines.append(self.int8.format_table())
        return "\n".join(lines)

    def summary_lines(self) -> list[str]:
        lines = ["summary"]
        for s in self.stages:
            if s.artifact is None:
                continue
            parity = ""
            if s.parity and s.parity.outputs:
                worst = s.parity.worst
                parity = (f"worst {worst.name}: max abs {worst.max_abs:.2e}, cosine {worst.cosine:.6f}"
                          + (f", {worst.keypoint_px:.4f} px" if worst.keypoint_px is not None else ""))
            lines.append(f"  {s.artifact.name:<32} {_human(s.size_bytes or 0):>9}  {s.precision:<5} "
                         f"{s.status:<15} {parity}")
        summ = self.summary_dict()
        if "onnx_nodes_before" in summ:
            lines.append(f"  onnxsim: {summ['onnx_nodes_before']} -> {summ['onnx_nodes_after']} ONNX nodes")
        if "fp16_bytes_saved" in summ:
            lines.append(f"  FP16 weights save {_human(summ['fp16_bytes_saved'])} "
                         f"({100 * (1 - summ['fp16_size_ratio']):.1f}% of the FP32 MNN file)")
        if self.report_path:
            lines.append(f"  report: {self.report_path}")
        for w in self.warnings:
            lines.append(f"  warning: {w}")
        return lines


def _human(n: int | None) -> str:
    if n is None:
        return "-"
    sign = "-" if n < 0 else ""
    n = abs(n)
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{sign}{n:.0f} {unit}" if unit == "B" else f"{sign}{n:.1f} {unit}"
        n /= 1024
    return f"{sign}{n} B"


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def json_default(obj: Any) -> Any:
    """JSON for the values reports hold: paths, tuples, numpy scalars."""
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, tuple):
        return list(obj)
    if hasattr(obj, "item"):
        return obj.item()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
