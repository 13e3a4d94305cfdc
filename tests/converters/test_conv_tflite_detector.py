"""MediaPipe's person detector (sparse weights behind 38 DENSIFY ops) TFLite -> dense TFLite -> MNN FP32 / FP16.

Every stage is checked by the pipeline with the real runtimes (LiteRT for .tflite, MNN for .mnn);
the last test runs the MNN files against the original in LiteRT independently of the pipeline.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
pytest.importorskip("ai_edge_litert")  # build-time extra (demo/convert): skip without it

from edgepose import assets
from edgepose.backends import open_backend
from edgepose.converters import convert
from edgepose.converters.runtimes import TFLiteRunner

STAGES = ["tflite->dense", "tflite->mnn", "tflite->mnn-fp16"]
FILES = ["pose_detection.dense.tflite", "pose_detection.fp16.mnn", "pose_detection.mnn",
         "pose_detection.report.json"]


@pytest.fixture(scope="module")
def detector_tflite():
    return assets.fetch_asset("pose_detection")


@pytest.fixture(scope="module")
def bare_run(tmp_path_factory, detector_tflite):
    """No model card at all (spec=None): random inputs only, raw tensors compared."""
    out = tmp_path_factory.mktemp("det_bare")
    return convert(detector_tflite, output_dir=out, fp16=True), out


@pytest.fixture(scope="module")
def preset_run(tmp_path_factory, detector_tflite, photos):
    from edgepose.presets import get_preset

    try:
        get_preset("blazepose_detector")
    except Exception:  # noqa: BLE001 - the preset lands with the runtime's detector
        pytest.skip("no blazepose_detector preset in this tree")
    out = tmp_path_factory.mktemp("det_preset")
    report = convert(detector_tflite, output_dir=out, fp16=True, preset="blazepose_detector",
                     images=[photos["astronaut"], photos["zidane"]])
    return report, out


def test_plan_densifies_first_and_every_stage_passes_parity(bare_run, detector_tflite):
    report, out = bare_run
    assert report.ok, report.format_table()
    assert [s.name for s in report.stages] == STAGES
    assert sorted(p.name for p in out.iterdir()) == FILES
    dense, fp32, fp16 = report.stages
    assert dense.details["densify_ops_removed"] == 38
    assert dense.parity.reference == "pose_detection.tflite"
    assert fp32.parity.reference == fp16.parity.reference == "pose_detection.dense.tflite"
    for o in dense.parity.outputs:  # the rewrite changes no number
        assert o.max_abs == 0.0 and o.failures == []
    for stage in (fp32, fp16):
        assert {o.name: o.shape for o in stage.parity.outputs} == {"Identity": (1, 2254, 12),
                                                                   "Identity_1": (1, 2254, 1)}
        for o in stage.parity.outputs:  # measured: max rel <= 1.2e-6 for both precisions
            assert o.role is None and o.keypoint_px is None and o.max_rel < 1e-4 and o.cosine > 0.99999
    assert "DENSIFY" not in json.dumps(fp32.details.get("ops"))
    assert assets.sha256_of(detector_tflite) == assets.ASSETS["pose_detection"].sha256  # input untouched
    saved = json.loads((out / "pose_detection.report.json").read_text())
    assert saved["ok"] and [s["name"] for s in saved["stages"]] == STAGES


def test_with_the_detector_preset_photos_are_compared_as_raw_ssd_tensors(preset_run):
    report, out = preset_run
    assert report.ok, report.format_table()
    assert [s.name for s in report.stages] == STAGES
    for stage in report.stages:
        p = stage.parity
        assert p.inputs == ["random(batch 1)", "photo:astronaut.png", "photo:zidane.jpg"]
        roles = {o.name: o.role for o in p.outputs}
        assert roles == {"Identity": "boxes", "Identity_1": "scores"}
        assert all(o.keypoint_px is None for o in p.outputs)  # no pose role: no keypoint displacement
        assert all(o.max_rel < 1e-4 for o in p.outputs)
    backend = open_backend(out / "pose_detection.fp16.mnn")
    meta = json.loads(backend.metadata)
    assert meta["head"] == "ssd" and meta["provenance"]["stage"] == "tflite->mnn-fp16"
    assert meta["provenance"]["source"] == "pose_detection.tflite"


def test_mnn_detector_matches_the_original_in_litert(bare_run, detector_tflite, photos):
    """Independent of the pipeline: a photo in [-1, 1] through the original TFLite and both MNN files."""
    import cv2

    _, out = bare_run
    rgb = cv2.cvtColor(cv2.resize(cv2.imread(str(photos["bus"])), (224, 224)), cv2.COLOR_BGR2RGB)
    x = (rgb[None].astype(np.float32) / 127.5 - 1.0).astype(np.float32)
    ref = TFLiteRunner(detector_tflite).run({"input_1": x})
    assert ref["Identity_1"].max() > 0  # a person is found (a positive score logit), not a blank output
    for name in ("pose_detection.mnn", "pose_detection.fp16.mnn"):
        backend = open_backend(out / name)
        assert backend.inputs[0].shape == (1, 224, 224, 3) and backend.inputs[0].layout == "NHWC"
        got = backend.run({"input_1": x})
        for key in ("Identity", "Identity_1"):
            assert got[key].shape == ref[key].shape
            assert np.abs(got[key] - ref[key]).max() < 5e-3, (name, key)  # boxes in 224-px units; measured 6e-4
