"""The real MNN quantiser and ONNX Runtime quantisation on MediaPipe hand_landmark_lite."""
from __future__ import annotations

import json

import numpy as np
import pytest; pytest.importorskip("onnx")  # noqa: E702 - build-time extra (convert): skip without it
import onnx
import pytest

from edgepose import assets
from edgepose.converters.quantize import mnn_engine, ort_engine
from edgepose.converters.quantize.calibration import load_calibration
from edgepose.converters.quantize.ort_engine import saturates
from edgepose.converters.quantize.tflite_onnx import check_against_tflite, reusable, tflite_to_onnx
from edgepose.cpu import cpu_class, cpu_info
from edgepose.errors import ConversionError
from edgepose.predictor import Predictor
from edgepose.presets import get_preset


def test_int8_files_load_in_the_predictor_with_int8_provenance(hand_int8, photos):
    """Both INT8 files run through Predictor like any model; their card says INT8 and how it was calibrated."""
    for engine, path in hand_int8.artifacts.items():
        pred = Predictor(path)
        prov = pred.spec.provenance
        assert prov["precision"] == "int8", engine
        q = prov["quantization"]
        assert q["engine"] == engine and q["calibration"]["count"] == 8
        assert q["calibration"]["sha256"] == hand_int8.calibration["sha256"]
        assert len(q["calibration"]["samples"]) == 8
        assert pred.spec.keypoint_names == get_preset("hand_landmark_lite").keypoint_names
        result = pred.predict(str(photos["zidane"]), bboxes=[[950, 395, 1155, 495]])
        assert result.keypoints.shape == (1, 21, 2) and np.isfinite(result.keypoints).all()
    assert Predictor(hand_int8.artifacts["onnxruntime"]).spec.layout == "NCHW"  # the tflite2onnx copy
    assert Predictor(hand_int8.artifacts["mnn"]).spec.layout == "NHWC"


# Bounds on the held-out hand (zidane, 18 crops; 8 calibration crops), mean px at 256 scale and PCK@0.05.
# Each bound holds on both CPU classes; the measurements behind them (converters/quantize/README.md), with the
# default mixed precision (ort_engine.float_fallback; it keeps 0-2 activation tensors float here):
#   ONNX Runtime, full-range U8S8 (what VNNI / AMX CPUs get): 2.74 px, PCK 0.984 on AMD EPYC Zen 4
#     (x86-avx512-vnni; 2 tensors float). Without mixed precision 3.00 px / 0.984 (2.9 px / 0.98 on the Intel
#     Xeon with AMX). Without VNNI the same file gives 7.23 px, PCK 0.787 (ONNX Runtime's AVX2 kernels under
#     QEMU EPYC-Rome; 7.72 / 0.765 without mixed precision; issue 13 saw PCK 0.765 on a real AVX2 EPYC): its
#     int16 sums saturate, so the full-range file is tested only where sums are exact.
#   ONNX Runtime, pair-safe U8S8 (what CPUs without VNNI get): 2.39 px, PCK 0.991 on Zen 4; 2.54 px, PCK 0.991
#     with the AVX2 kernels (QEMU EPYC-Rome); 1 tensor float. Without mixed precision 2.51 / 2.52 px.
#   The 4 px bound leaves >= 1.2 px over each (and over the no-fallback figures, should the timing check on a
#     busy machine give every float tensor back).
#   MNN EMA (per-tensor weights): 10.66 px, PCK 0.610 on Zen 4 and with the AVX2 kernels (QEMU EPYC-Rome):
#     the MNN 3.6.1 wheel runs the same AVX2 int8 code on both classes (10.7 / 0.61 on the Xeon too).
# tests/quantize passed under QEMU EPYC-Rome with edgepose.cpu reporting x86-avx2 before mixed precision; the
# AVX2 figures with it are the Zen 4 files scored with the AVX2 kernels (QEMU), not a QEMU test run.
EXPECTED = {("onnxruntime", "full"): {"pck": 0.9, "mean_px_256": 4.0},
            ("onnxruntime", "pair-safe"): {"pck": 0.9, "mean_px_256": 4.0},
            ("mnn", None): {"pck": 0.5, "mean_px_256": 16.0}}


def _expected(e) -> dict[str, float]:
    return EXPECTED[(e.engine, e.details.get("weight_range"))]


