"""Every registered model: builds, has the documented outputs, exports to ONNX with a dynamic
batch, and ONNX Runtime and MNN (FP32, native converter in a child process) agree with PyTorch.

Parametrised through the `built` fixture (conftest.py) over `list_models()`.
"""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from edgepose.models import create_model, get_spec
from edgepose.spec import ModelSpec

ORT_ATOL = 1e-4
MNN_ATOL = 1e-3


def _expected_shapes(built, batch: int, k: int = 16) -> dict[str, tuple]:
    shapes = {}
    for name in built.entry.output_names:
        if name == "coords":
            shapes[name] = (batch, k, 2)
        elif name == "scores":
            shapes[name] = (batch, k)
        elif name == "heatmaps":
            w, h = built.entry.input_size
            shapes[name] = (batch, k, h // 4, w // 4)  # SimpleBaseline: 1/4 of the input
        else:
            raise AssertionError(f"output {name!r} has no documented shape")
    return shapes


def _assert_close(got: dict, ref: dict, names, atol: float, tol, what: str) -> None:
    for name in names:
        limit = tol(ref[name], atol)
        err = float(np.abs(got[name] - ref[name]).max())
        assert err <= limit, f"{what}: {name} differs from PyTorch by {err:.3g} (limit {limit:.3g})"


def test_forward_shapes_and_ranges(built):
    x = built.inputs(2, seed=1)
    out = built.reference(x)
    assert tuple(out) == built.entry.output_names  # order = ONNX output order
    assert {k: v.shape for k, v in out.items()} == _expected_shapes(built, 2)
    for name, v in out.items():
        assert np.isfinite(v).all(), name
    if "coords" in out:
        assert (out["coords"] >= 0).all() and (out["coords"] <= 1).all()
    if "scores" in out:
        assert (out["scores"] >= 0).all() and (out["scores"] <= 1).all()
    # An untrained model must still depend on its input, or the parity tests below could not fail.
    other = built.reference(built.inputs(2, seed=2))
    for name in out:
        assert np.abs(other[name] - out[name]).max() > 10 * ORT_ATOL, f"{name} ignores the input"


def test_spec_matches_model(built):
    spec = get_spec(built.name)
    assert spec.name == built.name
    assert spec.input_size == built.entry.input_size == built.model.input_size
    assert spec.outputs == {n: n for n in built.model.output_names}
    assert tuple(built.model.output_names) == built.entry.output_names
    assert ModelSpec.from_json(spec.to_json()) == spec


def test_training_mode_and_other_keypoint_count(built):
    """A 5-keypoint build trains (training-only outputs, a gradient for every parameter) and,
    deployed, has the documented shapes for K=5. One build for both: building is the slow part."""
    torch.manual_seed(0)
    model = create_model(built.name, num_keypoints=5)  # training mode, not re-parameterised
    out = model(torch.from_numpy(built.inputs(2, seed=4)))
    assert set(built.entry.output_names) <= set(out)
    if built.entry.head != "heatmap":
        assert set(out) - set(built.entry.output_names), "no training-only outputs (sigma / logits)"
    sum(v.float().square().mean() for v in out.values()).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, f"parameters without gradient: {missing[:5]}"

    model.eval().switch_to_deploy()
    with torch.no_grad():
        out = model(torch.from_numpy(built.inputs(1, seed=3)))
    assert {k: tuple(v.shape) for k, v in out.items()} == _expected_shapes(built, 1, k=5)
    spec = get_spec(built.name, num_keypoints=5)
    assert spec.num_keypoints == 5 and not spec.keypoint_names and not spec.flip_pairs


def test_onnx_export_dynamic_batch_matches_torch(built, onnx_path, tol):
    graph = onnx.load(str(onnx_path)).graph
    assert [o.name for o in graph.output] == list(built.entry.output_names)
    assert [i.name for i in graph.input] == [built.entry.input_name]
    assert graph.input[0].type.tensor_type.shape.dim[0].dim_param  # symbolic batch
    ops = {n.op_type for n in graph.node}
    assert "Dropout" not in ops
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
    for batch in (1, 2):
        x = built.inputs(batch, seed=10 + batch)
        got = dict(zip(built.entry.output_names, sess.run(None, {built.entry.input_name: x})))
        _assert_close(got, built.reference(x), built.entry.output_names, ORT_ATOL, tol,
                      f"ONNX Runtime, batch {batch}")
    # No Reshape / Expand kept the traced batch size (1): a batch of 4 runs and gives 4 results.
    outs = sess.run(None, {built.entry.input_name: built.inputs(4, seed=30)})
    assert [o.shape[0] for o in outs] == [4] * len(outs)


def test_mnn_fp32_matches_torch(built, onnx_path, tmp_path, tol, monkeypatch):
    from edgepose.backends.mnn import MNNBackend
    from edgepose.converters.mnn_native import convert_to_mnn

    spec = get_spec(built.name)
    dst = tmp_path / f"{built.name}.mnn"
    # MNN's converter keeps weights in "./.__convert_external_data.bin" (in the working directory)
    # while it runs: two conversions in one directory at once silently swap weights. The child
    # inherits our cwd, so convert from a private directory.
    monkeypatch.chdir(tmp_path)
    convert_to_mnn(onnx_path, dst, framework="ONNX", biz_code=spec.to_json())
    backend = MNNBackend(dst, threads=1, precision="high")
    assert ModelSpec.from_json(backend.metadata) == spec
    for batch in (1, 2):
        x = built.inputs(batch, seed=20 + batch)
        got = backend.run({built.entry.input_name: x})
        assert set(got) == set(built.entry.output_names)
        _assert_close(got, built.reference(x), built.entry.output_names, MNN_ATOL, tol, f"MNN FP32, batch {batch}")
