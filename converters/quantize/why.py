"""Why an engine's INT8 file is not (much) faster than FP32 here: what was measured, in one place.

MNN 3.6.1 (pip wheel) on x86: the wheel is built without MNN's AVX-512 backend (CMake
`MNN_AVX512` defaults to OFF): its native library has `_AVX_MNNGemmInt8AddBiasScale_16x4_*`
and SSE int8 kernels but no AVX-512 / VNNI symbols, so int8 convolutions run on AVX2
`vpmaddubsw` kernels while FP32 runs tuned AVX2/FMA kernels (and Winograd for 3x3). Session
precision (normal / high / low) changes nothing for INT8 (DeepPose: 15.4 / 15.6 / 15.5 ms vs FP32
12.4 ms). Graphs with many layout ops between convolutions (ShuffleNetV2's channel split and
shuffle) add int8 <-> float conversions (MNN issue #438 shows the same Int8ToFloat /
FloatToInt8 overhead eating the gain). Getting VNNI needs MNN built from source with -DMNN_AVX512=ON.

ONNX Runtime 1.32, QDQ with signed int8 activations (S8S8): residual Adds stay in float, so
the DequantizeLinear -> Conv -> QuantizeLinear groups next to them are not fused into
QLinearConv (hand_landmark_lite: 32 QLinearConv, 15 float Conv, 32 Transpose, 93 DQ left) and
S8S8 is slower than FP32 (0.6-0.9x). With unsigned activations (U8S8, edgepose's default) every
Conv and Add fuses (47 QLinearConv, 10 QLinearAdd, 5 DQ) and INT8 is faster (DeepPose 1.43x,
hand_landmark_lite 1.13x). Small depthwise-heavy models gain least: little of their time is in
the int8 GEMMs.
"""
from __future__ import annotations

EXPLANATIONS = {
    "mnn": ("MNN INT8 is x{speedup:.2f} of FP32 here: the MNN pip wheel has no AVX-512/VNNI int8 kernels "
            "(built without MNN_AVX512), so INT8 runs AVX2 maddubs kernels against tuned FP32/Winograd "
            "kernels, plus int8<->float conversions around non-conv ops; precision options do not change it"),
    "onnxruntime": ("ONNX Runtime INT8 is x{speedup:.2f} of FP32 here: with int8 activations (S8S8) residual "
                    "Adds stay float and the convs beside them are not fused (use --ort-activations uint8); "
                    "depthwise-heavy models spend little time in the int8 GEMMs"),
}


def explanation(engine: str, speedup: float) -> str:
    text = EXPLANATIONS.get(engine, "{engine} INT8 is x{speedup:.2f} of FP32")
    return text.format(engine=engine, speedup=speedup)
