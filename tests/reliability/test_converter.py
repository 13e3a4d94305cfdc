"""The converter under hostile conditions (issue 14): timeouts, huge cards, concurrent runs, names
that try to leave -o, SIGTERM, a full disk, a killed native child, overflowing MXNet shapes, and
bounds checked before anything is allocated.
"""
from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
pytest.importorskip("onnx")  # build-time extra (convert): skip without it
from reliability_helpers import REPO

from edgepose import mnn_file
from edgepose.converters import mnn_native
from edgepose.converters.mnn_native import convert_to_mnn, run_native
from edgepose.errors import ConversionError, EdgePoseError, MetadataError, ModelFileError
from edgepose.presets import get_preset
from edgepose.spec import ModelSpec

sys.path.insert(0, str(REPO / "tests" / "converters"))
from onnx_models import external_pose_net  # noqa: E402


@pytest.fixture(scope="module")
def small_onnx(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    external_pose_net(path)
    return path


# --- the native child ----------------------------------------------------------------------------
_PRINT_THEN_HANG = """
import sys, time
sys.stdin.read()
print("converting layer 1 of 99", flush=True)
print("some log on stderr", file=sys.stderr, flush=True)
time.sleep(60)
"""
_KILLED = """
import os, signal, sys
sys.stdin.read()
print("working", flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_timeout_after_the_child_printed(monkeypatch):
    """It was `TypeError: can't concat str to bytes` (TimeoutExpired carries bytes)."""
    monkeypatch.setattr(mnn_native, "_CHILD", _PRINT_THEN_HANG)
    with pytest.raises(ConversionError, match=r"did not finish within 1 s on m\.onnx.*some log on stderr"):
        run_native("mnnconvert", ["mnnconvert", "-f", "ONNX", "--modelFile", "/x/m.onnx"], timeout=1)


@pytest.mark.parametrize("timeout", [float("nan"), float("inf"), 0, -5, "soon"])
def test_unusable_timeouts_are_refused(timeout, small_onnx, tmp_path):
    with pytest.raises(ConversionError, match="timeout"):
        run_native("mnnconvert", ["mnnconvert"], timeout=timeout)
    from edgepose.converters import convert

    with pytest.raises(ConversionError, match="timeout"):
        convert(small_onnx, output_dir=tmp_path, timeout=timeout)
    assert list(tmp_path.iterdir()) == []


def test_cli_timeout_nan_is_one_line(small_onnx, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "edgepose", "convert", str(small_onnx), "-o", str(tmp_path),
                           "--timeout", "nan"], capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 1 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "timeout" in proc.stderr and "Traceback" not in proc.stderr


def test_a_killed_child_is_named_by_its_model(monkeypatch):
    """After kill -9 the error named "-f" (argv[1]); it names the model file."""
    monkeypatch.setattr(mnn_native, "_CHILD", _KILLED)
    with pytest.raises(ConversionError, match=r"crashed \(SIGKILL \(killed from outside.*\) while processing pose\.tflite"):
        run_native("mnnconvert", ["mnnconvert", "-f", "TFLITE", "--modelFile", "/data/pose.tflite",
                                  "--MNNModel", "/tmp/out.mnn"])


def test_a_card_over_128_kib_travels_to_the_converter(blazepose_tflite, tmp_path):
    """The card went on the child's command line: "Argument list too long" above 128 KiB."""
    spec = get_preset("blazepose_full").with_provenance(notes="n" * (300 << 10))
    dst = tmp_path / "big-card.mnn"
    convert_to_mnn(blazepose_tflite, dst, framework="TFLITE", fp16=True, biz_code=spec.to_json())
    info, _ = mnn_file.read_mnn_file(dst)
    assert len(info.biz_code) > 300 << 10
    assert ModelSpec.from_json(info.metadata_text).provenance["notes"] == "n" * (300 << 10)


# --- the pipeline ---------------------------------------------------------------------------------
def test_concurrent_conversions_into_one_folder(small_onnx, tmp_path):
    """Four conversions of one model into one folder: they shared `.tiny.mnn.unverified` and 3 of 4 failed."""
    from edgepose.converters import convert

    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def run() -> None:
        barrier.wait()
        try:
            convert(small_onnx, output_dir=tmp_path, fp16=True, images=[])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["tiny.fp16.mnn", "tiny.mnn", "tiny.report.json", "tiny.sim.onnx"], names
    mnn_file.read_mnn_file(tmp_path / "tiny.mnn")


@pytest.mark.parametrize("name", ["../../escaped", "/tmp/absolute", "sub/dir", "..", ".", "", "a\0b", " x"])
def test_name_cannot_leave_the_output_folder(small_onnx, tmp_path, name):
    from edgepose.converters import convert

    out = tmp_path / "out"
    with pytest.raises(ConversionError, match="--name"):
        convert(small_onnx, output_dir=out, name=name, images=[])
    assert not (tmp_path / "escaped.mnn").exists() and not Path("/tmp/absolute.mnn").exists()


def test_sigterm_stops_the_child_and_leaves_nothing(blazepose_tflite, tmp_path):
    out, scratch = tmp_path / "out", tmp_path / "tmp"
    out.mkdir()
    scratch.mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO), "TMPDIR": str(scratch)}
    proc = subprocess.Popen([sys.executable, "-m", "edgepose", "convert", str(blazepose_tflite), "--preset",
                             "blazepose_full", "--fp16", "-o", str(out), "-q"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 120
    while time.time() < deadline and not any(p.name.endswith(".part") for p in out.iterdir()):
        time.sleep(0.01)
    assert any(p.name.endswith(".part") for p in out.iterdir()), "the native converter never started"
    children = _children(proc.pid)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, stderr
    assert "terminated" in stderr and "Traceback" not in stderr
    leftovers = [p.name for p in out.iterdir() if p.name.startswith(".")]
    assert leftovers == [], leftovers
    assert list(scratch.iterdir()) == []
    time.sleep(0.2)
    assert [c for c in children if Path(f"/proc/{c}").exists() and _state(c) != "Z"] == []


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "?"


def test_full_disk_is_reported_as_a_full_disk(blazepose_tflite, tmp_path):
    """A tmpfs too small for the model (root only): "no space left", not "not a model MNN can load"."""
    target = tmp_path / "tiny"
    target.mkdir()
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a small tmpfs")
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(target)], capture_output=True)
    if made.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        with pytest.raises(ConversionError, match="no space left on the device"):
            convert_to_mnn(blazepose_tflite, target / "m.mnn", framework="TFLITE")
        assert list(target.iterdir()) == []
    finally:
        subprocess.run(["umount", str(target)], capture_output=True)


