"""ShuffleNetV2's deploy form: channel shuffles folded into the conv weights (same outputs, no Transposes)."""
from __future__ import annotations

import copy

import onnx
import pytest
import torch

from edgepose.models import create_model
from edgepose.models.backbones.shufflenetv2 import FOLDED_MARK


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / a.abs().max().clamp_min(1e-9))


@pytest.mark.parametrize("name", ["deeppose", "simdr_320", "tokenpose_direct", "heatmap_128"])
def test_folding_keeps_the_outputs(name):
    """simdr_320 reads stage 4 and conv5, tokenpose stage 3: every tapped map stays in its order."""
    torch.manual_seed(0)
    model = create_model(name).eval()
    original = copy.deepcopy(model)
    model.switch_to_deploy()
    assert model.backbone.shuffles_folded and not original.backbone.shuffles_folded
    x = torch.randn(2, 3, model.input_size[1], model.input_size[0])
    with torch.no_grad():
        a, b = original(x), model(x)
    for key in a:
        assert _rel(a[key], b[key]) < 1e-4, key
    with torch.no_grad():  # idempotent
        model.switch_to_deploy()
        assert torch.equal(model(x)[key], b[key])


def test_folded_graph_has_no_shuffle_transposes(tmp_path):
    torch.set_num_threads(1)
    path = tmp_path / "deeppose.onnx"
    model = create_model("deeppose", deploy=True)
    torch.onnx.export(model, torch.randn(1, 3, 256, 256), str(path), dynamo=False, opset_version=17,
                      input_names=["input"], output_names=list(model.output_names))
    ops = [n.op_type for n in onnx.load(str(path)).graph.node]
    assert ops.count("Transpose") == 0 and "Split" in ops
    unfolded = create_model("deeppose").eval()
    torch.onnx.export(unfolded, torch.randn(1, 3, 256, 256), str(tmp_path / "u.onnx"), dynamo=False, opset_version=17)
    assert [n.op_type for n in onnx.load(str(tmp_path / "u.onnx")).graph.node].count("Transpose") == 16  # one per unit


def test_checkpoints_load_either_way(tmp_path):
    """A training checkpoint (unfolded) and a deploy one (folded, marked) both give the same model."""
    torch.manual_seed(0)
    src = create_model("ipr").eval()
    x = torch.randn(1, 3, 256, 256)
    with torch.no_grad():
        expected = src(x)["coords"]
    trained = tmp_path / "train.pth"
    torch.save(src.state_dict(), trained)
    deployed = tmp_path / "deploy.pth"
    folded = copy.deepcopy(src).switch_to_deploy()
    state = folded.state_dict()
    assert any(k.endswith(FOLDED_MARK) for k in state)
    torch.save(state, deployed)
    for path in (trained, deployed):
        for deploy in (False, True):
            model = create_model("ipr", pretrained_weights=path, deploy=deploy).eval()
            with torch.no_grad():
                assert _rel(expected, model(x)["coords"]) < 1e-5, (path.name, deploy)
