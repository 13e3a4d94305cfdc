"""`quantize_int8`: FP32 artifacts + calibration photos -> INT8 files per engine, with a report.

    from edgepose.converters.quantize import Int8Options, quantize_int8
    report = quantize_int8({"mnn": "pose.mnn", "tflite": "pose.tflite"}, calib="photos/",
                           options=Int8Options(engines=("mnn", "onnxruntime")))

The same engines run as stages of a conversion (converters.quantize.stage):
`convert("pose.onnx", int8=Int8Options(calib="photos/"))`.

Every INT8 file carries the model card with provenance saying it is INT8 and how it was
calibrated (engine, method, sample count, sample names, hash). The report is saved as
<stem>.int8.json beside the files. A file whose mean keypoint error (held-out photos, at
256-pixel scale) exceeds the threshold fails the conversion with ParityError (strict), and
is not kept; with strict=False it is kept and the report says "inaccurate".
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from edgepose.cpu import CLASSES, cpu_info
from edgepose.errors import CalibrationError, ConversionError, EdgePoseError, MetadataError, ParityError
from edgepose.spec import ModelSpec

from ..metadata import sha256_of, tool_versions
from . import mnn_engine, ort_engine
from .calibration import IMAGE_SUFFIXES, PINNED_PREFIX, CalibrationSet, from_folder, load_calibration
from .evaluate import accuracy, interleaved_speed
from .report import EngineResult, Int8Report

log = logging.getLogger(__name__)

ENGINES = ("mnn", "onnxruntime")
ENGINE_ALIASES = {"mnn": ("mnn",), "onnxruntime": ("onnxruntime",), "ort": ("onnxruntime",),
                  "both": ENGINES}
DEFAULT_THRESHOLD_PX_256 = 3.0
DEFAULT_CALIB_COUNT = 64  # pinned:hand gives 54: all of them beat 32 (hand_landmark_lite 2.60 vs 3.10 px)
SLOW_SPEEDUP = 1.2
RECOMMEND_SPEEDUP = 1.3  # an INT8 file is recommended when at least this much faster than FP32 here


@dataclass(frozen=True)
class Int8Options:
    """How to quantise.

    calib           calibration photos: a folder of images (+ optional boxes.json), "pinned:person" /
                    "pinned:hand", or PhotoSamples. Needed by convert(int8=...); quantize_int8 also
                    takes it as its own argument.
    engines         "mnn" and/or "onnxruntime".
    mnn_method      MNN feature method EMA | KL | ADMM; mnn_weight_method MAX_ABS | ADMM.
    ort_method      ONNX Runtime calibration: minmax | entropy | percentile.
    ort_activations "uint8" (U8S8) | "int8" (S8S8); ort_weight_range "full" | "pair-safe" | "7bit".
                    None = chosen for the CPU class (ort_engine.select_config: U8S8; full-range
                    weights with VNNI/AMX/Arm, pair-safe weights on other x86).
    ort_float_fallback  mixed precision for ONNX Runtime (ort_engine.float_fallback): the few activation
                    tensors 8 bits hurt most stay float. None = on (the default of every class); False = off.
    cpu_class       the CPU class the files are for (edgepose.cpu.CLASSES); None = this machine's.
                    Accuracy and speed are always measured on this machine.
    calib_count     samples used (spread evenly over the set); None = min(64, all). More than
                    the set holds is a CalibrationError.
    holdout         photos for the accuracy check: a folder, "pinned:person"/"pinned:hand", or
                    None (pinned calibration -> its held-out photo; a folder -> every 5th image).
    keep_float      layers left in float: "first", "head" or op/node names.
    threshold_px_256  the largest acceptable mean keypoint error, px at 256-pixel input scale.
    strict          an inaccurate or failed engine raises (after the report is saved).
    layer_report    list the layers that lose most (MNN debug cosine / ORT qdq_loss_debug).
    """

    calib: Any = None
    engines: tuple[str, ...] = ENGINES
    mnn_method: str = mnn_engine.DEFAULT_METHOD
    mnn_weight_method: str = "MAX_ABS"
    ort_method: str = ort_engine.DEFAULT_METHOD
    ort_activations: str | None = None
    ort_weight_range: str | None = None
    ort_float_fallback: bool | None = None
    cpu_class: str | None = None
    calib_count: int | None = None
    holdout: str | Path | None = None
    keep_float: tuple[str, ...] = ()
    threshold_px_256: float = DEFAULT_THRESHOLD_PX_256
    strict: bool = True
    layer_report: bool = False
    speed: bool = True
    speed_rounds: int = 12
    progress: bool = True
    timeout: float = 1800.0

    def __post_init__(self) -> None:
        engines: list[str] = []
        for e in self.engines:
            if e not in ENGINE_ALIASES:
                raise ConversionError(f"unknown INT8 engine {e!r}; use mnn, onnxruntime or both")
            engines += [x for x in ENGINE_ALIASES[e] if x not in engines]
        object.__setattr__(self, "engines", tuple(engines))
        mnn_engine.check_methods(self.mnn_method, self.mnn_weight_method)
        ort_engine.check_method(self.ort_method)
        if self.cpu_class is not None and self.cpu_class not in CLASSES:
            raise ConversionError(f"unknown CPU class {self.cpu_class!r}; use one of {', '.join(CLASSES)}")
        ort_engine.select_config(self.cpu_class or "x86-unknown", activations=self.ort_activations,
                                 weight_range=self.ort_weight_range)  # validates the names
        if self.calib_count is not None and self.calib_count < 1:
            raise CalibrationError(f"calib_count must be at least 1, got {self.calib_count}")
        if not (self.threshold_px_256 > 0 and math.isfinite(self.threshold_px_256)):
            raise ConversionError(f"threshold_px_256 must be a positive number, got {self.threshold_px_256}")
        _check_calib_folder(self.calib)


def _check_calib_folder(calib: Any) -> None:
    """A calibration folder that cannot work fails when the options are made, before any conversion."""
    if isinstance(calib, (str, Path)) and not str(calib).startswith(PINNED_PREFIX):
        folder = Path(calib)
        if not folder.is_dir():
            raise CalibrationError(f"--calib {folder}: " + ("not a folder" if folder.exists() else "does not exist"))


def quantize_int8(fp32: Mapping[str, str | Path], *, calib: Any = None, spec: ModelSpec | None = None,
                  output_dir: str | Path | None = None, stem: str | None = None,
                  options: Int8Options | None = None) -> Int8Report:
    """Quantise the FP32 artifacts of one model to INT8 with each engine in `options.engines`.

    fp32   {"mnn": path, "onnx": path, "tflite": path} - what the FP32 conversion wrote
           (any subset; ONNX Runtime on a TFLite model converts it to ONNX first).
    calib  a folder of images (+ optional boxes.json), "pinned:person" / "pinned:hand", or PhotoSamples;
           default: options.calib.
    spec   the model card; default: the one embedded in the FP32 files.
    """
    opts = options or Int8Options()
    files = {k: Path(v) for k, v in fp32.items() if v is not None}
    for kind, path in files.items():
        if kind not in ("mnn", "onnx", "tflite"):
            raise ConversionError(f"unknown FP32 artifact kind {kind!r}; use mnn, onnx or tflite")
        if not path.is_file():
            raise ConversionError(f"FP32 {kind} artifact not found: {path}")
    base = next(iter(files.values()), None)
    if base is None:
        raise ConversionError("no FP32 artifact given; pass {'mnn': ..., 'onnx': ...}")
    out_dir = Path(output_dir) if output_dir else base.parent
    stem = stem or base.name.split(".")[0]
    spec, cal, hold, report = prepare(files, calib if calib is not None else opts.calib, spec, out_dir, stem, opts)
    for engine in opts.engines:
        result = EngineResult(engine)
        report.engines.append(result)
        dst = out_dir / f"{stem}{ENGINE_SUFFIX[engine]}"
        try:
            build_engine(result, files, dst, out_dir, stem, spec, cal, hold, opts)
            if not measure(result, dst, spec, hold, opts):
                dst.unlink()
                result.artifact = None
        except EdgePoseError as exc:
            engine_failed(result, exc, opts)
    report.save()
    exc = int8_error(report, opts)
    if exc is not None:
        raise exc
    return report


ENGINE_SUFFIX = {"mnn": ".int8.mnn", "onnxruntime": ".int8.onnx"}


def prepare(files: Mapping[str, Path], calib: Any, spec: ModelSpec | None, out_dir: Path, stem: str,
            opts: Int8Options) -> tuple[ModelSpec, CalibrationSet, CalibrationSet, Int8Report]:
    """The card, the calibration and held-out crops, and an empty report: what every engine shares."""
    if calib is None:
        raise CalibrationError("INT8 needs calibration photos: calib= a folder of images or pinned:person / "
                               "pinned:hand (--calib)")
    reader = _reference_predictor(files, spec)
    spec = spec or reader.spec
    cal, hold = _calibration_sets(calib, opts, reader, spec)
    report = Int8Report(model=spec.name or stem, output_dir=out_dir, stem=stem,
                        threshold_px_256=opts.threshold_px_256, strict=opts.strict,
                        calibration=cal.provenance(), holdout=hold.provenance(), cpu=cpu_info().to_dict(),
                        target_cpu_class=opts.cpu_class or cpu_info().cpu_class)
    return spec, cal, hold, report


# --- calibration ---------------------------------------------------------------------------
def _reference_predictor(files: Mapping[str, Path], spec: ModelSpec | None):
    """A Predictor on an FP32 file: it makes the crops (layout does not matter for them)."""
    from edgepose.predictor import Predictor

    for kind in ("mnn", "onnx", "tflite"):
        if kind in files:
            try:
                return Predictor(files[kind], spec=_spec_for(files[kind], spec))
            except MetadataError as exc:
                raise MetadataError(f"INT8 needs the model card to preprocess calibration images: {exc}") from None
    raise ConversionError("INT8 needs an FP32 .mnn, .onnx or .tflite file to preprocess calibration images "
                          "(convert the model first)")


def _spec_for(path: Path, spec: ModelSpec | None) -> ModelSpec | None:
    """The card for one file: the given spec with that file's layout when they differ."""
    if spec is None:
        return None
    if path.suffix == ".onnx" and spec.layout != "NCHW":
        embedded = _embedded_spec(path)
        return spec.replace(layout=embedded.layout if embedded else "NCHW")
    return spec


