"""A model whose provenance says `weights: random-init` is announced on stderr by the CLI, every run."""
from __future__ import annotations

import pytest

from edgepose.cli import main
from edgepose.presets import get_preset

BOX = "95,10,470,512"


@pytest.fixture(scope="module")
def random_init_mnn(tmp_path_factory, blazepose_tflite):
    """BlazePose converted by the real MNN converter, its card saying the weights are random."""
    from edgepose.converters.mnn_native import convert_to_mnn

    spec = get_preset("blazepose_full").with_provenance(weights="random-init")
    dst = tmp_path_factory.mktemp("random-init") / "noise.mnn"
    convert_to_mnn(blazepose_tflite, dst, framework="TFLITE", fp16=False, biz_code=spec.to_json())
    return dst


def warning_lines(err: str) -> list[str]:
    return [ln for ln in err.splitlines() if "random" in ln.lower()]


def test_predict_says_random_weights_once_per_run_every_run(random_init_mnn, photos, capsys):
    for _ in range(2):  # a second run in the same process warns again (no once-per-process filter)
        assert main(["predict", str(random_init_mnn), str(photos["astronaut"]), "--bbox", BOX]) == 0
        captured = capsys.readouterr()
        lines = warning_lines(captured.err)
        assert len(lines) == 1, captured.err
        assert lines[0].startswith("edgepose predict: WARNING: noise.mnn was exported with random initial weights")
        assert '"keypoints"' in captured.out or '"instances"' in captured.out  # the output still comes


def test_trained_model_has_no_warning(blazepose_mnn, photos, capsys):
    assert main(["predict", str(blazepose_mnn["fp16"]), str(photos["astronaut"]), "--bbox", BOX]) == 0
    assert warning_lines(capsys.readouterr().err) == []
