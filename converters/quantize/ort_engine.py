"""ONNX Runtime static INT8 quantisation: QDQ, uint8 activations, int8 per-channel weights (U8S8).

Steps: upgrade the opset to >= 13 (per-channel DequantizeLinear needs its `axis`), rewrite
ConvTranspose(4, s2, p1) as Convs and an RGB stride-2 stem as SpaceToDepth + 2x2 Conv
(graph_rewrite.py: what ORT's int8 kernels lack or run slowly), run
`quant_pre_process` (shape inference + graph optimisation, as ONNX Runtime recommends),
calibrate with the Predictor's tensors one sample at a time (graphs with a baked batch of 1
work), write QDQ with Softmax left float (FLOAT_OPS) and embed the INT8 model card. U8S8 rather than
ORT's usual S8S8 on x86: measured faster (S8S8 leaves residual Adds in float and blocks conv fusion),
and on x86 ORT runs S8S8 on the same U8S8 kernels anyway.

The weights' range follows the CPU class the file is for (`select_config`): full 8-bit where int8
sums are exact (VNNI, AMX, Arm); on x86 without VNNI, whose kernels sum pairs of products in
saturating int16, "pair-safe" ranges: the full-range file's pair sums are emulated on calibration
crops (saturation.py) and the channels that come near the int16 limit are quantised again over a
wider range (fewer codes), the others keep 8 bits; the held-out crops then check what is left.
"""
from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from edgepose.cpu import VNNI_CLASSES
from edgepose.errors import ConversionError, ShapeError
from edgepose.spec import ModelSpec

from ..metadata import embed_in_onnx
from ..stages import atomic_path
from .calibration import CalibrationSet

log = logging.getLogger(__name__)

METHODS = ("minmax", "entropy", "percentile")
ACTIVATIONS = ("int8", "uint8")
DEFAULT_ACTIVATIONS = "uint8"  # U8S8: measured faster here than S8S8, see module doc
DEFAULT_METHOD = "minmax"
MIN_OPSET = 13
_COMPUTE_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")
# Left out of quantisation always. Softmax: ORT's rule for it fixes the output range to [0, 1]
# (scale 1/256), so the ~1/512 probabilities of a SimDR / soft-argmax / attention distribution round
# to 0 or one step and the expectation is lost. Excluded, its output is quantised (if at all) by its
# consumer with the calibrated range (simdr_norm, random weights: 33 px -> 2.9 px vs FP32).
FLOAT_OPS = ("Softmax",)


WEIGHT_RANGES = ("full", "pair-safe", "7bit")
PAIR_SAFE_LIMIT = 0.9 * 32767  # pair sums kept below this on the calibration crops (10 % headroom)
PAIR_SAFE_CROPS = 16           # calibration crops the pair sums are measured on (spread over the set)


@dataclass(frozen=True)
class OrtConfig:
    """The ONNX Runtime INT8 settings for one CPU class, and why.

    weight_range  "full": per-channel int8 weights in [-127, 127];
                  "pair-safe": per output channel the widest range (7 to 8 bits) whose int16 pair
                  sums, emulated on the calibration crops (saturation.py), stay within
                  PAIR_SAFE_LIMIT; channels that never come near the limit keep all 8 bits;
                  "7bit": ONNX Runtime's reduce_range, every weight in [-64, 64].
    """

    activations: str            # "uint8" (U8S8) | "int8" (S8S8)
    weight_range: str           # "full" | "pair-safe" | "7bit"
    cpu_class: str              # the class the settings were chosen for
    chosen: str                 # "for the CPU class" | "by the user"
    reason: str
    warning: str | None = None  # set when the settings lose accuracy on that class
    float_fallback: bool = True  # mixed precision: the activations 8 bits hurt most stay float (below)

    @property
    def label(self) -> str:
        return ("S8S8" if self.activations == "int8" else "U8S8") + {
            "full": "", "pair-safe": " pair-safe", "7bit": " 7-bit"}[self.weight_range]

    @property
    def reduce_range(self) -> bool:
        return self.weight_range == "7bit"

    @property
    def holds_on(self) -> str:
        """Where the accuracy measured on this machine also holds."""
        if self.weight_range == "7bit":
            return "every CPU class (7-bit weights: no int16 saturation in any ONNX Runtime kernel)"
        if self.weight_range == "pair-safe":
            return ("every CPU class: no pair sum of the calibration crops comes within 10 % of the int16 limit of "
                    "the x86 kernels without VNNI (the held-out check below says how many still saturate)")
        return ("CPUs whose int8 kernels accumulate in int32: x86 with VNNI or AMX (x86-avx512-vnni, x86-avx2-vnni) "
                "and Arm; NOT x86 without VNNI (x86-avx2, x86-avx512), where ONNX Runtime's kernels saturate: "
                "for those, make the file with --int8-cpu-class x86-avx2 (pair-safe weights)")

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "activations": self.activations, "weights": "int8 per-channel",
                "weight_range": self.weight_range, "cpu_class": self.cpu_class, "chosen": self.chosen,
                "reason": self.reason, "warning": self.warning, "holds_on": self.holds_on,
                "float_fallback": self.float_fallback}