def _embedded_spec(path: Path) -> ModelSpec | None:
    from edgepose.backends import open_backend

    meta = open_backend(path, threads=1).metadata
    return ModelSpec.from_json(meta, source=str(path)) if meta else None


def _calibration_sets(calib: Any, opts: Int8Options, reader, spec: ModelSpec) -> tuple[CalibrationSet, CalibrationSet]:
    holdout = opts.holdout
    if isinstance(calib, str) and calib.startswith(PINNED_PREFIX):
        cal = load_calibration(calib, reader, progress=opts.progress)
        hold = load_calibration(holdout or calib, reader, split="holdout", progress=opts.progress)
    elif isinstance(calib, (str, Path)):
        folder = Path(calib)
        if holdout is None:
            cal_files, hold_files = _split_folder(folder)
            cal = from_folder(folder, reader, files=cal_files, progress=opts.progress)
            hold = from_folder(folder, reader, files=hold_files, progress=opts.progress)
            hold.source = f"{folder} (held out: {', '.join(p.name for p in hold_files)})"
        else:
            cal = load_calibration(folder, reader, progress=opts.progress)
            hold = load_calibration(holdout, reader, split="holdout", progress=opts.progress)
    else:
        cal = load_calibration(calib, reader, progress=opts.progress)
        if holdout is None:
            raise CalibrationError("pass holdout= (a folder or pinned:person / pinned:hand) to check accuracy")
        hold = load_calibration(holdout, reader, split="holdout", progress=opts.progress)
    count = opts.calib_count if opts.calib_count is not None else min(DEFAULT_CALIB_COUNT, len(cal))
    return cal.subset(count), hold


