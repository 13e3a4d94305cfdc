"""`edgepose convert x-symbol.json --params x-0000.params --preset NAME` end to end: the preset
supplies the input shape (and, for SimplePose, the model card), and the MNN file it writes runs in
the Predictor by its path alone, agreeing with real MXNet's output."""
from __future__ import annotations

import shutil

import numpy as np

from edgepose import Predictor
from edgepose.cli import main


def _copy(case, dst):
    shutil.copy(case.symbol, dst / case.symbol.name)
    shutil.copy(case.params, dst / case.params.name)
    return dst / case.symbol.name, dst / case.params.name


def test_simple_pose_converts_with_its_preset_and_runs_in_the_predictor(mx_case, tmp_path, photos):
    case = mx_case("models", "simple_pose_resnet18_v1b")
    symbol, params = _copy(case, tmp_path)
    code = main(["convert", str(symbol), "--params", str(params), "--preset", "simple_pose_resnet18_v1b",
                 "--fp16", "-q", "-o", str(tmp_path / "out")])
    assert code == 0
    mnn = tmp_path / "out" / "simple_pose_resnet18_v1b.fp16.mnn"
    predictor = Predictor(mnn)
    assert predictor.spec.head == "heatmap" and predictor.spec.num_keypoints == 17
    # The converted model reproduces MXNet's heatmaps on MXNet's own input ...
    heatmaps = predictor.run_tensor(case.inputs["data"])["heatmaps"]
    ref = case.outputs[0]
    assert np.abs(heatmaps - ref).max() <= 1e-2 * np.abs(ref).max()  # FP16 weights
    # ... and predicts on a real photo, keypoints inside the person box's crop.
    result = predictor.predict(str(photos["bus"]), [[45, 395, 250, 910]])
    assert result.keypoints.shape == (1, 17, 2) and np.isfinite(result.keypoints).all()


def test_classifier_preset_gives_the_input_shape(mx_case, tmp_path):
    case = mx_case("models", "resnet18_v1b")
    symbol, params = _copy(case, tmp_path)
    assert main(["convert", str(symbol), "--params", str(params), "--preset", "resnet18_v1b", "-q"]) == 0
    from edgepose.backends import open_backend

    out = open_backend(tmp_path / "resnet18_v1b.mnn").run({"data": case.inputs["data"]})
    (logits,) = out.values()
    ref = case.outputs[0]
    assert np.abs(logits - ref).max() <= 1e-5 * np.abs(ref).max()