def saturates(cpu_class: str, *, weight_range: str) -> bool:
    """Whether ONNX Runtime's int8 convolutions can saturate on this class with these weights: x86
    without VNNI/AMX runs them on `vpmaddubsw` (uint8 x int8 pairs summed in int16: 2 x 255 x 127 =
    64770 > 32767). S8S8 does not escape it: on x86 ONNX Runtime turns int8 activation Q/DQ pairs
    into uint8 ones (QDQS8ToU8Transformer) and runs the same U8S8 kernels (measured: hand_landmark_lite
    S8S8 7.43 px on AVX2 against 2.51 px with VNNI). Unknown x86 flags count as saturating."""
    return cpu_class.startswith("x86") and cpu_class not in VNNI_CLASSES and weight_range == "full"


def select_config(cpu_class: str | None = None, *, activations: str | None = None,
                  weight_range: str | None = None, float_fallback: bool | None = None) -> OrtConfig:
    """ONNX Runtime INT8 settings for `cpu_class` (default: this machine's). `activations` /
    `weight_range` given by the user win; a choice that saturates on the class gets a warning.

    Defaults, measured (converters/quantize/README.md): U8S8 (fastest; S8S8 runs on the same
    kernels on x86, slower) with full-range per-channel weights where the int8 kernels accumulate in
    int32 (x86 with VNNI or AMX, Arm); U8S8 with pair-safe weights on every other x86 (no
    saturation at U8S8's speed, at most 1 bit of weight precision given up, only where needed).
    On every class, mixed precision (`float_fallback`, see `float_fallback()`): the few activation
    tensors whose 8-bit rounding costs most on the calibration crops stay float.
    """
    from edgepose.cpu import cpu_class as this_class

    cls = cpu_class or this_class()
    if activations is not None and activations not in ACTIVATIONS:
        raise ConversionError(f"ONNX Runtime activations must be one of {', '.join(ACTIVATIONS)}, got {activations!r}")
    if weight_range is not None and weight_range not in WEIGHT_RANGES:
        raise ConversionError(f"ONNX Runtime weight range must be one of {', '.join(WEIGHT_RANGES)}, "
                              f"got {weight_range!r}")
    user = activations is not None or weight_range is not None
    acts = activations or DEFAULT_ACTIVATIONS
    risky = saturates(cls, weight_range="full")
    weights = weight_range or ("pair-safe" if risky else "full")
    if not risky:
        reason = (f"{cls}: int8 kernels accumulate in int32 (VNNI/AMX, or Arm), so full-range weights are exact"
                  if cls.startswith(("x86", "arm")) else f"{cls}: no known int16 saturation")
    elif cls.endswith("unknown"):
        reason = f"{cls}: CPU flags unknown, so weights that cannot saturate int16 sums in case the CPU lacks VNNI"
    else:
        reason = (f"{cls}: no VNNI, so ONNX Runtime's U8S8 kernels (vpmaddubsw) saturate int16 pair sums of "
                  "full-range weights; pair-safe weights keep them within int16 at the same speed")
    warning = None
    if saturates(cls, weight_range=weights):
        warning = (f"{'S8S8' if acts == 'int8' else 'U8S8'} with full-range weights on {cls}: ONNX Runtime's int8 "
                   "kernels without VNNI saturate int16 pair sums (S8S8 runs on the same U8S8 kernels on x86), "
                   "so accuracy measured on a VNNI CPU does not hold there (hand_landmark_lite 7.9 px instead of "
                   "2.6); use --ort-weight-range pair-safe")
    return OrtConfig(activations=acts, weight_range=weights, cpu_class=cls,
                     chosen="by the user" if user else "for the CPU class", reason=reason, warning=warning,
                     float_fallback=True if float_fallback is None else bool(float_fallback))


def check_method(method: str) -> str:
    m = method.lower()
    if m not in METHODS:
        raise ConversionError(f"unknown ONNX Runtime calibration method {method!r}; use one of {', '.join(METHODS)}")
    return m


class _Reader:
    """CalibrationDataReader over (N, ...) tensors, one sample per call."""

    def __init__(self, name: str, tensors: np.ndarray):
        self.name, self.tensors, self.i = name, tensors, 0

    def get_next(self):
        if self.i >= len(self.tensors):
            return None
        x = self.tensors[self.i:self.i + 1]
        self.i += 1
        return {self.name: x}

    def rewind(self) -> None:
        self.i = 0

    def __iter__(self):
        self.i = 0
        while (item := self.get_next()) is not None:
            yield item