def _split_folder(folder: Path) -> tuple[list[Path], list[Path]]:
    """Every 5th image (at least one) is held out for the accuracy check."""
    if not folder.is_dir():
        raise CalibrationError(f"calibration folder {folder} does not exist" if not folder.exists()
                               else f"--calib must be a folder of images, {folder} is a file")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if len(files) < 2:
        raise CalibrationError(
            f"calibration folder {folder} has {len(files)} image(s); with no separate accuracy set "
            "(--int8-holdout DIR) at least 2 are needed, one of them held out to check accuracy")
    hold = files[4::5] or files[-1:]
    return [p for p in files if p not in hold], hold


# --- engines ---------------------------------------------------------------------------------
def build_engine(result: EngineResult, files: Mapping[str, Path], dst: Path, out_dir: Path, stem: str,
                 spec: ModelSpec, cal: CalibrationSet, hold: CalibrationSet, opts: Int8Options) -> None:
    """Write `result.engine`'s INT8 file at `dst` from the FP32 `files`; details go into `result`."""
    if result.engine == "mnn":
        _mnn(result, files, dst, spec, cal, opts)
    else:
        _ort(result, files, dst, out_dir, stem, spec, cal, opts, hold)


def measure(result: EngineResult, int8_model: Any, spec: ModelSpec, hold: CalibrationSet,
            opts: Int8Options) -> bool:
    """Accuracy (and speed) of `int8_model` (a path or a backend) against `result.fp32_artifact` on the
    held-out crops; sets status, error, notes and the verdict. Returns whether to keep the file
    (False: inaccurate and strict). `result.artifact` names the file as the user will see it."""
    engine_spec = _spec_for(result.fp32_artifact, spec)
    result.accuracy = accuracy(result.fp32_artifact, int8_model, engine_spec, hold)
    ok = result.accuracy.mean_px_256 <= opts.threshold_px_256
    result.status = "ok" if ok else "inaccurate"
    if opts.speed:
        result.speed = interleaved_speed(result.fp32_artifact, int8_model, hold.tensors(engine_spec),
                                         input_name=engine_spec.input_name, rounds=opts.speed_rounds)
        if result.speed.speedup < SLOW_SPEEDUP:
            result.notes.append(_why_not_faster(result.engine, result.speed.speedup, result.details))
    keep = True
    if not ok:
        result.error = (f"mean keypoint error {result.accuracy.mean_px_256:.2f} px at 256 scale "
                        f"> {opts.threshold_px_256:g} (max {result.accuracy.max_px_256:.1f} px, "
                        f"PCK@0.05 {result.accuracy.pck:.3f})")
        if opts.strict:
            result.notes.append(f"{_name(result)} removed (strict); keep it with --int8-no-strict")
            keep = False
    result.recommendation = recommend(result, target_class=opts.cpu_class or cpu_info().cpu_class)
    if result.status == "ok" and result.recommendation["verdict"] == "do-not-ship":
        log.warning("INT8 %s: %s", result.engine, result.recommendation["reason"])
    return keep


