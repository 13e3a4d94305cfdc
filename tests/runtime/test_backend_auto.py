"""backend="auto": the fastest installed engine for a model on this CPU, measured once and cached."""
from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest

from edgepose import Predictor
from edgepose.backends import open_backend
from edgepose.backends import auto as auto_mod
from edgepose.backends.auto import _decide, candidate_files, choose
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
    monkeypatch.setattr(auto_mod, "BUSY", float("inf"))  # a settled verdict whatever the load now
    choice = choose(model_dir / "pose.fp16.mnn", rounds=3, min_sample_ms=5)
    assert not choice.cached and not choice.provisional and choice.probes == 1
    chosen = f"{choice.backend}:{choice.path.rsplit('/', 1)[-1]}"
    own = "mnn:pose.fp16.mnn"
    assert choice.ratios[own] == 1.0  # ratios are to the model's own file, round by round
    # the pick has the lowest median ratio, or is the model's own file when nothing beats it by 2 %
    assert choice.ratios[chosen] == min(choice.ratios.values()) or (
        chosen == own and min(choice.ratios.values()) * auto_mod.KEEP_OWN > 1.0)
    assert {"mnn:pose.fp16.mnn", "mnn:pose.mnn"} <= set(choice.median_ms)
    assert "litert:pose.tflite" in choice.median_ms or "litert:pose.tflite" in choice.skipped
    assert all(len(v) >= 3 for v in choice.round_ratios.values())
    again = choose(model_dir / "pose.fp16.mnn")
    assert again.cached and (again.backend, again.path) == (choice.backend, choice.path)
    cache = json.loads((model_dir / "cache" / "backend-choice.json").read_text())
    key = next(iter(cache))
    assert len(cache) == 1 and ("x86" in key or "arm" in key) and "MNN=" in key  # CPU and engine versions

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


def test_a_verdict_probed_on_a_busy_cpu_is_probed_again_and_pooled(model_dir, monkeypatch):
    monkeypatch.setenv("EDGEPOSE_BACKEND_CHOICE_CACHE", str(model_dir / "choices.json"))
    monkeypatch.setattr(auto_mod, "BUSY", 0.0)  # every load counts as busy
    first = choose(model_dir / "pose.mnn", rounds=3, min_sample_ms=2)
    assert first.provisional and first.probes == 1 and not first.cached
    second = choose(model_dir / "pose.mnn", rounds=3, min_sample_ms=2)
    assert not second.cached and second.probes == 2
    assert len(second.round_ratios["mnn:pose.mnn"]) >= len(first.round_ratios["mnn:pose.mnn"]) + 3
    third = choose(model_dir / "pose.mnn", rounds=3, min_sample_ms=2)
    assert third.probes == auto_mod.MAX_PROBES and not third.provisional
    assert choose(model_dir / "pose.mnn").cached  # settled after MAX_PROBES
    assert json.loads((model_dir / "choices.json").read_text())  # the env var names the cache file


def test_the_rule_keeps_the_own_file_unless_clearly_beaten():
    order = ["mnn:x.mnn", "onnxruntime:x.onnx", "openvino:x.onnx"]
    one = [1.0] * 9
    assert _decide({order[0]: one, order[1]: [0.99] * 9, order[2]: [1.2] * 9}, order) == order[0]
    assert _decide({order[0]: one, order[1]: [0.95] * 9, order[2]: [0.90] * 9}, order) == order[2]
    # the median round decides: two wild rounds do not
    assert _decide({order[0]: one, order[1]: [0.9] * 7 + [5.0, 5.0], order[2]: one}, order) == order[1]
