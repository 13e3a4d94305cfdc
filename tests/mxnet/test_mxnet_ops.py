"""Every operator variant, translated without MXNet, matches MXNet 1.9.1 on the same inputs.

The cases (edgepose.converters.mxnet.fixtures, `op_cases`) cover each translated operator
and its attributes: Convolution groups/dilation/1-D, Deconvolution adj/target_shape, BatchNorm
fix_gamma defaults, Pooling 'full' windows past the edge with and without count_include_pad,
every Reshape code, slices with negative steps, loss layers with label variables, alias op
names and a v0.8-style JSON. Bound: max |ours - MXNet| / max |MXNet| (see conftest.rel_error).
"""
from __future__ import annotations

import json

import pytest

pytest.importorskip("onnx")  # the MXNet translator writes ONNX (the `convert` extra)

import numpy as np
import onnx

from edgepose.converters.mxnet import mxnet_to_onnx, mxnet_to_onnx_model

from .conftest import rel_error, mnn_outputs, run_onnxruntime

ORT_TOL = 1e-5
MNN_TOL = 1e-5  # measured worst 8.8e-7 (reduce), ONNX Runtime 4.8e-7


def _translate(case, tmp_path):
    return mxnet_to_onnx(case.symbol, case.params, tmp_path / f"{case.name}.onnx", input_shape=case.input_shapes)


def test_onnx_matches_mxnet(op_case, mx_case, tmp_path):
    case = mx_case("ops", op_case)
    path = _translate(case, tmp_path)
    model = onnx.load(str(path))
    assert [o.name for o in model.graph.output] == case.output_names
    outs = run_onnxruntime(path, case.inputs)
    for name, expected in zip(case.output_names, case.outputs):
        err = rel_error(outs[name], expected)
        assert err <= ORT_TOL, f"{op_case}/{name}: relative error {err:.2e}"


@pytest.mark.slow
def test_mnn_fp32_matches_mxnet(op_case, mx_case, tmp_path):
    case = mx_case("ops", op_case)
    outs = mnn_outputs(_translate(case, tmp_path), tmp_path / f"{op_case}.mnn", case.inputs)
    for name, expected in zip(case.output_names, case.outputs):
        err = rel_error(np.asarray(outs[name]).reshape(expected.shape), expected)
        assert err <= MNN_TOL, f"{op_case}/{name}: MNN relative error {err:.2e}"


# ---- graph structure: what the translation must (not) contain ----------------------------------------

def _ops(case) -> list[onnx.NodeProto]:
    model = mxnet_to_onnx_model(case.symbol, case.params, input_shape=case.input_shapes)
    return list(model.graph.node), {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer}


@pytest.mark.parametrize("name", ["pool_avg_full_excl", "pool_avg_full_pad_incl", "pool_max_full", "pool_sum_full"])
def test_full_pooling_needs_no_ceil_mode(name, mx_case):
    # Runtimes disagree on ceil_mode; windows past the edge are realised by an explicit Pad.
    nodes, _ = _ops(mx_case("ops", name))
    pools = [n for n in nodes if n.op_type in ("MaxPool", "AveragePool")]
    assert pools and all(a.name != "ceil_mode" or a.i == 0 for n in pools for a in n.attribute)
    assert any(n.op_type == "Pad" for n in nodes)


def test_fix_gamma_replaces_gamma_with_ones(mx_case):
    case = mx_case("ops", "batchnorm_fix_gamma_default")
    nodes, inits = _ops(case)
    (bn,) = [n for n in nodes if n.op_type == "BatchNormalization"]
    assert np.all(inits[bn.input[1]] == 1.0)
    assert bn.input[1] != "bn_gamma"  # the stored (random) gamma is ignored, as MXNet does


def test_reshape_codes_are_resolved_to_static_shapes(mx_case):
    nodes, inits = _ops(mx_case("ops", "reshape_codes"))
    shapes = [inits[n.input[1]] for n in nodes if n.op_type == "Reshape"]
    assert len(shapes) == 9 and all((s > 0).all() for s in shapes)


def test_dropout_and_label_inputs_leave_no_trace(mx_case):
    nodes, _ = _ops(mx_case("ops", "flatten_dropout"))
    assert [n.op_type for n in nodes] == ["Flatten"]
    model = mxnet_to_onnx_model(*(lambda c: (c.symbol, c.params))(mx_case("ops", "softmax_output_2d")),
                                input_shape=(3, 10))
    assert [i.name for i in model.graph.input] == ["data"]  # no softmax_label input


# ---- coverage: every registered operator is exercised against MXNet ------------------------------------

# Names MXNet itself writes for ops the fixtures exercise under another spelling (the JSON holds
# MakeLoss/_copy/SliceChannel/Pad/SoftmaxOutput when built from Python; aliases are renamed in).
_SAME_AS_EXERCISED = {"MakeLoss", "Softmax", "_copy", "pad", "split", "_contrib_box_non_maximum_suppression"}


def test_every_registered_operator_has_a_reference_case(mx_root):
    from edgepose.converters.mxnet import supported_operators

    used = set()
    for path in list((mx_root / "ops").glob("*-symbol.json")) + list((mx_root / "models").glob("*-symbol.json")):
        used |= {n["op"] for n in json.loads(path.read_text())["nodes"]}
    assert set(supported_operators()) - used <= _SAME_AS_EXERCISED


def test_required_operators_are_supported():
    from edgepose.converters.mxnet import supported_operators

    required = {"Convolution", "Deconvolution", "BatchNorm", "Activation", "LeakyReLU", "Pooling", "FullyConnected",
                "Flatten", "Dropout", "elemwise_add", "elemwise_sub", "elemwise_mul", "elemwise_div", "broadcast_add",
                "broadcast_sub", "broadcast_mul", "broadcast_div", "_Plus", "_Minus", "_Mul", "_Div", "ElementWiseSum",
                "add_n", "_plus_scalar", "_minus_scalar", "_rminus_scalar", "_mul_scalar", "_div_scalar",
                "_rdiv_scalar", "clip", "Concat", "Reshape", "transpose", "softmax", "SoftmaxOutput",
                "SoftmaxActivation", "UpSampling", "slice", "slice_axis", "hard_sigmoid"}
    assert required <= set(supported_operators())
