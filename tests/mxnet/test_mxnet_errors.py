"""Bad symbols, missing parameters and input shapes that do not fit give clear edgepose errors,
name the node at fault, and leave nothing half-written."""
from __future__ import annotations

import json

import pytest

pytest.importorskip("onnx")  # the MXNet translator writes ONNX (the `convert` extra)

import numpy as np

from edgepose.converters.mxnet import (MissingParameterError, MXNetShapeError, MXNetSymbolError,
                                       mxnet_to_onnx, mxnet_to_onnx_model, read_params, read_symbol)
from edgepose.errors import ConversionError, EdgePoseError, UnsupportedOperatorError


@pytest.fixture
def conv(mx_case):
    return mx_case("ops", "conv_basic")


def _edited_symbol(case, tmp_path, edit) -> str:
    doc = json.loads(case.symbol.read_text())
    edit(doc)
    path = tmp_path / "edited-symbol.json"
    path.write_text(json.dumps(doc))
    return path


def test_unknown_operator_names_operator_and_node(conv, tmp_path):
    def rename(doc):
        doc["nodes"][-1]["op"] = "MyFancyOp"
    sym = _edited_symbol(conv, tmp_path, rename)
    with pytest.raises(UnsupportedOperatorError) as info:
        mxnet_to_onnx_model(sym, conv.params, input_shape=conv.input_shapes)
    assert info.value.operator == "MyFancyOp" and info.value.node == "conv"
    assert "MyFancyOp" in str(info.value) and "'conv'" in str(info.value)


def test_unsupported_attribute_is_an_unsupported_operator(mx_case, tmp_path):
    case = mx_case("ops", "pool_max_valid_pad")

    def same(doc):
        doc["nodes"][-1]["attrs"]["pooling_convention"] = "same"
    with pytest.raises(UnsupportedOperatorError, match="pooling_convention='same'"):
        mxnet_to_onnx_model(_edited_symbol(case, tmp_path, same), case.params, input_shape=case.input_shapes)


def test_missing_parameter_names_it_and_the_node(conv):
    params = read_params(conv.params)
    del params["arg:conv_bias"]
    with pytest.raises(MissingParameterError) as info:
        mxnet_to_onnx_model(conv.symbol, params, input_shape=conv.input_shapes)
    assert "conv_bias" in str(info.value) and "'conv'" in str(info.value)


def test_wrong_channel_count_names_the_first_conv(mx_case):
    case = mx_case("models", "resnet18_v1b")
    with pytest.raises(MXNetShapeError) as info:
        mxnet_to_onnx_model(case.symbol, case.params, input_shape=(1, 4, 224, 224))
    assert info.value.node == "resnetv1b_conv0_fwd" and info.value.operator == "Convolution"
    assert "4 channels" in str(info.value)


def test_fc_weight_mismatch_names_the_dense_layer(mx_case):
    case = mx_case("ops", "fc_flatten")  # FullyConnected on a flattened (2, 3, 9, 11) input
    with pytest.raises(MXNetShapeError) as info:
        mxnet_to_onnx_model(case.symbol, case.params, input_shape=(2, 3, 9, 12))
    assert info.value.node == "fc" and "324 features" in str(info.value)


@pytest.mark.parametrize("name, shape", [("pool_max_full", (1, 2, 2, 2)), ("conv_stride_dilate_group", (1, 4, 2, 2))])
def test_input_too_small_for_a_window(mx_case, name, shape):
    case = mx_case("ops", name)
    with pytest.raises(MXNetShapeError, match="too small|larger than"):
        mxnet_to_onnx_model(case.symbol, case.params, input_shape=shape)


def test_impossible_reshape_names_the_node(mx_case, tmp_path):
    case = mx_case("ops", "reshape_codes")  # r4 = (0, 0, -4, 2, -1, 0) cannot split 5 into 2 x k
    with pytest.raises(MXNetShapeError, match="'r4'.*cannot split 5"):
        mxnet_to_onnx_model(case.symbol, case.params, input_shape=(2, 3, 5, 6))


@pytest.mark.parametrize("shape", [(1, 3, -224, 224), (1, 3, 22.5, 224), (), "1,3,224,224"])
def test_malformed_input_shape(conv, shape):
    with pytest.raises(MXNetShapeError, match="input shape"):
        mxnet_to_onnx_model(conv.symbol, conv.params, input_shape=shape)


