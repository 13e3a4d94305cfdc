"""MNN offline INT8 quantisation (the native `mnnquant`, in a child process).

How the calibration data reaches the tool: MNN's quantiser reads images from a folder
itself and preprocesses them with its own ImageProcess (stb_image RGBA -> `format`, an
affine that maps the image corners onto the input corners, then (x - mean) * normal). We
write the Predictor's crops as lossless PNGs at exactly the input size, so that affine is
the identity, and set mean = spec.mean, normal = 1 / spec.std, format = spec.color. Before
quantising, the first PNG is pushed through MNN's own ImageProcess (same native code) and
compared with the Predictor's tensor: they must agree to float rounding, else we stop.

MNN's "sequence" input type (one <input>.txt of floats per sample) was tried on MNN 3.6.1
and is not used: every layout of the text gave the same wrong model (keypoints ~38 px off),
i.e. the values do not reach the input; without an input.json beside each sample it segfaults.

The quantised file loses (EMA) or keeps the FP32 spec (KL/ADMM) in its bizCode, so it is
re-stamped with the INT8 spec by an MNN -> MNN conversion, checked to leave outputs unchanged.
"""
from __future__ import annotations

import logging
import re
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from edgepose.errors import CalibrationError, ConversionError
from edgepose.spec import ModelSpec

from ..mnn_native import convert_to_mnn, quantize_mnn
from .calibration import CalibrationSet

log = logging.getLogger(__name__)

FEATURE_METHODS = ("EMA", "KL", "ADMM")
WEIGHT_METHODS = ("MAX_ABS", "ADMM")
DEFAULT_METHOD = "EMA"
_CONV_OPS = ("Convolution", "ConvolutionDepthwise", "Deconvolution", "MatMul")
_DEBUG_LINE = re.compile(r"^(?P<name>.+?):\s+cos distance:\s*(?P<cos>[-+\w.]+),\s*overflow ratio:\s*(?P<ovf>[-+\w.]+)")

# What was observed here (MNN 3.6.1, x86 AVX-512 VNNI); the error messages cite it.
KNOWN_ISSUES = {
    "KL": "KL segfaults on some graphs here (hand_landmark_lite: SIGSEGV right after 'fake quant weights done'); "
          "try --method EMA",
    "ADMM": "ADMM calibrates all images in one batch and is very slow (BlazePose, 30 images: >13 min, stopped); "
            "use few images (--calib-count 8) or --method EMA",
}


def mnn_config(spec: ModelSpec, folder: Path, count: int, *, method: str, weight_method: str,
               skip: Sequence[str] = (), debug: bool = False) -> dict[str, Any]:
    """MNN quantiser JSON whose image preprocessing equals the Predictor's for these crops."""
    w, h = spec.input_size
    config: dict[str, Any] = {
        "format": spec.color,
        "mean": [float(m) for m in spec.mean],
        "normal": [1.0 / float(s) for s in spec.std],  # MNN computes (x - mean) * normal
        "width": w, "height": h,
        "path": str(folder),
        "used_image_num": int(count),
        "feature_quantize_method": method,
        "weight_quantize_method": weight_method,
        "batch_size": 1,  # graphs converted from TFLite bake batch 1 into Reshape ops
        "debug": bool(debug),
    }
    if skip:
        config["skip_quant_op_names"] = list(skip)
    return config


def check_methods(method: str, weight_method: str) -> tuple[str, str]:
    m, wm = method.upper(), weight_method.upper()
    if m not in FEATURE_METHODS:
        raise ConversionError(f"unknown MNN feature method {method!r}; use one of {', '.join(FEATURE_METHODS)}")
    if wm not in WEIGHT_METHODS:
        raise ConversionError(f"unknown MNN weight method {weight_method!r}; use one of {', '.join(WEIGHT_METHODS)}")
    return m, wm


def verify_preprocessing(png: Path, config: dict[str, Any], expected: np.ndarray, layout: str) -> float:
    """Max |MNN ImageProcess(png, config) - Predictor tensor|; raises CalibrationError if they differ."""
    import cv2

    from edgepose._native import import_mnn

    MNN = import_mnn()
    bgr = cv2.imread(str(png), cv2.IMREAD_COLOR)
    rgba = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGBA)  # stb_image, as the tool loads it
    h, w = rgba.shape[:2]
    fmt = {"RGB": MNN.CV_ImageFormat_RGB, "BGR": MNN.CV_ImageFormat_BGR}[config["format"]]
    process = MNN.CVImageProcess({"sourceFormat": MNN.CV_ImageFormat_RGBA, "destFormat": fmt,
                                  "mean": tuple(config["mean"]) + (0.0,), "normal": tuple(config["normal"]) + (0.0,),
                                  "filterType": MNN.CV_Filter_BILINEAL})
    tw, th = config["width"], config["height"]
    corners_src = [0, 0, 0, h - 1, w - 1, 0, w - 1, h - 1]
    corners_dst = [0, 0, 0, th - 1, tw - 1, 0, tw - 1, th - 1]
    matrix = MNN.CVMatrix()
    matrix.setPolyToPoly(corners_dst, corners_src)  # as the tool does: output corners -> image corners
    process.setMatrix(matrix)
    tensor = MNN.Tensor((1, th, tw, 3), MNN.Halide_Type_Float, np.zeros((1, th, tw, 3), np.float32),
                        MNN.Tensor_DimensionType_Tensorflow)
    process.convert(rgba, w, h, 0, tensor)
    got = np.array(tensor.getData(), np.float32).reshape(1, th, tw, 3)
    want = expected[None] if expected.ndim == 3 else expected
    if layout == "NCHW":
        want = want.transpose(0, 2, 3, 1)
    return _check_same_preprocessing(got, want, config["normal"])


