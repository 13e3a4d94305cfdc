"""`convert`: source -> ONNX -> simplified ONNX -> MNN FP32 (/ FP16), with a parity check after each stage.

A conversion is a plan of `Stage`s. Each reads one artifact (its parent) and writes one file;
the new file is written under a hidden pending name, run with its real runtime on the same
inputs as its parent, and renamed to its final name only when the parity check passes (or
strict=False). New stages (INT8 quantisation, another source format) are one more `Stage`
with its own build function, runner kind and precision; `plan_stages` is where they go.
"""
from __future__ import annotations

import dataclasses
import errno
import logging
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from edgepose.errors import ConversionError, EdgePoseError, MetadataError, ParityError
from edgepose.heads import HEADS
from edgepose.spec import ModelSpec

from . import parity as parity_mod
from . import stages as st
from .metadata import METADATA_KEY, artifact_spec, spec_for_conversion, tool_versions
from .report import ConversionReport, ParityResult, StageResult, Tolerance
from .runtimes import named_outputs, open_runner
from .sources import Source, resolve_source

log = logging.getLogger(__name__)


@dataclass
class Artifact:
    """A model the pipeline can run: the source or a file a stage wrote."""

    key: str
    kind: str  # torch | onnx | mnn | tflite
    target: Any  # a path, or an nn.Module for kind "torch"
    label: str
    runner: Any = None
    outputs: list[dict[str, np.ndarray]] | None = None  # on the conversion's input sets
    tools: tuple[str, ...] = ()


@dataclass
class Stage:
    """One transformation: parent artifact -> a new file, checked at `precision`'s tolerance.

    build(parent, dst, spec) writes the file at dst (embedding spec) and returns report details.
    A stage whose parity is checked elsewhere (MXNet, in its own environment) sets check=False.
    """

    name: str
    parent: str
    key: str
    filename: str
    kind: str
    precision: str
    build: Callable[[Artifact, Path, ModelSpec | None], Mapping[str, Any]]
    tools: tuple[str, ...] = ()
    check: bool = True


@dataclass
class Options:
    fp16: bool = False
    dynamic_batch: bool = True
    simplify: bool = True
    strict: bool = True
    opset: int = st.DEFAULT_OPSET
    timeout: float = 900.0
    input_shape: tuple[int, ...] | None = None
    tolerances: Mapping[str, Tolerance] = field(default_factory=dict)
    seed: int = 0
    threads: int = 1