def test_int8_keypoints_stay_close_to_fp32(hand_int8):
    """Real hand on a held-out photo: INT8 vs FP32 keypoints, per engine, with the settings this CPU
    class gets by default (not a speed claim)."""
    for e in hand_int8.engines:
        assert e.accuracy is not None, e.error
        assert e.accuracy.samples >= 1 and e.accuracy.gate.startswith("FP32 presence")
        assert not saturates(cpu_class(), weight_range=e.details.get("weight_range") or "pair-safe")  # by default
        assert e.accuracy.pck >= _expected(e)["pck"], (e.engine, e.accuracy)
        assert 0 < e.accuracy.mean_px_256 <= _expected(e)["mean_px_256"], (e.engine, e.accuracy)
        assert e.speed is not None and e.speed.fp32_ms > 0 and e.speed.int8_ms > 0


def test_ort_int8_accuracy_of_each_weight_range(hand_ort_int8):
    """Both ONNX Runtime configurations, on any x86 machine: the full-range one where its sums are exact
    (the fixture skips it elsewhere), the pair-safe one everywhere (its sums stay within int16, so AVX2
    computes what VNNI computes)."""
    e = hand_ort_int8.engine("onnxruntime")
    assert e.accuracy.pck >= _expected(e)["pck"], e.accuracy
    assert 0 < e.accuracy.mean_px_256 <= _expected(e)["mean_px_256"], e.accuracy


def test_pair_safe_weights_do_not_saturate_without_vnni(hand_ort_int8):
    """The emulated no-VNNI kernels on the held-out crops: full-range weights saturate ~2e-3 of the pair
    sums (2.5e6 of 1.2e9, 31 of 35 layers); pair-safe ones 102 (9e-8), moving no output by more than
    a few quantisation steps. The bound leaves 10x room over that measurement."""
    e = hand_ort_int8.engine("onnxruntime")
    check = e.details.get("saturation_check")
    if e.details["weight_range"] == "full":
        assert check is None  # only computed for pair-safe weights (or with --layer-report)
        return
    assert check["crops"] == hand_ort_int8.holdout["count"] and check["pairs"] > 1e8
    assert check["saturated"] / check["pairs"] < 1e-6, check
    narrowed = e.details["pair_safe"]
    assert 0 < narrowed["channels"] < narrowed["of_channels"] and narrowed["smallest_qmax"] >= 64


def test_int8_report_and_provenance_name_the_cpu(hand_int8):
    """The report and each INT8 file's card record the CPU (model name, class, flags) it was calibrated
    and timed on, and the class its settings are for."""
    here = cpu_info().to_dict()
    assert hand_int8.cpu == here and hand_int8.target_cpu_class == cpu_class()
    assert f"measured on: {here['model_name']}" in hand_int8.format_table()
    for engine, path in hand_int8.artifacts.items():
        q = Predictor(path).spec.provenance["quantization"]
        assert q["cpu"] == here and q["target_cpu_class"] == cpu_class(), engine
    ort = hand_int8.engine("onnxruntime")
    assert ort.details["settings"]["cpu_class"] == cpu_class()
    assert ort.details["settings"]["label"] in hand_int8.format_table()
    saved = json.loads(hand_int8.report_path.read_text())
    assert saved["cpu"]["class"] == cpu_class() and all(e["recommendation"] for e in saved["engines"])


def test_ort_graph_is_qdq_with_per_channel_weights(hand_int8):
    model = onnx.load(str(hand_int8.artifacts["onnxruntime"]))
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("QuantizeLinear") > 20 and "DequantizeLinear" in ops
    # per-channel weights: a DequantizeLinear with a vector scale (one per output channel)
    inits = {i.name: i for i in model.graph.initializer}
    scales = [inits[n.input[1]] for n in model.graph.node if n.op_type == "DequantizeLinear" and n.input[1] in inits]
    assert any(len(s.dims) == 1 and s.dims[0] > 1 for s in scales)
    assert hand_int8.engine("onnxruntime").details["opset_before"] == 11  # tflite2onnx writes opset 11


def test_u8s8_runs_every_conv_as_an_integer_kernel(hand_int8):
    """What ONNX Runtime actually runs (its optimised graph): with U8S8 (full-range or pair-safe weights
    alike) no Conv or Add is left in float but those the mixed-precision fallback keeps float."""
    ort = hand_int8.engine("onnxruntime")
    profile = ort.details["optimized_graph"]
    kept = len(ort.details.get("float_fallback", {}).get("nodes", []))
    assert profile["int8_compute"].get("QLinearConv", 0) >= 40
    floats = profile["float_compute"]
    assert floats.get("Conv", 0) + floats.get("FusedConv", 0) + floats.get("Add", 0) <= kept


def test_layer_report_lists_layers_worst_first(hand_int8):
    for e in hand_int8.engines:
        assert e.layers, e.engine
        key = "cosine" if e.engine == "mnn" else "sqnr_db"
        values = [row[key] for row in e.layers]
        assert values == sorted(values)


