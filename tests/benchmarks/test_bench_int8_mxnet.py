"""INT8 and MXNet-fixture wiring of the harness: variants -> engines, cached reports -> files,
groups, missing fixtures, and (when the fixtures are built) a real conversion checked against MXNet."""
from __future__ import annotations

import json

import numpy as np
import pytest

from edgepose.benchmarks import int8_source as i8
from edgepose.benchmarks import mxnet_source as mx
from edgepose.benchmarks.models_source import GROUP_VARIANTS, MODEL_GROUPS, expand_names, group_variants, resolve_for
from edgepose.benchmarks.variants import parse_variants


def test_int8_engines_from_variants():
    vs = parse_variants("mnn-fp16,ort-int8,mnn-int8,ort-fp32,mnn-int8")
    assert i8.int8_engines(vs) == ("onnxruntime", "mnn")
    assert i8.int8_engines(parse_variants("mnn-fp32,ort-fp32,tflite")) == ()


def test_int8_key_is_stable_and_dir_is_beside_fp32(tmp_path):
    assert i8.int8_key() == i8.int8_key() and len(i8.int8_key()) == 12
    assert i8.int8_dir(tmp_path).parent == tmp_path and i8.int8_dir(tmp_path).name.startswith("int8-")


def test_calibration_set_fits_the_model():
    assert i8.calib_for("hand_landmark_lite") == "pinned:hand"
    assert i8.calib_for("deeppose") == "pinned:person"


def _report(tmp_path, *, mnn_file=True):
    (tmp_path / "m.int8.onnx").write_bytes(b"x")
    (tmp_path / "m.onnx").write_bytes(b"x")
    if mnn_file:
        (tmp_path / "m.int8.mnn").write_bytes(b"x")
    data = {"model": "m", "calibration": {"source": "pinned:person"}, "engines": [
        {"engine": "mnn", "status": "inaccurate", "artifact": "m.int8.mnn", "fp32_artifact": "m.mnn",
         "details": {"method": "EMA"}, "accuracy": {"mean_px_256": 21.4, "max_px_256": 133.0, "pck": 0.23}},
        {"engine": "onnxruntime", "status": "ok", "artifact": "m.int8.onnx", "fp32_artifact": "m.onnx",
         "details": {"method": "minmax"}, "accuracy": {"mean_px_256": 1.0, "max_px_256": 2.0, "pck": 1.0}},
    ]}
    (tmp_path / "m.int8.json").write_text(json.dumps(data))
    return data


def test_artifacts_from_report_per_engine_and_fp32_onnx(tmp_path):
    data = _report(tmp_path)
    arts = i8.artifacts_from_report(data, tmp_path, ("mnn", "onnxruntime"))
    assert arts == {("mnn", "int8"): tmp_path / "m.int8.mnn", ("onnx", "int8"): tmp_path / "m.int8.onnx",
                    ("onnx", "fp32"): tmp_path / "m.onnx"}
    assert i8.artifacts_from_report(data, tmp_path, ("mnn",)) == {("mnn", "int8"): tmp_path / "m.int8.mnn"}
    failed = {"engines": [{"engine": "mnn", "status": "failed", "artifact": None, "error": "segfault"}]}
    assert i8.artifacts_from_report(failed, tmp_path, ("mnn",)) == {}
    acc = i8.accuracy_by_engine(data)
    assert acc["mnn"]["mean_px_256"] == 21.4 and acc["onnxruntime"]["method"] == "minmax"


def test_cached_report_is_reused_only_while_its_files_exist(tmp_path):
    _report(tmp_path)
    assert i8._load_report(tmp_path / "m.int8.json")["model"] == "m"
    (tmp_path / "m.int8.mnn").unlink()
    assert i8._load_report(tmp_path / "m.int8.json") is None
    (tmp_path / "bad.int8.json").write_text("{not json")
    assert i8._load_report(tmp_path / "bad.int8.json") is None


def test_groups_and_their_default_variants():
    names = expand_names(["table-b"])
    assert names[0] == "mxnet:resnet18_v1b" and "mxnet:resnet50_v1d_0.11" in names and len(names) == 10
    from edgepose.benchmarks.table_b import PUBLISHED
    originals = {f"mxnet:{o}" for o, _, _ in PUBLISHED.values()}
    assert {f"mxnet:{m}" for m in PUBLISHED} | originals == set(names)  # every published row and its original
    assert expand_names(["table-c"]) == list(MODEL_GROUPS["table-c"])
    assert group_variants(["table-b"]) == GROUP_VARIANTS["table-b"]
    assert group_variants(["table-b", "table-c"]) == ("mnn-fp32", "ort-fp32", "mnn-int8", "ort-int8")
    assert group_variants(["table-b", "deeppose"]) is None and group_variants(None) is None
    for vs in GROUP_VARIANTS.values():
        parse_variants(list(vs))


