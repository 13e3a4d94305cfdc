"""Why an engine's INT8 file is not (much) faster than FP32 here: measured facts and per-file evidence.

MNN 3.6.1 (pip wheel) on x86: the wheel is built without MNN's AVX-512 backend (CMake
`MNN_AVX512` defaults to OFF): its native library has `_AVX_MNNGemmInt8AddBiasScale_16x4_*`
and SSE int8 kernels but no AVX-512 / VNNI code, so int8 convolutions run on AVX2
`vpmaddubsw` kernels while FP32 runs tuned AVX2/FMA kernels (and Winograd for 3x3). Session
precision (normal / high / low) changes nothing for INT8 (DeepPose: 15.4 / 15.6 / 15.5 ms vs FP32
12.4 ms). Graphs with layout ops between convolutions (ShuffleNetV2's channel split and shuffle)
add int8 <-> float conversions (MNN issue #438 shows the same Int8ToFloat / FloatToInt8 overhead
eating the gain). VNNI needs MNN built from source with -DMNN_AVX512=ON.

ONNX Runtime 1.32: what decides the gain is which ops its optimiser fuses into integer kernels,
so the note lists the compute ops that stayed float in the optimised graph. Seen here:
- S8S8 (int8 activations): residual Adds stay float, so the Convs beside them stay
  DequantizeLinear -> Conv -> QuantizeLinear (hand_landmark_lite: 15 of 47 Convs, 0.6-0.9x);
  U8S8 (edgepose's default) fuses all of them (47 QLinearConv, 10 QLinearAdd; 1.1-2.1x).
- ConvTranspose has no integer kernel: SimDR's deconvolutions ran in float between Q/DQ (0.7x);
  graph_rewrite.py now turns ConvTranspose(4, s2, p1) into Convs before quantising (1.6-1.8x).
- int8 QLinearConv runs channels-last and cannot move its layout Transposes through ShuffleNetV2's
  5-D channel shuffle (three uint8 Transposes per unit, a quarter of DeepPose's INT8 time); the
  zoo's deploy form folds the shuffles into the weights.
- A 3-channel stem conv is 2x slower in int8 than in float (im2col depth 27); graph_rewrite.py
  turns it into SpaceToDepth + 2x2 conv. What is left on the thin x1.0 models (~1.6x): the
  58/116-channel units gain only 1.2-1.4x; int8 pays off with width (conv5 3.3x, DeepPose-x2 2.3x).
"""
from __future__ import annotations

from typing import Any, Mapping


def mnn_has_avx512() -> bool:
    """Whether the installed MNN native library contains AVX-512 code (names carry 'AVX512')."""
    import importlib.util

    spec = importlib.util.find_spec("_mnncengine")
    if spec is None or not spec.origin:
        return False
    with open(spec.origin, "rb") as fh:
        return b"AVX512" in fh.read()


def explanation(engine: str, speedup: float, details: Mapping[str, Any] | None = None) -> str:
    details = details or {}
    if engine == "mnn":
        kernels = ("has AVX-512 code, so look at the per-op profile" if mnn_has_avx512() else
                   "has no AVX-512/VNNI int8 kernels (built without MNN_AVX512): INT8 runs AVX2 maddubs kernels "
                   "against tuned FP32 AVX2/Winograd kernels")
        return (f"MNN INT8 is x{speedup:.2f} of FP32 here: the installed MNN library {kernels}; int8<->float "
                "conversions around layout ops add to it; session precision options do not change it")
    profile = details.get("optimized_graph") or {}
    floats = profile.get("float_compute") or {}
    parts = []
    if floats:
        parts.append("compute ops left in float after ONNX Runtime's optimiser: "
                     + ", ".join(f"{k} x{v}" for k, v in sorted(floats.items())))
    if profile.get("dequantize"):
        parts.append(f"{profile['dequantize']} DequantizeLinear / {profile.get('quantize', 0)} QuantizeLinear remain")
    if profile.get("transpose"):
        parts.append(f"{profile['transpose']} Transposes (int8 convs run channels-last)")
    if details.get("activation_type") == "int8":
        parts.append("S8S8 leaves residual Adds in float; try --ort-activations uint8")
    reason = "; ".join(parts) or "no float compute ops remain; the model is dominated by non-GEMM work"
    return f"ONNX Runtime INT8 is x{speedup:.2f} of FP32 here: {reason}"
