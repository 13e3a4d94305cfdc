"""Routes into the pipeline other code plugs into: MXNet checkpoints (converters.mxnet) and extra stages."""
from __future__ import annotations

import json

import pytest

pytest.importorskip("onnx")  # the MXNet translator writes ONNX (the `convert` extra)

import numpy as np
from onnx_models import external_pose_net

from edgepose.backends import open_backend
from edgepose.converters import Stage, convert, onnx_to_mnn


def test_mxnet_symbol_and_params_route_to_the_mxnet_translator(tmp_path, mxnet_fixtures):
    root = mxnet_fixtures  # the real-MXNet reference set (edgepose.converters.mxnet.fixtures)
    info = json.loads((root / "manifest.json").read_text())["ops"]["conv_basic"]
    shape = info["inputs"]["data"]
    report = convert(root / "ops" / "conv_basic-symbol.json", params=root / "ops" / "conv_basic-0000.params",
                     input_shape=shape, output_dir=tmp_path, images=[])
    assert [s.name for s in report.stages] == ["mxnet->onnx", "onnxsim", "onnx->mnn"]
    assert report.stage("mxnet->onnx").parity is None and report.stage("mxnet->onnx").warnings
    assert report.ok and report.stage("onnx->mnn").parity.passed
    ref = np.load(root / "ops" / "conv_basic.npz")  # outputs of real MXNet on these inputs
    got = open_backend(tmp_path / "conv_basic.mnn").run({"data": ref["input__data"]})
    np.testing.assert_allclose(next(iter(got.values())), ref["output__0"], rtol=1e-4, atol=1e-4)


def test_extra_stages_plug_into_the_plan_with_their_own_precision_and_tolerance(tmp_path):
    from edgepose.converters import Tolerance

    src = tmp_path / "ext.onnx"
    external_pose_net(src)
    extra = Stage("onnx->mnn-again", parent="sim", key="again", filename="{stem}.again.mnn", kind="mnn",
                  precision="custom", build=lambda parent, dst, spec: onnx_to_mnn(parent.target, dst, spec=spec))
    card = dict(head="heatmap", num_keypoints=5, input_size=(64, 48))
    report = convert(src, output_dir=tmp_path / "o", meta=card, images=[], extra_stages=[extra],
                     tolerances={"custom": Tolerance(rtol=1e-3, atol=1e-5, min_cosine=0.99999, max_px=0.05)})
    stage = report.stage("onnx->mnn-again")
    assert stage.artifact == tmp_path / "o" / "ext.again.mnn" and stage.parity.passed
    assert json.loads(open_backend(stage.artifact).metadata)["provenance"]["precision"] == "custom"
    bad = Stage("x", parent="nowhere", key="x", filename="{stem}.x", kind="mnn", precision="fp32", build=extra.build)
    with pytest.raises(ValueError, match="reads artifact 'nowhere'"):
        convert(src, output_dir=tmp_path / "o2", meta=card, extra_stages=[bad])