def test_torn_output_is_not_kept(monkeypatch, tmp_path, blazepose_tflite):
    """The converter claims success but the file is cut short (as on a full disk): refused."""
    real = mnn_native.run_native

    def run_then_tear(tool, argv, **kw):
        result = real(tool, argv, **kw)
        out = Path(argv[argv.index("--MNNModel") + 1])
        out.write_bytes(out.read_bytes()[:1000])
        return result

    monkeypatch.setattr(mnn_native, "run_native", run_then_tear)
    with pytest.raises(ConversionError, match="wrote a broken model"):
        convert_to_mnn(blazepose_tflite, tmp_path / "m.mnn", framework="TFLITE")
    assert list(tmp_path.iterdir()) == []


# --- bounds before allocation ---------------------------------------------------------------------
def test_mxnet_params_element_count_overflow(tmp_path):
    """Dims whose product wraps int64 to 0 (2^32 x 2^32): a clean error, not a wrong empty array."""
    from edgepose.converters.mxnet.params import load_ndarrays

    dims = [2 ** 32, 2 ** 32]
    array = (struct.pack("<I", 0xF993FAC9) + struct.pack("<i", 0) + struct.pack("<i", 2)
             + struct.pack("<2q", *dims) + struct.pack("<iii", 1, 0, 0))
    data = struct.pack("<QQQ", 0x112, 0, 1) + array + struct.pack("<QQ", 1, 3) + b"arg"
    path = tmp_path / "x-0000.params"
    path.write_bytes(data)
    with pytest.raises(ModelFileError, match="claims shape"):
        load_ndarrays(path)


def test_input_size_in_a_card_is_bounded_before_allocation(small_onnx, tmp_path):
    from edgepose.converters import convert

    card = get_preset("simple_pose_resnet18_v1b").to_dict()
    card["input_size"] = [200000, 200000]
    path = tmp_path / "card.json"
    path.write_text(json.dumps(card))
    with pytest.raises(MetadataError, match="input_size"):
        convert(small_onnx, output_dir=tmp_path / "out", spec=path, images=[])


def test_a_box_that_collapses_in_float32(blazepose_mnn):
    import numpy as np

    from edgepose import Predictor
    from edgepose.errors import BBoxError

    p = Predictor(blazepose_mnn["fp16"])
    with pytest.raises(BBoxError, match="empty"):
        p.predict(np.zeros((480, 640, 3), np.uint8), [[100, 100, 100.000001, 100.000001]])
    with pytest.raises(BBoxError, match="at most 1000"):
        p.predict(np.zeros((480, 640, 3), np.uint8), np.tile([[10, 10, 50, 50]], (10 ** 6, 1)))
    with pytest.raises(EdgePoseError):
        Predictor(blazepose_mnn["fp16"], input_size=(200000, 200000))
