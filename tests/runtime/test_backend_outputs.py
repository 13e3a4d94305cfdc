"""Backend.run(feeds, outputs): only the named outputs come back, with the values of a full run,
on every engine; a name the model does not have is a ShapeError that lists the real ones."""
from __future__ import annotations

import numpy as np
import pytest

from edgepose import Predictor
from edgepose.backends import open_backend
from edgepose.errors import ShapeError


def _check_subset(backend):
    rng = np.random.default_rng(0)
    feeds = {t.name: rng.random((1, *t.shape[1:]), dtype=np.float32) for t in backend.inputs}
    full = backend.run(feeds)
    assert set(full) == set(backend.output_names)
    last = backend.output_names[-1:]
    for names in (backend.output_names[:1], last, backend.output_names[::2]):
        part = backend.run(feeds, names)
        assert list(part) == [n for n in backend.output_names if n in names]
        for name in names:
            np.testing.assert_array_equal(part[name], full[name])
    with pytest.raises(ShapeError, match="no output named 'nope'"):
        backend.run(feeds, ["nope"])


def test_mnn_returns_only_the_named_outputs(blazepose_mnn):
    _check_subset(open_backend(blazepose_mnn["fp16"], "mnn"))


@pytest.mark.parametrize("engine", ["litert", "openvino"])
def test_tflite_engines_return_only_the_named_outputs(blazepose_tflite, engine):
    pytest.importorskip({"litert": "ai_edge_litert", "openvino": "openvino"}[engine])
    _check_subset(open_backend(blazepose_tflite, engine))


def test_onnxruntime_returns_only_the_named_outputs(tmp_path):
    pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 3, 4, 4]) for n in ("double", "plus", "square")]
    two = helper.make_tensor("two", TensorProto.FLOAT, [], [2.0])
    graph = helper.make_graph([helper.make_node("Mul", ["x", "two"], ["double"]),
                               helper.make_node("Add", ["x", "two"], ["plus"]),
                               helper.make_node("Mul", ["x", "x"], ["square"])], "g", [x], outs, [two])
    path = tmp_path / "three.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    _check_subset(open_backend(path, "onnxruntime"))


def test_the_predictor_reads_only_the_outputs_its_head_uses(blazepose_mnn, photos):
    """BlazePose full has five outputs; landmarks, presence and heatmap are the three its head reads
    (the segmentation mask and world landmarks are not converted and copied per call)."""
    import cv2

    p = Predictor(blazepose_mnn["fp16"])
    assert len(p.backend.output_names) == 5
    assert sorted(p.head_outputs) == sorted(set(p.spec.outputs.values()))
    image = cv2.imread(str(photos["astronaut"]))
    tensor, _, _ = p.prepare(image, [[95, 10, 470, 512]])
    out = p.run_tensor(tensor)
    assert set(out) == set(p.spec.outputs)
    full = p.backend.run({p.backend.input_names[0]: tensor})
    for role, name in p.spec.outputs.items():
        np.testing.assert_array_equal(out[role], full[name])


def test_litert_kernels_choose_the_op_resolver(blazepose_tflite):
    """TFLite's built-in kernels and XNNPACK are two correct FP32 runs of the same file: close, not
    bit-equal (the noise floor measure_tolerances reports); an unknown name is refused."""
    pytest.importorskip("ai_edge_litert")
    from edgepose.backends.litert import LiteRTBackend
    from edgepose.errors import BackendError

    xnn, ref = LiteRTBackend(blazepose_tflite), LiteRTBackend(blazepose_tflite, kernels="builtin")
    x = {xnn.input_names[0]: np.random.default_rng(1).random((1, 256, 256, 3), dtype=np.float32)}
    a, b = xnn.run(x), ref.run(x)
    for name in a:
        scale = float(np.abs(a[name]).max()) or 1.0
        assert float(np.abs(a[name] - b[name]).max()) / scale < 1e-3, name
    with pytest.raises(BackendError, match="unknown LiteRT kernels 'gpu'"):
        LiteRTBackend(blazepose_tflite, kernels="gpu")
