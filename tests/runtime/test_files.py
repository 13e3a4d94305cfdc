"""edgepose.files: the one atomic writer and sha256 helper, on real files and real failures."""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edgepose.errors import ConversionError, OutputError
from edgepose.files import (atomic_path, atomic_write_bytes, atomic_write_text, sha256_bytes, sha256_file, umask,
                            write_failure)

REPO = Path(__file__).resolve().parents[2]


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_write_bytes_and_text(tmp_path):
    out = atomic_write_bytes(tmp_path / "a.bin", b"\x00\x01data")
    assert out == tmp_path / "a.bin" and out.read_bytes() == b"\x00\x01data"
    atomic_write_text(tmp_path / "b.txt", "h\u00e9llo")
    assert (tmp_path / "b.txt").read_bytes() == "h\u00e9llo".encode("utf-8")
    atomic_write_bytes(tmp_path / "empty", b"")  # an empty payload is a legitimate (empty) file
    assert (tmp_path / "empty").read_bytes() == b""
    assert names(tmp_path) == ["a.bin", "b.txt", "empty"]  # no temporary left beside them


def test_overwrite_replaces_whole_and_mode_follows_umask(tmp_path):
    target = tmp_path / "out.json"
    target.write_text("old " * 1000)
    old = os.umask(0o027)
    try:
        assert umask() == 0o027
        atomic_write_text(target, "new")
    finally:
        os.umask(old)
    assert target.read_text() == "new"
    assert target.stat().st_mode & 0o777 == 0o640  # not mkstemp's 0600
    assert umask() == old


def test_failure_mid_write_keeps_the_old_file_and_leaves_nothing(tmp_path):
    target = tmp_path / "model.mnn"
    target.write_bytes(b"the previous, complete file")
    with pytest.raises(RuntimeError, match="tool crashed"):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half a fi")
            (tmp.parent / (tmp.name + ".json")).write_text("{}")  # a tool's side file
            raise RuntimeError("tool crashed")
    assert target.read_bytes() == b"the previous, complete file"
    assert names(tmp_path) == ["model.mnn"]


