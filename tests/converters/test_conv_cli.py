"""`edgepose convert` / `edgepose info` as a user runs them: a real subprocess, exit status, stdout/stderr."""
from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest
pytest.importorskip("onnx")  # build-time extra (convert): skip without it
from onnx_models import external_pose_net, single_op_net

from edgepose.converters.cli import add_convert_arguments, add_info_arguments


def edgepose(*args, cwd=None, pre: str = "") -> subprocess.CompletedProcess:
    code = f"import sys; {pre}\nfrom edgepose.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """`edgepose convert model.onnx --fp16`, exactly so, on an ONNX file without a model card."""
    folder = tmp_path_factory.mktemp("cli")
    external_pose_net(folder / "model.onnx")
    proc = edgepose("convert", "model.onnx", "--fp16", cwd=folder)
    return folder, proc


def test_convert_model_onnx_fp16_works_exactly_so(converted):
    folder, proc = converted
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in folder.iterdir()) == [
        "model.fp16.mnn", "model.mnn", "model.onnx", "model.report.json", "model.sim.onnx"]
    for text in ("onnxsim", "onnx->mnn-fp16", "model.fp16.mnn", "FP16 weights save", "no model card"):
        assert text in proc.stdout
    assert "Traceback" not in proc.stderr and "The device supports" not in proc.stdout
    assert "stage" in proc.stderr  # tqdm progress goes to stderr
    report = json.loads((folder / "model.report.json").read_text())
    assert report["ok"] and report["spec"] is None


def test_info_prints_metadata_io_size_and_ops(converted, tmp_path):
    folder, _ = converted
    card = tmp_path / "card.json"
    card.write_text(json.dumps({"head": "heatmap", "num_keypoints": 5, "input_size": [64, 48], "name": "ext"}))
    proc = edgepose("convert", folder / "model.onnx", "-o", tmp_path, "--meta", card, "--no-simplify", "-q",
                    "--num-keypoints", "5", "--color", "BGR")
    assert proc.returncode == 0, proc.stderr
    proc = edgepose("info", tmp_path / "model.mnn")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "format    mnn (MNN 3.6.1)" in out and "image: float32 [1x3x48x64] NCHW" in out
    assert "maps: float32" in out and "ext: head heatmap, 5 keypoints" in out and "BGR" in out
    assert "stage=onnx->mnn" in out and "Convolution" in out
    info = json.loads(edgepose("info", tmp_path / "model.mnn", "--json").stdout)
    assert info["metadata"]["provenance"]["source"] == "model.onnx" and info["op_counts"]["Convolution"] == 5
    assert info["size_bytes"] == (tmp_path / "model.mnn").stat().st_size
    onnx_info = json.loads(edgepose("info", folder / "model.sim.onnx", "--json").stdout)
    assert onnx_info["op_counts"]["Conv"] == 5 and onnx_info["inputs"][0]["shape"] == ["N", 3, 48, 64]


def test_info_needs_no_onnx_or_torch_for_mnn(converted):
    folder, _ = converted
    block = "sys.modules.update(dict.fromkeys(['onnx', 'onnxsim', 'torch'], None))"
    proc = edgepose("info", folder / "model.fp16.mnn", pre=block)
    assert proc.returncode == 0, proc.stderr
    assert "ops       " in proc.stdout
    proc = edgepose("info", folder / "model.sim.onnx", pre=block)
    assert proc.returncode == 0, proc.stderr
    assert "operator counts need the onnx package" in proc.stdout and "inputs    image" in proc.stdout


def test_failures_exit_1_with_one_line_and_no_traceback(tmp_path):
    proc = edgepose("convert", tmp_path / "missing.onnx")
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [f"edgepose convert: error: model file not found: {tmp_path / 'missing.onnx'} (check the path)"]
    single_op_net(tmp_path / "mish.onnx", "Mish")
    proc = edgepose("convert", tmp_path / "mish.onnx", "-q")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert "unsupported operator(s) Mish" in line
    proc = edgepose("--debug", "convert", tmp_path / "missing.onnx")
    assert proc.returncode != 0 and "Traceback" in proc.stderr
    proc = edgepose("info", tmp_path / "mish.report.json")
    assert proc.returncode == 1 and "reads .mnn, .onnx, .tflite files" in proc.stderr


def test_torchscript_file_with_a_card_and_input_shape(tmp_path):
    import torch
    from nets import deeppose_spec, tiny_deeppose

    model = tiny_deeppose()
    with pytest.warns(DeprecationWarning):  # torch 2.13 deprecates TorchScript; files still exist in the wild
        torch.jit.trace(model, torch.zeros(1, 3, 128, 96)).save(str(tmp_path / "net.pt"))
    (tmp_path / "card.json").write_text(deeppose_spec().to_json())
    proc = edgepose("convert", tmp_path / "net.pt", "--meta", tmp_path / "card.json", "--input-shape", "1,3,128,96",
                    "-o", tmp_path / "out", "--json", "--no-photo")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert [s["name"] for s in report["stages"]] == ["torch->onnx", "onnxsim", "onnx->mnn"]
    assert report["stages"][0]["parity"]["inputs"] == ["random(batch 2)"]  # the traced view(-1,...) stays dynamic
    assert report["spec"]["name"] == "tiny_deeppose"


def _actions(adder):
    parser = argparse.ArgumentParser(prog="edgepose x")
    adder(parser)
    return parser, [a for a in parser._actions if not isinstance(a, argparse._HelpAction)]


@pytest.mark.parametrize("adder", [add_convert_arguments, add_info_arguments])
def test_help_documents_every_flag(adder):
    parser, actions = _actions(adder)
    text = " ".join(parser.format_help().split())
    for action in actions:
        assert action.help and len(action.help) > 10, action.dest
        for opt in action.option_strings:
            assert opt in text
        if action.option_strings:
            assert " ".join(action.help.split()[:4]) in text, action.dest  # rendered, not suppressed
    proc = edgepose("convert", "--help")
    assert proc.returncode == 0 and "--no-strict" in proc.stdout and "edgepose convert model.onnx --fp16" in proc.stdout
