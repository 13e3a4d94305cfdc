"""The runtime stays light: no torch/onnx/onnxsim/converters/models on import or inference,
and the installed distribution adds no generic top-level names to site-packages."""
from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

HEAVY = ("torch", "onnx", "onnxsim", "edgepose.converters", "edgepose.models", "tensorflow", "ai_edge_litert")
REPO = Path(__file__).resolve().parents[2]


def loaded_after(code: str) -> list[str]:
    probe = f"{code}\nimport sys, json\nprint('MODS' + json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    return json.loads(out.split("MODS", 1)[1])


def test_import_edgepose_loads_no_build_time_package():
    mods = loaded_after("import edgepose, edgepose.cli, edgepose.visualize, edgepose.assets, edgepose.presets")
    assert not [m for m in mods if m.split(".")[0] in HEAVY or m in HEAVY]
    assert "MNN" not in mods and "onnxruntime" not in mods  # backends load with the first model


def test_predicting_loads_no_build_time_package(blazepose_mnn, photos):
    mods = loaded_after(
        "from edgepose import Predictor\n"
        f"Predictor({str(blazepose_mnn['fp16'])!r}).predict({str(photos['bus'])!r})")
    assert not [m for m in mods if m in HEAVY or m.split(".")[0] in HEAVY[:3]]


def test_cli_predict_writes_pure_json_to_stdout(blazepose_mnn, photos):
    """MNN's native banner lines must not end up in the JSON a pipeline reads."""
    proc = subprocess.run([sys.executable, "-m", "edgepose", "predict", str(blazepose_mnn["fp16"]),
                           str(photos["bus"]), "--bbox", "45,395,250,910"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert len(data["instances"]) == 1 and len(data["instances"][0]["keypoints"]) == 33


def test_cli_error_is_one_line_without_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "edgepose", "predict", str(tmp_path / "x.mnn"), "img.jpg"],
                          capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0 and "Traceback" not in proc.stderr
    assert "model file not found" in proc.stderr


@pytest.mark.slow
def test_wheel_installs_everything_under_edgepose(tmp_path):
    # Build from a copy of the tracked files, so the build leaves nothing in the work tree.
    import shutil

    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    src = tmp_path / "src"
    for name in tracked:
        if (REPO / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, src / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path / "dist"), str(src)], check=True, capture_output=True)
    wheel = next((tmp_path / "dist").glob("edgepose-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top == {"edgepose"}, top
    for sub in ("edgepose/converters/__init__.py", "edgepose/models/__init__.py", "edgepose/benchmarks/__init__.py"):
        assert sub in names
    assert "edgepose/benchmarks/baselines/normalised.json" in names  # `bench --compare-baseline` reads it
    assert "edgepose/py.typed" in names
    assert any(n.endswith((".dist-info/licenses/LICENSE", ".dist-info/LICENSE")) for n in names)
    assert "edgepose/converters/mxnet/fixtures.py" in names  # the MXNet reference builder is installed
    assert not [n for n in names if "/tests/" in n or n.startswith("tests/")]


def test_runtime_sources_never_name_build_time_packages():
    """The dependency direction is one-way: the runtime reaches build-time code only through the
    entry points the build-time packages register (edgepose.commands, edgepose.model_builders)."""
    import ast

    offenders = []
    for path in (REPO / "edgepose").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.ImportFrom):
                names = [("." * node.level) + (node.module or "")]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                names = [node.value] if node.value.startswith("edgepose.") else []
            for name in names:
                parts = name.lstrip(".").split(".")
                head = parts[1] if name.startswith("edgepose.") else parts[0]
                if head in ("converters", "models", "benchmarks"):
                    offenders.append(f"{path.relative_to(REPO)}:{node.lineno}: {name}")
    assert not offenders, offenders
