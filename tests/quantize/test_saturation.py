"""The no-VNNI saturation emulator (saturation.py) on synthetic QDQ models whose pair sums are known.

These run the same on every CPU: the emulator is numpy. That it matches ONNX Runtime's real AVX2
kernels was checked under QEMU's AVX2-only EPYC-Rome model (converters/quantize/README.md).
"""
from __future__ import annotations

import numpy as np
import pytest; pytest.importorskip("onnx")  # noqa: E702 - build-time extra (convert): skip without it
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgepose.converters.quantize.saturation import (INT16_MAX, _im2col, _pair_sums, analyse, pair_safe_ranges,
                                                     summarise)


def _brute(a: np.ndarray, w: np.ndarray):
    a, w = a.astype(np.int64), w.astype(np.int64)
    if a.shape[1] % 2:
        a, w = np.pad(a, ((0, 0), (0, 1))), np.pad(w, ((0, 1), (0, 0)))
    s = a[:, 0::2, None] * w[None, 0::2] + a[:, 1::2, None] * w[None, 1::2]
    clipped = np.clip(s, -32768, 32767)
    return int((s != clipped).sum()), np.abs(s).max(axis=(0, 1)), (clipped - s).sum(axis=1)


@pytest.mark.parametrize("p, k, m", [(300, 16, 8), (97, 7, 5), (1, 2, 1)])
def test_pair_sums_match_brute_force(p, k, m):
    rng = np.random.default_rng(k)
    a = rng.integers(0, 256, (p, k)).astype(np.uint8)
    w = rng.integers(-127, 128, (k, m)).astype(np.int8)
    pairs, saturated, per_channel, err = _pair_sums(a, w)
    want_saturated, want_max, want_err = _brute(a, w)
    assert pairs == p * ((k + 1) // 2) * m
    assert saturated == want_saturated and (per_channel == want_max).all() and (err == want_err).all()


def test_the_textbook_case_saturates_and_seven_bits_do_not():
    """(255, 255) . (127, 127) = 64770 -> 32767 (oneDNN's example); 7-bit weights: 2 x 255 x 64 = 32640."""
    a = np.full((1, 2), 255, np.uint8)
    saturated, per_channel, err = _pair_sums(a, np.full((2, 1), 127, np.int8))[1:]
    assert (saturated, int(per_channel[0]), int(err[0, 0])) == (1, 64770, 32767 - 64770)
    assert _pair_sums(a, np.full((2, 1), 64, np.int8))[1] == 0
    assert _pair_sums(a, np.full((2, 1), -64, np.int8))[1] == 0


def _qdq_conv(w_q: np.ndarray, *, x_scale=1 / 255, x_zp=0, pads=(0, 0, 0, 0), strides=(1, 1), group=1,
              shape=(1, 4, 5, 5), x_dtype=np.uint8) -> onnx.ModelProto:
    """x -> Q(u8) -> DQ -> Conv(DQ(int8 per-channel w)) -> Q -> DQ -> y."""
    m = w_q.shape[0]
    inits = [numpy_helper.from_array(np.array(x_scale, np.float32), "xs"),
             numpy_helper.from_array(np.array(x_zp, x_dtype), "xz"),
             numpy_helper.from_array(w_q, "w_quantized"),
             numpy_helper.from_array(np.full(m, 0.01, np.float32), "ws"),
             numpy_helper.from_array(np.zeros(m, np.int8), "wz"),
             numpy_helper.from_array(np.array(0.05, np.float32), "ys"),
             numpy_helper.from_array(np.array(128, np.uint8), "yz")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"]),
             helper.make_node("DequantizeLinear", ["w_quantized", "ws", "wz"], ["wd"], axis=0),
             helper.make_node("Conv", ["xd", "wd"], ["c"], name="conv", pads=list(pads), strides=list(strides),
                              group=group),
             helper.make_node("QuantizeLinear", ["c", "ys", "yz"], ["cq"]),
             helper.make_node("DequantizeLinear", ["cq", "ys", "yz"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


def test_analyse_finds_the_saturating_channel_only(tmp_path):
    w = np.zeros((2, 4, 1, 1), np.int8)
    w[0, :, 0, 0] = [127, 127, 3, 3]       # pairs (c0, c1): 255 x 254 = 64770 -> saturates
    w[1, :, 0, 0] = [50, 50, 127, -127]    # 255 x 100 = 25500 and 255 x (127 - 127) = 0: within int16
    path = tmp_path / "conv.onnx"
    onnx.save(_qdq_conv(w), str(path))
    x = np.ones((1, 4, 5, 5), np.float32)  # every code 255
    (layer,) = analyse(path, x)
    assert layer.weight == "w" and layer.axis == 0 and layer.op == "Conv"
    assert layer.channel_max_pair == (64770, 25500)
    assert layer.saturated == 25 and layer.pairs == 25 * 2 * 2  # one pair of channel 0 per output pixel
    # error in output steps: (32767 - 64770) x 1/255 x 0.01 / 0.05
    assert layer.max_error_steps == pytest.approx(32003 / 255 * 0.01 / 0.05, rel=1e-3)
    summary = summarise([layer], crops=1)
    assert summary["layers_saturating"] == 1 and summary["saturated"] == 25


def test_depthwise_convolutions_are_not_paired(tmp_path):
    path = tmp_path / "dw.onnx"
    onnx.save(_qdq_conv(np.full((4, 1, 3, 3), 127, np.int8), group=4, pads=(1, 1, 1, 1)), str(path))
    assert analyse(path, np.ones((1, 4, 5, 5), np.float32)) == []


def test_im2col_order_and_padding_give_ort_conv_sums(tmp_path):
    """Sum over K of a x w from the emulator's operands == ONNX Runtime's float conv of the same codes
    (the zero point, pads and strides are handled like the kernels; pairing order needs the CPU)."""
    rng = np.random.default_rng(3)
    w = rng.integers(-127, 128, (6, 4, 3, 3)).astype(np.int8)
    model = _qdq_conv(w, x_zp=7, pads=(1, 0, 2, 1), strides=(2, 1), shape=(1, 4, 7, 6))
    x = rng.uniform(-0.02, 0.9, (1, 4, 7, 6)).astype(np.float32)
    model.graph.output.append(helper.make_tensor_value_info("xq", TensorProto.UINT8, None))
    model.graph.output.append(helper.make_tensor_value_info("c", TensorProto.FLOAT, None))
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    xq, conv = sess.run(["xq", "c"], {"x": x})
    attrs = {"pads": [1, 0, 2, 1], "strides": [2, 1]}
    a = _im2col(xq[0], w.shape, attrs, 7).astype(np.int64)
    k_order = w.reshape(6, 4, 9).transpose(2, 1, 0).reshape(36, 6).astype(np.int64)
    acc = (a - 7) @ k_order  # zero point corrected afterwards, as the kernels do
    ref = conv[0].reshape(6, -1).T / (1 / 255 * 0.01)
    np.testing.assert_allclose(acc, ref, atol=0.05 * np.abs(ref).max() / 1000 + 1e-2)


def test_pair_safe_ranges_narrow_only_the_channels_that_need_it(tmp_path):
    w = np.zeros((2, 4, 1, 1), np.int8)
    w[0, :, 0, 0] = [127, 127, 3, 3]
    w[1, :, 0, 0] = [50, 50, 127, -127]    # max pair 25500: below 90 % of the int16 limit
    path = tmp_path / "conv.onnx"
    onnx.save(_qdq_conv(w), str(path))
    layers = analyse(path, np.ones((1, 4, 5, 5), np.float32))
    float_model = _qdq_conv(w)  # pair_safe_ranges reads the float weights by name from the model given
    float_model.graph.initializer.append(numpy_helper.from_array(w.astype(np.float32) * 0.01, "w"))
    onnx.save(float_model, str(tmp_path / "float.onnx"))
    ranges, summary = pair_safe_ranges(layers, tmp_path / "float.onnx", limit=0.9 * INT16_MAX)
    axis, r = ranges["w"]
    q = int(np.floor(127 * 0.9 * INT16_MAX / 64770))  # 57 -> at least 64
    assert axis == 0 and q < 64
    assert r[0] == pytest.approx(1.27 * 127 / 64) and r[1] == pytest.approx(1.27)  # channel 1 keeps its range
    assert summary["channels"] == 1 and summary["smallest_qmax"] == 64


def test_grouped_convolutions_pair_within_each_group(tmp_path):
    """Two groups of 2 input channels: group 0's weights saturate, group 1's do not."""
    w = np.zeros((4, 2, 1, 1), np.int8)
    w[:2, :, 0, 0] = 127
    w[2:, :, 0, 0] = 10
    path = tmp_path / "grouped.onnx"
    onnx.save(_qdq_conv(w, group=2), str(path))
    (layer,) = analyse(path, np.ones((1, 4, 5, 5), np.float32))
    assert layer.channel_max_pair == (64770, 64770, 5100, 5100)
    assert layer.saturated == 2 * 25 and layer.pairs == 4 * 25


def test_int8_activations_are_analysed_as_the_uint8_codes_x86_runs(tmp_path):
    """S8S8: ONNX Runtime on x86 adds 128 to int8 activation codes and runs U8S8 kernels, so the same
    input saturates the same pairs (zero point -128: code 127 -> 255)."""
    w = np.zeros((2, 4, 1, 1), np.int8)
    w[0, :, 0, 0] = [127, 127, 3, 3]
    w[1, :, 0, 0] = [50, 50, 127, -127]
    path = tmp_path / "s8.onnx"
    onnx.save(_qdq_conv(w, x_zp=-128, x_dtype=np.int8), str(path))
    (layer,) = analyse(path, np.ones((1, 4, 5, 5), np.float32))
    assert layer.channel_max_pair == (64770, 25500) and layer.saturated == 25