def test_tflite2onnx_copy_matches_litert_and_is_reused(hand_int8, hand_tflite):
    onnx_copy = hand_int8.engine("onnxruntime").fp32_artifact
    assert onnx_copy.name == "hand.onnx"
    assert check_against_tflite(hand_tflite, onnx_copy, None) < 1e-3
    assert reusable(onnx_copy, hand_tflite)
    assert not reusable(onnx_copy, assets.fetch_asset("hand_landmark_full"))


def test_blazepose_converts_to_onnx_with_the_pad_fix(tmp_path):
    """BlazePose shares one paddings constant between PAD ops; unpatched tflite2onnx crashed on it."""
    src = assets.fetch_asset("pose_landmark_full")
    details = tflite_to_onnx(src, tmp_path / "bp.onnx", get_preset("blazepose_full"))
    assert details["max_rel_error"] < 1e-3
    assert Predictor(tmp_path / "bp.onnx").spec.layout == "NCHW"


def test_mnn_kl_crash_becomes_a_clear_error(hand_fp32, hand_predictor, tmp_path):
    """KL segfaults in MNN 3.6.1 on this graph; the crash must surface as ConversionError, file untouched."""
    spec = hand_predictor.spec
    cal = load_calibration("pinned:hand", hand_predictor, progress=False).subset(2)
    before = hand_fp32["mnn"].read_bytes()
    try:
        mnn_engine.quantize(hand_fp32["mnn"], tmp_path / "kl.mnn", cal, spec, spec, method="KL")
    except ConversionError as exc:
        assert "KL" in str(exc) and ("crashed" in str(exc) or "did not finish" in str(exc))
        assert not (tmp_path / "kl.mnn").exists()
    else:  # a future MNN that fixes KL: then the file must be a loadable model
        assert Predictor(tmp_path / "kl.mnn").spec.num_keypoints == 21
    assert hand_fp32["mnn"].read_bytes() == before


def test_unknown_methods_list_the_valid_ones():
    with pytest.raises(ConversionError, match="EMA, KL, ADMM"):
        mnn_engine.check_methods("kmeans", "MAX_ABS")
    with pytest.raises(ConversionError, match="MAX_ABS, ADMM"):
        mnn_engine.check_methods("EMA", "fp8")
    with pytest.raises(ConversionError, match="minmax, entropy, percentile"):
        ort_engine.check_method("kl")


def test_keep_float_resolves_first_and_head(hand_int8, hand_fp32):
    onnx_fp32 = hand_int8.engine("onnxruntime").fp32_artifact
    names = ort_engine.resolve_keep_float(onnx_fp32, ["first", "head"])
    graph = onnx.load(str(onnx_fp32)).graph
    first_conv = next(n.name for n in graph.node if n.op_type == "Conv")
    assert names[0] == first_conv and len(names) >= 2
    mnn_names = mnn_engine.resolve_keep_float(hand_fp32["mnn"], ["first", "head"])
    assert len(mnn_names) >= 2
    with pytest.raises(ConversionError, match="no such"):
        ort_engine.resolve_keep_float(onnx_fp32, ["not_a_node"])


def test_report_json_beside_the_artifacts(hand_int8):
    data = json.loads(hand_int8.report_path.read_text())
    assert hand_int8.report_path.name == "hand.int8.json"
    assert {e["engine"] for e in data["engines"]} == {"mnn", "onnxruntime"}
    for e in data["engines"]:
        assert {"mean_px", "max_px", "mean_px_256", "pck"} <= set(e["accuracy"])
        assert {"fp32_ms", "int8_ms", "speedup"} <= set(e["speed"])
    assert data["holdout"]["source"].startswith("pinned:hand")
    assert not set(data["calibration"]["samples"]) & set(data["holdout"]["samples"])


def test_error_split_says_where_the_int8_error_comes_from(hand_int8):
    """--layer-report adds the same quantisation with 16-bit activations / weights on the held-out crops."""
    ort = hand_int8.engine("onnxruntime")
    split = ort.details["error_split"]
    assert split["samples"] == hand_int8.holdout["count"]
    # w8a8 is the file's own figure, rebuilt from the same calibration ranges.
    assert split["w8a8"] == pytest.approx(ort.accuracy.mean_px_256, rel=0.1)
    assert 0 < split["w8a16"] < split["w8a8"] and 0 < split["w16a8"] < split["w8a8"] * 1.1
    assert any("where the error comes from" in n for n in ort.notes)