def test_unknown_input_name_lists_the_candidates(conv):
    with pytest.raises(MXNetShapeError, match=r"\['data'\]"):
        mxnet_to_onnx_model(conv.symbol, conv.params, input_shape=(2, 3, 9, 11), input_name="image")


def test_params_of_another_model(mx_case):
    a, b = mx_case("models", "resnet18_v1b"), mx_case("models", "mobilenet1.0")
    with pytest.raises(ConversionError):  # missing names, whichever comes first
        mxnet_to_onnx_model(a.symbol, b.params, input_shape=(1, 3, 224, 224))


def test_pruned_params_on_the_full_symbol(mx_case):
    full, pruned = mx_case("models", "resnet50_v1d"), mx_case("models", "resnet50_v1d_0.86")
    with pytest.raises(MXNetShapeError, match="weight"):
        mxnet_to_onnx_model(full.symbol, pruned.params, input_shape=(1, 3, 224, 224))


def test_failure_writes_nothing_and_keeps_old_output(conv, tmp_path):
    out = tmp_path / "model.onnx"
    out.write_bytes(b"previous model")
    with pytest.raises(MXNetShapeError):
        mxnet_to_onnx(conv.symbol, conv.params, out, input_shape=(2, 5, 9, 11))
    assert out.read_bytes() == b"previous model"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]  # no temp file left behind


def test_never_overwrites_an_input(conv, tmp_path):
    params = tmp_path / "m-0000.params"
    params.write_bytes(conv.params.read_bytes())
    before = params.read_bytes()
    with pytest.raises(ConversionError, match="refusing to overwrite"):
        mxnet_to_onnx(conv.symbol, params, params, input_shape=conv.input_shapes)
    assert params.read_bytes() == before


def test_success_replaces_output_atomically(conv, tmp_path):
    out = tmp_path / "model.onnx"
    out.write_bytes(b"previous model")
    assert mxnet_to_onnx(conv.symbol, conv.params, out, input_shape=conv.input_shapes) == out
    assert out.read_bytes()[:20] != b"previous model"[:20]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]


# ---- symbol files --------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, message", [
    ("not json", "not valid JSON"),
    ('{"nodes": 3}', "not an MXNet symbol graph"),
    ('{"nodes": [{"op": "null", "name": "x", "inputs": []}], "heads": []}', "no heads"),
    ('{"nodes": [{"op": "relu", "name": "r", "inputs": [[1, 0, 0]]}, {"op": "null", "name": "x", "inputs": []}],'
     ' "heads": [[0, 0, 0]]}', "does not come before"),
    ('{"nodes": [{"op": "null", "name": "x", "inputs": []}], "heads": [[5, 0, 0]]}', "outside the graph"),
])
def test_bad_symbol_files(tmp_path, text, message):
    path = tmp_path / "bad-symbol.json"
    path.write_text(text)
    with pytest.raises(MXNetSymbolError, match=message):
        read_symbol(path)


def test_legacy_param_attributes_are_read(mx_case):
    graph = read_symbol(mx_case("ops", "legacy_json_param").symbol)
    conv = next(n for n in graph.nodes if n.op == "Convolution")
    assert conv.attrs["kernel"] == "(3, 3)" and conv.attrs["num_filter"] == "4"


def test_malformed_attribute_names_the_node(conv, tmp_path):
    def bad(doc):
        doc["nodes"][-1]["attrs"]["kernel"] = "(3, x)"
    with pytest.raises(MXNetSymbolError, match="'conv'.*kernel"):
        mxnet_to_onnx_model(_edited_symbol(conv, tmp_path, bad), conv.params, input_shape=conv.input_shapes)


def test_all_errors_are_edgepose_errors(tmp_path):
    with pytest.raises(EdgePoseError):
        read_symbol(tmp_path / "missing-symbol.json")
    assert issubclass(MXNetShapeError, ConversionError)


def test_float16_checkpoint_becomes_float32(conv, tmp_path):
    params = {k: v.astype(np.float16) for k, v in read_params(conv.params).items()}
    model = mxnet_to_onnx_model(conv.symbol, params, input_shape=conv.input_shapes)
    assert all(i.data_type == 1 for i in model.graph.initializer)  # FLOAT


def test_deeply_nested_symbol_json_is_a_clean_error(tmp_path):
    from edgepose.converters.mxnet.errors import MXNetSymbolError
    from edgepose.converters.mxnet.symbol import read_symbol

    path = tmp_path / "deep-symbol.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(MXNetSymbolError, match="too deeply"):
        read_symbol(path)