def convert(source: Any, *, output_dir: str | Path | None = None, spec: Any = None, preset: str | None = None,
            meta: Mapping[str, Any] | None = None, input_shape: Sequence[int] | None = None,
            weights: str | Path | None = None, params: str | Path | None = None, name: str | None = None,
            fp16: bool = False, dynamic_batch: bool = True, simplify: bool = True, strict: bool = True,
            images: Sequence[Any] | None = None, opset: int = st.DEFAULT_OPSET, timeout: float = 900.0,
            tolerances: Mapping[str, Tolerance] | None = None, progress: bool = False,
            seed: int = 0, extra_stages: Sequence[Stage] = ()) -> ConversionReport:
    """Convert a model to deployable files, checking each step's numbers; returns the report.

    source        .onnx / .tflite / TorchScript file, MXNet <name>-symbol.json (with params=),
                  an nn.Module, or a model-zoo name (with optional weights= checkpoint).
    output_dir    where artifacts go (default: beside a source file, else the current directory).
                  Files: <stem>.onnx (torch/MXNet), <stem>.sim.onnx, <stem>.dense.tflite (sparse
                  TFLite), <stem>.mnn, <stem>.fp16.mnn, <stem>.report.json; <stem> is the source's
                  name unless name= is given.
    spec          ModelSpec, dict or card-JSON path; or preset= a preset name. meta= overrides fields.
    input_shape   e.g. (1, 3, 256, 192); needed for torch modules without a spec.
    images        photos for the parity check (default: a cached pinned photo if there is one).
    strict        a parity failure raises ParityError (the report is saved first); False keeps the
                  artifact and records a warning.
    tolerances    per-precision Tolerance overrides (and the tolerance of a new precision).
    extra_stages  Stages appended to the plan (e.g. INT8); `filename` may use "{stem}", `parent`
                  names an earlier artifact: source, onnx, sim, dense, mnn, mnn_fp16 or an extra stage's key.

    A TFLite source whose graph has DENSIFY ops (sparse weights, e.g. MediaPipe's pose_detection)
    first gets a tflite->dense stage: <stem>.dense.tflite, checked against the source in LiteRT,
    is what the MNN stages convert. An operator MNN cannot convert raises UnsupportedOperatorError
    naming it before anything runs.
    """
    classifier = _classifier_preset(preset)
    if classifier is not None:  # an ImageNet classifier: no pose metadata, but its input shape
        preset, input_shape = None, input_shape or classifier["input_shape"]
    from .mnn_native import check_timeout

    timeout = check_timeout(timeout)  # NaN would never expire: refused before any stage runs
    _check_name(name)
    opts = Options(fp16=fp16, dynamic_batch=dynamic_batch, simplify=simplify, strict=strict, opset=opset,
                   timeout=timeout, input_shape=tuple(int(d) for d in input_shape) if input_shape else None,
                   tolerances=dict(tolerances or {}), seed=seed)
    src = resolve_source(source, weights=weights, params=params, name=name)
    the_spec = spec_for_conversion(spec=spec, preset=preset, fallback=src.spec, overrides=meta)
    plan = plan_stages(src, opts) + [_with_stem(s, src.stem) for s in extra_stages]
    _check_plan(plan)
    out_dir = _output_dir(output_dir, src)
    report = ConversionReport(source=src.label, output_dir=out_dir, stem=src.stem, strict=strict)
    report.report_path = out_dir / f"{src.stem}.report.json"
    _refuse_overwrites(src, out_dir, [s.filename for s in plan] + [report.report_path.name], images or ())
    photos = list(images) if images is not None else parity_mod.default_photos()
    run = _Run(src, the_spec, out_dir, opts, report, photos, progress)
    try:
        run.execute(plan)
    except EdgePoseError as exc:
        report.error = f"{type(exc).__name__}: {exc}"
        _save_report(report)
        exc.report = report  # type: ignore[attr-defined]  # the figures so far, for the CLI and callers
        raise
    except Exception as exc:  # noqa: BLE001 - a bug or an upstream tool's own exception: still a report
        current = report.stages[-1] if report.stages and report.stages[-1].artifact is None else None
        stage = current.name if current is not None else None
        if current is not None:
            current.status = "failed"
        detail = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        err = ConversionError(
            f"unexpected {type(exc).__name__}{f' in stage {stage}' if stage else ''}: {detail or '(no message)'}; "
            f"the report so far is in {report.report_path}. This is an edgepose bug: please report it with "
            "the traceback (--debug)")
        report.error = f"{type(exc).__name__}: {detail}"
        _save_report(report)
        err.report = report  # type: ignore[attr-defined]
        raise err from exc
    _save_report(report)
    return report


def _classifier_preset(preset: str | None) -> Mapping[str, Any] | None:
    """GluonCV ImageNet classifier presets (table B models): an input shape, not a pose spec."""
    if preset is None:
        return None
    from .mxnet.presets import CLASSIFIERS

    return CLASSIFIERS.get(preset)


