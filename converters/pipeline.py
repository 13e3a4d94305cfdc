"""`convert`: source -> ONNX -> simplified ONNX -> MNN FP32 (/ FP16) (/ INT8), with a check after each stage.

A conversion is a plan of `Stage`s (converters.plan). The source's kind (an entry of
converters.sources.SOURCE_KINDS) says which stages it plans and which runtime runs it as the
first reference; INT8 engines (converters.quantize.stage) and a caller's `extra_stages` are more
stages after those. Each stage reads one artifact (its parent) and writes one file under a hidden
pending name, which is run with its real runtime on the same inputs as its parent and renamed to
its final name only when its check passes (or strict=False). Nothing here branches on the kind.
"""
from __future__ import annotations

import dataclasses
import errno
import logging
import os
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from edgepose.errors import ConversionError, EdgePoseError, MetadataError, ParityError
from edgepose.spec import ModelSpec

from . import parity as parity_mod
from .metadata import artifact_spec, spec_for_conversion, tool_versions
from .options import ConvertOptions
from .plan import Artifact, Stage, check_plan
from .report import ConversionReport, ParityResult, StageResult
from .runtimes import open_runner
from .sources import SOURCE_KINDS, Source, resolve_source

if TYPE_CHECKING:  # quantize loads ONNX Runtime's quantisation tools: only when INT8 is asked for
    from .quantize.api import Int8Options

log = logging.getLogger(__name__)

__all__ = ["Artifact", "ConvertOptions", "Stage", "convert", "plan_stages"]


def convert(source: Any, *, options: ConvertOptions | None = None, int8: Int8Options | None = None,
            extra_stages: Sequence[Stage] = (), **keywords: Any) -> ConversionReport:
    """Convert a model to deployable files, checking each step's numbers; returns the report.

    source        .onnx / .tflite / .mnn / TorchScript file, MXNet <name>-symbol.json (with params=),
                  an nn.Module, or a model-zoo name (with optional weights= checkpoint).
    options       a ConvertOptions; or its fields as keywords (output_dir=, fp16=, strict=, ...),
                  which also override fields of `options`:
      output_dir  where artifacts go (default: beside a source file, else the current directory).
                  Files: <stem>.onnx (torch/MXNet), <stem>.sim.onnx, <stem>.dense.tflite (sparse
                  TFLite), <stem>.mnn, <stem>.fp16.mnn, <stem>.report.json; <stem> is the source's
                  name unless name= is given.
      spec        ModelSpec, dict or card-JSON path; or preset= a preset name. meta= overrides fields.
      input_shape e.g. (1, 3, 256, 192); needed for torch modules without a spec.
      images      photos for the parity check (default: a cached pinned photo if there is one).
      strict      a parity failure raises ParityError (the report is saved first); False keeps the
                  artifact and records a warning.
      tolerances  per-precision Tolerance overrides (and the tolerance of a new precision).
    int8          an Int8Options (with calib=): INT8 stages per engine after the FP32 ones, writing
                  <stem>.int8.mnn / <stem>.int8.onnx and <stem>.int8.json; the figures are in
                  report.int8. A strict INT8 failure raises after every engine ran.
    extra_stages  Stages appended to the plan; `filename` may use "{stem}", `parent` names an earlier
                  artifact: source, onnx, sim, dense, mnn, mnn_fp16 or an extra stage's key.

    A TFLite source whose graph has DENSIFY ops (sparse weights, e.g. MediaPipe's pose_detection)
    first gets a tflite->dense stage: <stem>.dense.tflite, checked against the source in LiteRT,
    is what the MNN stages convert. An operator MNN cannot convert raises UnsupportedOperatorError
    naming it before anything runs. Every error raised carries `.report`, the report so far.
    """
    opts = ConvertOptions.from_keywords(options, **keywords)
    classifier = _classifier_preset(opts.preset)
    if classifier is not None:  # an ImageNet classifier: no pose metadata, but its input shape
        opts = dataclasses.replace(opts, preset=None, input_shape=opts.input_shape or classifier["input_shape"])
    src = resolve_source(source, weights=opts.weights, params=opts.params, name=opts.name)
    the_spec = spec_for_conversion(spec=opts.spec, preset=opts.preset, fallback=src.spec, overrides=opts.meta)
    plan = plan_stages(src, opts) + [_with_stem(s, src.stem) for s in extra_stages]
    int8_stages = None
    if int8 is not None:
        from .quantize.stage import Int8Stages

        int8_stages = Int8Stages(int8, stem=src.stem)
        plan += int8_stages.plan(plan, SOURCE_KINDS[src.kind].runtime)
    check_plan(plan)
    out_dir = _output_dir(opts.output_dir, src)
    report = ConversionReport(source=src.label, output_dir=out_dir, stem=src.stem, strict=opts.strict)
    report.report_path = out_dir / f"{src.stem}.report.json"
    _refuse_overwrites(src, out_dir, [s.filename for s in plan] + [report.report_path.name], opts.images or ())
    photos = list(opts.images) if opts.images is not None else parity_mod.default_photos()
    run = _Run(src, the_spec, out_dir, opts, report, photos, opts.progress)
    try:
        run.execute(plan)
        if int8_stages is not None:
            int8_stages.finish(report)
    except EdgePoseError as exc:
        report.error = f"{type(exc).__name__}: {exc}"
        _save_report(report)
        exc.report = report  # the figures so far, for the CLI and callers (declared in edgepose.errors)
        raise
    except Exception as exc:  # noqa: BLE001 - a bug or an upstream tool's own exception: still a report
        current = report.stages[-1] if report.stages and report.stages[-1].artifact is None else None
        stage = current.name if current is not None else None
        if current is not None:
            current.status = "failed"
        detail = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        report.error = f"{type(exc).__name__}: {detail}"
        _save_report(report)
        raise ConversionError(
            f"unexpected {type(exc).__name__}{f' in stage {stage}' if stage else ''}: {detail or '(no message)'}; "
            f"the report so far is in {report.report_path}. This is an edgepose bug: please report it with "
            "the traceback (--debug)", report=report, stage=stage) from exc
    _save_report(report)
    return report


