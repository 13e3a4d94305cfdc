"""Mixed-precision ONNX Runtime INT8 (ort_engine.float_fallback) on the real MediaPipe hand models.

The fallback keeps float the few activation tensors whose 8-bit rounding costs most on the
calibration crops (their producer and compute consumers left out of quantisation), and
graph_rewrite.pin_float stops ONNX Runtime from quantising those nodes' weights per-tensor at load.
Accuracy is scored on the held-out hand (zidane, 18 crops), never used by the selection.
"""
from __future__ import annotations

import numpy as np
import onnx
import pytest

from edgepose import assets
from edgepose.converters.quantize import ort_engine
from edgepose.converters.quantize.graph_rewrite import pin_float
from edgepose.cpu import VNNI_CLASSES, cpu_class

# hand_landmark_full, 54 calibration crops (the default), held-out zidane, mean px at 256 scale / PCK@0.05.
# Without the fallback (converters/quantize/README.md): full-range U8S8 3.21 px / 0.980, pair-safe 3.10 / 0.978
# on AMD EPYC Zen 4 (x86-avx512-vnni); pair-safe 3.11 / 0.978 with ONNX Runtime's AVX2 kernels (QEMU EPYC-Rome).
# With it, measured:
#   full-range U8S8 (VNNI default): 1.89 px / 0.989 on AMD EPYC Zen 4 (x86-avx512-vnni);
#   pair-safe U8S8 (no-VNNI default): 1.52 px / 0.994 on Zen 4; the same file 1.64 px / 0.994 with ONNX Runtime's
#   AVX2 kernels (QEMU EPYC-Rome; converting under QEMU overruns the 1200 s test timeout, so that was scored, not
#   run as this test). The full-range file with the AVX2 kernels: 4.30 px (it saturates: VNNI only, skipped there).
# The bound is the goal, 3 px, which leaves >= 1.1 px over each measurement.
FULL_MAX_PX_256 = 3.0
FULL_MIN_PCK = 0.95
# Speed, FP32 / INT8, 1 thread, interleaved medians, AMD EPYC Zen 4 (2 vCPUs shared, loaded): 1.65x (full-range)
# and 1.77x (pair-safe) with the fallback, 1.87-1.93x without. Asserted only where INT8 is recommended: x86 with
# VNNI (AVX2 without VNNI: ~1.1x for any INT8 file, issue 13; the report says 'marginal' there).
MIN_SPEEDUP_VNNI = 1.3


@pytest.fixture(scope="module")
def full_fp32(tmp_path_factory):
    """hand_landmark_full (the pinned MediaPipe TFLite model) as ONNX with its card (tflite2onnx)."""
    from edgepose.converters.quantize.tflite_onnx import tflite_to_onnx
    from edgepose.presets import get_preset

    out = tmp_path_factory.mktemp("full_fp32") / "hand_full.onnx"
    tflite_to_onnx(assets.fetch_asset("hand_landmark_full"), out, get_preset("hand_landmark_full"))
    return out


@pytest.fixture(scope="module", params=["full", "pair-safe"])
def full_int8(request, tmp_path_factory, full_fp32):
    from edgepose.converters.quantize import Int8Options, quantize_int8
    from edgepose.converters.quantize.ort_engine import saturates

    if saturates(cpu_class(), weight_range=request.param):
        pytest.skip(f"full-range U8S8 saturates on {cpu_class()} (tested where int8 sums are exact)")
    out = tmp_path_factory.mktemp(f"full_mixed_{request.param}")
    vnni = cpu_class() in VNNI_CLASSES
    return quantize_int8({"onnx": full_fp32}, calib="pinned:hand", output_dir=out, stem="hand_full",
                         options=Int8Options(engines=("onnxruntime",), ort_weight_range=request.param, strict=False,
                                             speed=vnni, speed_rounds=15, progress=False))


