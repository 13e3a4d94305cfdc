"""A TFLite operator MNN cannot convert is named (UnsupportedOperatorError.operator), never "check your file format".

Real files and the real MNN converter: MediaPipe's face_landmark_with_attention.tflite (custom ops
that make MNN 3.6.1 crash), tiny models with builtins MNN lacks (which LiteRT runs), and
pose_detection.tflite's DENSIFY.
"""
from __future__ import annotations

import numpy as np
import pytest
pytest.importorskip("ai_edge_litert")  # build-time extra (demo/convert): skip without it

from edgepose import assets
from edgepose.converters import convert, mnn_native, tflite_ops
from edgepose.converters.measure_tflite_ops import chain_model, probe
from edgepose.converters.stages import tflite_to_mnn
from edgepose.errors import ModelFileError, UnsupportedOperatorError

MEASURED_MNN = tflite_ops.mnn_version() == tflite_ops.MEASURED_WITH_MNN
CUSTOMS = ["Landmarks2TransformMatrix", "TransformTensorBilinear", "TransformLandmarks"]


@pytest.fixture
def gelu_elu(tmp_path):
    """GELU -> RELU -> ELU: a model LiteRT runs and MNN's TFLite converter refuses twice over."""
    path = tmp_path / "src" / "gelu_elu.tflite"
    path.parent.mkdir()
    path.write_bytes(chain_model(["GELU", "RELU", "ELU"]))
    return path


def test_custom_ops_are_named_before_anything_runs(tmp_path, mediapipe_model):
    src = mediapipe_model("face_landmark_with_attention")
    out = tmp_path / "out"
    with pytest.raises(UnsupportedOperatorError, match="Landmarks2TransformMatrix \\(custom, x3\\)") as info:
        convert(src, output_dir=out, fp16=True)
    err = info.value
    assert err.operator == "Landmarks2TransformMatrix" and sorted(err.operators) == sorted(CUSTOMS)
    assert "TFLite_Detection_PostProcess" in str(err) and "file format" not in str(err)
    assert not out.exists()  # refused at planning: no folder, no report, no runtime started


def test_a_custom_op_crash_in_mnn_still_names_the_operators(tmp_path, mediapipe_model):
    """Without the check, MNN 3.6.1 logs "Now Only support Custom op of ..." and segfaults in its child."""
    src = mediapipe_model("face_landmark_with_attention")
    with pytest.raises(UnsupportedOperatorError, match="Landmarks2TransformMatrix") as info:
        mnn_native.convert_to_mnn(src, tmp_path / "x.mnn", framework="TFLITE")
    assert info.value.operator == "Landmarks2TransformMatrix"
    assert list(tmp_path.iterdir()) == []


def test_custom_ops_mnn_knows_pass_the_check(mediapipe_model):
    bad, customs = tflite_ops.unsupported_operators(mediapipe_model("selfie_segmentation"))
    assert bad == {} and customs == set()  # Convolution2DTransposeBias is one of MNN's custom ops


@pytest.mark.skipif(not MEASURED_MNN, reason="the builtin table is applied with the MNN it was measured on")
def test_every_unsupported_builtin_is_named(tmp_path, gelu_elu):
    from edgepose.backends import open_backend

    litert = open_backend(gelu_elu, "litert")  # a real model: LiteRT runs it
    assert np.isfinite(litert.run({litert.input_names[0]: np.ones((1, 4, 4, 1), np.float32)})[litert.output_names[0]]).all()
    with pytest.raises(UnsupportedOperatorError, match=r"GELU \(builtin, x1\), ELU \(builtin, x1\)") as info:
        convert(gelu_elu, output_dir=tmp_path / "out")
    assert info.value.operator == "GELU" and info.value.operators == ["GELU", "ELU"]


def test_mnn_log_names_the_first_unsupported_builtin(tmp_path, gelu_elu):
    """MNN's own log (NOT_SUPPORTED_OP: [ GELU ]) is recognised too: it returns success and writes nothing."""
    with pytest.raises(UnsupportedOperatorError, match="no operator GELU") as info:
        mnn_native.convert_to_mnn(gelu_elu, tmp_path / "x.mnn", framework="TFLITE")
    assert info.value.operator == "GELU" and "file format" not in str(info.value)
    assert list(tmp_path.glob("*.mnn")) == []


def test_densify_is_named_with_its_rewrite(tmp_path):
    src = assets.fetch_asset("pose_detection")
    with pytest.raises(UnsupportedOperatorError, match="DENSIFY \\(builtin, x38\\).*tflite_densify") as info:
        tflite_to_mnn(src, tmp_path / "a.mnn")
    assert info.value.operator == "DENSIFY"
    with pytest.raises(UnsupportedOperatorError, match="no operator DENSIFY.*tflite_densify") as info:
        mnn_native.convert_to_mnn(src, tmp_path / "b.mnn", framework="TFLITE")  # MNN's log, as issue 11 saw it
    assert info.value.operator == "DENSIFY"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not MEASURED_MNN, reason="the builtin table is applied with the MNN it was measured on")
@pytest.mark.parametrize("op", ["DENSIFY", "GELU", "CONV_2D", "DEQUANTIZE", "HARD_SWISH"])
def test_builtin_table_agrees_with_the_installed_converter(tmp_path, op):
    assert probe(op, tmp_path) == (op in tflite_ops.MNN_BUILTINS)


def test_a_damaged_tflite_is_a_model_file_error(tmp_path):
    good = assets.fetch_asset("pose_detection").read_bytes()
    (tmp_path / "cut.tflite").write_bytes(good[: len(good) // 3])  # a truncated download
    (tmp_path / "junk.tflite").write_bytes(b"not a flatbuffer at all")
    with pytest.raises(ModelFileError, match="cut.tflite is not a readable TFLite model.*truncated"):
        convert(tmp_path / "cut.tflite", output_dir=tmp_path / "out")
    with pytest.raises(ModelFileError, match="junk.tflite is not a TFLite model"):
        convert(tmp_path / "junk.tflite", output_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists()
