"""ONNX graphs built by hand with onnx.helper: models "made outside the project".

external_pose_net: a small keypoint net as another toolchain would write it - Conv stem,
HardSwish, two residual Adds, Resize (nearest, 2x) back up, a skip Concat, a 1x1 conv to
heatmaps; dynamic batch ("N"), no edgepose metadata.
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def _init(name: str, array: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(array), name)


def external_pose_net(path, *, size=(64, 48), k: int = 5, seed: int = 0, opset: int = 17) -> None:
    """Write the net to `path`; input "image" (N, 3, H, W), output "maps" (N, k, H/2, W/2)."""
    rng = np.random.default_rng(seed)
    w, h = size
    c = 8

    def conv_w(cout, cin, ks):
        return (rng.standard_normal((cout, cin, ks, ks)) * np.sqrt(2.0 / (cin * ks * ks))).astype(np.float32)

    inits = [
        _init("stem_w", conv_w(c, 3, 3)), _init("stem_b", rng.standard_normal(c).astype(np.float32) * 0.1),
        _init("r1_w", conv_w(c, c, 3)), _init("r1_b", np.zeros(c, np.float32)),
        _init("down_w", conv_w(2 * c, c, 3)), _init("down_b", np.zeros(2 * c, np.float32)),
        _init("r2_w", conv_w(2 * c, 2 * c, 3)), _init("r2_b", np.zeros(2 * c, np.float32)),
        _init("head_w", conv_w(k, 3 * c, 1)), _init("head_b", np.zeros(k, np.float32)),
        _init("scales", np.array([1.0, 1.0, 2.0, 2.0], np.float32)),
    ]
    nodes = [
        helper.make_node("Conv", ["image", "stem_w", "stem_b"], ["s"], pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("HardSwish", ["s"], ["s_act"]),
        helper.make_node("Conv", ["s_act", "r1_w", "r1_b"], ["r1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["r1"], ["r1_act"]),
        helper.make_node("Add", ["s_act", "r1_act"], ["res1"]),  # residual add 1
        helper.make_node("Conv", ["res1", "down_w", "down_b"], ["d"], pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("HardSwish", ["d"], ["d_act"]),
        helper.make_node("Conv", ["d_act", "r2_w", "r2_b"], ["r2"], pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["d_act", "r2"], ["res2"]),  # residual add 2
        helper.make_node("Resize", ["res2", "", "scales"], ["up"], mode="nearest",
                         coordinate_transformation_mode="asymmetric", nearest_mode="floor"),
        helper.make_node("Concat", ["res1", "up"], ["cat"], axis=1),
        helper.make_node("Conv", ["cat", "head_w", "head_b"], ["maps"]),
    ]
    graph = helper.make_graph(
        nodes, "external_pose_net",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, h, w])],
        [helper.make_tensor_value_info("maps", TensorProto.FLOAT, ["N", k, h // 2, w // 2])],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="hand-written (onnx.helper)")
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def single_op_net(path, op_type: str, *, shape=(1, 4, 8, 8), opset: int = 18) -> None:
    """Relu -> <op_type> -> output: for operators a converter may not support (e.g. Mish, Hardmax)."""
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["r"]), helper.make_node(op_type, ["r"], ["y"])], f"single_{op_type}",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(shape))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