def plan_stages(src: Source, opts: ConvertOptions) -> list[Stage]:
    """The stages for a source: its kind's plan (SOURCE_KINDS). INT8 and extra stages come after."""
    return SOURCE_KINDS[src.kind].plan(src, opts)


def _classifier_preset(preset: str | None) -> Mapping[str, Any] | None:
    """GluonCV ImageNet classifier presets (table B models): an input shape, not a pose spec."""
    if preset is None:
        return None
    from .mxnet.presets import CLASSIFIERS

    return CLASSIFIERS.get(preset)


def _with_stem(stage: Stage, stem: str) -> Stage:
    return dataclasses.replace(stage, filename=stage.filename.format(stem=stem))


# --- the run ----------------------------------------------------------------------------------
class _Run:
    def __init__(self, src: Source, spec: ModelSpec | None, out_dir: Path, opts: ConvertOptions,
                 report: ConversionReport, photos: Sequence[Any], progress: bool) -> None:
        self.src, self.spec, self.out_dir, self.opts, self.report = src, spec, out_dir, opts, report
        self.photos = photos
        self.progress = progress
        self.artifacts: dict[str, Artifact] = {}
        self.sets: list[parity_mod.InputSet] | None = None
        self.tools: dict[str, str] = {}

    def execute(self, plan: Sequence[Stage]) -> None:
        bar = _progress_bar(len(plan) + 1, enabled=self.progress)
        try:
            bar.set_description("loading source")
            self._open_source()
            bar.update(1)
            for stage in plan:
                bar.set_description(stage.name)
                try:
                    self._run_stage(stage)
                except EdgePoseError as exc:
                    if not stage.keep_going:
                        raise
                    # recorded, not raised: the report is not ok, and who planned the stage decides
                    self.report.stages[-1].warnings.append(f"{type(exc).__name__}: {exc}")
                    log.warning("%s failed: %s", stage.name, exc)
                bar.update(1)
        finally:
            bar.close()
        if self.spec is None:
            self.report.warnings.append(
                "no model card: the artifacts carry no edgepose metadata, so the Predictor will ask for it; "
                "pass --meta card.json, --preset or the metadata flags")

    # source ---------------------------------------------------------------------------------
    def _open_source(self) -> None:
        """The source as the first reference, run by its kind's runtime (none for MXNet: its runtime
        lives in another environment, so the first stage has no reference here)."""
        src = self.src
        kind = SOURCE_KINDS[src.kind]
        runner = kind.open_reference(src, self.spec, self.opts)
        self.artifacts["source"] = Artifact("source", kind.runtime or src.kind, src.target, src.label, runner)
        if runner is None:
            return
        self._set_spec_io(runner)
        self._make_sets(runner)

    def _set_spec_io(self, runner) -> None:
        """Check the card against the model's real inputs/outputs; fill in the input name."""
        if self.spec is None:
            return
        self.spec = _validate_spec(self.spec, runner)
        self.report.spec = self.spec.to_dict()

    def _make_sets(self, runner) -> None:
        shapes = _concrete_shapes(runner, self.spec, self.opts)
        dtypes = {t.name: t.dtype for t in runner.inputs}
        self.sets = parity_mod.make_input_sets(shapes, spec=self.spec, images=self.photos, dtypes=dtypes,
                                               seed=self.opts.seed)

    # stages -----------------------------------------------------------------------------------
    def _run_stage(self, stage: Stage) -> None:
        parent = self.artifacts[stage.parent]
        final = self.out_dir / stage.filename
        # Unique per run: two conversions of one model into one folder must not share it
        pending = self.out_dir / f".{stage.filename}.{os.getpid()}-{uuid.uuid4().hex[:8]}.unverified"
        for tool in (*parent.tools, *stage.tools):
            self.tools.update(tool_versions(tool))
        spec = artifact_spec(self.spec, **self._provenance(stage, parent))
        result = StageResult(name=stage.name, source=parent.label, artifact=None, precision=stage.precision)
        self.report.stages.append(result)
        t0 = time.perf_counter()
        log.info("%s: %s -> %s", stage.name, parent.label, final.name)
        try:
            details = dict(stage.build(parent, pending, spec))
            result.details = details
            result.size_bytes = pending.stat().st_size
            runner = open_runner(stage.kind, pending, threads=self.opts.threads)
            outputs = None
            if stage.verify is not None:  # the stage's own check (INT8: keypoints on held-out photos)
                keep = stage.verify(parent, runner, final, result)
            else:
                if self.sets is None:  # first runnable artifact (after an MXNet stage): inputs from it
                    self._set_spec_io(runner)
                    self._make_sets(runner)
                outputs = parity_mod.run_sets(runner, self.sets, what=f"{stage.name} output {final.name}")
                self._check(stage, parent, final.name, outputs, result)
                keep = True
            if not keep:
                return  # the pending file goes (finally); the stage's result says why
            os.replace(pending, final)
            result.artifact = final
            if stage.kind == "mnn":
                result.details["ops"] = _mnn_ops(final)
            self.artifacts[stage.key] = Artifact(stage.key, stage.kind, final, final.name, runner, outputs,
                                                 tools=(*parent.tools, *stage.tools))
        except EdgePoseError:
            if result.status == "ok":
                result.status = "failed"
            raise
        except OSError as exc:  # writing the artifact: a full disk, a read-only folder
            result.status = "failed"
            raise ConversionError(_write_failure(stage, final, exc)) from None
        finally:
            result.seconds = round(time.perf_counter() - t0, 3)
            if pending.exists():
                pending.unlink()

    def _check(self, stage: Stage, parent: Artifact, name: str, outputs, result: StageResult) -> None:
        """Compare with the parent; a failure raises ParityError (strict) or becomes a warning."""
        if not stage.check:
            result.warnings.append(f"{stage.name} is not checked here: its reference runtime lives in another "
                                   "environment (its own test suite compares it with the original)")
            return
        if parent.runner is None:
            return
        if parent.outputs is None:
            parent.outputs = parity_mod.run_sets(parent.runner, self.sets, what=parent.label)
        tol = parity_mod.tolerance_for(stage.precision, self.opts.tolerances)
        result.parity = ParityResult(
            reference=parent.label, candidate=name, precision=stage.precision, tolerance=tol,
            inputs=[s.name for s in self.sets],
            outputs=parity_mod.compare(parent.outputs, outputs, spec=self.spec, tolerance=tol))
        if result.parity.passed:
            return
        msg = (f"parity check failed at stage {stage.name} ({parent.label} -> {name}): "
               f"{result.parity.describe_failure()}")
        # Untrained zoo models amplify FP16 rounding (measured: keypoints move up to 18 px), so
        # their reduced-precision figures are reported, not enforced.
        informative = stage.precision != "fp32" and self.src.provenance.get("weights") == "random-init"
        if self.opts.strict and not informative:
            result.status = "failed"
            raise ParityError(msg + "; the artifact was not kept. Inspect the report, or keep it anyway "
                              "with --no-strict (strict=False)", report=self.report, stage=stage.name,
                              output=result.parity.worst.name)
        if informative:
            msg += (" (random-initialised weights amplify reduced-precision rounding, so this is "
                    "informative only; pass trained --weights to enforce it)")
        result.status = "parity-warning"
        result.warnings.append(msg)
        self.report.warnings.append(msg)
        log.warning("%s", msg)

    def _provenance(self, stage: Stage, parent: Artifact) -> dict[str, Any]:
        import edgepose

        prov = {k: v for k, v in self.src.provenance.items() if not k.startswith("_")}
        prov.update(stage=stage.name, precision=stage.precision, parent=parent.label,
                    tools={"edgepose": edgepose.__version__, **self.tools})
        prov.update(SOURCE_KINDS[self.src.kind].provenance(self.opts))
        return prov


