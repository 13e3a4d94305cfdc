"""Fixtures for the MXNet->ONNX tests: reference outputs made by REAL MXNet in its own venv.

The reference set is built by edgepose.converters.mxnet.fixtures (cached under the edgepose cache
dir, keyed by that module's hash; `$EDGEPOSE_MXNET_FIXTURES` points at a ready one) inside the
session fixture `mxnet_fixtures` (tests/conftest.py), the first time a test needs it: about two
minutes, and the pinned MXNet wheels come from the package registry (so these tests are marked
`network`). Collection builds nothing: the case names are the module's lists (MODELS, OP_CASES,
PARAMS_CASES), and the build fails if what it made differs from them. A failed build fails the
tests - no silent skip.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest


def pytest_generate_tests(metafunc):
    names = [n for n in ("op_case", "model_name", "params_case") if n in metafunc.fixturenames]
    if not names:
        return
    from edgepose.converters.mxnet import fixtures  # stdlib only: builds nothing

    cases = {"op_case": fixtures.OP_CASES, "model_name": fixtures.MODELS, "params_case": fixtures.PARAMS_CASES}
    for name in names:
        metafunc.parametrize(name, sorted(cases[name]) if name != "model_name" else list(cases[name]))


@pytest.fixture(scope="session")
def mx_root(mxnet_fixtures) -> Path:
    return mxnet_fixtures


@pytest.fixture(scope="session")
def mx_manifest(mx_root) -> dict:
    return json.loads((mx_root / "manifest.json").read_text())


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
