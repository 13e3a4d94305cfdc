"""ModelSpec: validation with messages that name the field, and JSON round trips."""
from __future__ import annotations

import pytest

from edgepose.errors import MetadataError
from edgepose.presets import get_preset, list_presets
from edgepose.spec import ModelSpec


def base(**kw):
    return ModelSpec(**{"input_size": (192, 256), "head": "heatmap", "num_keypoints": 3, **kw})


@pytest.mark.parametrize("name", list_presets())
def test_presets_round_trip_through_json(name):
    spec = get_preset(name)
    assert ModelSpec.from_json(spec.to_json()) == spec


def test_width_height_order():
    spec = base()
    assert (spec.width, spec.height) == (192, 256)


@pytest.mark.parametrize("kw, field", [
    ({"head": "pose"}, "head"),
    ({"layout": "CHW"}, "layout"),
    ({"color": "YUV"}, "color"),
    ({"num_keypoints": 0}, "num_keypoints"),
    ({"std": (1, 0, 1)}, "std"),
    ({"mean": (1, 2)}, "mean"),
    ({"input_size": (0, 10)}, "input_size"),
    ({"keypoint_names": ("a", "b")}, "keypoint_names"),
    ({"skeleton": ((0, 5),)}, "skeleton"),
    ({"flip_pairs": ((1, 9),)}, "flip_pairs"),
    ({"outputs": {"coords": "x"}}, "heatmaps"),
    ({"outputs": {"heatmaps": "x", "bogus": "y"}}, "bogus"),
])
def test_invalid_fields_are_named(kw, field):
    with pytest.raises(MetadataError, match=field):
        base(**kw)


def test_from_dict_names_missing_and_unknown_fields():
    with pytest.raises(MetadataError, match=r"missing required field\(s\) \['head'\]"):
        ModelSpec.from_dict({"input_size": [1, 1], "num_keypoints": 2})
    with pytest.raises(MetadataError, match="unknown field.*keypoints_names"):
        ModelSpec.from_dict({"input_size": [1, 1], "num_keypoints": 2, "head": "heatmap", "keypoints_names": []})
    with pytest.raises(MetadataError, match="schema version 99"):
        ModelSpec.from_dict({"edgepose_spec": 99})
    with pytest.raises(MetadataError, match="not valid JSON"):
        ModelSpec.from_json("{not json")
