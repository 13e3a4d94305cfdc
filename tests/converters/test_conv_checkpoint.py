"""Trained checkpoints: wrapped or prefixed state dicts load strictly; mismatches are listed key by key."""
from __future__ import annotations

import pytest
pytest.importorskip("torch")  # build-time extra (torch): skip without it
import torch
from nets import deeppose_spec, tiny_deeppose

from edgepose.backends import open_backend
from edgepose.converters import convert, load_weights
from edgepose.converters.checkpoint import CheckpointMismatchError
from edgepose.errors import ModelFileError
from edgepose.spec import ModelSpec


def _trained():
    return tiny_deeppose(seed=5)


@pytest.mark.parametrize("wrap", ["plain", "state_dict+module.", "model+_orig_mod.", "state_dict+backbone-only"])
def test_common_checkpoint_layouts_load_exactly(tmp_path, wrap):
    trained = _trained().state_dict()
    if wrap == "plain":
        obj = trained
    elif wrap == "state_dict+module.":  # DataParallel
        obj = {"state_dict": {f"module.{k}": v for k, v in trained.items()}, "epoch": 3}
    elif wrap == "model+_orig_mod.":  # torch.compile
        obj = {"model": {f"_orig_mod.{k}": v for k, v in trained.items()}}
    else:  # everything under backbone. (an mmpose-style export of a model whose attributes lack it)
        obj = {"state_dict": {f"backbone.{k}": v for k, v in trained.items()}}
    path = tmp_path / "ckpt.pth"
    torch.save(obj, path)
    fresh = tiny_deeppose(seed=0)
    load_weights(fresh, path)
    for k, v in fresh.state_dict().items():
        assert torch.equal(v, trained[k]), k


def test_mismatch_lists_missing_unexpected_and_shape_keys(tmp_path):
    state = _trained().state_dict()
    state.pop("fc.bias")
    state["extra.weight"] = torch.zeros(3)
    state["fc.weight"] = torch.zeros(10, 128)
    path = tmp_path / "bad.pth"
    torch.save({"state_dict": state}, path)
    with pytest.raises(CheckpointMismatchError) as info:
        load_weights(tiny_deeppose(), path)
    msg = str(info.value)
    assert "1 key(s) missing from the checkpoint: fc.bias" in msg
    assert "1 key(s) unexpected in the checkpoint: extra.weight" in msg
    assert "fc.weight: checkpoint (10, 128) vs model (32, 128)" in msg
    assert info.value.missing == ["fc.bias"] and info.value.unexpected == ["extra.weight"]


def test_checkpoint_with_pickled_objects_is_refused_with_a_fix(tmp_path):
    import argparse

    path = tmp_path / "full.pth"  # training scripts like to store their arguments too
    torch.save({"state_dict": _trained().state_dict(), "args": argparse.Namespace(lr=0.1)}, path)
    with pytest.raises(ModelFileError, match=r"pickled Python objects.*torch.save\(ckpt\['state_dict'\]"):
        load_weights(tiny_deeppose(), path)


def test_weights_go_into_the_conversion_and_its_provenance(tmp_path):
    trained = _trained()
    path = tmp_path / "trained.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in trained.state_dict().items()}}, path)
    report = convert(tiny_deeppose(seed=0), weights=path, output_dir=tmp_path / "out", spec=deeppose_spec(),
                     name="w", images=[], simplify=False)
    assert report.ok
    x = torch.randn(1, 3, 128, 96)
    with torch.no_grad():
        ref = trained(x).numpy()
    got = open_backend(tmp_path / "out" / "w.mnn").run({"input": x.numpy()})["coords"]
    assert abs(got - ref).max() < 1e-5
    prov = ModelSpec.from_json(open_backend(tmp_path / "out" / "w.mnn").metadata).provenance
    assert prov["weights"] == "trained.pth" and len(prov["weights_sha256"]) == 64
    assert prov["weights_keys"] == "stripped 'module.'"
