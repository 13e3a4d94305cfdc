"""ConvTranspose(4, s2, p1) -> 2x2 Convs + DepthToSpace: exact in ONNX Runtime float on real zoo exports,
non-matching deconvolutions untouched, and the rewritten graph quantises to int8 convolutions."""
from __future__ import annotations

import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pytest; pytest.importorskip("onnx")  # noqa: E702 - build-time extra (convert): skip without it
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgepose.converters.quantize.graph_rewrite import rewrite_conv_transposes, rewrite_strided_stem

OPSET = 17


def _session(model: onnx.ModelProto | Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    src = str(model) if isinstance(model, Path) else model.SerializeToString()
    return ort.InferenceSession(src, options, providers=["CPUExecutionProvider"])


def _run(model, x: np.ndarray) -> list[np.ndarray]:
    sess = _session(model)
    return sess.run(None, {sess.get_inputs()[0].name: x})


def _ops(model: onnx.ModelProto) -> Counter:
    return Counter(n.op_type for n in model.graph.node)


def _assert_close(ref: list[np.ndarray], got: list[np.ndarray]) -> None:
    assert len(ref) == len(got)
    for a, b in zip(ref, got):
        assert a.shape == b.shape
        scale = max(float(np.ptp(a)), 1e-6)
        assert float(np.abs(a - b).max()) / scale < 1e-4, (float(np.abs(a - b).max()), scale)


@pytest.fixture(scope="module", params=["heatmap", "simdr", "dsnt_deconv"])
def zoo_onnx(request, tmp_path_factory) -> tuple[str, onnx.ModelProto]:
    """A real zoo model exported by torch (legacy exporter, opset 17, dynamic batch)."""
    import torch

    from edgepose.models import create_model, get_entry

    torch.set_num_threads(1)
    name = request.param
    entry = get_entry(name)
    model = create_model(name, deploy=True)
    w, h = entry.input_size
    path = tmp_path_factory.mktemp("rewrite") / f"{name}.onnx"
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # dynamo=False is the legacy exporter, on purpose
        torch.onnx.export(model, torch.randn(1, 3, h, w), str(path), dynamo=False, opset_version=OPSET,
                          input_names=["input"], output_names=list(entry.output_names),
                          dynamic_axes={"input": {0: "batch"}})
    return name, onnx.load(str(path))


def test_zoo_models_rewritten_exactly(zoo_onnx):
    name, model = zoo_onnx
    n_deconv = _ops(model)["ConvTranspose"]
    assert n_deconv >= 2, f"{name} export has no ConvTranspose to rewrite"
    before = model.SerializeToString()
    rewritten, names = rewrite_conv_transposes(model)
    assert model.SerializeToString() == before, "the input model was modified"
    assert len(names) == n_deconv
    ops = _ops(rewritten)
    assert ops["ConvTranspose"] == 0
    assert ops["DepthToSpace"] == n_deconv
    assert ops["Conv"] == _ops(model)["Conv"] + 4 * n_deconv
    assert rewritten.opset_import == model.opset_import
    onnx.checker.check_model(rewritten, full_check=True)
    x = np.random.default_rng(0).standard_normal((2, 3, 256, 256)).astype(np.float32)  # batch 2
    _assert_close(_run(model, x), _run(rewritten, x))


def _deconv_model(*, cin=6, cout=5, kernel=4, strides=(2, 2), pads=(1, 1, 1, 1), bias=True, weight_input=False,
                  extra: dict | None = None, batchnorm=False, seed=0) -> onnx.ModelProto:
    """x (N, cin, H, W) with dynamic N/H/W -> ConvTranspose [-> BatchNormalization] -> Relu."""
    rng = np.random.default_rng(seed)
    weight = rng.standard_normal((cin, cout, kernel, kernel)).astype(np.float32)
    inits = [] if weight_input else [numpy_helper.from_array(weight, "w")]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", cin, "h", "w"])]
    if weight_input:
        inputs.append(helper.make_tensor_value_info("w", TensorProto.FLOAT, list(weight.shape)))
    ct_inputs = ["x", "w"]
    if bias:
        inits.append(numpy_helper.from_array(rng.standard_normal(cout).astype(np.float32), "b"))
        ct_inputs.append("b")
    attrs = {"kernel_shape": [kernel, kernel], "strides": list(strides), **(extra or {})}
    if pads is not None:
        attrs["pads"] = list(pads)
    nodes = [helper.make_node("ConvTranspose", ct_inputs, ["ct"], name="deconv", **attrs)]
    last = "ct"
    if batchnorm:
        for key, values in (("scale", rng.uniform(0.5, 2, cout)), ("beta", rng.standard_normal(cout)),
                            ("mean", rng.standard_normal(cout)), ("var", rng.uniform(0.5, 2, cout))):
            inits.append(numpy_helper.from_array(values.astype(np.float32), key))
        nodes.append(helper.make_node("BatchNormalization", ["ct", "scale", "beta", "mean", "var"], ["bn"],
                                      name="bn", epsilon=1e-3))
        last = "bn"
    nodes.append(helper.make_node("Relu", [last], ["y"], name="relu"))
    graph = helper.make_graph(nodes, "deconv", inputs,
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None] * 4)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(model)
    return model


