"""MediaPipe BlazePose (pinned real model, real weights) TFLite -> MNN FP32 / FP16, checked against the TFLite interpreter."""
from __future__ import annotations

import numpy as np
import pytest

from edgepose.backends import open_backend
from edgepose.converters import convert
from edgepose.converters.parity import preprocess
from edgepose.converters.runtimes import TFLiteRunner
from edgepose.presets import get_preset
from edgepose.spec import ModelSpec

BLAZEPOSE_SHA256 = "e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f"


@pytest.fixture(scope="module")
def bp_run(tmp_path_factory, blazepose_tflite, photos):
    out = tmp_path_factory.mktemp("bp")
    report = convert(blazepose_tflite, output_dir=out, preset="blazepose_full", fp16=True,
                     images=[photos["astronaut"], photos["zidane"]])
    return report, out


def test_blazepose_converts_with_both_precisions_within_tolerance(bp_run):
    report, out = bp_run
    assert report.ok and [s.name for s in report.stages] == ["tflite->mnn", "tflite->mnn-fp16"]
    assert sorted(p.name for p in out.iterdir()) == [
        "pose_landmark_full.fp16.mnn", "pose_landmark_full.mnn", "pose_landmark_full.report.json"]
    for stage in report.stages:
        p = stage.parity
        assert p.reference == "pose_landmark_full.tflite"
        assert p.inputs == ["random(batch 1)", "photo:astronaut.png", "photo:zidane.jpg"]
        by_name = {o.name: o for o in p.outputs}
        assert set(by_name) == {"Identity", "Identity_1", "Identity_2", "Identity_3", "Identity_4"}
        landmarks = by_name["Identity"]
        assert landmarks.role == "landmarks" and by_name["Identity_1"].role == "presence"
        assert landmarks.keypoint_px is not None and landmarks.keypoint_px < 0.05  # measured ~0.0014 px
        assert all(o.cosine > 0.99999 for o in p.outputs)


def test_mnn_keeps_nhwc_and_carries_the_preset_with_provenance(bp_run):
    _, out = bp_run
    backend = open_backend(out / "pose_landmark_full.fp16.mnn")
    assert backend.inputs[0].name == "input_1" and backend.inputs[0].layout == "NHWC"
    assert backend.inputs[0].shape == (1, 256, 256, 3)
    spec = ModelSpec.from_json(backend.metadata)
    preset = get_preset("blazepose_full")
    assert spec.replace(provenance={}) == preset
    assert spec.provenance["source"] == "pose_landmark_full.tflite"
    assert spec.provenance["source_sha256"] == BLAZEPOSE_SHA256
    assert spec.provenance["stage"] == "tflite->mnn-fp16" and spec.provenance["precision"] == "fp16"


def test_photo_landmarks_agree_with_the_tflite_interpreter(bp_run, blazepose_tflite, photos):
    """Independent of the pipeline: the real interpreter and MNN on a preprocessed photo."""
    import cv2

    _, out = bp_run
    x = preprocess(cv2.imread(str(photos["bus"])), get_preset("blazepose_full"))
    ref = TFLiteRunner(blazepose_tflite).run({"input_1": x})["Identity"].reshape(39, 5)
    got = open_backend(out / "pose_landmark_full.mnn").run({"input_1": x})["Identity"].reshape(39, 5)
    assert np.abs(got[:33, :2] - ref[:33, :2]).max() < 0.05  # pixels of the 256x256 input
    assert np.isfinite(ref).all() and np.ptp(ref[:33, 0]) > 10  # a real pose, not a degenerate output
