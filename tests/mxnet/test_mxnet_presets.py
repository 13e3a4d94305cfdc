"""The proposed GluonCV presets describe the models the fixtures actually built."""
from __future__ import annotations


import pytest

pytest.importorskip("onnx")  # the MXNet translator writes ONNX (the `convert` extra)

from edgepose.converters.mxnet import mxnet_to_onnx_model
from edgepose.converters.mxnet.presets import CLASSIFIERS, PRESETS, input_shape_for
from edgepose.spec import ModelSpec


def test_simple_pose_preset_matches_the_model(mx_case):
    spec = PRESETS["simple_pose_resnet18_v1b"]
    assert ModelSpec.from_json(spec.to_json()) == spec
    case = mx_case("models", "simple_pose_resnet18_v1b")
    shape = input_shape_for("simple_pose_resnet18_v1b")
    assert case.input_shapes["data"] == shape
    model = mxnet_to_onnx_model(case.symbol, case.params, input_shape=shape, metadata={"edgepose": spec.to_json()})
    (out,) = model.graph.output
    dims = [d.dim_value for d in out.type.tensor_type.shape.dim]
    assert dims == [1, spec.num_keypoints, shape[2] // 4, shape[3] // 4]
    stored = {p.key: p.value for p in model.metadata_props}
    assert ModelSpec.from_json(stored["edgepose"]) == spec


def test_classifier_inputs_match_the_fixtures(mx_manifest):
    for name, info in mx_manifest["models"].items():
        if name in CLASSIFIERS:
            assert tuple(info["inputs"]["data"]) == input_shape_for(name)
            assert info["outputs"] == [[1, CLASSIFIERS[name]["num_classes"]]]
    # Held-out fixtures without a preset: GluonCV's mobile pose nets and the YOLOv3 detector.
    held_out = {"mobile_pose_resnet18_v1b", "mobile_pose_mobilenetv3_large", "yolo3_mobilenet1.0_coco"}
    assert set(CLASSIFIERS) | {"simple_pose_resnet18_v1b"} | held_out == set(mx_manifest["models"])