@contextlib.contextmanager
def _working_directory(path: Path):
    before = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def prepare(src: Path, dst: Path) -> dict[str, Any]:
    """Opset >= 13; the graph_rewrite passes (ConvTranspose(4, s2, p1) as Convs: ORT has no int8
    ConvTranspose; an RGB stride-2 stem as SpaceToDepth + 2x2 Conv: its int8 im2col is slow); then
    quant_pre_process (without symbolic shape inference if that gives up; without pre-processing if
    both fail). `dst` must be in a scratch folder: ORT may write debris beside it."""
    import onnx
    from onnx import version_converter

    from .graph_rewrite import rewrite_conv_transposes, rewrite_strided_stem

    dst = Path(dst).resolve()  # pre-processing runs from dst's folder
    model = onnx.load(str(src))
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    details: dict[str, Any] = {"opset_before": opset}
    if opset < MIN_OPSET:
        model = version_converter.convert_version(model, MIN_OPSET)
        details["opset_after"] = MIN_OPSET
    model, rewritten = rewrite_conv_transposes(model)
    if rewritten:
        details["conv_transpose_to_conv"] = len(rewritten)
    model, stem = rewrite_strided_stem(model)
    if stem:
        details["stem_space_to_depth"] = len(stem)
    staged = dst.with_name(dst.stem + ".opset.onnx")
    onnx.save(model, str(staged))
    from onnxruntime.quantization.shape_inference import quant_pre_process

    # ORT's symbolic shape inference, when it gives up, dumps sym_shape_infer_temp.onnx and its weights
    # into the working directory: run it from the scratch folder so nothing lands in the user's.
    with _working_directory(dst.parent):
        for symbolic in (True, False):
            try:
                quant_pre_process(str(staged), str(dst), skip_symbolic_shape=not symbolic)
                details["pre_process"] = "quant_pre_process" + ("" if symbolic else " (no symbolic shapes)")
                break
            except Exception as exc:  # noqa: BLE001 - pre-processing is an optimisation
                reason = f"{type(exc).__name__}: {exc}"
        else:
            log.warning("quant_pre_process failed on %s (%s); quantising without it", src.name, reason)
            staged.replace(dst)
            details["pre_process"] = f"skipped: {reason[:200]}"
    return details


def node_names(path: Path) -> list[tuple[str, str]]:
    import onnx

    return [(n.name, n.op_type) for n in onnx.load(str(path), load_external_data=False).graph.node]


def resolve_keep_float(path: Path, names: Sequence[str]) -> list[str]:
    """Expand "first" / "head" to node names (first compute node; last one before each output)."""
    if not names:
        return []
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    producer = {o: n for n in graph.node for o in n.output}
    inits = {i.name for i in graph.initializer}
    by_name = {n.name for n in graph.node}
    out: list[str] = []
    for token in names:
        if token == "first":
            first = next((n.name for n in graph.node if n.op_type in _COMPUTE_OPS), None)
            if first:
                out.append(first)
        elif token == "head":
            for o in graph.output:
                node, seen = producer.get(o.name), 0
                while node is not None and node.op_type not in _COMPUTE_OPS and seen < 50:
                    node = next((producer[i] for i in node.input if i in producer and i not in inits), None)
                    seen += 1
                if node is not None and node.op_type in _COMPUTE_OPS:
                    out.append(node.name)
        elif token in by_name:
            out.append(token)
        else:
            sample = [n.name for n in graph.node if n.op_type in _COMPUTE_OPS][:5]
            raise ConversionError(f"--keep-float {token!r}: no such node in {path.name}; use 'first', 'head' "
                                  f"or a node name such as {sample}")
    return list(dict.fromkeys(out))


