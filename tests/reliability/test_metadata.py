"""Metadata is validated when it is loaded, naming the field; JSON output never holds NaN.

Before: values_per_point 0 gave a ZeroDivisionError in the decoder, deep nesting a RecursionError,
NaN/inf/1e-300 in mean, std or bbox_padding were accepted (NaN keypoints, silently), and the JSON
output could hold NaN tokens. The mutation fuzz (metadata_fuzz.py) runs in a child process.
"""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
from reliability_helpers import last_json, run_python

from edgepose.errors import MetadataError
from edgepose.presets import get_preset
from edgepose.spec import ModelSpec, PoseResult


def card(name: str = "blazepose_full", **changes) -> dict:
    data = get_preset(name).to_dict()
    for path, value in changes.items():
        target = data
        keys = path.split("__")
        for k in keys[:-1]:
            target = target[int(k) if isinstance(target, list) else k]
        last = keys[-1]
        target[int(last) if isinstance(target, list) else last] = value
    return data


@pytest.mark.parametrize("changes, field", [
    ({"mean": [float("nan"), 0, 0]}, "mean"),
    ({"mean": [1e300, 0, 0]}, "mean[0]"),
    ({"std": [1e-300, 255, 255]}, "std[0]"),
    ({"std": [255, float("inf"), 255]}, "std"),
    ({"bbox_padding": float("nan")}, "bbox_padding"),
    ({"bbox_padding": 1e-300}, "bbox_padding"),
    ({"bbox_padding": float("inf")}, "bbox_padding"),
    ({"input_size": [200000, 200000]}, "input_size"),
    ({"input_size": [256, float("inf")]}, "input_size"),
    ({"num_keypoints": 10 ** 7, "keypoint_names": [], "skeleton": [], "flip_pairs": []}, "num_keypoints"),
    ({"decode__values_per_point": 0}, "decode.values_per_point"),
    ({"decode__values_per_point": "five"}, "decode.values_per_point"),
    ({"decode__z_index": 9}, "decode.z_index"),
    ({"decode__heatmap_refine__kernel_size": 0}, "decode.heatmap_refine.kernel_size"),
    ({"decode__presence_activation": "relu"}, "decode.presence_activation"),
    ({"decode__presence_threshold": float("nan")}, "decode.presence_threshold"),
    ({"provenance": {"note": float("nan")}}, "provenance.note"),
    ({"outputs__landmarks": 7}, "outputs.landmarks"),
])
def test_bad_landmark_cards_name_the_field(changes, field):
    data = card(**changes)
    with pytest.raises(MetadataError, match=field.replace("[", r"\[").replace("]", r"\]").replace(".", r"\.")):
        ModelSpec.from_dict(data, source="card")


@pytest.mark.parametrize("changes, field", [
    ({"decode__anchors__strides": [1, 1, 1, 1, 1]}, "decode.anchors"),
    ({"decode__anchors__num_layers": 0}, "decode.anchors.num_layers"),
    ({"decode__anchors__min_scale": 0}, "decode.anchors.min_scale"),
    ({"decode__box_scale": [224, 0, 224, 224]}, "decode.box_scale"),
    ({"decode__num_coords": 6}, "decode"),
    ({"decode__nms__iou_threshold": 7}, "decode.nms.iou_threshold"),
    ({"decode__nms__algorithm": "fastest"}, "decode.nms.algorithm"),
    ({"decode__alignment__start": 99}, "decode.alignment.start"),
    ({"decode__values_per_keypoint": 0}, "decode.values_per_keypoint"),
])
def test_bad_detector_cards_name_the_field(changes, field):
    with pytest.raises(MetadataError, match=field.replace(".", r"\.")):
        ModelSpec.from_dict(card("blazepose_detector", **changes), source="card")


def test_ssd_card_without_anchors_or_box_scale():
    for key in ("anchors", "box_scale"):
        data = card("blazepose_detector")
        del data["decode"][key]
        with pytest.raises(MetadataError, match=f"decode.{key} is missing"):
            ModelSpec.from_dict(data, source="card")


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_nan_tokens_in_the_text_are_refused(token):
    text = json.dumps(card()).replace('"bbox_padding": 1.25', f'"bbox_padding": {token}')
    with pytest.raises(MetadataError, match=f"{token.lstrip('-')} token|{token} token"):
        ModelSpec.from_json(text, source="card")


@pytest.mark.parametrize("depth", [17, 1000, 1_000_000])
def test_deep_nesting_is_refused_without_recursion(depth):
    text = json.dumps(card(provenance={"x": "@@"})).replace('"@@"', "[" * depth + "]" * depth)
    with pytest.raises(MetadataError, match="nested"):
        ModelSpec.from_json(text, source="card")


def test_deep_nesting_from_python_objects_is_refused():
    deep: list = []
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(MetadataError, match="nested"):
        ModelSpec.from_dict(card(provenance={"x": deep}), source="card")


def test_size_limit_and_encoding():
    with pytest.raises(MetadataError, match="bytes of metadata|characters of metadata"):
        ModelSpec.from_json(" " * (17 << 20) + "{}", source="card")
    with pytest.raises(MetadataError, match="not valid UTF-8"):
        ModelSpec.from_json(b'{"head": "caf\xe9"}', source="card")


def test_a_big_card_is_fine():
    """Cards over 128 KiB are legitimate (long provenance, many named keypoints)."""
    data = card(provenance={"notes": "x" * (200 << 10)})
    spec = ModelSpec.from_json(json.dumps(data), source="card")
    assert len(spec.to_json()) > 200 << 10


def test_json_output_has_no_nan_tokens():
    result = PoseResult(keypoints=np.array([[[np.nan, 1.0], [np.inf, 2.0]]], np.float32),
                        scores=np.array([[np.nan, 0.5]], np.float32), bboxes=np.array([[0, 0, np.nan, 4]], np.float32),
                        extras={"presence": np.array([np.nan], np.float32), "z": np.array([[np.inf, 1.0]], np.float32)})
    text = result.to_json()
    assert "NaN" not in text and "Infinity" not in text
    inst = json.loads(text)["instances"][0]
    assert inst["keypoints"][0]["x"] is None and inst["keypoints"][1]["score"] == 0.5
    assert inst["presence"] is None and inst["z"] == [None, 1.0]


def test_metadata_fuzz_in_a_child_process():
    """Mutants of four real cards (EDGEPOSE_FUZZ_FULL=1: 10,000; else 1,000, ~10 s): every one
    parsed, and decoded when accepted, ending in a result or an edgepose error."""
    count = 10_000 if os.environ.get("EDGEPOSE_FUZZ_FULL") == "1" else 1000
    proc = run_python(f"""
        import sys
        sys.path.insert(0, {os.path.dirname(__file__)!r})
        import json, metadata_fuzz
        outcomes, findings = metadata_fuzz.run({count}, seed=14)
        print(json.dumps({{"outcomes": dict(outcomes), "findings": findings[:20]}}))
    """, timeout=1800)
    assert proc.returncode == 0, f"the parser's process died ({proc.returncode}): {proc.stderr[-2000:]}"
    report = last_json(proc.stdout)
    assert report["findings"] == [], report
    assert sum(report["outcomes"].values()) == count
    assert report["outcomes"].get("accepted", 0) > count // 10  # the mutants are not all trivially broken
