"""An ONNX file written outside the project (onnx.helper): Resize, Concat, HardSwish, residual Adds, dynamic batch."""
from __future__ import annotations

import numpy as np
import pytest; pytest.importorskip("onnx")  # noqa: E702 - build-time extra (convert): skip without it
import onnx
import onnxruntime as ort
import pytest
from onnx_models import external_pose_net

from edgepose.backends import open_backend
from edgepose.converters import convert
from edgepose.errors import MetadataError
from edgepose.spec import ModelSpec

CARD = dict(head="heatmap", num_keypoints=5, input_size=(64, 48), outputs={"heatmaps": "maps"}, name="ext")


@pytest.fixture(scope="module")
def ext_run(tmp_path_factory, photo):
    src_dir = tmp_path_factory.mktemp("src")
    src = src_dir / "ext.onnx"
    external_pose_net(src)
    out = tmp_path_factory.mktemp("out")
    report = convert(src, output_dir=out, meta=CARD, fp16=True, images=[photo])
    return src, out, report


def test_onnx_source_goes_through_onnxsim_and_both_mnn_precisions(ext_run):
    src, out, report = ext_run
    assert report.ok and [s.name for s in report.stages] == ["onnxsim", "onnx->mnn", "onnx->mnn-fp16"]
    assert sorted(p.name for p in out.iterdir()) == ["ext.fp16.mnn", "ext.mnn", "ext.report.json", "ext.sim.onnx"]
    assert report.stage("onnxsim").source == "ext.onnx"
    for s in report.stages:
        assert s.parity.passed and s.parity.outputs[0].role == "heatmaps"


def test_every_operator_kind_survives_and_mnn_matches_ort_at_another_batch(ext_run):
    src, out, _ = ext_run
    ops = {n.op_type for n in onnx.load(str(out / "ext.sim.onnx")).graph.node}
    assert {"Resize", "Concat", "HardSwish", "Add"} <= ops
    x = np.random.default_rng(3).uniform(0, 255, (3, 3, 48, 64)).astype(np.float32)
    ref = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"]).run(None, {"image": x})[0]
    got = open_backend(out / "ext.mnn").run({"image": x})["maps"]
    assert got.shape == (3, 5, 24, 32)
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-3 * np.abs(ref).max())
    sim = onnx.load(str(out / "ext.sim.onnx"))
    assert sim.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "N"  # dynamic batch kept


def test_card_from_flags_is_embedded_and_the_source_left_untouched(ext_run):
    src, out, _ = ext_run
    assert not any(p.key == "edgepose" for p in onnx.load(str(src)).metadata_props)
    spec = ModelSpec.from_json(open_backend(out / "ext.fp16.mnn").metadata)
    assert (spec.head, spec.num_keypoints, spec.input_size, spec.input_name) == ("heatmap", 5, (64, 48), "image")
    assert spec.provenance["source"] == "ext.onnx" and len(spec.provenance["source_sha256"]) == 64
    assert spec.provenance["precision"] == "fp16" and "torch" not in spec.provenance["tools"]


def test_reconverting_an_artifact_keeps_its_card_and_origin(ext_run, tmp_path):
    _, out, _ = ext_run
    report = convert(out / "ext.sim.onnx", output_dir=tmp_path, images=[])
    assert report.ok and report.stem == "ext.sim"
    spec = ModelSpec.from_json(open_backend(tmp_path / "ext.sim.mnn").metadata)
    assert spec.head == "heatmap" and spec.provenance["source"] == "ext.sim.onnx"
    assert spec.provenance["origin_source"] == "ext.onnx"


def test_card_that_contradicts_the_model_is_refused(tmp_path):
    src = tmp_path / "ext.onnx"
    external_pose_net(src)
    with pytest.raises(MetadataError, match=r"input_size \(w, h\)=\(48, 64\).*\(N, 3, 48, 64\)"):
        convert(src, output_dir=tmp_path / "o", meta={**CARD, "input_size": (48, 64)})
    with pytest.raises(MetadataError, match="does not have; its outputs are \\['maps'\\]"):
        convert(src, output_dir=tmp_path / "o", meta={**CARD, "outputs": {"heatmaps": "heat"}})
    with pytest.raises(MetadataError, match="missing --num-keypoints"):
        convert(src, output_dir=tmp_path / "o", meta={"head": "heatmap", "input_size": (64, 48)})
    assert not list((tmp_path / "o").glob("*.mnn"))