def quantize(fp32: Path, dst: Path, calib: CalibrationSet, spec: ModelSpec, int8_spec: ModelSpec, *,
             method: str = DEFAULT_METHOD, keep_float: Sequence[str] = (), per_channel: bool = True,
             activations: str | None = None, weight_range: str | None = None, cpu_class: str | None = None,
             settings: OrtConfig | None = None, debug: bool = False,
             split_on: CalibrationSet | None = None) -> dict[str, Any]:
    """Quantise ONNX model `fp32` to `dst` (QDQ, int8 weights; int8 or uint8 activations).

    `settings` (an OrtConfig from `select_config`) or else `activations` / `weight_range`; what is
    left None is chosen for `cpu_class` (default: this machine's) by `select_config`: full-range U8S8 where the int8 kernels accumulate in int32 (VNNI, AMX,
    Arm), pair-safe weights on other x86 (their `vpmaddubsw` kernels saturate otherwise).
    `split_on` (default: the calibration crops) holds the crops for the checks: with pair-safe
    weights (or `debug`) the emulated int16 saturation of x86 CPUs without VNNI; with `debug` the
    per-layer list and the 8/16-bit error split.
    """
    import onnx

    from . import saturation

    method = check_method(method)
    config = settings or select_config(cpu_class, activations=activations, weight_range=weight_range)
    activations = config.activations
    t0 = time.perf_counter()
    tensors = calib.tensors(spec)
    checks = (split_on or calib).tensors(spec)
    split = ranges = None
    with tempfile.TemporaryDirectory(prefix="edgepose-ortquant-") as tmp:
        pre = Path(tmp) / "pre.onnx"
        details = prepare(fp32, pre)
        kept = resolve_keep_float(pre, keep_float)
        always = [n for n, op in node_names(pre) if op in FLOAT_OPS and n not in kept]
        exclude = kept + always
        input_name = spec.input_name or onnx.load(str(pre), load_external_data=False).graph.input[0].name
        reader = _Reader(input_name, tensors)
        cache = Path(tmp) / "calibration.json"
        write = _writer(pre, reader, cache, method=method, per_channel=per_channel, activations=activations,
                        reduce_range=config.reduce_range, name=fp32.name)
        raw = write(exclude, Path(tmp) / "int8.onnx")
        if config.weight_range == "pair-safe":
            probe = tensors[np.unique(np.linspace(0, len(tensors) - 1, min(PAIR_SAFE_CROPS, len(tensors))).round()
                                      .astype(int))]
            found = saturation.analyse(raw, probe, input_name=input_name)
            ranges, details["pair_safe"] = saturation.pair_safe_ranges(found, pre, limit=PAIR_SAFE_LIMIT)
            details["pair_safe"]["crops"] = len(probe)
            if ranges:
                write = _writer(pre, reader, cache, method=method, per_channel=per_channel, activations=activations,
                                ranges=ranges, name=fp32.name)
                raw = write(exclude, Path(tmp) / "int8.pairsafe.onnx")
        if config.float_fallback:
            try:
                mixed, details["float_fallback"] = float_fallback(pre, write, exclude, spec, tensors, Path(tmp),
                                                                  base=raw, input_name=input_name)
            except ShapeError as exc:  # outputs the card's keypoint decoder cannot read (e.g. a classifier)
                log.warning("mixed precision skipped for %s: its outputs are not keypoints the card decodes "
                            "(%s); every tensor is INT8", fp32.name, exc)
                mixed, details["float_fallback"] = [], {"skipped": f"outputs not decodable as keypoints: {exc}"}
            if mixed:
                exclude = exclude + [n for n in mixed if n not in exclude]
                raw = write(exclude, Path(tmp) / "int8.mixed.onnx")
        if config.weight_range == "pair-safe" or debug:
            details["saturation_check"] = saturation.summarise(
                saturation.analyse(raw, checks, input_name=input_name), crops=len(checks),
                source=(split_on or calib).source)
        model = onnx.load(str(raw))
        embed_in_onnx(model, int8_spec)
        with atomic_path(dst) as part:
            onnx.save(model, str(part))
        if debug:
            layers = layer_errors(pre, raw, tensors[: min(4, len(tensors))], input_name)
            split = error_split(pre, Path(tmp), reader, cache, spec, split_on or calib, method=method,
                                per_channel=per_channel, exclude=exclude, activations=activations,
                                reduce_range=config.reduce_range, ranges=ranges)
        else:
            layers = []
    qdq = sum(1 for n in model.graph.node if n.op_type == "QuantizeLinear")
    try:
        profile = optimized_profile(dst)
    except Exception as exc:  # noqa: BLE001 - diagnostics only
        profile = {"error": f"{type(exc).__name__}: {exc}"}
    out = {"optimized_graph": profile, "method": method, "keep_float": kept, "float_ops": always,
           "per_channel_weights": per_channel,
           "format": "QDQ", "activation_type": activations, "weight_type": "int8", "weight_range": config.weight_range,
           "settings": config.to_dict(), "quantize_nodes": qdq,
           "seconds": time.perf_counter() - t0, "layers": layers, **details}
    if split is not None:
        out["error_split"] = split
    return out


_QUANT_TYPES = {"int8": "QInt8", "uint8": "QUInt8", "int16": "QInt16", "uint16": "QUInt16"}


def _writer(pre: Path, reader: _Reader, cache: Path, *, method: str, per_channel: bool, activations: str, name: str,
            weights: str = "int8", reduce_range: bool = False, ranges: dict[str, tuple[int, list[float]]] | None = None):
    """write(exclude, dst) -> dst: `pre` quantised with those nodes left float. Calibration runs once
    where ONNX Runtime can cache it (its calibration_cache_path), else on every call."""
    import inspect

    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    act_type, weight_type = getattr(QuantType, _QUANT_TYPES[activations]), getattr(QuantType, _QUANT_TYPES[weights])
    calibrate = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
                 "percentile": CalibrationMethod.Percentile}[method]
    cached = {"calibration_cache_path": str(cache)} if "calibration_cache_path" in inspect.signature(
        quantize_static).parameters else {}

    def write(exclude: Sequence[str], dst: Path) -> Path:
        reader.rewind()
        try:
            quantize_static(str(pre), str(dst), reader, quant_format=QuantFormat.QDQ,
                            per_channel=per_channel, reduce_range=reduce_range, activation_type=act_type,
                            weight_type=weight_type,
                            calibrate_method=calibrate, nodes_to_exclude=list(exclude),
                            extra_options={"CalibTensorRangeSymmetric": False, "DedicatedQDQPair": True,
                                           **_overrides(ranges if per_channel else None)}, **cached)
        except Exception as exc:  # ORT raises plain Exceptions/RuntimeErrors from calibration
            first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
            raise ConversionError(f"ONNX Runtime INT8 ({method}) failed on {name}: {first}") from None
        if exclude:  # nodes left float must stay float when ORT loads the file (graph_rewrite.pin_float)
            import onnx

            from .graph_rewrite import pin_float

            model = onnx.load(str(dst))
            if pin_float(model, exclude):
                onnx.save(model, str(dst))
        return dst

    return write