@pytest.mark.slow
def test_hand_landmark_full_meets_3px_with_mixed_precision(full_int8):
    e = full_int8.engine("onnxruntime")
    assert e.accuracy is not None, e.error
    assert e.accuracy.mean_px_256 <= FULL_MAX_PX_256, e.accuracy
    assert e.accuracy.pck >= FULL_MIN_PCK, e.accuracy
    fallback = e.details["float_fallback"]
    # selected on the calibration crops only, within its budget, and it helped there
    assert fallback["crops"] >= 1 and fallback["gate"].startswith("FP32 presence")
    assert not set(full_int8.calibration["samples"]) & set(full_int8.holdout["samples"])
    assert 1 <= len(fallback["tensors"]) <= ort_engine.FALLBACK_MAX_GROUPS
    assert fallback["float_macs_share"] <= ort_engine.FALLBACK_MAX_MACS
    assert fallback["calib_px_after"] < fallback["calib_px_before"]
    # the rest still runs on the int8 kernels; the nodes kept float really are float
    profile = e.details["optimized_graph"]
    assert profile["int8_compute"].get("QLinearConv", 0) >= 40
    assert 1 <= profile["float_compute"].get("Conv", 0) + profile["float_compute"].get("FusedConv", 0) \
        <= len(fallback["nodes"])
    if e.speed is not None:
        assert e.speed.speedup >= MIN_SPEEDUP_VNNI, e.speed


def test_pin_float_keeps_excluded_convs_float(tmp_path):
    """ONNX Runtime's WeightBiasQuantization turns a float Conv between Q/DQ pairs into a per-tensor
    int8 node when it loads the file; pinned, the Conv stays float in the graph ORT runs."""
    from edgepose.converters.quantize.evaluate import keypoints
    from edgepose.converters.quantize.tflite_onnx import tflite_to_onnx
    from edgepose.predictor import Predictor
    from edgepose.presets import get_preset
    from edgepose.converters.quantize.calibration import load_calibration

    fp32 = tmp_path / "lite.onnx"
    tflite_to_onnx(assets.fetch_asset("hand_landmark_lite"), fp32, get_preset("hand_landmark_lite"))
    pred = Predictor(fp32)
    cal = load_calibration("pinned:hand", pred, progress=False).subset(4)
    pre = tmp_path / "pre.onnx"
    ort_engine.prepare(fp32, pre)
    name = onnx.load(str(pre)).graph.input[0].name
    reader = ort_engine._Reader(name, cal.tensors(pred.spec))
    write = ort_engine._writer(pre, reader, tmp_path / "cache.json", method="minmax", per_channel=True,
                               activations="uint8", name="lite")
    convs = [n for n, op in ort_engine.node_names(pre) if op == "Conv"]
    target = convs[1]
    pinned = write([target], tmp_path / "pinned.onnx")  # the writer pins what it excludes
    graph = onnx.load(str(pinned)).graph
    dq = next(n for n in graph.node if n.name.endswith("_in_dq_per_channel"))
    assert dq.output[0] in next(n for n in graph.node if n.name == target).input
    floats = ort_engine.optimized_profile(pinned)["float_compute"]
    assert floats.get("Conv", 0) + floats.get("FusedConv", 0) >= 1
    # unpinned (the same DequantizeLinear with its scalar scale back), ORT quantises that conv's weights
    # per-tensor at load time, and the keypoints move away from FP32's. Measured (AMD EPYC Zen 4,
    # x86-avx512-vnni; 4 calibration crops, mean px at 224): pinned 7.1, unpinned 20.7.
    model = onnx.load(str(pinned))
    inits = {i.name: i for i in model.graph.initializer}
    dq = next(n for n in model.graph.node if n.name.endswith("_in_dq_per_channel"))
    for name in dq.input[1:]:
        inits[name].CopyFrom(onnx.numpy_helper.from_array(onnx.numpy_helper.to_array(inits[name])[:1].reshape(()),
                                                          name))
    del dq.attribute[:]
    unpinned = tmp_path / "unpinned.onnx"
    onnx.save(model, str(unpinned))
    assert ort_engine.optimized_profile(unpinned)["float_compute"].get("Conv", 0) < floats.get("Conv", 0)
    x = cal.tensors(pred.spec)
    ref, _ = keypoints(ort_engine._Session(fp32, optimise=True), pred.spec, x)
    err = {k: np.linalg.norm(keypoints(ort_engine._Session(f, optimise=True), pred.spec, x)[0] - ref, axis=-1).mean()
           for k, f in (("pinned", pinned), ("unpinned", unpinned))}
    print("mean px at 224 vs FP32, 4 calibration crops:", err)
    assert err["pinned"] < err["unpinned"], err
    assert pin_float(onnx.load(str(pinned)), [target]) == []  # already pinned: nothing left to do