def plan_stages(src: Source, opts: Options) -> list[Stage]:
    """The stages for a source kind, in order. INT8 and other formats add theirs here."""
    stem = src.stem
    plan: list[Stage] = []
    onnx_parent = "source"
    if src.kind == "torch":
        plan.append(Stage("torch->onnx", "source", "onnx", f"{stem}.onnx", "onnx", "fp32",
                          _build_torch_onnx(opts), tools=("torch", "onnx")))
        onnx_parent = "onnx"
    elif src.kind == "mxnet":
        plan.append(Stage("mxnet->onnx", "source", "onnx", f"{stem}.onnx", "onnx", "fp32",
                          _build_mxnet_onnx(src, opts), tools=("mxnet", "onnx"), check=False))
        onnx_parent = "onnx"
    if src.kind in ("torch", "onnx", "mxnet"):
        if opts.simplify:
            plan.append(Stage("onnxsim", onnx_parent, "sim", f"{stem}.sim.onnx", "onnx", "fp32",
                              _build_simplify(opts), tools=("onnxsim", "onnx")))
            onnx_parent = "sim"
        plan.append(Stage("onnx->mnn", onnx_parent, "mnn", f"{stem}.mnn", "mnn", "fp32",
                          _build_mnn("ONNX", False, opts), tools=("MNN",)))
        if opts.fp16:
            plan.append(Stage("onnx->mnn-fp16", onnx_parent, "mnn_fp16", f"{stem}.fp16.mnn", "mnn", "fp16",
                              _build_mnn("ONNX", True, opts), tools=("MNN",)))
    elif src.kind == "tflite":
        mnn_parent = "source"
        if _tflite_needs_densify(src.path):
            plan.append(Stage("tflite->dense", "source", "dense", f"{stem}.dense.tflite", "tflite", "fp32",
                              _build_densify, tools=("ai-edge-litert",)))
            mnn_parent = "dense"
        plan.append(Stage("tflite->mnn", mnn_parent, "mnn", f"{stem}.mnn", "mnn", "fp32",
                          _build_mnn("TFLITE", False, opts), tools=("MNN",)))
        if opts.fp16:
            plan.append(Stage("tflite->mnn-fp16", mnn_parent, "mnn_fp16", f"{stem}.fp16.mnn", "mnn", "fp16",
                              _build_mnn("TFLITE", True, opts), tools=("MNN",)))
    else:
        raise ConversionError(f"no conversion plan for a {src.kind} source")
    return plan


def _tflite_needs_densify(path: Path) -> bool:
    """Whether the TFLite graph has DENSIFY ops; first, every operator MNN cannot take is named
    (UnsupportedOperatorError), before any runtime or tool starts."""
    from . import tflite_densify, tflite_ops

    tflite_ops.check_mnn_can_convert(path, rewritten={tflite_densify.DENSIFY})
    return tflite_densify.has_densify(path)


def _with_stem(stage: Stage, stem: str) -> Stage:
    return dataclasses.replace(stage, filename=stage.filename.format(stem=stem))


def _check_plan(plan: Sequence[Stage]) -> None:
    keys = {"source"}
    for stage in plan:
        if stage.parent not in keys:
            raise ValueError(f"stage {stage.name!r} reads artifact {stage.parent!r}, which no earlier stage "
                             f"writes (available: {sorted(keys)})")
        keys.add(stage.key)


# --- stage builders ---------------------------------------------------------------------------------
def _build_torch_onnx(opts: Options):
    def build(parent: Artifact, dst: Path, spec: ModelSpec | None) -> Mapping[str, Any]:
        runner = parent.runner
        shape = runner.inputs[0].shape  # the parity shape: batch 2 if dynamic, else the requested batch
        batch = 1 if opts.dynamic_batch else shape[0]
        return st.torch_to_onnx(parent.target, dst, input_shape=(batch, *shape[1:]), input_name=runner.input_names[0],
                                output_names=runner.output_names, opset=opts.opset,
                                dynamic_batch=opts.dynamic_batch, spec=spec)
    return build


def _build_simplify(opts: Options):
    def build(parent: Artifact, dst: Path, spec: ModelSpec | None) -> Mapping[str, Any]:
        model = st.load_onnx(parent.target)
        fixed = _fixed_shapes(st.input_shapes(model), opts, spec)
        return st.simplify_onnx(parent.target, dst, spec=spec, overwrite_input_shapes=fixed)
    return build


def _build_mnn(framework: str, fp16: bool, opts: Options):
    fn = st.onnx_to_mnn if framework == "ONNX" else st.tflite_to_mnn

    def build(parent: Artifact, dst: Path, spec: ModelSpec | None) -> Mapping[str, Any]:
        return fn(parent.target, dst, fp16=fp16, spec=spec, timeout=opts.timeout)
    return build