def _overrides(ranges: dict[str, tuple[int, list[float]]] | None) -> dict[str, Any]:
    """TensorQuantOverrides fixing the per-channel ranges (pair-safe weights): {name: (axis, [r, ...])}
    quantises channel c of that weight symmetrically over [-r_c, r_c]."""
    if not ranges:
        return {}
    return {"TensorQuantOverrides": {
        name: [{**({"axis": axis} if c == 0 else {}), "rmin": -r, "rmax": r} for c, r in enumerate(values)]
        for name, (axis, values) in ranges.items()}}


def error_split(pre: Path, tmp: Path, reader: _Reader, cache: Path, spec: ModelSpec, crops: CalibrationSet, *,
                method: str, per_channel: bool, exclude: Sequence[str] = (), activations: str = "uint8",
                reduce_range: bool = False, ranges: dict[str, tuple[int, list[float]]] | None = None) -> dict[str, Any]:
    """Where the INT8 error comes from: mean keypoint error (px at 256 scale) on `crops` of the same
    quantisation with 16-bit activations (what the 8-bit weights cost), with 16-bit weights (what
    the 8-bit activations cost), and 8/8.

    Both shares near the 8/8 figure means the loss is spread over weights and activations alike,
    which no calibration method or single float layer repairs; one share far below the threshold
    says which side to work on.
    """
    import onnx
    from onnx import version_converter

    from edgepose.backends import open_backend

    from .evaluate import keypoint_error

    out: dict[str, Any] = {"samples": len(crops), "source": crops.source}
    try:  # 16-bit QDQ needs opset 21: convert once here rather than have ORT warn on each call
        model = onnx.load(str(pre))
        if next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0) < 21:
            model = version_converter.convert_version(model, 21)
        pre21 = tmp / "pre21.onnx"
        onnx.save(model, str(pre21))
    except Exception as exc:  # noqa: BLE001 - a diagnosis; the INT8 file is already written
        return {**out, "error": f"could not move the graph to opset 21 for 16-bit QDQ: {type(exc).__name__}: {exc}"}
    error = keypoint_error(open_backend(pre, threads=1), spec, crops.tensors(spec))
    wide = "int16" if activations == "int8" else "uint16"
    for label, acts, weights in (("w8a8", activations, "int8"), ("w8a16", wide, "int8"), ("w16a8", activations, "int16")):
        write = _writer(pre21, reader, cache, method=method, per_channel=per_channel, activations=acts,
                        weights=weights, reduce_range=reduce_range and weights == "int8",
                        ranges=ranges if weights == "int8" else None, name=pre.name)
        try:
            out[label] = round(error(open_backend(write(exclude, tmp / f"{label}.onnx"), threads=1)), 4)
        except Exception as exc:  # noqa: BLE001 - diagnosis only
            out[label] = f"{type(exc).__name__}: {str(exc)[:200]}"
    return out


_FLOAT_COMPUTE = ("Conv", "FusedConv", "ConvTranspose", "Gemm", "FusedGemm", "MatMul", "Add", "Mul")


def optimized_profile(int8: Path) -> dict[str, Any]:
    """Op counts of the graph ONNX Runtime actually runs (after its optimiser): what stayed float."""
    from collections import Counter

    import onnx
    import onnxruntime as ort

    with tempfile.TemporaryDirectory(prefix="edgepose-ortopt-") as tmp:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.log_severity_level = 3
        options.optimized_model_filepath = str(Path(tmp) / "opt.onnx")
        ort.InferenceSession(str(int8), options, providers=["CPUExecutionProvider"])
        ops = Counter(n.op_type for n in onnx.load(options.optimized_model_filepath).graph.node)
    return {"float_compute": {k: v for k, v in ops.items() if k in _FLOAT_COMPUTE},
            "int8_compute": {k: v for k, v in ops.items() if k.startswith(("QLinear", "QGemm", "MatMulInteger",
                                                                            "ConvInteger"))},
            "dequantize": ops.get("DequantizeLinear", 0), "quantize": ops.get("QuantizeLinear", 0),
            "transpose": ops.get("Transpose", 0)}


def layer_errors(fp32: Path, int8: Path, tensors: np.ndarray, input_name: str) -> list[dict[str, Any]]:
    """ONNX Runtime's qdq_loss_debug: per-activation error of INT8 vs FP32, worst first."""
    from onnxruntime.quantization.qdq_loss_debug import (collect_activations, compute_activation_error,
                                                         create_activation_matching,
                                                         modify_model_output_intermediate_tensors)

    with tempfile.TemporaryDirectory(prefix="edgepose-qdqdebug-") as tmp:
        f_dbg, q_dbg = Path(tmp) / "f.onnx", Path(tmp) / "q.onnx"
        modify_model_output_intermediate_tensors(str(fp32), str(f_dbg))
        modify_model_output_intermediate_tensors(str(int8), str(q_dbg))
        f_act = collect_activations(str(f_dbg), _Reader(input_name, tensors))
        q_act = collect_activations(str(q_dbg), _Reader(input_name, tensors))
    matched = create_activation_matching(q_act, f_act)
    matched = {k: v for k, v in matched.items() if v.get("float") and v.get("pre_qdq") and v.get("post_qdq")}
    errors = compute_activation_error(matched)
    rows = []
    for name, err in errors.items():
        xmodel = err.get("xmodel_err")
        qdq = err.get("qdq_err")
        if xmodel is None:
            continue
        rows.append({"layer": name, "sqnr_db": float(xmodel),
                     "qdq_sqnr_db": None if qdq is None else float(qdq)})
    return sorted(rows, key=lambda r: r["sqnr_db"])


