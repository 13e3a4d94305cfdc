"""Fixtures for the MXNet->ONNX tests: reference outputs made by REAL MXNet in its own venv.

The fixture set is built once per machine by tests/mxnet_fixtures/make_fixtures.py (cached
under the edgepose cache dir, keyed by the script's hash; `$EDGEPOSE_MXNET_FIXTURES` points at a
ready one). If it is absent, the first test that needs it builds it (about a minute; it needs the
package registry for the pinned MXNet wheels). A failed build fails the tests - no silent skip.
"""
from __future__ import annotations

import functools
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "mxnet_fixtures" / "make_fixtures.py"


@functools.lru_cache(maxsize=1)
def fixture_script():
    spec = importlib.util.spec_from_file_location("edgepose_mxnet_make_fixtures", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@functools.lru_cache(maxsize=1)
def fixture_root() -> Path:
    script = fixture_script()
    try:
        return script.build(script.fixtures_dir())
    except Exception as exc:  # a subprocess or pip failure: say how to reproduce it
        raise RuntimeError(
            f"building the MXNet reference fixtures failed ({exc}); run "
            f"`python3 {SCRIPT}` to see the full log") from exc


@functools.lru_cache(maxsize=1)
def manifest() -> dict:
    return json.loads((fixture_root() / "manifest.json").read_text())


def pytest_generate_tests(metafunc):
    # Operator cases are listed by the fixture manifest, so they are known only after the build.
    if "op_case" in metafunc.fixturenames:
        metafunc.parametrize("op_case", sorted(manifest()["ops"]))
    if "model_name" in metafunc.fixturenames:
        metafunc.parametrize("model_name", fixture_script().MODELS)
    if "params_case" in metafunc.fixturenames:
        metafunc.parametrize("params_case", sorted(k for k, v in manifest()["params"].items() if "shapes" in v))


@pytest.fixture(scope="session")
def mx_root() -> Path:
    return fixture_root()


@pytest.fixture(scope="session")
def mx_manifest() -> dict:
    return manifest()


class Case:
    """One reference case: symbol, params, MXNet's inputs/outputs and output names."""

    def __init__(self, root: Path, kind: str, name: str, info: dict):
        self.name = name
        self.symbol = root / kind / f"{name}-symbol.json"
        self.params = root / kind / f"{name}-0000.params"
        ref = np.load(root / kind / f"{name}.npz")
        self.input_shapes = {k: tuple(v) for k, v in info["inputs"].items()}
        self.inputs = {k: ref[f"input__{k}"] for k in self.input_shapes}
        self.outputs = [ref[f"output__{i}"] for i in range(len(info["outputs"]))]
        self.output_names = [str(n) for n in ref["output_names"]]
        # Internal tensors saved beside the outputs (a detector's NMS input), by MXNet output name.
        self.internals = {k: ref[f"internal__{k}"] for k in info.get("internals", [])}


@pytest.fixture(scope="session")
def mx_case(mx_root, mx_manifest):
    """mx_case(kind, name) -> Case, kind in {"models", "ops"}."""
    def get(kind: str, name: str) -> Case:
        return Case(mx_root, kind, name, mx_manifest[kind][name])
    return get


def rel_error(actual: np.ndarray, expected: np.ndarray) -> float:
    """max |actual - expected| / max |expected|: the relative error the tests bound."""
    actual = np.asarray(actual, np.float64)
    expected = np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, f"shape {actual.shape} != reference {expected.shape}"
    scale = max(float(np.abs(expected).max(initial=0.0)), 1e-12)
    return float(np.abs(actual - expected).max(initial=0.0)) / scale


def run_onnxruntime(path: Path, feeds: dict) -> dict:
    from edgepose.backends import open_backend

    return open_backend(path, "onnxruntime", threads=1).run(feeds)


def to_mnn(onnx_path: Path, dst: Path) -> Path:
    from edgepose.converters.mnn_native import convert_to_mnn

    convert_to_mnn(onnx_path, dst, framework="ONNX")
    return dst


def run_mnn(path: Path, feeds: dict) -> dict:
    from edgepose.backends import open_backend

    return open_backend(path, "mnn", threads=1, precision="high").run(feeds)


def mnn_outputs(onnx_path: Path, dst: Path, feeds: dict) -> dict:
    """Convert with MNN's native converter (child process) and run with MNN FP32, 1 thread."""
    return run_mnn(to_mnn(onnx_path, dst), feeds)