def test_interrupt_mid_write_leaves_nothing(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(tmp_path / "x.bin", create=True) as tmp:
            tmp.write_bytes(b"partial")
            raise KeyboardInterrupt
    assert names(tmp_path) == []


def test_full_disk_mid_write_is_an_output_error_and_leaves_nothing(tmp_path):
    """A real short write: the file-size limit (EFBIG, as a full disk) hits halfway through."""
    code = (
        "import resource, signal, sys\n"
        "from edgepose.files import atomic_write_bytes\n"
        "from edgepose.errors import OutputError\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))\n"
        "try:\n"
        "    atomic_write_bytes(sys.argv[1], b'x' * 100000)\n"
        "except OutputError as exc:\n"
        "    print('OutputError:', exc)\n"
    )
    target = tmp_path / "big.bin"
    proc = subprocess.run([sys.executable, "-c", code, str(target)], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    assert proc.stdout.startswith(f"OutputError: cannot write {target}"), proc.stdout + proc.stderr
    assert names(tmp_path) == []


def test_missing_folder_is_named_and_not_created(tmp_path):
    target = tmp_path / "nope" / "deeper" / "out.png"
    with pytest.raises(OutputError, match=r"the directory .*nope/deeper does not exist"):
        atomic_write_bytes(target, b"x")
    assert names(tmp_path) == []


def test_a_directory_under_the_name(tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(OutputError, match="it is a directory"):
        atomic_write_bytes(tmp_path / "d", b"x")
    assert names(tmp_path) == ["d"] and names(tmp_path / "d") == []


@pytest.fixture
def readonly_dir(tmp_path):
    """A directory this process cannot write: mode 0555, or a read-only tmpfs when root."""
    target = tmp_path / "ro"
    target.mkdir()
    (target / "kept.txt").write_text("kept")
    if os.geteuid() != 0:
        target.chmod(0o555)
        yield target
        target.chmod(0o755)
        return
    if shutil.which("mount") is None:
        pytest.skip("root without mount: cannot make a read-only directory")
    staging = tmp_path / "staging"
    staging.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(target)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode()[-200:]}")
    try:
        (target / "kept.txt").write_text("kept")
        subprocess.run(["mount", "-o", "remount,ro", str(target)], check=True, capture_output=True)
        yield target
    finally:
        subprocess.run(["umount", str(target)], capture_output=True)


def test_read_only_folder(readonly_dir):
    with pytest.raises(OutputError, match=r"is not writable"):
        atomic_write_bytes(readonly_dir / "new.bin", b"x")
    with pytest.raises(ConversionError, match=r"cannot write .*kept\.txt"):
        atomic_write_text(readonly_dir / "kept.txt", "replaced", error=ConversionError)
    assert names(readonly_dir) == ["kept.txt"] and (readonly_dir / "kept.txt").read_text() == "kept"


def test_the_input_is_never_replaced(tmp_path):
    src = tmp_path / "model.onnx"
    src.write_bytes(b"input")
    link = tmp_path / "alias.onnx"
    link.symlink_to(src)
    for dst in (src, link, tmp_path / "." / "model.onnx"):
        with pytest.raises(ConversionError, match="refusing to overwrite the input"):
            with atomic_path(dst, protect=[tmp_path / "other", src], error=ConversionError) as tmp:
                tmp.write_bytes(b"output")
    assert src.read_bytes() == b"input" and names(tmp_path) == ["alias.onnx", "model.onnx"]
    with pytest.raises(OutputError, match="refusing"):
        atomic_write_bytes(src, b"output", protect=str(src))
    assert src.read_bytes() == b"input"
    atomic_write_bytes(tmp_path / "model.mnn", b"output", protect=src)  # another name is fine
    assert (tmp_path / "model.mnn").read_bytes() == b"output"


def test_no_output_is_an_error_not_an_empty_file(tmp_path):
    with pytest.raises(OutputError, match="no output was written"):
        with atomic_path(tmp_path / "a.mnn") as tmp:
            assert not tmp.exists()  # the name is free for a tool that refuses to overwrite
    with pytest.raises(OutputError, match="no output was written"):
        with atomic_path(tmp_path / "b.mnn", create=True) as tmp:
            assert tmp.is_file() and tmp.stat().st_size == 0
    assert names(tmp_path) == []


def test_suffix_and_rename(tmp_path):
    with atomic_path(tmp_path / "walk.mp4", suffix=".part.mp4") as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".walk.mp4.") and tmp.name.endswith(".part.mp4")
        tmp.write_bytes(b"frames")
        assert not (tmp_path / "walk.mp4").exists()  # the name appears only at the end
    assert names(tmp_path) == ["walk.mp4"]


def test_an_error_reading_another_file_is_not_reported_as_a_write_failure(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        with atomic_path(tmp_path / "out.bin") as tmp:
            tmp.write_bytes((tmp_path / "missing-input.bin").read_bytes())
    assert info.value.filename == str(tmp_path / "missing-input.bin")
    assert names(tmp_path) == []


def test_write_failure_messages(tmp_path):
    import errno

    assert write_failure(tmp_path / "x", OSError(errno.ENOSPC, "No space left on device")) == \
        f"cannot write {tmp_path / 'x'}: no space left on the device (the file was not written)"
    assert "does not exist" in write_failure(tmp_path / "a" / "x", FileNotFoundError(errno.ENOENT, "No such file"))
    assert write_failure(tmp_path / "x", OSError(errno.EFBIG, "File too large")).endswith("File too large")


def test_sha256(tmp_path):
    data = os.urandom(3 * 1024 + 5)
    path = tmp_path / "blob"
    path.write_bytes(data)
    want = hashlib.sha256(data).hexdigest()
    assert sha256_file(path) == want == sha256_file(str(path), chunk=7) == sha256_bytes(data)
    assert sha256_bytes("h\u00e9") == hashlib.sha256("h\u00e9".encode("utf-8")).hexdigest()
    assert sha256_file(tmp_path / "blob") != sha256_bytes(data + b"\x00")
    with pytest.raises(FileNotFoundError):
        sha256_file(tmp_path / "absent")
