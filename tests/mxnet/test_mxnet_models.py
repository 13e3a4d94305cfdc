"""GluonCV models (random weights, non-trivial BatchNorm) translated without MXNet match MXNet.

The bound is relative to the output's scale: max |ours - MXNet| / max |MXNet| <= 1e-5, for ONNX
Runtime (1 thread) and for MNN FP32 ("high" precision, 1 thread) alike. Measured here: worst
4.9e-7 on ONNX Runtime and 1.3e-6 on MNN (simple_pose_resnet18_v1b), so the bound leaves room
for another CPU's kernel choice, and none for a wrong operator.
"""
from __future__ import annotations

import onnx
import pytest

from edgepose.converters.mxnet import mxnet_to_onnx

from .conftest import rel_error, mnn_outputs, run_onnxruntime

ORT_TOL = 1e-5
MNN_TOL = 1e-5

_converted: dict = {}


@pytest.fixture
def converted(tmp_path_factory, mx_case):
    """(case, onnx path) for a model, translated once per session."""
    def get(name: str):
        if name not in _converted:
            case = mx_case("models", name)
            out = tmp_path_factory.mktemp("mxnet_models") / f"{name}.onnx"
            mxnet_to_onnx(case.symbol, case.params, out, input_shape=case.input_shapes["data"])
            _converted[name] = (case, out)
        return _converted[name]
    return get


def test_onnx_matches_mxnet(model_name, converted):
    case, path = converted(model_name)
    model = onnx.load(str(path), load_external_data=False)
    assert [o.name for o in model.graph.output] == case.output_names
    outs = run_onnxruntime(path, case.inputs)
    for name, expected in zip(case.output_names, case.outputs):
        err = rel_error(outs[name], expected)
        assert err <= ORT_TOL, f"{model_name}/{name}: relative error {err:.2e} > {ORT_TOL}"


@pytest.mark.slow
def test_mnn_fp32_matches_mxnet(model_name, converted, tmp_path):
    case, path = converted(model_name)
    outs = mnn_outputs(path, tmp_path / f"{model_name}.mnn", case.inputs)
    for name, expected in zip(case.output_names, case.outputs):
        err = rel_error(outs[name], expected)
        assert err <= MNN_TOL, f"{model_name}/{name}: MNN relative error {err:.2e} > {MNN_TOL}"
