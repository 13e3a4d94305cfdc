"""Source kinds come from one table (converters.sources.SOURCE_KINDS) and INT8 comes in as stages.

The .mnn kind was added as one entry: an MNN file gets its FP16 copy and its INT8 file through the
same pipeline (pending name, parity or keypoint check, card with provenance, one report). A kind
registered at run time is recognised, planned and run as its entry says: nothing else branches
on the kind.
"""
from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest

pytest.importorskip("onnx")  # build-time extra (convert)
from onnx_models import external_pose_net

from edgepose.backends import open_backend
from edgepose.converters import convert
from edgepose.converters import sources
from edgepose.converters.options import ConvertOptions
from edgepose.converters.quantize import Int8Options
from edgepose.errors import ConversionError, ParityError

CARD = dict(head="heatmap", num_keypoints=5, input_size=(64, 48), name="ext", mean=(0, 0, 0), std=(255, 255, 255))
INT8 = dict(calib="pinned:hand", engines=("mnn",), calib_count=4, speed=False, progress=False)


@pytest.fixture(scope="module")
def mnn_source(tmp_path_factory):
    """An MNN FP32 file with its card, as `edgepose convert` writes it from an ONNX model."""
    folder = tmp_path_factory.mktemp("mnn_source")
    external_pose_net(folder / "ext.onnx", size=(64, 48))  # non-square: MNN resamples it one level off (accepted)
    convert(folder / "ext.onnx", output_dir=folder, meta=CARD, images=[], simplify=False)
    return folder / "ext.mnn"


def test_an_mnn_source_gets_fp16_and_int8_stages(mnn_source, tmp_path):
    out = tmp_path / "out"
    report = convert(mnn_source, options=ConvertOptions(output_dir=out, fp16=True, images=[], name="copy"),
                     int8=Int8Options(strict=False, **INT8))
    assert [(s.name, s.source, s.precision) for s in report.stages] == [
        ("mnn->mnn-fp16", "ext.mnn", "fp16"), ("int8-mnn", "ext.mnn", "int8")]
    fp16 = report.stage("mnn->mnn-fp16")
    assert fp16.parity.passed and fp16.parity.reference == "ext.mnn" and fp16.details["fp16_weights"]
    assert fp16.size_bytes < mnn_source.stat().st_size * 0.7
    card = json.loads(open_backend(out / "copy.fp16.mnn").metadata)
    prov = card["provenance"]
    assert card["name"] == "ext" and prov["source"] == "ext.mnn" and prov["origin_source"] == "ext.onnx"
    assert prov["precision"] == "fp16" and "opset" not in prov  # the torch kind's provenance only
    engine = report.int8.engine("mnn")
    assert engine.fp32_artifact == mnn_source and engine.status in ("ok", "inaccurate")
    assert report.stage("int8-mnn").status == engine.status and engine.accuracy.samples > 0
    int8_card = json.loads(open_backend(out / "copy.int8.mnn").metadata)["provenance"]
    assert int8_card["precision"] == "int8" and int8_card["parent"] == "ext.mnn"
    assert sorted(p.name for p in out.iterdir()) == [
        "copy.fp16.mnn", "copy.int8.json", "copy.int8.mnn", "copy.report.json"]
    assert mnn_source.is_file()  # the source is never written


def test_an_engine_that_cannot_read_the_source_kind_fails_before_anything_runs(mnn_source, tmp_path):
    with pytest.raises(ConversionError, match="INT8 with onnxruntime needs an FP32 onnx or tflite model.*mnn"):
        convert(mnn_source, output_dir=tmp_path / "o", int8=Int8Options(**{**INT8, "engines": ("both",)}))
    assert not (tmp_path / "o").exists()


def test_a_kind_registered_at_run_time_is_recognised_planned_and_run_by_its_entry(mnn_source, tmp_path,
                                                                                 monkeypatch):
    """`.mnnmodel` files as a kind of their own, built from the mnn entry: one entry, no other change."""
    def resolve(path, **kwargs):
        return dataclasses.replace(sources._mnn_source(path, **kwargs), kind="mnnmodel")

    monkeypatch.setitem(sources.SOURCE_KINDS, "mnnmodel", dataclasses.replace(
        sources.SOURCE_KINDS["mnn"], suffixes=(".mnnmodel",), describe=".mnnmodel", resolve=resolve))
    src = tmp_path / "net.mnnmodel"
    src.write_bytes(mnn_source.read_bytes())
    report = convert(src, output_dir=tmp_path / "o", fp16=True, images=[])
    assert [s.name for s in report.stages] == ["mnn->mnn-fp16"] and report.ok
    assert report.stage("mnn->mnn-fp16").parity.reference == "net.mnnmodel"
    monkeypatch.delitem(sources.SOURCE_KINDS, "mnnmodel")
    with pytest.raises(Exception, match="unsupported model file type '.mnnmodel'; supported: .onnx, .tflite, .mnn"):
        convert(src, output_dir=tmp_path / "o2")


def test_options_object_and_keywords_are_one_thing(tmp_path):
    base = ConvertOptions(fp16=True, timeout=30)
    assert ConvertOptions.from_keywords(base, strict=False) == dataclasses.replace(base, strict=False)
    with pytest.raises(TypeError, match="unexpected keyword argument.*fp61"):
        convert("x.onnx", fp61=True)
    with pytest.raises(ConversionError, match="--timeout must be a positive"):
        ConvertOptions(timeout=float("nan"))
    with pytest.raises(ConversionError, match="plain file-name stem"):
        convert("x.onnx", options=base, name="../up")


def _edgepose(*args) -> subprocess.CompletedProcess:
    code = "import sys\nfrom edgepose.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, timeout=300)


def test_cli_int8_prints_one_report_and_exits_as_documented(mnn_source, tmp_path):
    """--json: one JSON document holding the INT8 part; a strict INT8 miss: the tables, then one error line, exit 1."""
    flags = ["--int8", "--calib", "pinned:hand", "--engine", "mnn", "--calib-count", "4", "--int8-speed-rounds",
             "0", "--no-photo"]
    proc = _edgepose("convert", mnn_source, "-o", tmp_path / "a", *flags, "--int8-no-strict", "--json")
    data = json.loads(proc.stdout)
    assert [s["name"] for s in data["stages"]] == ["int8-mnn"] and data["int8"]["engines"][0]["engine"] == "mnn"
    assert proc.returncode == (0 if data["ok"] else 1) and data["ok"] == (data["int8"]["engines"][0]["status"] == "ok")
    proc = _edgepose("convert", mnn_source, "-o", tmp_path / "b", *flags, "--int8-threshold", "0.0001")
    assert proc.returncode == 1, proc.stderr
    assert "int8-mnn" in proc.stdout and "INT8 ext: calibrated on 4 samples" in proc.stdout
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("edgepose convert: error:")]
    assert len(errors) == 1 and "INT8 is not accurate enough: mnn: mean keypoint error" in errors[0]
    assert not (tmp_path / "b" / "ext.int8.mnn").exists() and (tmp_path / "b" / "ext.int8.json").is_file()
    proc = _edgepose("convert", mnn_source, "-o", tmp_path / "c", "--calib", "pinned:hand")
    assert proc.returncode == 1 and "--calib is an INT8 option; add --int8" in proc.stderr
    assert not (tmp_path / "c").exists()  # refused before converting


def test_parity_error_declares_stage_and_output():
    err = ParityError("x", stage="onnx->mnn", output="maps")
    assert (err.stage, err.output, err.report, str(err)) == ("onnx->mnn", "maps", None, "x")
    assert ConversionError("y").stage is None
