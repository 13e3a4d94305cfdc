"""Fixtures for the converter tests: small stand-in models and one shared full conversion."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # the helper modules beside the tests (nets, onnx_models)
    sys.path.insert(0, str(HERE))


@pytest.fixture(scope="session")
def photo(photos) -> Path:
    """One real photo (pinned asset) for parity inputs."""
    return photos["astronaut"]


@pytest.fixture(scope="module")
def deeppose_run(tmp_path_factory, photo):
    """TinyShuffleDeepPose through every stage (torch -> ONNX -> onnxsim -> MNN FP32 / FP16)."""
    from nets import deeppose_spec, tiny_deeppose

    from edgepose.converters import convert

    out = tmp_path_factory.mktemp("deeppose")
    model = tiny_deeppose()
    report = convert(model, output_dir=out, spec=deeppose_spec(), name="tdp", fp16=True, images=[photo])
    return report, model, out