def engine_failed(result: EngineResult, exc: EdgePoseError, opts: Int8Options) -> None:
    """An engine that raised: the report says why; the other engines still run."""
    result.status = "failed"
    result.error = f"{type(exc).__name__}: {exc}"
    log.warning("INT8 with %s failed: %s", result.engine, exc)
    result.recommendation = recommend(result, target_class=opts.cpu_class or cpu_info().cpu_class)


def recommend(result: EngineResult, *, target_class: str) -> dict[str, Any]:
    """Whether to ship this engine's INT8 file, from what was measured on this CPU.

    ship        accurate and at least RECOMMEND_SPEEDUP x faster than FP32 here;
    marginal    accurate, faster, but by less than that: FP32/FP16 is as good unless size matters;
    do-not-ship inaccurate, failed, or slower than FP32 on this CPU (e.g. MNN INT8 on x86, whose pip
                wheel has no VNNI int8 kernels);
    untimed     accurate, speed not measured;
    untimed-on-target  accurate, timed here, but made for another CPU class (--int8-cpu-class).
    """
    here = cpu_info()
    where = f"this CPU ({here.model_name}, {here.cpu_class})"
    sp = result.speed
    if result.status == "failed":
        verdict, reason = "do-not-ship", f"INT8 {result.engine} failed: {result.error}"
    elif result.status != "ok":
        verdict, reason = "do-not-ship", f"INT8 {result.engine} is not accurate enough: {result.error}"
        if sp is not None and sp.speedup < 1.0:
            reason += f"; it is also SLOWER than FP32 on {where} (x{sp.speedup:.2f})"
    elif sp is None:
        verdict, reason = "untimed", f"INT8 {result.engine} is accurate; its speed was not measured"
    elif sp.speedup < 1.0:
        verdict = "do-not-ship"
        reason = (f"INT8 {result.engine} is SLOWER than FP32 on {where}: x{sp.speedup:.2f} "
                  f"({sp.int8_ms:.2f} ms vs {sp.fp32_ms:.2f} ms); do not ship {_name(result)}, ship the FP32/FP16 file")
    elif sp.speedup < RECOMMEND_SPEEDUP:
        verdict = "marginal"
        reason = (f"INT8 {result.engine} is only x{sp.speedup:.2f} of FP32 on {where} (below the x{RECOMMEND_SPEEDUP:g} "
                  "worth shipping): the FP32/FP16 file is as good unless file size matters")
    else:
        verdict, reason = "ship", f"INT8 {result.engine} is accurate and x{sp.speedup:.2f} of FP32 on {where}"
    if target_class != here.cpu_class and sp is not None and result.status == "ok":
        verdict = "untimed-on-target"
        reason += (f"; but the file is for {target_class}, where INT8 gains differ (e.g. no VNNI): time it on such a "
                   "CPU before shipping")
    return {"verdict": verdict, "ship": verdict == "ship", "reason": reason, "timed_on": here.to_dict(),
            "target_cpu_class": target_class}


