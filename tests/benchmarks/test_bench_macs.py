"""MAC and parameter counts from ONNX graphs, against hand counts and a real torch export."""
from __future__ import annotations

import numpy as np
import pytest; pytest.importorskip("onnx")  # noqa: E702 - build-time extra (convert): skip without it
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgepose.benchmarks.macs import graph_cost


def _model(nodes, inputs, outputs, inits):
    graph = helper.make_graph(nodes, "g", inputs, outputs, inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


def _w(name, *shape):
    return numpy_helper.from_array(np.zeros(shape, np.float32), name)


def test_conv_grouped_deconv_gemm_matmul():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 16, 16])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 16, 16])
    z = helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 16, 5])
    nodes = [
        # 3x3 conv 8->16, stride 2, pad 1: out 1x16x8x8, each output 8*9 MACs
        helper.make_node("Conv", ["x", "w1"], ["c1"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
        # depthwise 3x3 on 16 ch: out 1x16x8x8, each output 1*9 MACs
        helper.make_node("Conv", ["c1", "w2"], ["c2"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=16),
        # deconv 4x4 s2 16->4: each input element feeds 4*16 MACs; input 1x16x8x8
        helper.make_node("ConvTranspose", ["c2", "w3"], ["y"], kernel_shape=[4, 4], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Flatten", ["c2"], ["f"]),                       # 1 x 1024
        helper.make_node("Gemm", ["f", "w4"], ["g"], transB=1),            # (1x1024) @ (1024x10)^T... w4 is 10x1024
        helper.make_node("Reshape", ["c2", "shape"], ["r"]),               # 1 x 16 x 64
        helper.make_node("MatMul", ["r", "w5"], ["z"]),                    # (16x64) @ (64x5) per batch
    ]
    inits = [_w("w1", 16, 8, 3, 3), _w("w2", 16, 1, 3, 3), _w("w3", 16, 4, 4, 4), _w("w4", 10, 1024),
             _w("w5", 64, 5), numpy_helper.from_array(np.array([1, 16, 64], np.int64), "shape")]
    cost = graph_cost(_model(nodes, [x], [y, z], inits))
    conv = 16 * 8 * 8 * 8 * 9 + 16 * 8 * 8 * 9
    deconv = 16 * 8 * 8 * 4 * 16
    assert cost.macs_by_op == {"Conv": conv, "ConvTranspose": deconv, "Gemm": 1024 * 10, "MatMul": 16 * 64 * 5}
    assert cost.macs == conv + deconv + 10240 + 5120
    # params: float initializers only (the int64 shape constant is not a weight)
    assert cost.params == 16 * 8 * 9 + 16 * 9 + 16 * 4 * 16 + 10 * 1024 + 64 * 5
    assert cost.unknown_shapes == ()


def test_real_torch_export_matches_analytic_count(tmp_path):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)  # shared 2-core machine: 2 torch threads ran 10-100x slower under load
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 12, 3, stride=2, padding=1), torch.nn.ReLU(),
                              torch.nn.ConvTranspose2d(12, 6, 4, stride=2, padding=1),
                              torch.nn.Flatten(), torch.nn.Linear(6 * 32 * 32, 7)).eval()
    path = tmp_path / "net.onnx"
    torch.onnx.export(net, (torch.zeros(1, 3, 32, 32),), str(path), opset_version=17, dynamo=False)
    cost = graph_cost(path)
    expected = 12 * 16 * 16 * 3 * 9 + 12 * 16 * 16 * 6 * 16 + 6 * 32 * 32 * 7
    assert cost.macs == expected
    assert cost.params == sum(p.numel() for p in net.parameters())
