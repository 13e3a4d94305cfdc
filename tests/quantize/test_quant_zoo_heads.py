"""ONNX Runtime INT8 of the zoo's SimDR head (real export, real quantiser): the parts ORT would break stay float."""
from __future__ import annotations

import pytest; pytest.importorskip("onnx")  # noqa: E702 - build-time extra (convert): skip without it
import onnx
import pytest
import torch

from edgepose.converters.metadata import embed_in_onnx
from edgepose.converters.quantize import Int8Options, quantize_int8
from edgepose.models import create_model, get_spec


@pytest.fixture(scope="module")
def simdr_norm_onnx(tmp_path_factory):
    torch.set_num_threads(1)
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("simdr") / "simdr_norm.onnx"
    model = create_model("simdr_norm", deploy=True)
    spec = get_spec("simdr_norm")
    torch.onnx.export(model, torch.randn(1, 3, 256, 256), str(path), dynamo=False, opset_version=17,
                      input_names=[spec.input_name or "input"], output_names=list(model.output_names))
    graph = onnx.load(str(path))
    embed_in_onnx(graph, spec)
    onnx.save(graph, str(path))
    return path


def test_simdr_int8_keeps_softmax_float_and_converts_deconvs(simdr_norm_onnx, tmp_path, monkeypatch):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    report = quantize_int8({"onnx": simdr_norm_onnx}, calib="pinned:person", output_dir=tmp_path, stem="s",
                           options=Int8Options(engines=("onnxruntime",), calib_count=8, strict=False, speed=False,
                                               progress=False))
    ort = report.engine("onnxruntime")
    graph = onnx.load(str(ort.artifact)).graph
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in graph.initializer}
    softmax = [n for n in graph.node if n.op_type == "Softmax"]
    assert len(softmax) == 2  # the x and y distributions
    assert sorted(ort.details["float_ops"]) == sorted(n.name for n in softmax) and ort.details["keep_float"] == []
    for node in softmax:
        # Quantised as a Softmax, ORT fixes the output range to [0, 1] (scale 1/256); left float, the
        # probabilities are quantised by their consumer with their own calibrated, much finer range.
        q = [n for n in graph.node if n.op_type == "QuantizeLinear" and n.input[0] == node.output[0]]
        assert all(float(inits[n.input[1]]) < 0.5 / 256 for n in q), [float(inits[n.input[1]]) for n in q]
    assert not any(n.op_type == "ConvTranspose" for n in graph.node)
    assert ort.details["conv_transpose_to_conv"] == 2
    # ORT's symbolic shape inference gives up on this graph (it then dumps a 26 MB model into the
    # working directory); pre-processing falls back to plain shape inference and leaves no debris.
    assert ort.details["pre_process"] == "quant_pre_process (no symbolic shapes)"
    assert list(cwd.iterdir()) == []
    # Random weights, so this is not an accuracy claim: with the Softmax quantised the same file was
    # 30+ px off FP32 (PCK 0); float Softmax brings it to a few px.
    assert ort.accuracy.mean_px_256 < 8, ort.accuracy