# --- mixed precision: the activations INT8 hurts most stay float ------------------------------------
# Measured (hand_landmark_full, 54 calibration crops, AMD EPYC Zen 4): leaving one Conv out of
# quantisation at a time changes nothing that matters (held-out 3.1-3.5 px against 3.21): its input
# and output tensors are still quantised by its neighbours' Q/DQ, and the error is in the activations
# (8-bit weights with 16-bit activations 1.56 px, 16-bit weights with 8-bit activations 3.14 px).
# The unit that matters is one activation tensor: float when its producer and every compute consumer
# are left float. Scored one at a time on the calibration crops, the stem conv's output (7.9 px on
# the calibration crops against 10.0) and the second block's expansion output (9.4) lead by far, and
# the two together give 2.9 px there; held-out 1.8 px (full-range) / 1.5 px (pair-safe) at 1.8x of FP32
# on that CPU. Budget: float multiply-adds cost what they cost in FP32, so with a share f of them float
# an INT8 file S x faster than FP32 becomes 1 / ((1 - f) / S + f) x: f = 0.10 keeps hand_landmark_lite
# (S = 1.43) at >= 1.3x; its stem group (11 % of its multiply-adds) is out of budget there, while
# hand_landmark_full's (5 %) is in. With 3 calibration crops in which FP32 sees a hand (lite), a 5 %
# gain was noise (held-out 2.60 -> 2.81 px): a candidate must cut the calibration error by 10 %.
# Multiply-adds underrate early float islands (Q/DQ and layout transposes on 112x112 tensors): one on
# hand_landmark_lite (3 % of its multiply-adds) made it 1.3x slower, so the result is also timed.
FALLBACK_MAX_GROUPS = 3       # activation tensors kept float at most
FALLBACK_TRIES = 6            # best-ranked candidates the greedy search tries with the real kernels
FALLBACK_MIN_GAIN = 0.10      # a candidate is kept when it lowers the calibration error by >= 10 %
FALLBACK_MAX_MACS = 0.10      # share of the model's multiply-adds that may run in float (speed, below)
FALLBACK_TARGET_PX = 1.0      # stop once the calibration crops are this close (px at 256 scale)
FALLBACK_KEEP_SPEEDUP = 1.43  # timed here: where the all-INT8 file is faster than this x FP32 (api's `ship`
                              # bar 1.3 + 10 %), the mixed file must stay at least this fast: INT8 worth
                              # shipping stays so;
FALLBACK_MAX_SLOWDOWN = 0.20  # elsewhere (x86 without VNNI: ~1.1x) it may be at most 20 % slower than all-INT8
FALLBACK_TIMING_ROUNDS = 15   # interleaved rounds of that check (medians of per-round ratios)
FALLBACK_MAX_CROPS = 16       # calibration crops the candidates are scored on (spread over the gated ones)
_GROUP_OPS = ("Conv", "Gemm", "MatMul", "Add", "Mul", "Concat", "GlobalAveragePool", "AveragePool", "MaxPool")
_ACTIVATIONS = ("Relu", "Clip")


@dataclass
class _Group:
    tensor: str                # the activation (after its Relu / Clip, if any)
    names: tuple[str, ...]     # the tensor as the QDQ graph may quantise it (before / after Relu / Clip)
    nodes: tuple[str, ...]     # producer + compute consumers: left float together
    macs: int


