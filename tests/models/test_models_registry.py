"""The registry: names, metadata (ModelSpec), lookups, errors, weights (the one checkpoint loader)."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from edgepose.errors import EdgePoseError, MetadataError, ModelFileError  # noqa: E402
from edgepose.models import create_model, get_entry, get_spec, list_models, register_model  # noqa: E402
from edgepose.models.checkpoint import CheckpointMismatchError  # noqa: E402
from edgepose.models.keypoints import MPII_FLIP_PAIRS, MPII_KEYPOINTS  # noqa: E402

# The zoo: the 13 models of table A (their published figures live in edgepose.benchmarks.table_a) + heatmap_128.
ZOO = {"deeppose", "heatmap", "deeppose_x2", "ipr", "dsnt_deconv", "simdr", "simdr_norm", "simdr_320_1024d",
       "simdr_320", "efficientrep_n_320", "tokenpose_direct", "tokenpose_deconv4", "tokenpose_deconv3",
       "heatmap_128"}


def test_every_model_is_registered_once_and_globs_filter():
    names = list_models()
    assert len(names) == len(set(names)) and set(names) == ZOO
    assert set(list_models("simdr*")) == {"simdr", "simdr_norm", "simdr_320_1024d", "simdr_320"}
    assert list_models("nothing*") == []


@pytest.mark.parametrize("name", list_models())
def test_spec_metadata(name):
    spec = get_spec(name)
    entry = get_entry(name)
    assert spec.name == name and spec.input_size == entry.input_size
    assert spec.layout == "NCHW" and spec.color == "RGB"
    assert spec.mean == (123.675, 116.28, 103.53) and spec.std == (58.395, 57.12, 57.375)
    assert spec.keypoint_names == MPII_KEYPOINTS and spec.num_keypoints == 16
    assert spec.flip_pairs == MPII_FLIP_PAIRS and len(spec.skeleton) == 15
    assert spec.input_name == entry.input_name == "input"
    assert spec.outputs == {n: n for n in entry.output_names}
    expected = {"heatmap": ("heatmaps",)}.get(spec.head, ("coords", "scores"))
    assert entry.output_names == expected


def test_input_sizes():
    sizes = {n: get_entry(n).input_size for n in list_models()}
    assert sizes["heatmap_128"] == (128, 128)
    assert {n for n, s in sizes.items() if s == (320, 320)} == {
        "simdr_320_1024d", "simdr_320", "efficientrep_n_320"}


def test_flip_pairs_swap_left_and_right():
    for a, b in MPII_FLIP_PAIRS:
        left, right = sorted((MPII_KEYPOINTS[a], MPII_KEYPOINTS[b]))
        assert left.startswith("left_") and right.startswith("right_") and left[5:] == right[6:]


def test_spec_for_another_keypoint_count_drops_mpii_names():
    spec = get_spec("simdr_320", num_keypoints=17)
    assert spec.num_keypoints == 17
    assert spec.keypoint_names == () and spec.skeleton == () and spec.flip_pairs == ()


def test_unknown_name_is_a_clear_edgepose_error():
    with pytest.raises(MetadataError) as err:
        get_entry("simdr320")
    msg = str(err.value)
    assert "'simdr320'" in msg and "simdr_320" in msg and "deeppose" in msg  # suggestion + valid names
    assert isinstance(err.value, EdgePoseError)
    for call in (lambda: create_model("nope"), lambda: get_spec("nope")):
        with pytest.raises(MetadataError, match="unknown model 'nope'"):
            call()


def test_bad_keypoint_count_is_rejected():
    with pytest.raises(ValueError, match="num_keypoints"):
        create_model("deeppose", num_keypoints=0)


def test_duplicate_registration_is_refused():
    with pytest.raises(ValueError, match="registered twice"):
        register_model("deeppose", input_size=256, head="regression", output_names=("coords",))(lambda **kw: None)
    with pytest.raises(ValueError, match="head"):
        register_model("new_model", input_size=256, head="bogus", output_names=("coords",))


def test_create_model_modes():
    model = create_model("ipr")
    assert model.training
    deployed = create_model("ipr", deploy=True)
    assert not deployed.training
    with torch.no_grad():
        out = deployed(torch.zeros(1, 3, 256, 256))
    assert tuple(out) == ("coords", "scores")


def test_options_reach_the_builder():
    model = create_model("ipr", sigma=False, deploy=True)
    assert model.head.sigma is None and model.sigma_features is None
    x = torch.randn(1, 3, 256, 256)
    with torch.no_grad():
        out = model(x)
        logits = model.head.trunk(model.backbone(x)["conv5"])
    # Without the sigma branch the score is the softmax peak of each 8x8 map.
    assert torch.allclose(out["scores"], torch.softmax(logits.flatten(2), -1).amax(-1))
    with pytest.raises(TypeError):
        create_model("deeppose", no_such_option=1)


def test_pretrained_weights_round_trip(tmp_path):
    torch.manual_seed(0)
    src = create_model("simdr_320", deploy=True)
    path = tmp_path / "simdr_320.pth"
    torch.save({"state_dict": src.state_dict()}, path)
    torch.manual_seed(1)
    dst = create_model("simdr_320", pretrained_weights=path, deploy=True)
    x = torch.randn(1, 3, 320, 320)
    with torch.no_grad():
        a, b = src(x), dst(x)
    for k in a:
        assert torch.equal(a[k], b[k])


def test_weights_saved_after_deploy_load_into_a_fresh_model(tmp_path):
    torch.manual_seed(0)
    src = create_model("efficientrep_n_320", deploy=True)
    path = tmp_path / "er.pth"
    torch.save(src.state_dict(), path)
    dst = create_model("efficientrep_n_320", pretrained_weights=path)
    x = torch.randn(1, 3, 320, 320)
    with torch.no_grad():
        assert torch.equal(src(x)["coords"], dst.eval()(x)["coords"])


def test_bad_weights_are_model_file_errors(tmp_path):
    with pytest.raises(ModelFileError, match="checkpoint not found: .*missing.pth"):
        create_model("deeppose", pretrained_weights=tmp_path / "missing.pth")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelFileError, match="junk.pth is not a PyTorch checkpoint torch.load can read"):
        create_model("deeppose", pretrained_weights=junk)
    other = tmp_path / "other.pth"
    torch.save(create_model("deeppose", num_keypoints=17).state_dict(), other)
    with pytest.raises(CheckpointMismatchError, match="other.pth does not fit the model 'deeppose'") as info:
        create_model("deeppose", pretrained_weights=other)
    assert any("checkpoint (34," in m for m in info.value.mismatched)  # 17 x 2 coordinates vs 16 x 2


def test_one_loader_for_the_zoo_and_the_converters(tmp_path):
    """create_model(pretrained_weights=) and the converters' --weights share a loader: wrapped and prefixed
    checkpoints load through create_model too, and a bad file reads the same on both paths."""
    from edgepose.converters.checkpoint import load_weights

    torch.manual_seed(0)
    src = create_model("ipr", deploy=True)
    path = tmp_path / "wrapped.pth"
    torch.save({"model": {f"module.{k}": v for k, v in src.state_dict().items()}, "epoch": 7}, path)
    dst = create_model("ipr", pretrained_weights=path, deploy=True)
    x = torch.randn(1, 3, 256, 256)
    with torch.no_grad():
        assert torch.equal(src(x)["coords"], dst(x)["coords"])
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    messages = []
    for load in (lambda: create_model("ipr", pretrained_weights=junk), lambda: load_weights(create_model("ipr"), junk)):
        with pytest.raises(ModelFileError) as info:
            load()
        messages.append(str(info.value))
    assert messages[0] == messages[1]