def _build_densify(parent: Artifact, dst: Path, spec: ModelSpec | None) -> Mapping[str, Any]:
    """DENSIFY ops folded into constants (MNN has no DENSIFY).

    The file stays in the output folder, like every stage's file: it is what the MNN files were
    converted from and checked against, so a later check or benchmark can run it in LiteRT. It
    carries no edgepose metadata (the MNN stages after it embed the spec).
    """
    from .tflite_densify import densify_tflite

    return densify_tflite(parent.target, dst)


def _build_mxnet_onnx(src: Source, opts: Options):
    """The MXNet hook: converters.mxnet.mxnet_to_onnx(symbol, params, onnx_path, input_shape=...).

    The translator needs no MXNet; its numbers are checked against real MXNet by its own tests
    (MXNet lives in another environment), so this stage carries no parity check here.
    """
    def build(parent: Artifact, dst: Path, spec: ModelSpec | None) -> Mapping[str, Any]:
        try:
            from .mxnet import mxnet_to_onnx
        except ImportError as exc:
            raise ConversionError(f"MXNet conversion is not available in this install ({exc})") from None
        shape = opts.input_shape
        if shape is None and spec is not None:  # a pose preset/card knows its input
            shape = (1, 3, spec.height, spec.width) if spec.layout == "NCHW" else (1, spec.height, spec.width, 3)
        if shape is None:
            raise ConversionError("MXNet models need an input shape: --input-shape 1,3,H,W (or a --preset)")
        kwargs: dict[str, Any] = {"input_shape": shape}
        if spec is not None:
            kwargs["metadata"] = {METADATA_KEY: spec.to_json()}
            if spec.input_name:
                kwargs["input_name"] = spec.input_name
        mxnet_to_onnx(str(src.path), str(src.params), str(dst), **kwargs)
        model = st.load_onnx(dst)
        return {"format": "onnx", "nodes": st.node_count(model), "translator": "edgepose.converters.mxnet"}
    return build