@pytest.mark.parametrize("bias", [True, False])
def test_dynamic_spatial_sizes_and_batch(bias):
    model = _deconv_model(bias=bias)
    rewritten, names = rewrite_conv_transposes(model)
    assert names == ["deconv"]
    assert _ops(rewritten)["ConvTranspose"] == 0
    onnx.checker.check_model(rewritten, full_check=True)
    rng = np.random.default_rng(1)
    for shape in ((1, 6, 8, 8), (2, 6, 5, 7), (3, 6, 1, 2)):
        x = rng.standard_normal(shape).astype(np.float32)
        ref, got = _run(model, x), _run(rewritten, x)
        assert got[0].shape == (shape[0], 5, 2 * shape[2], 2 * shape[3])
        _assert_close(ref, got)


def test_following_batchnorm_folded():
    model = _deconv_model(batchnorm=True, bias=False)
    rewritten, names = rewrite_conv_transposes(model)
    assert names == ["deconv"]
    ops = _ops(rewritten)
    assert ops["BatchNormalization"] == 0 and ops["ConvTranspose"] == 0
    assert not {"w", "scale", "beta", "mean", "var"} & {i.name for i in rewritten.graph.initializer}
    x = np.random.default_rng(2).standard_normal((2, 6, 6, 9)).astype(np.float32)
    _assert_close(_run(model, x), _run(rewritten, x))
    kept, _ = rewrite_conv_transposes(model, fold_batchnorm=False)
    assert _ops(kept)["BatchNormalization"] == 1
    _assert_close(_run(model, x), _run(kept, x))


@pytest.mark.parametrize("kwargs", [
    {"strides": (1, 1)},
    {"kernel": 3},
    {"pads": (0, 0, 0, 0)},
    {"pads": (1, 1, 2, 2)},
    {"extra": {"output_padding": [1, 1]}},
    {"extra": {"dilations": [2, 2]}},
    {"extra": {"group": 2}, "cin": 6, "cout": 3},
    {"extra": {"auto_pad": "SAME_UPPER"}, "pads": None},
    {"extra": {"output_shape": [16, 16]}},
    {"weight_input": True},
], ids=["stride1", "kernel3", "pad0", "asym_pad", "output_padding", "dilation", "group", "auto_pad",
        "output_shape", "weight_not_initializer"])
def test_non_matching_conv_transpose_untouched(kwargs):
    model = _deconv_model(**kwargs)
    rewritten, names = rewrite_conv_transposes(model)
    assert names == []
    assert rewritten.SerializeToString() == model.SerializeToString()


def test_only_matching_nodes_rewritten():
    """Two ConvTransposes in one graph: the k4/s2/p1 one is rewritten, the stride-1 one is kept."""
    rng = np.random.default_rng(3)
    w1 = numpy_helper.from_array(rng.standard_normal((4, 4, 4, 4)).astype(np.float32), "w1")
    w2 = numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w2")
    nodes = [helper.make_node("ConvTranspose", ["x", "w1"], ["a"], name="up", kernel_shape=[4, 4], strides=[2, 2],
                              pads=[1, 1, 1, 1]),
             helper.make_node("ConvTranspose", ["a", "w2"], ["y"], name="same", kernel_shape=[3, 3],
                              pads=[1, 1, 1, 1])]
    graph = helper.make_graph(nodes, "two", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 5, 5])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None] * 4)], [w1, w2])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    rewritten, names = rewrite_conv_transposes(model)
    assert names == ["up"]
    assert [n.name for n in rewritten.graph.node if n.op_type == "ConvTranspose"] == ["same"]
    onnx.checker.check_model(rewritten, full_check=True)
    x = rng.standard_normal((1, 4, 5, 5)).astype(np.float32)
    _assert_close(_run(model, x), _run(rewritten, x))


