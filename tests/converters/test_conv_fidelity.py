"""Issue 17, fidelity: MNN's Winograd level and FP16 weights rounded (not truncated) before MNN stores them.

Measured here (AMD EPYC, MNN 3.6.1), see benchmarks/README.md "MNN Winograd level":
- one 64-channel 3x3 stride-1 conv: 8.8e-4 relative error at MNN's default WINOGRAD_MEMORY_LEVEL 3,
  <= 1.1e-6 at levels 0-2; edgepose's MNN backend uses level 1;
- --fp16 as MNN does it (truncation) on an EfficientNet-B0-style net with realistic BatchNorm
  statistics: cosine 0.9976, max rel 0.12 against FP32; rounded first: 0.999994, 3.6e-3 (the same as
  ONNX Runtime running the rounded weights, to 3.5e-6); MobileNetV3-Small-style: 0.99903 / 0.048
  truncated, 0.999998 / 1.6e-3 rounded.
"""
from __future__ import annotations

import numpy as np
import pytest; pytest.importorskip("onnx")  # noqa: E702 - build-time extra (convert): skip without it
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgepose.backends import open_backend
from edgepose.converters import fp16_weights, stages
from edgepose.converters.mnn_native import convert_to_mnn
from edgepose.converters.parity import TOLERANCES, compare
from edgepose.errors import BackendError

from heldout_nets import heldout


def _rel(a, b) -> float:
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-12))


def _cos(a, b) -> float:
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


