"""backend="auto": the fastest installed engine for a model on this CPU, measured once and cached."""
from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest

from edgepose import Predictor
from edgepose.backends import open_backend
from edgepose.backends.auto import candidate_files, choose
from edgepose.errors import BackendError


@pytest.fixture
def model_dir(tmp_path, blazepose_mnn, blazepose_tflite):
    """A converted model with its siblings, as `edgepose convert` leaves them (+ an INT8 file)."""
    shutil.copy(blazepose_mnn["fp16"], tmp_path / "pose.fp16.mnn")
    shutil.copy(blazepose_mnn["fp32"], tmp_path / "pose.mnn")
    shutil.copy(blazepose_tflite, tmp_path / "pose.tflite")
    shutil.copy(blazepose_mnn["fp32"], tmp_path / "pose.int8.mnn")
    return tmp_path


def test_candidates_are_the_float_siblings(model_dir):
    names = [p.name for p in candidate_files(model_dir / "pose.fp16.mnn")]
    assert names[0] == "pose.fp16.mnn" and set(names) == {"pose.fp16.mnn", "pose.mnn", "pose.tflite"}


def test_auto_picks_the_fastest_measured_and_caches_it(model_dir, monkeypatch, photos):
    monkeypatch.setenv("EDGEPOSE_CACHE", str(model_dir / "cache"))
    choice = choose(model_dir / "pose.fp16.mnn", rounds=3, budget_ms=20)
    assert not choice.cached
    assert choice.median_ms[f"{choice.backend}:{choice.path.rsplit('/', 1)[-1]}"] == min(choice.median_ms.values())
    assert {"mnn:pose.fp16.mnn", "mnn:pose.mnn"} <= set(choice.median_ms)
    assert "litert:pose.tflite" in choice.median_ms or "litert:pose.tflite" in choice.skipped
    again = choose(model_dir / "pose.fp16.mnn")
    assert again.cached and (again.backend, again.path) == (choice.backend, choice.path)
    cache = json.loads((model_dir / "cache" / "backend-choice.json").read_text())
    assert len(cache) == 1 and "x86" in next(iter(cache)) or "arm" in next(iter(cache))

    # The Predictor runs the chosen engine with the metadata of the file it was given.
    auto = Predictor(model_dir / "pose.fp16.mnn", backend="auto")
    plain = Predictor(model_dir / "pose.fp16.mnn")
    info = auto.describe()
    assert info["backend"] == choice.backend and info["backend_choice"]["cached"]
    image = cv2.imread(str(photos["astronaut"]))
    box = [[95, 10, 470, 512]]
    np.testing.assert_allclose(auto.predict(image, box).keypoints, plain.predict(image, box).keypoints, atol=1.0)


def test_auto_is_not_an_engine_of_its_own(blazepose_mnn):
    with pytest.raises(BackendError, match="concrete engine"):
        open_backend(blazepose_mnn["fp32"], "auto")


def test_openvino_reads_tflite_and_matches_litert(blazepose_tflite):
    pytest.importorskip("openvino")
    ov = open_backend(blazepose_tflite, "openvino")
    lite = open_backend(blazepose_tflite, "litert")
    x = np.random.default_rng(0).random((1, 256, 256, 3), dtype=np.float32)
    a, b = ov.run({"input_1": x}), lite.run({"input_1": x})
    assert set(a) == set(b)
    np.testing.assert_allclose(a["Identity"], b["Identity"], atol=2e-2, rtol=1e-3)