def _name(result: EngineResult) -> str:
    return result.artifact.name if result.artifact is not None else "the INT8 file"


def _int8_spec(spec: ModelSpec, engine: str, source: Path, cal: CalibrationSet, details: Mapping[str, Any],
               opts: Int8Options) -> ModelSpec:
    """The INT8 file's card: how it was quantised, on which CPU it was calibrated (and is timed,
    in the same run), and the CPU class its settings are for."""
    tools = ("MNN",) if engine == "mnn" else ("onnxruntime", "onnx")
    here = cpu_info()
    return spec.with_provenance(
        precision="int8", stage=f"int8-{engine}", parent=source.name, parent_sha256=sha256_of(source),
        quantization={"engine": engine, **details, "calibration": cal.provenance(), "cpu": here.to_dict(),
                      "target_cpu_class": opts.cpu_class or here.cpu_class},
        tools=tool_versions(*tools))


def _mnn(result: EngineResult, files, dst: Path, spec: ModelSpec, cal: CalibrationSet, opts: Int8Options) -> None:
    if "mnn" not in files:
        raise ConversionError("MNN INT8 needs the FP32 .mnn file (convert the model to MNN first)")
    src = result.fp32_artifact = files["mnn"]
    mspec = _spec_for(src, spec)
    method, weight = mnn_engine.check_methods(opts.mnn_method, opts.mnn_weight_method)
    int8_spec = _int8_spec(mspec, "mnn", src, cal, {"method": method, "weight_method": weight,
                                                     "keep_float": list(opts.keep_float)}, opts)
    result.details = mnn_engine.quantize(src, dst, cal, mspec, int8_spec, method=method, weight_method=weight,
                                         keep_float=opts.keep_float, debug=opts.layer_report, timeout=opts.timeout)
    result.layers = result.details.pop("layers", [])
    result.artifact = dst
    if result.details.get("keep_float_ignored"):
        result.notes.append("--keep-float ignored: MNN's EMA method quantises every conv (its EMA path does not "
                            "read skip_quant_op_names); use --method KL or ADMM for MNN to keep layers in float")
    if method == "EMA" and weight != "MAX_ABS":
        result.notes.append(f"--weight-method {weight} has no effect with EMA (EMA quantises weights per tensor)")
    if opts.layer_report and method == "EMA":
        result.notes.append("per-layer list: FP32 vs INT8 cosine of the conv outputs EMA kept the names of "
                            "(MNN's own per-layer debug exists only for KL/ADMM)")


