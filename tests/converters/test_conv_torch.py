"""A ShuffleNetV2-DeepPose-like PyTorch model through every stage, checked with the real runtimes."""
from __future__ import annotations

import json

import numpy as np
import pytest; pytest.importorskip("onnx")  # noqa: E702 - build-time extra (convert): skip without it
import onnx
import pytest
import torch

from edgepose.backends import open_backend
from edgepose.converters import convert
from edgepose.converters.parity import TOLERANCES
from edgepose.spec import ModelSpec

STAGES = ["torch->onnx", "onnxsim", "onnx->mnn", "onnx->mnn-fp16"]


def test_every_stage_writes_its_artifact_under_a_predictable_name(deeppose_run):
    report, _, out = deeppose_run
    assert report.ok
    assert [s.name for s in report.stages] == STAGES
    assert {p.name for p in report.artifacts.values()} == {"tdp.onnx", "tdp.sim.onnx", "tdp.mnn", "tdp.fp16.mnn"}
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["tdp.onnx", "tdp.sim.onnx", "tdp.mnn", "tdp.fp16.mnn", "tdp.report.json"])  # no leftovers


def test_parity_is_measured_on_random_and_photo_inputs_within_tolerance(deeppose_run):
    report, _, _ = deeppose_run
    for stage in report.stages:
        p = stage.parity
        assert p is not None and p.passed, stage.name
        assert p.inputs[0].startswith("random(batch 2)") and p.inputs[1] == "photo:astronaut.png"
        (coords,) = p.outputs
        tol = TOLERANCES[stage.precision]
        assert coords.role == "coords" and coords.shape == (2, 16, 2)
        assert coords.max_abs <= tol.allowed_abs(coords.scale)
        assert coords.keypoint_px is not None and coords.keypoint_px <= tol.max_px
    # FP16 weights change the numbers a little, FP32 stages almost not at all
    fp32 = report.stage("onnx->mnn").parity.outputs[0].max_abs
    fp16 = report.stage("onnx->mnn-fp16").parity.outputs[0].max_abs
    assert fp32 < 1e-5 < fp16


def test_artifacts_match_the_pytorch_model_independently(deeppose_run, photo):
    """Re-run each artifact here, on a batch of 3 the pipeline never used."""
    _, model, out = deeppose_run
    x = np.random.default_rng(7).standard_normal((3, 3, 128, 96)).astype(np.float32)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    for name, atol in (("tdp.onnx", 1e-5), ("tdp.sim.onnx", 1e-5), ("tdp.mnn", 1e-5), ("tdp.fp16.mnn", 3e-3)):
        backend = open_backend(out / name)
        got = backend.run({"input": x})["coords"]
        assert got.shape == (3, 16, 2), name  # the batch stayed dynamic through every stage
        np.testing.assert_allclose(got, ref, atol=atol, err_msg=name)


def test_model_card_and_provenance_are_in_every_artifact(deeppose_run):
    report, _, out = deeppose_run
    for stage in report.stages:
        text = open_backend(stage.artifact).metadata
        spec = ModelSpec.from_json(text)
        assert spec.head == "regression" and spec.num_keypoints == 16 and spec.input_size == (96, 128)
        assert spec.input_name == "input" and spec.outputs == {"coords": "coords"}
        prov = spec.provenance
        assert prov["stage"] == stage.name and prov["precision"] == stage.precision
        assert prov["source"] == "TinyShuffleDeepPose" and prov["opset"] == 17
        assert prov["tools"]["torch"] == torch.__version__ and prov["tools"]["onnx"] == onnx.__version__
        if stage.artifact.suffix == ".mnn":
            assert "MNN" in prov["tools"] and "onnxsim" in prov["tools"]
    assert ModelSpec.from_json(open_backend(out / "tdp.fp16.mnn").metadata).provenance["parent"] == "tdp.sim.onnx"


def test_onnx_export_is_opset_17_with_named_dynamic_batch_io(deeppose_run):
    _, _, out = deeppose_run
    model = onnx.load(str(out / "tdp.onnx"))
    assert next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) == 17
    (inp,), (outp,) = model.graph.input, model.graph.output
    assert inp.name == "input" and outp.name == "coords"
    assert inp.type.tensor_type.shape.dim[0].dim_param == "batch"
    assert [d.dim_value for d in inp.type.tensor_type.shape.dim[1:]] == [3, 128, 96]


def test_report_json_and_summary(deeppose_run):
    report, _, out = deeppose_run
    data = json.loads((out / "tdp.report.json").read_text())
    assert data["ok"] is True and [s["name"] for s in data["stages"]] == STAGES
    summary = data["summary"]
    assert summary["onnx_nodes_after"] < summary["onnx_nodes_before"]  # BN folded, shape ops removed
    sizes = {s["artifact"]: s["size_bytes"] for s in data["stages"]}
    assert summary["fp16_bytes_saved"] == sizes["tdp.mnn"] - sizes["tdp.fp16.mnn"] > 0
    for s in data["stages"]:
        assert s["parity"]["passed"] and s["parity"]["worst_output"] == "coords"
    table = report.format_table()
    for name in ("tdp.onnx", "tdp.sim.onnx", "tdp.mnn", "tdp.fp16.mnn", "FP16 weights save", "ONNX nodes"):
        assert name in table


def test_heatmap_model_reports_argmax_displacement(tmp_path):
    from nets import heatmap_spec, tiny_heatmap

    report = convert(tiny_heatmap(), output_dir=tmp_path, spec=heatmap_spec(), name="hm", images=[])
    assert report.ok and [s.name for s in report.stages] == STAGES[:3]
    out = report.stage("onnx->mnn").parity.outputs[0]
    assert out.role == "heatmaps" and out.shape == (2, 16, 32, 24)
    assert out.keypoint_px == 0.0  # FP32 MNN finds the same peaks


def test_static_batch_and_no_simplify(tmp_path):
    from nets import deeppose_spec, tiny_deeppose

    report = convert(tiny_deeppose(), output_dir=tmp_path, spec=deeppose_spec(), name="s",
                     dynamic_batch=False, simplify=False, images=[], input_shape=(3, 3, 128, 96))
    assert [s.name for s in report.stages] == ["torch->onnx", "onnx->mnn"]
    model = onnx.load(str(tmp_path / "s.onnx"))
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_value == 3
    assert report.stage("onnx->mnn").parity.inputs[0] == "random(batch 3)"


def test_torch_module_without_spec_needs_an_input_shape(tmp_path):
    from nets import tiny_deeppose

    from edgepose.errors import ConversionError

    with pytest.raises(ConversionError, match="input shape"):
        convert(tiny_deeppose(), output_dir=tmp_path)
    report = convert(tiny_deeppose(), output_dir=tmp_path, input_shape=(1, 3, 64, 64), name="nospec")
    assert report.ok and any("no model card" in w for w in report.warnings)
    assert open_backend(tmp_path / "nospec.mnn").metadata is None
    assert report.stage("onnx->mnn").parity.inputs == ["random(batch 2)"]  # no spec: no photo