# ---- Winograd --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def conv3x3(tmp_path_factory):
    """One 64-channel 3x3 stride-1 conv, the case MNN's level-3 Winograd gets ~1e-3 wrong."""
    folder = tmp_path_factory.mktemp("wino")
    rng = np.random.default_rng(0)
    w = rng.normal(0, 0.06, (64, 64, 3, 3)).astype(np.float32)
    node = helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1], kernel_shape=[3, 3])
    graph = helper.make_graph([node], "conv", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64, 56, 56])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64, 56, 56])],
                              initializer=[numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    src = folder / "conv.onnx"
    onnx.save(model, str(src))
    convert_to_mnn(src, folder / "conv.mnn", framework="ONNX")
    x = {"x": rng.normal(0, 1, (1, 64, 56, 56)).astype(np.float32)}
    return folder / "conv.mnn", x, open_backend(src, "onnxruntime").run(x)["y"]


def test_default_winograd_level_is_accurate(conv3x3):
    path, x, ref = conv3x3
    backend = open_backend(path, "mnn")
    assert backend.winograd_level == 1
    assert _rel(backend.run(x)["y"], ref) <= 2e-6


def test_mnn_default_level_3_is_what_costs_accuracy(conv3x3):
    # Each backend runs right after it is made: MNN picks kernels at the first run with the hint most
    # recently set in the process (its runtime managers of one configuration share a CPU runtime).
    path, x, ref = conv3x3
    errors = {}
    for level in (0, 1, 2, 3):
        errors[level] = _rel(open_backend(path, "mnn", winograd_level=level).run(x)["y"], ref)
    assert max(errors[0], errors[1], errors[2]) <= 2e-6, errors
    assert errors[3] > 1e-4, errors  # measured 8.8e-4: if MNN fixes this, the default can go back to 3


@pytest.mark.parametrize("bad", [4, -1, 1.0, "1", True, None])
def test_winograd_level_is_checked(conv3x3, bad):
    with pytest.raises(BackendError, match="winograd_level"):
        open_backend(conv3x3[0], "mnn", winograd_level=bad)


# ---- FP16 rounding ---------------------------------------------------------------------------------

def test_round_to_fp16_is_round_to_nearest_even():
    ulp = np.float32(2.0 ** -10)  # FP16 step in [1, 2)
    values = np.array([1 + 0.49 * ulp, 1 + 0.51 * ulp, 1 + 0.5 * ulp, 1 + 1.5 * ulp, -(1 + 0.51 * ulp), 7e4, -7e4],
                      np.float32)
    out = fp16_weights.round_to_fp16(values)
    np.testing.assert_array_equal(out, np.array([1, 1 + ulp, 1, 1 + 2 * ulp, -(1 + ulp), 65504, -65504], np.float32))
    assert out.dtype == np.float32


def _conv_bn_model(tmp_path, *, groups: int = 1, transpose: bool = False):
    rng = np.random.default_rng(1)
    cin, cout = 4, 6
    if transpose:
        w = rng.normal(0, 0.5, (cin, cout // groups, 3, 3)).astype(np.float32)
        conv = helper.make_node("ConvTranspose", ["x", "w", "b"], ["c"], group=groups, strides=[2, 2], pads=[1, 1, 1, 1])
    else:
        w = rng.normal(0, 0.5, (cout, cin // groups, 3, 3)).astype(np.float32)
        conv = helper.make_node("Conv", ["x", "w", "b"], ["c"], group=groups, pads=[1, 1, 1, 1])
    bn = helper.make_node("BatchNormalization", ["c", "g", "be", "m", "v"], ["y"], epsilon=1e-3)
    relu = helper.make_node("Relu", ["y"], ["out"])
    inits = {"w": w, "b": rng.normal(0, 0.1, cout), "g": rng.uniform(0.5, 1.5, cout), "be": rng.normal(0, 0.1, cout),
             "m": rng.normal(0, 0.3, cout), "v": rng.uniform(0.01, 2.0, cout)}
    graph = helper.make_graph([conv, bn, relu], "cbn", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                                       [1, cin, 8, 8])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)],
                              initializer=[numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / f"cbn_{groups}_{int(transpose)}.onnx"
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("groups, transpose", [(1, False), (2, False), (1, True), (2, True)])
def test_conv_batchnorm_fold_is_exact(tmp_path, groups, transpose):
    src = _conv_bn_model(tmp_path, groups=groups, transpose=transpose)
    model = onnx.load(str(src))
    assert fp16_weights.fold_conv_batchnorm(model) == 1
    assert [n.op_type for n in model.graph.node] == ["ConvTranspose" if transpose else "Conv", "Relu"]
    folded = tmp_path / "folded.onnx"
    onnx.save(model, str(folded))
    x = {"x": np.random.default_rng(2).normal(0, 1, (1, 4, 8, 8)).astype(np.float32)}
    ref = open_backend(src, "onnxruntime").run(x)["out"]
    assert _rel(open_backend(folded, "onnxruntime").run(x)["out"], ref) < 1e-6


def test_rounded_copy_keeps_biases_fp32_and_rounds_weights(tmp_path):
    src = _conv_bn_model(tmp_path)
    details = fp16_weights.round_onnx_weights(src, tmp_path / "r.onnx")
    assert details["conv_batchnorm_folded"] == 1 and details["rounded_tensors"] == 1
    model = onnx.load(str(tmp_path / "r.onnx"))
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    conv = model.graph.node[0]
    w, b = inits[conv.input[1]], inits[conv.input[2]]
    np.testing.assert_array_equal(w, w.astype(np.float16).astype(np.float32))  # FP16 values
    assert np.any(b != b.astype(np.float16).astype(np.float32))  # the bias kept its FP32 bits


def test_tflite_constants_are_rounded(tmp_path):
    from edgepose.converters import tflite_model as tm
    from edgepose.converters.measure_tflite_ops import chain_model

    path = tmp_path / "mul.tflite"
    path.write_bytes(chain_model(["MUL", "ADD"], constants=1))
    model = tm.load_model(path)
    rng = np.random.default_rng(3)
    for buf in model.buffers:
        if buf.data is not None and len(buf.data):
            buf.data = np.frombuffer(rng.normal(0, 1, len(buf.data) // 4).astype("<f4").tobytes(), np.uint8).copy()
    path.write_bytes(tm.model_bytes(model))
    details = fp16_weights.round_tflite_weights(path, tmp_path / "r.tflite")
    assert details["rounded_tensors"] == 2 and details["values_changed_by_rounding"] > 0
    for buf in tm.load_model(tmp_path / "r.tflite").buffers:
        if buf.data is not None and len(buf.data):
            v = np.frombuffer(np.asarray(buf.data, np.uint8).tobytes(), "<f4")
            np.testing.assert_array_equal(v, v.astype(np.float16).astype(np.float32))


@pytest.fixture(scope="module", params=["efficientnet_b0_style", "mobilenet_v3_small_style"])
def deep_net(request, tmp_path_factory):
    """A deep net with realistic BatchNorm statistics (calibrated on, and fed, images in [-1, 1]),
    exported and simplified once."""
    folder = tmp_path_factory.mktemp(request.param)
    model, shape = heldout(request.param, calibration="uniform")
    onnx_path = folder / "net.onnx"
    stages.torch_to_onnx(model, onnx_path, input_shape=shape, output_names=["logits"], dynamic_batch=False)
    stages.simplify_onnx(onnx_path, folder / "net.sim.onnx")
    x = {"input": np.random.default_rng(0).uniform(-1, 1, shape).astype(np.float32)}
    return request.param, folder, x, open_backend(folder / "net.sim.onnx", "onnxruntime").run(x)["logits"]


def test_fp16_rounding_fixes_truncation_drift(deep_net):
    name, folder, x, ref = deep_net
    src = folder / "net.sim.onnx"
    stages.onnx_to_mnn(src, folder / "trunc.fp16.mnn", fp16=True, round_fp16=False)
    details = stages.onnx_to_mnn(src, folder / "round.fp16.mnn", fp16=True)
    assert details["rounded_values"] > 1_000_000 and details["fp16_weights"] is True
    trunc = open_backend(folder / "trunc.fp16.mnn", "mnn").run(x)["logits"]
    rounded = open_backend(folder / "round.fp16.mnn", "mnn").run(x)["logits"]
    tol = TOLERANCES["fp16"]
    failed = compare([{"logits": ref}], [{"logits": trunc}], spec=None, tolerance=tol)[0]
    passed = compare([{"logits": ref}], [{"logits": rounded}], spec=None, tolerance=tol)[0]
    # What MNN's truncation does to these nets: the FP16 stage fails (issue 17 saw cosine 0.996 / 0.9986).
    assert not failed.passed, f"{name}: truncation now passes ({failed.cosine:.6f}, {failed.max_rel:.3g})"
    assert passed.passed, f"{name}: rounded FP16 fails: {passed.failures}"
    assert _cos(rounded, ref) > 0.99999 and _rel(rounded, ref) < 5e-3
