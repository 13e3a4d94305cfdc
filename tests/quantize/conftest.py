"""Real models for the INT8 tests: MediaPipe hand_landmark_lite (FP32 MNN via the real converter),
and one real INT8 conversion (MNN quantiser + ONNX Runtime) shared by the tests that read it."""
from __future__ import annotations

from pathlib import Path

import pytest

from edgepose import assets
from edgepose.presets import get_preset


@pytest.fixture(scope="session")
def hand_tflite() -> Path:
    return assets.fetch_asset("hand_landmark_lite")


@pytest.fixture(scope="session")
def hand_fp32(tmp_path_factory, hand_tflite) -> dict[str, Path]:
    """{"mnn": FP32 .mnn with the preset card embedded, "tflite": the source}."""
    from edgepose.converters.mnn_native import convert_to_mnn

    out = tmp_path_factory.mktemp("hand_fp32") / "hand.mnn"
    convert_to_mnn(hand_tflite, out, framework="TFLITE", biz_code=get_preset("hand_landmark_lite").to_json())
    return {"mnn": out, "tflite": hand_tflite}


@pytest.fixture(scope="session")
def hand_predictor(hand_fp32):
    from edgepose.predictor import Predictor

    return Predictor(hand_fp32["mnn"])


@pytest.fixture(scope="session")
def hand_int8(tmp_path_factory, hand_fp32):
    """INT8 of hand_landmark_lite with both engines, 8 calibration crops, lenient so both files stay."""
    from edgepose.converters.quantize import Int8Options, quantize_int8

    out = tmp_path_factory.mktemp("hand_int8")
    return quantize_int8(hand_fp32, calib="pinned:hand", output_dir=out, stem="hand",
                         options=Int8Options(engines=("both",), calib_count=8, strict=False, speed_rounds=2,
                                             progress=False, layer_report=True))


@pytest.fixture(scope="session", params=["full", "pair-safe"])
def hand_ort_int8(request, tmp_path_factory, hand_fp32):
    """ONNX Runtime INT8 of hand_landmark_lite with each weight range, 8 calibration crops: the file
    a CPU with VNNI gets by default ("full") and the one a CPU without VNNI gets ("pair-safe")."""
    from edgepose.converters.quantize import Int8Options, quantize_int8
    from edgepose.converters.quantize.ort_engine import saturates
    from edgepose.cpu import cpu_class

    if saturates(cpu_class(), weight_range=request.param):
        pytest.skip(f"full-range U8S8 is accurate only where int8 sums are exact (VNNI/AMX, Arm); this CPU is "
                    f"{cpu_class()}, whose ONNX Runtime kernels saturate them (a CPU without VNNI gets pair-safe "
                    "weights, tested here)")
    out = tmp_path_factory.mktemp(f"hand_ort_{request.param}")
    return quantize_int8(hand_fp32, calib="pinned:hand", output_dir=out, stem="hand",
                         options=Int8Options(engines=("onnxruntime",), ort_weight_range=request.param, calib_count=8,
                                             strict=False, speed_rounds=2, progress=False))
