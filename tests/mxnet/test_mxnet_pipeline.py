"""GluonCV's own pair through the top-down pipeline: YOLOv3 (MobileNet1.0, COCO, with its box_nms)
as the person detector and SimplePose ResNet18 as the keypoint model, both exported by real MXNet
1.9.1 (random weights, so the detections are arbitrary: what is checked is the plumbing, with the
detector's outputs decoded as the `boxes` head says and each crop mapped back exactly)."""
from __future__ import annotations

import pytest

pytest.importorskip("onnx")  # the MXNet translator writes ONNX (the `convert` extra)

import cv2
import numpy as np

from edgepose import Detector, Pipeline, Predictor
from edgepose.converters.mxnet import mxnet_to_onnx
from edgepose.presets import get_preset


@pytest.fixture(scope="module")
def gluoncv_pair(mx_case, tmp_path_factory):
    out = tmp_path_factory.mktemp("gluoncv-pair")
    files = {}
    for name, shape in (("yolo3_mobilenet1.0_coco", (1, 3, 416, 416)), ("simple_pose_resnet18_v1b", (1, 3, 256, 192))):
        case = mx_case("models", name)
        files[name] = out / f"{name}.onnx"
        mxnet_to_onnx(str(case.symbol), str(case.params), str(files[name]), input_shape=shape)
    return files


def test_yolo3_outputs_decode_as_the_boxes_head(gluoncv_pair, photos):
    spec = get_preset("yolo3_mobilenet1.0_coco")
    det = Detector(gluoncv_pair["yolo3_mobilenet1.0_coco"], spec=spec, min_score=0.0,
                   decode={**spec.decode, "class_ids": None})
    image = cv2.imread(str(photos["bus"]))
    tensor, matrix, _ = det.prepare(image)
    raw = det.run_tensor(tensor)
    valid = (raw["classes"].reshape(-1) >= 0) & (raw["scores"].reshape(-1) >= 0.0)
    found = det.detect(image)
    h, w = image.shape[:2]
    inside = [b for b in raw["boxes"].reshape(-1, 4)[valid]]
    assert 0 < len(found) <= len(inside)  # padding rows (id -1) and off-frame boxes are dropped
    assert (np.diff(found.scores) <= 0).all()  # best first
    x1, y1, x2, y2 = found.boxes.T
    assert ((x2 > x1) & (y2 > y1) & (x2 > 0) & (y2 > 0) & (x1 < w) & (y1 < h)).all()
    # The preset keeps persons (class 0) above 0.5 only.
    strict = Detector(gluoncv_pair["yolo3_mobilenet1.0_coco"], spec=spec).detect(image)
    keep = (raw["classes"].reshape(-1) == 0) & (raw["scores"].reshape(-1) >= 0.5)
    assert len(strict) <= int(keep.sum())


def test_yolo3_and_simple_pose_run_as_a_pipeline(gluoncv_pair, photos):
    spec = get_preset("yolo3_mobilenet1.0_coco")
    det = Detector(gluoncv_pair["yolo3_mobilenet1.0_coco"], spec=spec, min_score=0.0,
                   decode={**spec.decode, "class_ids": None})
    pose = Predictor(gluoncv_pair["simple_pose_resnet18_v1b"], spec=get_preset("simple_pose_resnet18_v1b"))
    image = cv2.imread(str(photos["bus"]))
    people = Pipeline(det, pose, max_people=4)(image)
    detections = det.detect(image)
    assert len(people) == min(4, len(detections)) > 0
    assert people.keypoints.shape == (len(people), 17, 2)
    np.testing.assert_allclose(people.bboxes, detections.boxes[: len(people)])  # box models keep the detector's box
    # Each person's keypoints are the model's own on the crop SimplePose wants (box x1.25, 3:4).
    for i in range(len(people)):
        alone = pose.predict(image, bboxes=[people.bboxes[i]])
        np.testing.assert_allclose(people.keypoints[i], alone.keypoints[0], atol=1e-3)
