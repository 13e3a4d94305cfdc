"""Bad inputs and failing stages become clear edgepose errors, and never leave half-written artifacts."""
from __future__ import annotations

import json

import pytest
pytest.importorskip("onnx")  # build-time extra (convert): skip without it
from onnx_models import external_pose_net, single_op_net

from edgepose.converters import Tolerance, convert, mnn_native
from edgepose.errors import (ConversionError, ImageError, MetadataError, ModelFileError, ParityError,
                             UnsupportedOperatorError)

CARD = dict(head="heatmap", num_keypoints=5, input_size=(64, 48), outputs={"heatmaps": "maps"})
IMPOSSIBLE = {"fp16": Tolerance(rtol=0.0, atol=0.0, min_cosine=1.0, max_px=0.0)}


def _no_partial_files(folder) -> None:
    leftovers = [p.name for p in folder.iterdir() if p.name.startswith(".") or p.suffix in (".part", ".unverified")]
    assert leftovers == []


@pytest.fixture
def ext(tmp_path):
    src = tmp_path / "src" / "ext.onnx"
    src.parent.mkdir()
    external_pose_net(src)
    return src


def test_corrupt_onnx(tmp_path):
    good = tmp_path / "good.onnx"
    external_pose_net(good)
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])  # truncated download
    with pytest.raises(ModelFileError, match="bad.onnx is not a readable ONNX model.*truncated"):
        convert(bad, output_dir=tmp_path / "out")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00\x01 definitely not protobuf \xff" * 10)
    with pytest.raises(ModelFileError, match="junk.onnx"):
        convert(junk, output_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_missing_paths(tmp_path, ext):
    with pytest.raises(ModelFileError, match="model file not found: .*nope.onnx"):
        convert(tmp_path / "nope.onnx", output_dir=tmp_path)
    with pytest.raises(ModelFileError, match="MXNet params file not found"):
        (tmp_path / "m-symbol.json").write_text("{}")
        convert(tmp_path / "m-symbol.json", params=tmp_path / "m-0000.params", output_dir=tmp_path)
    with pytest.raises(ImageError, match="image file not found"):
        convert(ext, output_dir=tmp_path / "o", meta=CARD, images=[tmp_path / "missing.jpg"])


def test_output_dir_that_is_a_file(tmp_path, ext):
    target = tmp_path / "taken"
    target.write_text("x")
    with pytest.raises(ConversionError, match="output directory .*taken is an existing file"):
        convert(ext, output_dir=target)
    assert target.read_text() == "x"


def test_unsupported_operator_is_named_and_leaves_no_mnn(tmp_path):
    src = tmp_path / "mish.onnx"
    single_op_net(src, "Mish")
    out = tmp_path / "out"
    with pytest.raises(UnsupportedOperatorError, match=r"unsupported operator\(s\) Mish") as info:
        convert(src, output_dir=out, images=[])
    assert info.value.operator == "Mish"
    assert not list(out.glob("*.mnn"))
    _no_partial_files(out)
    report = json.loads((out / "mish.report.json").read_text())
    assert report["ok"] is False and "Mish" in report["error"]
    assert [s["status"] for s in report["stages"]] == ["ok", "failed"]  # onnxsim passed, MNN failed


def test_parity_failure_names_stage_and_output_and_keeps_no_artifact(tmp_path, ext):
    out = tmp_path / "out"
    with pytest.raises(ParityError, match=r"stage onnx->mnn-fp16 .*output 'maps'") as info:
        convert(ext, output_dir=out, meta=CARD, fp16=True, images=[], tolerances=IMPOSSIBLE)
    assert info.value.stage == "onnx->mnn-fp16" and info.value.output == "maps"
    assert info.value.report.stages[-1].status == "failed"
    assert sorted(p.name for p in out.iterdir()) == ["ext.mnn", "ext.report.json", "ext.sim.onnx"]
    report = json.loads((out / "ext.report.json").read_text())
    assert report["ok"] is False and report["error"].startswith("ParityError")


def test_no_strict_keeps_the_artifact_with_a_warning(tmp_path, ext):
    report = convert(ext, output_dir=tmp_path, meta=CARD, fp16=True, images=[], tolerances=IMPOSSIBLE, strict=False)
    stage = report.stage("onnx->mnn-fp16")
    assert stage.status == "parity-warning" and stage.artifact.is_file()
    assert report.ok and any("parity check failed at stage onnx->mnn-fp16" in w for w in report.warnings)


def test_cli_says_on_stderr_when_no_strict_kept_a_failing_file(tmp_path, ext, capsys):
    from edgepose.converters.cli import _warn_kept_failures

    report = convert(ext, output_dir=tmp_path, meta=CARD, fp16=True, images=[], tolerances=IMPOSSIBLE, strict=False)
    _warn_kept_failures(report)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "WARNING: onnx->mnn-fp16 FAILED its parity check" in err[0]
    assert "--no-strict" in err[0] and str(report.stage("onnx->mnn-fp16").artifact) in err[0]


def test_inputs_are_never_overwritten(tmp_path, ext):
    sim = ext.parent / "b.sim.onnx"
    sim.write_bytes(ext.read_bytes())
    before = sim.read_bytes()
    with pytest.raises(ConversionError, match="would overwrite the input file"):
        convert(sim, name="b", meta=CARD)  # b.sim.onnx is also the simplified artifact's name
    assert sim.read_bytes() == before


def test_converter_timeout_and_crash_become_conversion_errors(tmp_path, ext, monkeypatch):
    out = tmp_path / "out"
    with pytest.raises(ConversionError, match="did not finish within 0.01 s"):
        convert(ext, output_dir=out, meta=CARD, images=[], timeout=0.01)
    assert not list(out.glob("*.mnn"))
    # A real segfault in the child process (the converter has crashed like this on some models)
    monkeypatch.setattr(mnn_native, "_CHILD", "import ctypes; ctypes.string_at(0)")
    with pytest.raises(ConversionError, match=r"crashed \(SIGSEGV\)"):
        convert(ext, output_dir=out, meta=CARD, images=[])
    assert not list(out.glob("*.mnn"))
    _no_partial_files(out)


def test_unknown_sources(tmp_path):
    with pytest.raises(MetadataError, match="unknown model 'deepose'.*Did you mean 'deeppose'"):
        convert("deepose", output_dir=tmp_path)
    (tmp_path / "weights.txt").write_text("x")
    with pytest.raises(ModelFileError, match="unsupported model file type '.txt'"):
        convert(tmp_path / "weights.txt", output_dir=tmp_path)


def test_state_dict_passed_as_torchscript_gets_a_hint(tmp_path):
    import torch
    from nets import tiny_deeppose

    path = tmp_path / "ckpt.pth"
    torch.save(tiny_deeppose().state_dict(), path)
    with pytest.raises(ModelFileError, match=r"not a TorchScript model.*edgepose convert <name> --weights ckpt.pth"):
        convert(path, output_dir=tmp_path, input_shape=(1, 3, 128, 96))