def _check_same_preprocessing(got: np.ndarray, want: np.ndarray, normal: Sequence[float]) -> float:
    """Max |got - want|, refused unless the two are the same image up to one uint8 level.

    MNN's CVMatrix.setPolyToPoly does not give an exact identity for every size: at 64x48, 48x64
    and 50x48 its bilinear resampling lands about half the values one level (1/255 on 0..1 inputs)
    from the crop, while 64x64 and 192x256 are exact (MNN 3.x wheel, measured on random crops).
    The quantiser tool resamples the same way; one level does not move a calibration range. A
    wrong mean, std or colour order moves values by many levels, or all of them by a bias.
    """
    diff = np.abs(got - want)
    exact = 1e-4 * max(1.0, float(np.abs(want).max()))
    level = max(abs(float(n)) for n in normal)  # one uint8 step in the network's input units
    worst, mean = float(diff.max()), float(diff.mean())
    if worst > 1.01 * level + exact or mean > 0.5 * level + exact:
        raise CalibrationError(
            f"MNN's quantiser would preprocess the calibration images differently from the Predictor "
            f"(max difference {worst:.3g}, mean {mean:.3g}, one pixel level is {level:.3g}); "
            "check the model card's mean/std/color")
    return worst


def mnn_op_names(path: Path) -> list[tuple[str, str]]:
    """(name, op type) of every op in an MNN file, in graph order."""
    from edgepose._native import import_mnn

    F = import_mnn().expr
    return [(v.name, v.op_type) for v in F.load_as_list(str(path))]


def resolve_keep_float(path: Path, names: Sequence[str]) -> list[str]:
    """Expand "first" (first conv) and "head" (last conv before each output) to MNN op names."""
    if not names:
        return []
    from edgepose._native import import_mnn

    F = import_mnn().expr
    variables = F.load_as_list(str(path))
    by_name = {v.name: v for v in variables}
    out: list[str] = []
    for token in names:
        if token == "first":
            first = next((v.name for v in variables if v.op_type in _CONV_OPS), None)
            if first:
                out.append(first)
        elif token == "head":
            consumed = {i.name for v in variables for i in v.inputs}
            for v in variables:
                if v.name in consumed or v.op_type == "Const":
                    continue
                node, seen = v, 0
                while node is not None and node.op_type not in _CONV_OPS and seen < 50:
                    node = next((i for i in node.inputs if i.op_type not in ("Const", "Input")), None)
                    seen += 1
                if node is not None and node.op_type in _CONV_OPS:
                    out.append(node.name)
        elif token in by_name:
            out.append(token)
        else:
            convs = [v.name for v in variables if v.op_type in _CONV_OPS][:5]
            raise ConversionError(f"--keep-float {token!r}: no such op in {path.name}; use 'first', 'head' or an "
                                  f"op name such as {convs}")
    return list(dict.fromkeys(out))


def parse_debug(log_text: str) -> list[dict[str, Any]]:
    """Per-tensor cosine distance and overflow ratio from the quantiser's debug output, worst first."""
    rows = []
    for line in log_text.splitlines():
        m = _DEBUG_LINE.match(line.strip())
        if m:
            try:
                rows.append({"layer": m["name"], "cosine": float(m["cos"]), "overflow": float(m["ovf"])})
            except ValueError:
                continue
    return sorted(rows, key=lambda r: r["cosine"])