def _ort(result: EngineResult, files, dst: Path, out_dir: Path, stem: str, spec: ModelSpec, cal: CalibrationSet,
         opts: Int8Options, hold: CalibrationSet) -> None:
    """ONNX Runtime static QDQ of the FP32 ONNX; a TFLite model is first copied to <stem>.onnx (tflite2onnx)."""
    if "onnx" in files:
        src = files["onnx"]
    elif "tflite" in files:
        from .tflite_onnx import reusable, tflite_to_onnx

        src = out_dir / f"{stem}.onnx"
        if src.exists() and not reusable(src, files["tflite"]):
            raise ConversionError(f"{src} exists and is not an ONNX copy of {files['tflite'].name}; "
                                  "remove it or pass an ONNX file as the FP32 artifact")
        if src.exists():
            result.details["tflite_to_onnx"] = {"tool": "tflite2onnx", "reused": src.name}
        else:
            probe = cal.tensors(spec.replace(layout="NHWC"))[:1]
            result.details["tflite_to_onnx"] = tflite_to_onnx(files["tflite"], src, spec, probe=probe)
    else:
        raise ConversionError("ONNX Runtime INT8 needs an FP32 .onnx (or the .tflite source to convert)")
    result.fp32_artifact = src
    ospec = _spec_for(src, spec)
    method = ort_engine.check_method(opts.ort_method)
    config = ort_engine.select_config(opts.cpu_class, activations=opts.ort_activations,
                                      weight_range=opts.ort_weight_range, float_fallback=opts.ort_float_fallback)
    int8_spec = _int8_spec(ospec, "onnxruntime", src, cal,
                           {"method": method, "format": "QDQ", "activations": config.activations,
                            "weights": f"int8 per-channel, {config.weight_range} range",
                            "settings": config.to_dict(), "keep_float": list(opts.keep_float)}, opts)
    details = ort_engine.quantize(src, dst, cal, ospec, int8_spec, method=method, keep_float=opts.keep_float,
                                  settings=config, debug=opts.layer_report, split_on=hold)
    if config.warning:
        result.notes.append(f"WARNING: {config.warning}")
        log.warning("INT8 onnxruntime: %s", config.warning)
    result.layers = details.pop("layers", [])
    if "error_split" in details:
        result.notes.append(_split_note(details["error_split"]))
    result.details.update(details)
    result.artifact = dst


def _split_note(split: Mapping[str, Any]) -> str:
    if "error" in split:
        return f"error split unavailable: {split['error']}"
    figures = ", ".join(f"{label} {value:.2f}" if isinstance(value, float) else f"{label} failed ({value})"
                        for label, value in split.items() if label.startswith("w"))
    return (f"where the error comes from (mean px at 256 scale on the held-out crops): {figures}; w8a16 keeps "
            "activations at 16 bits (the weights' share), w16a8 keeps weights at 16 bits (the activations' share)")


def _why_not_faster(engine: str, speedup: float, details: Mapping[str, Any]) -> str:
    from .why import explanation

    return explanation(engine, speedup, details)


def int8_error(report: Int8Report, opts: Int8Options, *, context: Any = None) -> ConversionError | None:
    """The error a strict INT8 run raises when an engine failed or missed the threshold (None: none).

    ParityError when every bad engine was only inaccurate, else ConversionError; `stage` names the
    first bad engine's stage (int8-<engine>), `report` is `context` (default: the INT8 report)."""
    bad = [e for e in report.engines if e.status != "ok"]
    if not bad or not opts.strict:
        for e in bad:
            log.warning("INT8 %s: %s (kept: strict=False)", e.engine, e.error)
        return None
    msg = "; ".join(f"{e.engine}: {e.error}" for e in bad) + f" (report: {report.report_path})"
    stage = f"int8-{bad[0].engine}"
    if all(e.status == "inaccurate" for e in bad):
        return ParityError(f"INT8 is not accurate enough: {msg}; keep layers in float (--keep-float first,head), "
                           "calibrate on more photos, or accept it with --int8-no-strict", stage=stage,
                           report=context if context is not None else report)
    return ConversionError(f"INT8 failed: {msg}", stage=stage, report=context if context is not None else report)