# --- the run ----------------------------------------------------------------------------------
class _Run:
    def __init__(self, src: Source, spec: ModelSpec | None, out_dir: Path, opts: Options,
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
                self._run_stage(stage)
                bar.update(1)
        finally:
            bar.close()
        if self.spec is None:
            self.report.warnings.append(
                "no model card: the artifacts carry no edgepose metadata, so the Predictor will ask for it; "
                "pass --meta card.json, --preset or the metadata flags")

    # source ---------------------------------------------------------------------------------
    def _open_source(self) -> None:
        src, opts = self.src, self.opts
        if src.kind == "torch":
            shape = _torch_input_shape(opts.input_shape, self.spec)
            input_name = (self.spec.input_name if self.spec and self.spec.input_name else "input")
            names = _output_names(_probe_outputs(src.module, shape), self.spec)
            parity_shape = (2 if opts.dynamic_batch else shape[0], *shape[1:])
            runner = open_runner("torch", src.module, input_shapes={input_name: parity_shape}, output_names=names)
            art = Artifact("source", "torch", src.module, src.label, runner)
        elif src.kind == "onnx":
            runner = open_runner("onnx", src.path, threads=opts.threads)
            art = Artifact("source", "onnx", src.path, src.label, runner)
        elif src.kind == "tflite":
            runner = open_runner("tflite", src.path, threads=opts.threads)
            art = Artifact("source", "tflite", src.path, src.label, runner)
        else:  # mxnet: its runtime lives in another environment; the first stage has no reference here
            self.artifacts["source"] = Artifact("source", src.kind, src.path, src.label)
            return
        self.artifacts["source"] = art
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
            if self.sets is None:  # first runnable artifact (after an MXNet stage): inputs from it
                self._set_spec_io(runner)
                self._make_sets(runner)
            outputs = parity_mod.run_sets(runner, self.sets, what=f"{stage.name} output {final.name}")
            self._check(stage, parent, final.name, outputs, result)
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
            err = ParityError(msg + "; the artifact was not kept. Inspect the report, or keep it anyway "
                              "with --no-strict (strict=False)")
            err.stage, err.output = stage.name, result.parity.worst.name  # type: ignore[attr-defined]
            raise err
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
        if self.src.kind == "torch":
            prov["opset"] = self.opts.opset
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


def _check_name(name: str | None) -> None:
    """--name is a file-name stem: it cannot point outside the output directory."""
    if name is None:
        return
    text = str(name)
    if (not text or text in (".", "..") or "/" in text or "\\" in text or "\0" in text
            or os.path.isabs(text) or text != text.strip()):
        raise ConversionError(f"--name {text!r} must be a plain file-name stem (no directories, no '..'); "
                              "use -o/--output-dir to choose the folder")


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
        with st.atomic_path(report.report_path) as tmp:
            tmp.write_text(report.to_json(), encoding="utf-8")
    except OSError as exc:
        log.warning("could not write the report %s: %s", report.report_path, exc)


def _torch_input_shape(input_shape: tuple[int, ...] | None, spec: ModelSpec | None) -> tuple[int, ...]:
    if input_shape is None:
        if spec is None:
            raise ConversionError("a PyTorch model needs an input shape: input_shape=(1, 3, H, W) / --input-shape 1,3,H,W")
        w, h = spec.input_size
        return (1, 3, h, w) if spec.layout == "NCHW" else (1, h, w, 3)
    if len(input_shape) < 2 or any(d <= 0 for d in input_shape):
        raise ConversionError(f"input shape must be positive integers like 1,3,256,192, got {input_shape}")
    return input_shape


def _probe_outputs(module, shape: Sequence[int]) -> list[str | None]:
    """The names (dict keys, else None) of the module's outputs on a zero input."""
    import torch

    try:
        with torch.no_grad():
            out = module.eval()(torch.zeros(tuple(shape)))
    except Exception as exc:  # noqa: BLE001 - a user module can raise anything
        first = str(exc).strip().splitlines()[0][:240] if str(exc).strip() else type(exc).__name__
        raise ConversionError(f"the model failed on an input of shape {tuple(shape)}: {first}") from exc
    return [name for name, _ in named_outputs(out)]


def _output_names(probed: Sequence[str | None], spec: ModelSpec | None) -> list[str]:
    """ONNX output names: the module's dict keys, else the spec's tensor names (in the order the
    module returns them) if they fit, else the head's role name / output_<i>."""
    n = len(probed)
    if all(probed) and len(set(probed)) == n:
        return [str(p) for p in probed]
    if spec is not None and spec.outputs and len(spec.outputs) == n:
        return list(spec.outputs.values())
    if spec is not None and n == 1:
        return [HEADS[spec.head].primary_role]
    return ["output"] if n == 1 else [f"output_{i}" for i in range(n)]


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


def _concrete_shapes(runner, spec: ModelSpec | None, opts: Options) -> dict[str, tuple[int, ...]]:
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
            w, h = spec.input_size
            dims = [1, *((3, h, w) if spec.layout == "NCHW" else (h, w, 3))]
        else:
            raise ConversionError(
                f"input {t.name!r} has dynamic dimensions {tuple(t.shape)}; pass --input-shape / input_shape")
        shapes[t.name] = tuple(int(d) for d in dims)
    return shapes


def _fixed_shapes(graph_shapes: Mapping[str, Sequence[Any]], opts: Options,
                  spec: ModelSpec | None = None) -> dict[str, list[int]] | None:
    """onnxsim overwrite_input_shapes: only when a non-batch dim is dynamic (or a static batch is asked for)."""
    out = {}
    for name, dims in graph_shapes.items():
        dynamic = [i for i, d in enumerate(dims) if not (isinstance(d, int) and d > 0)]
        if not dynamic or (dynamic == [0] and opts.dynamic_batch):
            continue
        if dynamic == [0]:  # a static batch was asked for
            out[name] = [1, *dims[1:]]
        elif opts.input_shape is not None and len(opts.input_shape) == len(dims):
            out[name] = list(opts.input_shape)
        elif spec is not None and len(dims) == 4 and name == spec.input_name:
            w, h = spec.input_size
            out[name] = [1, *((3, h, w) if spec.layout == "NCHW" else (h, w, 3))]
        else:
            raise ConversionError(f"input {name!r} has dynamic dimensions {tuple(dims)}; pass --input-shape")
    return out or None


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