def layer_cosines(fp32: Path, int8: Path, tensors: np.ndarray, *, input_name: str | None, layout: str) -> list[dict[str, Any]]:
    """Cosine of FP32 vs INT8 conv outputs, for the conv tensors both files still name, worst first.

    MNN's own per-layer debug exists only for KL/ADMM; EMA re-saves the graph and renames most
    tensors, so this covers the ones that kept their names (enough to see where it diverges).
    """
    from edgepose._native import import_mnn, quiet_native_stdout

    MNN = import_mnn()
    F, nn = MNN.expr, MNN.nn
    graph = F.load_as_list(str(fp32))
    convs = [v.name for v in graph if v.op_type in _CONV_OPS]
    input_name = input_name or next(v.name for v in graph if v.op_type == "Input")
    kept = {v.name for v in F.load_as_list(str(int8))}
    names = [c for c in convs if c in kept]
    if not names:
        return []
    with quiet_native_stdout():
        rt = nn.create_runtime_manager(({"backend": "CPU", "numThread": 1, "precision": "high"},))
    fmt = F.NHWC if layout == "NHWC" else F.NCHW
    sums: dict[str, list[float]] = {n: [] for n in names}
    modules = [nn.load_module_from_file(str(p), [input_name], names, runtime_manager=rt) for p in (fp32, int8)]
    for i in range(len(tensors)):
        x = np.ascontiguousarray(tensors[i:i + 1], np.float32)
        outs = []
        for module in modules:
            vals = []
            for v in module.forward([F.const(x, list(x.shape), fmt)]):
                if v.data_format == F.NC4HW4:
                    v = F.convert(v, F.NCHW)
                vals.append(np.array(v.read(), np.float64).ravel())
            outs.append(vals)
        for name, a, b in zip(names, *outs):
            denom = np.linalg.norm(a) * np.linalg.norm(b)
            sums[name].append(float(a @ b / denom) if denom > 0 else 1.0)
    rows = [{"layer": n, "cosine": float(np.mean(v)), "source": "fp32-vs-int8 outputs"} for n, v in sums.items()]
    return sorted(rows, key=lambda r: r["cosine"])


def quantize(fp32: Path, dst: Path, calib: CalibrationSet, spec: ModelSpec, int8_spec: ModelSpec, *,
             method: str = DEFAULT_METHOD, weight_method: str = "MAX_ABS", keep_float: Sequence[str] = (),
             debug: bool = False, timeout: float = 1800.0) -> dict[str, Any]:
    """Quantise MNN model `fp32` to `dst` with `calib`; returns details for the report."""
    method, weight_method = check_methods(method, weight_method)
    skip = resolve_keep_float(fp32, keep_float)
    ignored: list[str] = []
    if skip and method == "EMA":
        # calibration.cpp's EMA path never reads skip_quant_op_names (nor weight_quantize_method:
        # it quantises weights per tensor); say so instead of pretending the layers stayed float.
        log.warning("MNN's EMA method ignores skip_quant_op_names; %d layer(s) are quantised anyway "
                    "(use --method KL or ADMM to keep layers in float)", len(skip))
        ignored, skip = skip, []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="edgepose-mnnquant-") as tmp:
        folder = Path(tmp) / "calib"
        pngs = calib.write_pngs(folder)
        config = mnn_config(spec, folder, len(pngs), method=method, weight_method=weight_method,
                            skip=skip, debug=debug and method != "EMA")
        prep_diff = verify_preprocessing(pngs[0], config, calib.tensors(spec)[0], spec.layout)
        raw = Path(tmp) / "int8.mnn"
        try:
            run = quantize_mnn(fp32, raw, config, timeout=timeout)
        except ConversionError as exc:
            hint = KNOWN_ISSUES.get(method, "")
            raise ConversionError(f"MNN INT8 ({method}/{weight_method}) failed: {exc}"
                                  + (f". Known here: {hint}" if hint else "")) from None
        if "Quantize model done" not in run.log:
            raise ConversionError(f"MNN quantiser did not finish {fp32.name} ({method}); "
                                  f"log ends: {run.log.strip().splitlines()[-1:]}")
        _restamp(raw, dst, int8_spec, probe=calib.tensors(spec)[:1], input_name=spec.input_name)
    layers = parse_debug(run.log) if debug else []
    if debug and not layers:
        layers = layer_cosines(fp32, dst, calib.tensors(spec)[:4], input_name=spec.input_name,
                               layout=spec.layout)
    return {"method": method, "weight_method": weight_method, "keep_float": skip, "keep_float_ignored": ignored, "seconds": time.perf_counter() - t0,
            "preprocessing_max_diff": prep_diff, "config": {k: v for k, v in config.items() if k != "path"},
            "layers": layers, "per_channel_weights": method != "EMA",
            "log_tail": run.log.strip().splitlines()[-3:]}


def _restamp(raw: Path, dst: Path, int8_spec: ModelSpec, *, probe: np.ndarray, input_name: str | None) -> None:
    """Write `raw` to `dst` with the INT8 spec as bizCode; outputs must not change."""
    from edgepose.backends import open_backend

    convert_to_mnn(raw, dst, framework="MNN", biz_code=int8_spec.to_json())
    a, b = open_backend(raw, "mnn"), open_backend(dst, "mnn")
    name = input_name or a.input_names[0]
    ra, rb = a.run({name: probe}), b.run({name: probe})
    worst = max(float(np.abs(ra[k] - rb[k]).max()) for k in ra)
    if worst > 0.0:
        dst.unlink()
        raise ConversionError(f"re-stamping the INT8 MNN file with its metadata changed its outputs (max {worst:.3g})")