# --- helpers ----------------------------------------------------------------------------------
def _output_dir(output_dir: str | Path | None, src: Source) -> Path:
    out = Path(output_dir) if output_dir is not None else (src.path.parent if src.path else Path.cwd())
    if out.exists() and not out.is_dir():
        raise ConversionError(f"output directory {out} is an existing file; pass a directory (-o/--output-dir)")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConversionError(f"cannot create output directory {out}: {exc.strerror}") from None
    if not os.access(out, os.W_OK):
        raise ConversionError(f"output directory {out} is not writable")
    return out


def _write_failure(stage: "Stage", final: Path, exc: OSError) -> str:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return (f"no space left on the device holding {final.parent}: stage {stage.name} could not write "
                f"{final.name}; free some space and run it again")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"stage {stage.name} cannot write {final.name}: {final.parent} is not writable ({exc.strerror})"
    return f"stage {stage.name} could not write {final.name}: {exc.strerror or exc}"


def _refuse_overwrites(src: Source, out_dir: Path, filenames: Sequence[str], images: Sequence[Any]) -> None:
    inputs = {Path(p).resolve() for p in [*src.input_files, *(i for i in images if isinstance(i, (str, Path)))]}
    for fn in filenames:
        target = (out_dir / fn).resolve()
        if target in inputs:
            raise ConversionError(
                f"the artifact {fn} would overwrite the input file {target}; choose another --output-dir or --name")


