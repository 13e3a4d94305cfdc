"""INT8 as stages of `convert`: one Stage per engine, after the FP32 stages that feed it.

    convert("pose.onnx", int8=Int8Options(calib="photos/", engines=("mnn", "onnxruntime")))

Why stages: the INT8 files then go through the pipeline like every other artifact (pending
name, renamed once checked, card with provenance, a row in the report). What differs is the
check: keypoints on held-out photos against the FP32 parent (`verify`), not element-wise
parity; and the engines are alternatives, so one failing does not stop the other (keep_going).
The engines share one calibration set, made from the first engine's FP32 parent; `finish`
saves <stem>.int8.json and raises, when strict, as `quantize_int8` does.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from edgepose.errors import CalibrationError, ConversionError, EdgePoseError

from ..plan import Artifact, Stage
from ..report import ConversionReport, StageResult
from . import api
from .api import Int8Options
from .report import EngineResult

# engine -> (artifact kind of its INT8 file, the FP32 kinds it quantises, in order of preference, tools)
ENGINES = {
    "mnn": ("mnn", ("mnn",), ("MNN",)),
    "onnxruntime": ("onnx", ("onnx", "tflite"), ("onnxruntime", "onnx")),
}


class Int8Stages:
    """The INT8 stages of one conversion and what they share (calibration, the INT8 report)."""

    def __init__(self, options: Int8Options, *, stem: str) -> None:
        if options.calib is None:
            raise CalibrationError("INT8 needs calibration photos: Int8Options(calib=a folder of images, "
                                       "or pinned:person / pinned:hand) (--calib)")
        self.opts, self.stem = options, stem
        self.report = None  # the Int8Report, made by the first engine's build
        self._shared: tuple | None = None
        self._fatal: EdgePoseError | None = None
        self._results: dict[str, EngineResult] = {}

    def plan(self, plan: Sequence[Stage], source_kind: str | None) -> list[Stage]:
        """One stage per engine, reading the last FP32 artifact of a kind the engine quantises."""
        kinds = {"source": source_kind, **{s.key: s.kind for s in plan if s.precision == "fp32"}}
        out = []
        for engine in self.opts.engines:
            kind, reads, tools = ENGINES[engine]
            parent = next((key for want in reads for key in reversed(list(kinds)) if kinds[key] == want), None)
            if parent is None:
                raise ConversionError(f"INT8 with {engine} needs an FP32 {' or '.join(reads)} model, and this "
                                      f"conversion makes none (its source is {source_kind}); choose another "
                                      "--engine")
            out.append(Stage(f"int8-{engine}", parent, f"int8_{engine}", f"{self.stem}{api.ENGINE_SUFFIX[engine]}",
                             kind, "int8", self._build(engine), tools=tools, verify=self._verify(engine),
                             keep_going=True))
        return out

    def finish(self, report: ConversionReport) -> None:
        """Save the INT8 report beside the files; raise (strict) if an engine failed or is inaccurate."""
        if self._fatal is not None:
            raise self._fatal
        if self.report is None:
            return
        report.int8 = self.report
        self.report.save()
        exc = api.int8_error(self.report, self.opts, context=report)
        if exc is not None:
            raise exc

    # --- the stages' hooks -------------------------------------------------------------------------
    def _build(self, engine: str):
        def build(parent: Artifact, dst: Path, spec) -> dict[str, Any]:
            out_dir = Path(dst).parent  # the stage writes beside its final name
            spec, cal, hold = self._prepare(parent, spec, out_dir)
            result = self._results[engine] = EngineResult(engine)
            self.report.engines.append(result)
            try:
                api.build_engine(result, {parent.kind: Path(parent.target)}, dst, out_dir, self.stem, spec,
                                 cal, hold, self.opts)
            except EdgePoseError as exc:
                result.artifact = None  # the pipeline removes what the engine left at dst
                api.engine_failed(result, exc, self.opts)
                raise
            return dict(result.details)
        return build

    def _verify(self, engine: str):
        def verify(parent: Artifact, runner, final: Path, stage: StageResult) -> bool:
            result = self._results[engine]
            spec, _cal, hold = self._shared
            result.artifact = final
            try:
                keep = api.measure(result, runner, spec, hold, self.opts)
            except EdgePoseError as exc:
                result.artifact = None
                api.engine_failed(result, exc, self.opts)
                raise
            if not keep:
                result.artifact = None
            stage.status = result.status
            stage.details["check"] = "(INT8 table)"
            if result.error:
                stage.warnings.append(result.error)
            return keep
        return verify

    def _prepare(self, parent: Artifact, spec, out_dir: Path):
        """Calibration and held-out crops, once per conversion, from the first engine's FP32 parent."""
        if self._fatal is not None:
            raise self._fatal
        if self._shared is None:
            try:
                spec, cal, hold, self.report = api.prepare({parent.kind: Path(parent.target)}, self.opts.calib, spec,
                                                           out_dir, self.stem, self.opts)
            except EdgePoseError as exc:
                self._fatal = exc
                raise
            self._shared = (spec, cal, hold)
        return self._shared
