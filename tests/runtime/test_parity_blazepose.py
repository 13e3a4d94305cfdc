"""Predictor on MNN vs the TFLite reference, on four real photos, same crop.

The reference crop is built here independently (three-point affine, as mmpose does) rather
than with edgepose's own transform, and keypoints are compared at the 256-pixel input scale.
"""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from edgepose import Predictor
from edgepose.assets import PHOTO_PERSON_BOXES
from edgepose.presets import get_preset

TOLERANCE_PX = {"fp32": 0.05, "fp16": 0.5}


def raw_predictor(path) -> Predictor:
    """The model's own landmarks on a black-bordered crop: MediaPipe's heatmap refinement and
    replicated borders (tested against MediaPipe itself in tests/reference) switched off."""
    decode = {**get_preset("blazepose_full").decode, "heatmap_refine": None}
    return Predictor(path, decode=decode, border="zero")


def reference_matrix(bbox, size=256, padding=1.25):
    x1, y1, x2, y2 = bbox
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    side = max(x2 - x1, y2 - y1) * padding  # square input: the longer side sets the crop
    src = np.float32([[cx, cy], [cx, cy - side / 2], [cx - side / 2, cy - side / 2]])
    dst = np.float32([[size / 2, size / 2], [size / 2, 0], [0, 0]])
    return cv2.getAffineTransform(src, dst)


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
@pytest.mark.parametrize("photo", sorted(PHOTO_PERSON_BOXES))
def test_keypoints_match_tflite_on_the_same_crop(photo, precision, photos, blazepose_mnn, blazepose_reference):
    image = cv2.imread(str(photos[photo]))
    bbox = PHOTO_PERSON_BOXES[photo]
    result = raw_predictor(blazepose_mnn[precision]).predict(image, bboxes=[bbox])

    m = reference_matrix(bbox)
    crop = cv2.warpAffine(image, m, (256, 256), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))
    x = cv2.cvtColor(crop, cv2.COLOR_BGR2RGB).astype(np.float32)[None] / 255.0
    ref = blazepose_reference(x)["Identity"].reshape(39, 5)[:33, :2]

    ours_in_input = result.keypoints[0] @ m[:, :2].T + m[:, 2]
    err = np.abs(ours_in_input - ref).max()
    assert err <= TOLERANCE_PX[precision], f"{photo} {precision}: max error {err:.4f} px at 256 scale"
    # The person is really found, so the comparison is between meaningful outputs.
    assert result.extras["presence"][0] > 0.5
    assert result.keypoints.shape == (1, 33, 2) and result.scores.shape == (1, 33)


def test_batched_boxes_equal_one_by_one(photos, blazepose_mnn):
    image = cv2.imread(str(photos["zidane"]))
    boxes = [[740, 40, 1150, 720], [120, 190, 650, 720], [300, 100, 700, 500]]
    predictor = Predictor(blazepose_mnn["fp32"])
    batched = predictor.predict(image, bboxes=boxes)
    single = [predictor.predict(image, bboxes=[b]).keypoints[0] for b in boxes]
    np.testing.assert_allclose(batched.keypoints, np.stack(single), atol=1e-3)


def test_whole_image_without_bbox_maps_back_to_image(photos, blazepose_mnn, blazepose_reference):
    image = cv2.imread(str(photos["astronaut"]))  # 512x512: the whole image is the crop
    result = raw_predictor(blazepose_mnn["fp32"]).predict(image)
    crop = cv2.resize(image, (256, 256), interpolation=cv2.INTER_AREA)  # not used for values
    assert crop.shape == (256, 256, 3)
    x = cv2.cvtColor(cv2.warpAffine(image, np.float32([[0.5, 0, 0], [0, 0.5, 0]]), (256, 256)),
                     cv2.COLOR_BGR2RGB).astype(np.float32)[None] / 255.0
    ref = blazepose_reference(x)["Identity"].reshape(39, 5)[:33, :2] * 2.0  # back to 512 pixels
    np.testing.assert_allclose(result.keypoints[0], ref, atol=0.1)
    np.testing.assert_array_equal(result.bboxes[0], [0, 0, 512, 512])