def activation_groups(path: Path) -> tuple[list[_Group], int]:
    """Candidate activation tensors of the (pre-processed float) graph, each with the nodes that must
    stay float for it to be float, and the model's total multiply-adds."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    graph = model.graph
    shapes = _shapes(model)
    from .graph_rewrite import graph_index

    inits, _producer, consumers = graph_index(graph)
    macs = {n.name: _macs(n, shapes, inits) for n in graph.node}

    def users(t: str) -> list[Any]:
        out = []
        for c in consumers.get(t, []):
            out += users(c.output[0]) if c.op_type in _ACTIVATIONS else [c]
        return out

    groups, seen = [], set()
    for node in graph.node:
        if node.op_type not in ("Conv", "Gemm", "MatMul", "Add") or node.name in FLOAT_OPS:
            continue
        names, t = [node.output[0]], node.output[0]
        while len(consumers.get(t, [])) == 1 and consumers[t][0].op_type in _ACTIVATIONS:
            t = consumers[t][0].output[0]
            names.append(t)
        nodes = tuple(dict.fromkeys([node.name] + [u.name for u in users(t) if u.op_type in _GROUP_OPS]))
        if len(nodes) < 2 or nodes in seen:
            continue  # a graph output or a tensor nothing quantised reads: no Q/DQ to drop
        seen.add(nodes)
        groups.append(_Group(t, tuple(names), nodes, sum(macs.get(n, 0) for n in nodes)))
    return groups, max(sum(macs.values()), 1)


def _shapes(model) -> dict[str, tuple[int, ...]]:
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # noqa: BLE001 - shapes only weigh the candidates
        inferred = model
    out = {}
    for v in list(inferred.graph.value_info) + list(inferred.graph.output) + list(inferred.graph.input):
        dims = [d.dim_value if d.HasField("dim_value") else 1 for d in v.type.tensor_type.shape.dim]
        out[v.name] = tuple(max(d, 1) for d in dims)
    return out


def _macs(node, shapes: dict[str, tuple[int, ...]], inits) -> int:
    if node.op_type not in ("Conv", "Gemm", "MatMul") or len(node.input) < 2:
        return 0
    out = shapes.get(node.output[0])
    w = inits.get(node.input[1])
    if out is None:
        return 0
    if node.op_type == "Conv" and w is not None:
        return int(np.prod(out)) * int(np.prod(w.dims[1:]))
    depth = shapes.get(node.input[0], (1,))[-1] if w is None else (w.dims[0] if len(w.dims) == 2 else 1)
    return int(np.prod(out)) * int(depth)


class _Session:
    """An ONNX Runtime session in the Backend shape evaluate.keypoints reads."""

    def __init__(self, model, *, optimise: bool):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.log_severity_level = 3
        if not optimise:
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        source = model if isinstance(model, (str, Path)) else model.SerializeToString()
        self.session = ort.InferenceSession(str(source) if isinstance(source, Path) else source, options,
                                            providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]

    def run(self, feed):
        return dict(zip(self.output_names, self.session.run(None, feed)))


def _without_activation_qdq(model, names: Sequence[str]):
    """A copy of QDQ `model` where the Q -> DQ pairs of the tensors `names` become Clip to the same
    range: no rounding, the same clipping (the quantiser drops a ReLU6 into a [0, max] range)."""
    import onnx
    from onnx import helper, numpy_helper

    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    inits = {i.name: i for i in graph.initializer}
    wanted = set(names)
    dqs: dict[str, list[Any]] = {}
    for n in graph.node:
        if n.op_type == "DequantizeLinear":
            dqs.setdefault(n.input[0], []).append(n)
    for q in [n for n in graph.node if n.op_type == "QuantizeLinear" and n.input[0] in wanted]:
        if q.input[1] not in inits or len(q.input) < 3 or q.input[2] not in inits:
            continue
        scale = float(numpy_helper.to_array(inits[q.input[1]]).ravel()[0])
        zp_arr = numpy_helper.to_array(inits[q.input[2]])
        info = np.iinfo(zp_arr.dtype)
        zp = int(zp_arr.ravel()[0])
        lo, hi = scale * (info.min - zp), scale * (info.max - zp)
        for k, dq in enumerate(dqs.get(q.output[0], [])):
            lo_name, hi_name = f"{dq.output[0]}__lo", f"{dq.output[0]}__hi"
            graph.initializer.extend([numpy_helper.from_array(np.array(lo, np.float32), lo_name),
                                      numpy_helper.from_array(np.array(hi, np.float32), hi_name)])
            clip = helper.make_node("Clip", [q.input[0], lo_name, hi_name], [dq.output[0]], name=f"{dq.name}__clip")
            graph.node.insert(list(graph.node).index(dq), clip)
            graph.node.remove(dq)
        graph.node.remove(q)
    return out


def float_fallback(pre: Path, write, exclude: Sequence[str], spec: ModelSpec, tensors: np.ndarray, tmp: Path, *,
                   base: Path, input_name: str) -> tuple[list[str], dict[str, Any]]:
    """Mixed precision: the few activation tensors whose 8-bit rounding costs most, kept float.

    1. Reference: FP32 keypoints on the calibration crops (those FP32 sees a hand / person in, as the
       accuracy check gates them).
    2. Rank: each candidate tensor alone made float in the QDQ file (its Q/DQ pair replaced by a Clip to
       the same range), run with ONNX Runtime's reference QDQ (no fusions): the calibration error.
    3. Greedy, with the real kernels: the best-ranked candidates in turn, their producer and compute
       consumers added to `nodes_to_exclude` (and pinned float, graph_rewrite.pin_float), each kept
       only if it lowers the calibration error by FALLBACK_MIN_GAIN, within FALLBACK_MAX_MACS of the
       multiply-adds, until FALLBACK_MAX_GROUPS or FALLBACK_TARGET_PX.
    Only calibration crops are used: the held-out crops stay for the accuracy check.
    Returns (node names to leave float, details for the report)."""
    import onnx

    from edgepose.backends import open_backend

    from .evaluate import keypoints, presence_gate

    t0 = time.perf_counter()
    ref, presence = keypoints(open_backend(pre, threads=1), spec, tensors)
    keep, gate = presence_gate(presence, len(ref))
    crops, ref = tensors[keep], ref[keep]
    if len(crops) > FALLBACK_MAX_CROPS:
        pick = np.unique(np.linspace(0, len(crops) - 1, FALLBACK_MAX_CROPS).round().astype(int))
        crops, ref = crops[pick], ref[pick]
    scale = 256.0 / max(spec.input_size)

    def error(model, optimise: bool = True) -> float:
        xy, _ = keypoints(_Session(model, optimise=optimise), spec, crops)
        return float(np.linalg.norm(xy - ref, axis=-1).mean() * scale)

    groups, total = activation_groups(pre)
    qdq = onnx.load(str(base))
    quantised = {n.input[0] for n in qdq.graph.node if n.op_type == "QuantizeLinear"}
    groups = [g for g in groups if quantised & set(g.names) and not set(g.nodes) & set(exclude)]
    start = error(qdq, optimise=False)
    scores = sorted(((error(_without_activation_qdq(qdq, g.names), optimise=False), g) for g in groups),
                    key=lambda sg: sg[0])
    current = error(base)
    details: dict[str, Any] = {"crops": int(len(crops)), "gate": gate, "candidates": len(groups),
                               "calib_px_before": round(current, 3), "reference_qdq_px": round(start, 3),
                               "ranked": [{"tensor": g.tensor, "calib_px": round(s, 3), "macs": g.macs}
                                          for s, g in scores[:FALLBACK_TRIES]]}
    kept: list[_Group] = []
    chosen: list[str] = []
    tried: list[dict[str, Any]] = []
    steps: list[tuple[list[str], float]] = [([], current)]
    for s, g in scores[:FALLBACK_TRIES]:
        if len(kept) >= FALLBACK_MAX_GROUPS or current <= FALLBACK_TARGET_PX:
            break
        if sum(k.macs for k in kept) + g.macs > FALLBACK_MAX_MACS * total:
            tried.append({"tensor": g.tensor, "skipped": "multiply-add budget"})
            continue
        nodes = list(dict.fromkeys(chosen + list(g.nodes)))
        trial = write(list(exclude) + nodes, tmp / "fallback-trial.onnx")
        e = error(trial)
        ok = e <= current * (1 - FALLBACK_MIN_GAIN)
        tried.append({"tensor": g.tensor, "calib_px": round(e, 3), "kept": ok})
        if ok:
            kept.append(g)
            chosen, current = nodes, e
            steps.append((chosen, current))
    # Speed: float islands cost more than their multiply-adds where the tensors are large (Q/DQ and layout
    # transposes at the boundaries). Timed with FP32 and the all-INT8 file; the last tensor kept is given
    # back until the mixed file is within FALLBACK_KEEP_SPEEDUP / FALLBACK_MAX_SLOWDOWN.
    timing = []
    while kept:
        mixed = write(list(exclude) + chosen, tmp / "fallback-timed.onnx")
        int8_speedup, ratio = _timed(pre, base, mixed, tensors[:1], rounds=FALLBACK_TIMING_ROUNDS)
        budget = FALLBACK_MAX_SLOWDOWN if int8_speedup < FALLBACK_KEEP_SPEEDUP else \
            int8_speedup / FALLBACK_KEEP_SPEEDUP - 1
        timing.append({"tensors": len(kept), "slowdown": round(ratio, 3), "int8_speedup": round(int8_speedup, 3),
                       "allowed": round(1 + budget, 3)})
        if ratio <= 1 + budget:
            break
        kept.pop()
        steps.pop()
        chosen, current = steps[-1]
    details.update({"tried": tried, "timing": timing, "tensors": [g.tensor for g in kept], "nodes": chosen,
                    "calib_px_after": round(current, 3),
                    "float_macs_share": round(sum(g.macs for g in kept) / total, 4),
                    "seconds": round(time.perf_counter() - t0, 1)})
    return chosen, details


def _timed(fp32: Path, base: Path, mixed: Path, x: np.ndarray, *, rounds: int, calls: int = 5
           ) -> tuple[float, float]:
    """(FP32 / all-INT8 speed-up, mixed / all-INT8 latency ratio): single thread, the three files
    interleaved in a rotated order each round, medians of the per-round ratios."""
    sessions = [_Session(p, optimise=True) for p in (fp32, base, mixed)]
    feeds = [{s.input_names[0]: x[:1]} for s in sessions]
    for _ in range(3):
        for s, f in zip(sessions, feeds):
            s.run(f)
    per_round = []
    for r in range(rounds):
        t = [0.0, 0.0, 0.0]
        for k in [(r + i) % 3 for i in range(3)]:
            t0 = time.perf_counter()
            for _ in range(calls):
                sessions[k].run(feeds[k])
            t[k] = time.perf_counter() - t0
        per_round.append((t[0] / t[1], t[2] / t[1]))
    arr = np.array(per_round)
    return float(np.median(arr[:, 0])), float(np.median(arr[:, 1]))