def test_missing_fixtures_say_how_to_build_them(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEPOSE_MXNET_FIXTURES", str(tmp_path / "none"))
    with pytest.raises(mx.FixturesMissingError, match="python -m edgepose.converters.mxnet.fixtures"):
        mx.locate_fixtures()
    with pytest.raises(mx.FixturesMissingError, match="edgepose bench table-b"):
        resolve_for("mxnet:resnet18_v1b", parse_variants("mnn-fp32"), cache=tmp_path)


def test_unknown_fixture_model_is_named(tmp_path, monkeypatch):
    (tmp_path / "fx").mkdir()
    (tmp_path / "fx" / "manifest.json").write_text(json.dumps({"models": {"resnet18_v1b": {}}}))
    monkeypatch.setenv("EDGEPOSE_MXNET_FIXTURES", str(tmp_path / "fx"))
    with pytest.raises(mx.FixturesMissingError, match="resnet101_v1d.*resnet18_v1b"):
        mx.mxnet_source("mxnet:resnet101_v1d", cache=tmp_path)


def test_classifier_calibration_crops_pinned_photos():
    calib = mx.classifier_calibration(224, 160, count=5)
    assert calib.crops.shape == (5, 160, 224, 3) and calib.crops.dtype == np.uint8
    assert len(set(calib.names)) == 5 and not any(n.startswith("zidane") for n in calib.names)  # held-out photo
    spec = mx.classifier_spec("m", (1, 3, 160, 224))
    x = calib.tensors(spec)
    assert x.shape == (5, 3, 160, 224)
    # ImageNet normalisation of RGB: channel 0 is red = BGR channel 2.
    expect = (calib.crops[0, 10, 20, 2] - mx.IMAGENET_MEAN[0]) / mx.IMAGENET_STD[0]
    assert x[0, 0, 10, 20] == pytest.approx(expect, rel=1e-5)


def _fixtures_or_skip():
    try:
        return mx.locate_fixtures()
    except mx.FixturesMissingError as exc:
        pytest.skip(str(exc))


def test_fixture_model_converts_and_matches_mxnet(tmp_path):
    """Real conversion (pipeline: MXNet -> ONNX -> onnxsim -> MNN) of the smallest ResNet fixture; ORT and
    MNN outputs of the cached files agree with MXNet's own on the fixture input; INT8 (ORT) runs."""
    folder = _fixtures_or_skip()
    from edgepose.backends import open_backend

    name = "resnet18_v1b_0.89"
    source = resolve_for(f"mxnet:{name}", parse_variants("mnn-fp32,ort-fp32,ort-int8"), cache=tmp_path)
    assert source.raw_only and source.kind == "mxnet"
    assert {("onnx", "fp32"), ("mnn", "fp32"), ("onnx", "int8")} <= set(source.artifacts)
    ref = np.load(folder / "models" / f"{name}.npz")
    x, want = ref["input__data"], ref["output__0"]
    for fmt, runtime in (("onnx", "onnxruntime"), ("mnn", "mnn")):
        backend = open_backend(source.artifacts[(fmt, "fp32")], runtime, threads=1)
        got = next(iter(backend.run({backend.input_names[0]: x}).values()))
        np.testing.assert_allclose(got.reshape(want.shape), want, rtol=1e-3, atol=1e-3 * np.abs(want).max())
    q = open_backend(source.artifacts[("onnx", "int8")], "onnxruntime", threads=1)
    out = next(iter(q.run({q.input_names[0]: x}).values()))
    assert out.shape == want.shape and np.isfinite(out).all()
    again = resolve_for(f"mxnet:{name}", parse_variants("mnn-fp32,ort-int8"), cache=tmp_path)  # cached
    assert again.artifacts[("onnx", "int8")].stat().st_mtime == source.artifacts[("onnx", "int8")].stat().st_mtime


def test_mixed_precision_steps_aside_for_a_model_without_keypoints(tmp_path):
    """ONNX Runtime INT8 with the defaults (mixed precision on) of a real classifier: its 1000-way output
    is no keypoint set to rank float tensors by, so the file is all-INT8 and the report says why."""
    _fixtures_or_skip()
    from edgepose.converters.quantize import ort_engine

    name = "resnet18_v1b_0.89"
    source = resolve_for(f"mxnet:{name}", parse_variants("ort-fp32"), cache=tmp_path)
    fp32 = source.artifacts[("onnx", "fp32")]
    spec = mx.classifier_spec(name, (1, 3, 224, 224))
    calib = mx.classifier_calibration(spec.input_size[0], spec.input_size[1], count=4)
    dst = tmp_path / "r18.int8.onnx"
    details = ort_engine.quantize(fp32, dst, calib, spec, spec.with_provenance(precision="int8"))
    assert "outputs not decodable as keypoints" in details["float_fallback"]["skipped"]
    assert dst.is_file()


def test_merge_reports_replaces_only_the_retried_engines(tmp_path):
    data = _report(tmp_path)
    data["engines"][0].update(status="failed", artifact=None)
    assert not i8._has_file(data, "mnn") and i8._has_file(data, "onnxruntime")
    retry = {"engines": [{"engine": "mnn", "status": "ok", "artifact": "m.int8.mnn"}]}
    merged = i8.merge_reports(data, retry)
    assert [e["engine"] for e in merged["engines"]] == ["onnxruntime", "mnn"]
    assert i8._has_file(merged, "mnn") and merged["calibration"] == data["calibration"]
    assert data["engines"][0]["status"] == "failed"  # the original is not changed
