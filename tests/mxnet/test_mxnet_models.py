"""GluonCV models (random weights, non-trivial BatchNorm) translated without MXNet match MXNet.

The bound is relative to the output's scale: max |ours - MXNet| / max |MXNet| <= 1e-5, for ONNX
Runtime (1 thread) and for MNN FP32 ("high" precision, 1 thread) alike. Measured here: worst
4.9e-7 on ONNX Runtime and 1.3e-6 on MNN (simple_pose_resnet18_v1b), so the bound leaves room
for another CPU's kernel choice, and none for a wrong operator.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("onnx")  # the MXNet translator writes ONNX (the `convert` extra)

import numpy as np
import onnx

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
    if case.internals:  # a detector: network and NMS checked apart (see _stages)
        for what, run, expected in _stages(case, path.parent, run_onnxruntime):
            err = rel_error(run, expected)
            assert err <= ORT_TOL, f"{model_name} {what}: relative error {err:.2e} > {ORT_TOL}"
        return
    outs = run_onnxruntime(path, case.inputs)
    for name, expected in zip(case.output_names, case.outputs):
        err = rel_error(outs[name], expected)
        assert err <= ORT_TOL, f"{model_name}/{name}: relative error {err:.2e} > {ORT_TOL}"


@pytest.mark.slow
def test_mnn_fp32_matches_mxnet(model_name, converted, tmp_path):
    case, path = converted(model_name)
    if case.internals:
        def run_mnn(onnx_path, feeds):
            return mnn_outputs(onnx_path, onnx_path.with_suffix(".mnn"), feeds)
        for what, run, expected in _stages(case, tmp_path, run_mnn):
            err = rel_error(np.asarray(run).reshape(expected.shape), expected)
            assert err <= MNN_TOL, f"{model_name} {what}: MNN relative error {err:.2e} > {MNN_TOL}"
        return
    outs = mnn_outputs(path, tmp_path / f"{model_name}.mnn", case.inputs)
    for name, expected in zip(case.output_names, case.outputs):
        err = rel_error(outs[name], expected)
        assert err <= MNN_TOL, f"{model_name}/{name}: MNN relative error {err:.2e} > {MNN_TOL}"


def _stages(case, folder: Path, run):
    """(what, ours, MXNet's) for a detector, whose NMS output is discontinuous in its input (random-weight
    YOLOv3 scores tie to 1e-7, so conv rounding alone reorders them): the network up to the NMS input
    against MXNet's NMS input, then the NMS tail of the graph fed exactly the tensor MXNet's NMS read
    against MXNet's outputs."""
    doc = json.loads(case.symbol.read_text())
    for internal, expected in case.internals.items():
        node = internal[: -len("_output")]
        index = next(i for i, n in enumerate(doc["nodes"]) if n["name"] == node)
        upto = {**doc, "heads": [[index, 0, 0]]}
        sym = folder / f"{case.name}-upto-symbol.json"
        sym.write_text(json.dumps(upto))
        onnx_path = mxnet_to_onnx(sym, case.params, folder / f"{case.name}-upto.onnx", input_shape=case.input_shapes)
        yield f"network up to {internal}", next(iter(run(onnx_path, case.inputs).values())), expected
        tail_nodes = list(doc["nodes"])
        tail_nodes[index] = {"op": "null", "name": node, "inputs": []}  # upstream nodes become dead
        sym = folder / f"{case.name}-tail-symbol.json"
        sym.write_text(json.dumps({**doc, "nodes": tail_nodes}))
        onnx_path = mxnet_to_onnx(sym, case.params, folder / f"{case.name}-tail.onnx", input_name=node,
                                  input_shape=expected.shape)
        outs = run(onnx_path, {node: expected})
        for name, want in zip(case.output_names, case.outputs):
            yield f"{name} from MXNet's {internal}", outs[name], want