def _save_report(report: ConversionReport) -> None:
    if report.report_path is None:
        return
    try:
        report.save()
    except OSError as exc:
        log.warning("could not write the report %s: %s", report.report_path, exc)


def _validate_spec(spec: ModelSpec, runner) -> ModelSpec:
    ins, outs = runner.inputs, runner.output_names
    missing = [f"{role}={n!r}" for role, n in spec.outputs.items() if n not in outs]
    if missing:
        raise MetadataError(f"the model card names output(s) {', '.join(missing)} that the model does not have; "
                            f"its outputs are {outs}")
    names = [t.name for t in ins]
    if spec.input_name and spec.input_name not in names:
        raise MetadataError(f"the model card's input_name {spec.input_name!r} is not an input of the model; "
                            f"its inputs are {names}")
    if not spec.input_name and len(names) == 1:
        spec = spec.replace(input_name=names[0])
    target = next((t for t in ins if t.name == spec.input_name), None)
    if target is not None and len(target.shape) == 4:
        dims = target.shape
        w, h = spec.input_size
        hw = (dims[2], dims[3]) if spec.layout == "NCHW" else (dims[1], dims[2])
        ch = dims[1] if spec.layout == "NCHW" else dims[3]
        fixed = all(isinstance(d, int) for d in (*hw, ch))
        if fixed and (hw != (h, w) or ch != 3):
            other = "NHWC" if spec.layout == "NCHW" else "NCHW"
            hint = f" (the shape reads as {other}: fix layout)" if (
                (dims[1], dims[2], dims[3]) == (h, w, 3) or (dims[2], dims[3], dims[1]) == (h, w, 3)) else ""
            raise MetadataError(
                f"the model card says input_size (w, h)=({w}, {h}), layout {spec.layout}, but input "
                f"{target.name!r} has shape ({', '.join(str(d) for d in dims)}){hint}")
    return spec


def _concrete_shapes(runner, spec: ModelSpec | None, opts: ConvertOptions) -> dict[str, tuple[int, ...]]:
    """Shapes to feed: batch 2 where only the batch is dynamic (1 with a static batch); a model with
    other dynamic dims gets input_shape as a whole (the simplifier fixes it the same way), else the
    spec's image size."""
    shapes = {}
    for t in runner.inputs:
        dims = list(t.shape)
        dynamic = [i for i, d in enumerate(dims) if not (isinstance(d, int) and d > 0)]
        if not dynamic:
            pass
        elif dynamic == [0]:
            dims[0] = 2 if opts.dynamic_batch else 1
        elif opts.input_shape and len(opts.input_shape) == len(dims):
            dims = list(opts.input_shape)
        elif spec is not None and len(dims) == 4 and t.name == spec.input_name:
            dims = list(spec.input_shape())
        else:
            raise ConversionError(
                f"input {t.name!r} has dynamic dimensions {tuple(t.shape)}; pass --input-shape / input_shape")
        shapes[t.name] = tuple(int(d) for d in dims)
    return shapes


def _mnn_ops(path: Path) -> dict[str, int] | None:
    from .info import mnn_op_counts

    try:
        return mnn_op_counts(path)
    except EdgePoseError:
        return None


class _NoBar:
    def set_description(self, _text: str) -> None: ...
    def update(self, _n: int) -> None: ...
    def close(self) -> None: ...


def _progress_bar(total: int, *, enabled: bool):
    if not enabled:
        return _NoBar()
    try:
        import sys

        from tqdm import tqdm
    except ImportError:
        return _NoBar()
    return tqdm(total=total, file=sys.stderr, unit="stage", leave=False, dynamic_ncols=True)
