"""The CLI's promise (README): an error is one line on stderr and exit status 1; nothing fails silently.

Each case runs `python -m edgepose` in a child process, as a user would, and checks the exit status,
that stderr is exactly one line starting `edgepose <command>: error:`, that no traceback was
printed, and that nothing was written where the command failed.
"""
from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import sys

import pytest
from reliability_helpers import REPO

BOX = "95,10,470,512"


def edgepose(*argv: str, stdout=subprocess.PIPE, preexec=None, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "edgepose", *map(str, argv)], stdout=stdout,
                          stderr=subprocess.PIPE, text=True, env=env, timeout=timeout, preexec_fn=preexec)


def assert_one_line_error(proc: subprocess.CompletedProcess, command: str, match: str) -> str:
    assert proc.returncode == 1, (proc.returncode, proc.stderr[-2000:])
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr[-2000:]
    assert lines[0].startswith(f"edgepose {command}: error: "), lines[0]
    assert match in lines[0], lines[0]
    assert "Traceback" not in proc.stderr
    return lines[0]


@pytest.fixture(scope="module")
def model(blazepose_mnn):
    return blazepose_mnn["fp16"]


@pytest.fixture(scope="module")
def photo(photos):
    return photos["astronaut"]


@pytest.mark.parametrize("argv, match", [
    (["--threads", "0"], "--threads must be at least 1, got 0"),
    (["--threads", "100000"], "is more than 256"),
    (["--max-people", "0"], "--max-people must be at least 1"),
])
def test_predict_counts(model, photo, argv, match):
    assert_one_line_error(edgepose("predict", model, photo, *argv), "predict", match)


def test_predict_output_problems_are_one_line_and_found_before_the_model_runs(model, photo, tmp_path):
    cases = [
        (tmp_path / "missing" / "out.png", "does not exist"),
        (tmp_path / "out.foo", "OpenCV cannot write '.foo' images"),
        (tmp_path, "is a directory"),
        (photo, "would overwrite the input image"),
    ]
    for out, match in cases:
        assert_one_line_error(edgepose("predict", model, photo, "--bbox", BOX, "-o", out), "predict", match)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def _fsize_limit(limit: int):
    def apply() -> None:  # EFBIG instead of SIGXFSZ: a full disk, as a non-root process can make one
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def test_predict_full_disk_is_an_error_and_leaves_nothing(model, photo, tmp_path):
    out = tmp_path / "pose.png"
    proc = edgepose("predict", model, photo, "--bbox", BOX, "-o", out, preexec=_fsize_limit(4096))
    assert_one_line_error(proc, "predict", f"cannot write {out}")
    assert list(tmp_path.iterdir()) == []


def test_demo_full_disk_reports_no_file_it_did_not_write(tmp_path):
    out = tmp_path / "demo"
    proc = edgepose("demo", "--bbox", BOX, "--repeats", "1", "-o", out, preexec=_fsize_limit(4096))
    assert_one_line_error(proc, "demo", "cannot write")
    assert "annotated" not in proc.stdout and "json " not in proc.stdout
    assert [p.name for p in out.iterdir()] == []


def _readonly_dir(tmp_path):
    """A directory this process cannot write: a read-only tmpfs when root (root ignores modes)."""
    target = tmp_path / "ro"
    target.mkdir()
    if os.geteuid() != 0:
        target.chmod(0o555)
        return target, lambda: target.chmod(0o755)
    if shutil.which("mount") is None:
        pytest.skip("root without mount: cannot make a read-only directory")
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(target)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a read-only tmpfs here: {made.stderr.decode()[-200:]}")
    return target, lambda: subprocess.run(["umount", str(target)], capture_output=True)


def test_readonly_directory(model, photo, tmp_path):
    target, cleanup = _readonly_dir(tmp_path)
    try:
        assert_one_line_error(edgepose("predict", model, photo, "--bbox", BOX, "-o", target / "p.png"),
                              "predict", "not writable")
        assert_one_line_error(edgepose("demo", "--bbox", BOX, "--repeats", "1", "-o", target / "demo"),
                              "demo", "Read-only file system")
    finally:
        cleanup()


def test_demo_arguments(tmp_path):
    afile = tmp_path / "a-file"
    afile.write_text("keep me")
    assert_one_line_error(edgepose("demo", "-o", afile), "demo", "is an existing file")
    assert afile.read_text() == "keep me"
    assert_one_line_error(edgepose("demo", "--repeats", "0"), "demo", "--repeats must be at least 1")
    assert_one_line_error(edgepose("demo", "--threads", "0"), "demo", "--threads must be at least 1")


def test_predict_into_a_closed_pipe_is_quiet(model, photo):
    """`edgepose predict ... | head -c 0`: the reader is gone before the JSON comes."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    read, write = os.pipe()
    os.close(read)  # nobody will ever read
    try:
        proc = subprocess.run([sys.executable, "-m", "edgepose", "predict", str(model), str(photo), "--bbox", BOX],
                              stdout=write, stderr=subprocess.PIPE, text=True, env=env, timeout=300)
    finally:
        os.close(write)
    assert proc.returncode == 1
    assert "BrokenPipeError" not in proc.stderr and "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr


def test_info_into_a_closed_pipe_is_quiet(model):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    read, write = os.pipe()
    os.close(read)
    try:
        proc = subprocess.run([sys.executable, "-m", "edgepose", "info", str(model)], stdout=write,
                              stderr=subprocess.PIPE, text=True, env=env, timeout=300)
    finally:
        os.close(write)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr
