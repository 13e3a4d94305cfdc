"""The built wheel: what a normal `pip install edgepose` gets (and what it must not get)."""
from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SKIP = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", "*.mnn", "*.onnx",
                              "*.tflite", ".pytest_cache", ".hypothesis")


@pytest.mark.slow
def test_wheel_holds_the_baseline_typing_marker_license_and_fixture_builder_but_no_tests(tmp_path):
    pytest.importorskip("setuptools", minversion="69")
    pytest.importorskip("wheel")
    src = tmp_path / "src"
    shutil.copytree(REPO, src, ignore=SKIP)  # a clean tree: no stale build/ from an earlier build
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(tmp_path / "whl"), str(src)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (wheel,) = (tmp_path / "whl").glob("edgepose-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "edgepose/benchmarks/baselines/normalised.json" in names  # `bench --compare-baseline` reads it
    assert "edgepose/py.typed" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") or n.endswith(".dist-info/LICENSE") for n in names)
    assert "edgepose/converters/mxnet/fixtures.py" in names  # the MXNet reference builder is installed
    assert not [n for n in names if n.startswith("tests/") or "/tests/" in n]
    assert not [n for n in names if n.split("/")[0] in ("converters", "models", "benchmarks")]  # all under edgepose.