def test_rewritten_graph_quantises_to_int8_convs(tmp_path):
    """The point of the rewrite: after ORT static QDQ quantisation (the engine's settings) and ORT's
    optimiser, no float ConvTranspose or Conv is left; the original keeps a float ConvTranspose."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    rng = np.random.default_rng(4)
    model = _deconv_model(cin=16, cout=16)
    data = [rng.standard_normal((1, 16, 8, 8)).astype(np.float32) for _ in range(4)]

    class Reader:
        def __init__(self):
            self.items = iter(data)

        def get_next(self):
            x = next(self.items, None)
            return None if x is None else {"x": x}

    def optimised_ops(m: onnx.ModelProto) -> Counter:
        src, dst, opt = tmp_path / "f.onnx", tmp_path / "q.onnx", tmp_path / "opt.onnx"
        onnx.save(m, str(src))
        quantize_static(str(src), str(dst), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax,
                        extra_options={"CalibTensorRangeSymmetric": False, "DedicatedQDQPair": True})
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.optimized_model_filepath = str(opt)
        ort.InferenceSession(str(dst), options, providers=["CPUExecutionProvider"])
        return _ops(onnx.load(str(opt)))

    original = optimised_ops(model)
    assert original["ConvTranspose"] == 1
    rewritten, _ = rewrite_conv_transposes(model)
    ops = optimised_ops(rewritten)
    assert ops["ConvTranspose"] == 0 and ops["Conv"] == 0 and ops["FusedConv"] == 0
    assert ops["QLinearConv"] == 4


# --- the stride-2 RGB stem -------------------------------------------------------------------------------
def _stem_model(*, pads=(1, 1, 1, 1), cin=3, size=(8, 10), strides=(2, 2), kernel=3, bias=True) -> onnx.ModelProto:
    rng = np.random.default_rng(1)
    inits = [numpy_helper.from_array(rng.normal(size=(5, cin, kernel, kernel)).astype(np.float32), "w")]
    if bias:
        inits.append(numpy_helper.from_array(rng.normal(size=(5,)).astype(np.float32), "b"))
    conv = helper.make_node("Conv", ["x", "w"] + (["b"] if bias else []), ["c"], name="stem", kernel_shape=[kernel] * 2,
                            strides=list(strides), pads=list(pads))
    relu = helper.make_node("Relu", ["c"], ["y"])
    graph = helper.make_graph([conv, relu], "stem", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                                  ["N", cin, *size])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 5, "H", "W"])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])


@pytest.mark.parametrize("pads", [(1, 1, 1, 1), (0, 0, 1, 1), (1, 0, 1, 1)])
@pytest.mark.parametrize("bias", [True, False])
def test_stem_rewritten_exactly(pads, bias):
    """PyTorch-style (1,1,1,1) and TensorFlow SAME (0,0,1,1) stems: SpaceToDepth + 2x2 Conv, same output."""
    model = _stem_model(pads=pads, bias=bias)
    out, names = rewrite_strided_stem(model)
    onnx.checker.check_model(out, full_check=True)
    assert names == ["stem"] and _ops(out)["SpaceToDepth"] == 1
    assert [i.name for i in out.graph.initializer].count("w") == 0  # the 3x3 weight is gone
    x = np.random.default_rng(2).normal(size=(2, 3, 8, 10)).astype(np.float32)
    _assert_close(_run(model, x), _run(out, x))


@pytest.mark.parametrize("kwargs", [dict(cin=8), dict(size=(9, 10)), dict(strides=(1, 1)), dict(kernel=5, pads=(2, 2, 2, 2)),
                                    dict(pads=(1, 1, 0, 0))])
def test_non_matching_stem_untouched(kwargs):
    model = _stem_model(**kwargs)
    out, names = rewrite_strided_stem(model)
    assert names == [] and out.SerializeToString() == model.SerializeToString()


def test_real_stems_rewritten(zoo_onnx):
    """The zoo's ShuffleNetV2 stem (3->24, 3x3 s2) on a real export, batch 2."""
    name, model = zoo_onnx
    out, names = rewrite_strided_stem(model)
    assert len(names) == 1
    x = np.random.default_rng(0).normal(size=(2, 3, 256, 256)).astype(np.float32)
    _assert_close(_run(model, x), _run(out, x))
