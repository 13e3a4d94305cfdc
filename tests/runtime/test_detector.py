"""Detector pieces on their own (anchors, NMS, ROIs) and the real MediaPipe detector converted to MNN."""
from __future__ import annotations

import math
import time

import cv2
import numpy as np
import pytest

from edgepose import Detector, Pipeline, Predictor
from edgepose.errors import BBoxError, InputError, MetadataError
from edgepose.presets import get_preset
from edgepose.processing.roi import Roi, aligned_roi, box_roi, letterbox_roi, image_roi, roi_matrix
from edgepose.processing.ssd import iou, ssd_anchors, suppress


def test_anchor_grid_matches_the_model_outputs():
    opts = {**get_preset("blazepose_detector").decode["anchors"], "input_size": (224, 224)}
    anchors = ssd_anchors(opts)
    # 28x28x2 (stride 8) + 14x14x2 (stride 16) + 7x7x6 (three stride-32 layers share one grid)
    assert anchors.shape == (28 * 28 * 2 + 14 * 14 * 2 + 7 * 7 * 6, 4) == (2254, 4)
    assert np.allclose(anchors[0], [0.5 / 28, 0.5 / 28, 1, 1]) and np.allclose(anchors[-1], [6.5 / 7, 6.5 / 7, 1, 1])


def test_weighted_nms_blends_overlaps_and_keeps_separate_boxes():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], np.float32)
    kps = np.array([[[0, 0]], [[2, 2]], [[55, 55]]], np.float32)
    scores = np.array([0.9, 0.6, 0.8], np.float32)
    b, k, s = suppress(boxes, kps, scores, {"algorithm": "weighted", "iou_threshold": 0.3})
    assert s.tolist() == pytest.approx([0.9, 0.8])  # best first, the top score kept
    assert b[0] == pytest.approx((boxes[0] * 0.9 + boxes[1] * 0.6) / 1.5)
    assert k[0, 0] == pytest.approx([0.8, 0.8])
    b2, _, s2 = suppress(boxes, kps, scores, {"algorithm": "default", "iou_threshold": 0.3})
    assert s2.tolist() == pytest.approx([0.9, 0.8]) and b2[0].tolist() == boxes[0].tolist()
    assert iou(boxes[0], boxes[2:])[0] == 0.0


def test_roi_crop_maps_corners_to_input_corners():
    roi = Roi(100, 80, 40, 20, math.radians(30))
    m = roi_matrix(roi, (64, 32))
    tl, tr, br, bl = roi.corners()
    for src, dst in ((tl, (0, 0)), (tr, (64, 0)), (br, (64, 32)), (bl, (0, 32))):
        assert m[:, :2] @ src + m[:, 2] == pytest.approx(dst, abs=1e-4)


def test_aligned_roi_turns_the_body_axis_vertical():
    # hips at (100, 200), the full-body point straight above: no rotation, side 2 * 100 * 1.25
    roi = aligned_roi(np.array([[100, 200], [100, 100]], float), start=0, end=1, scale=1.25)
    assert (roi.cx, roi.cy, roi.width, roi.rotation) == pytest.approx((100, 200, 250, 0))
    # body leaning to the right by 45 degrees: rotate the crop by +45 degrees (clockwise on screen)
    roi = aligned_roi(np.array([[0, 0], [10, -10]], float), start=0, end=1)
    assert roi.rotation == pytest.approx(math.radians(45))


def test_letterbox_keeps_aspect_and_reports_padding():
    padded, pad = letterbox_roi(image_roi(512, 600), (224, 224))
    assert (padded.width, padded.height) == (600, 600)
    assert pad == pytest.approx(((1 - 512 / 600) / 2, 0, (1 - 512 / 600) / 2, 0))
    roi = box_roi(np.array([10, 10, 30, 90]), padding=1.25, aspect=0.75)
    assert (roi.width, roi.height) == pytest.approx((75, 100))


@pytest.fixture(scope="module")
def detector_mnn():
    from edgepose.demo import detector_model

    return detector_model()


@pytest.fixture(scope="module")
def blazepose_fp16():
    from edgepose.demo import demo_model

    return demo_model()


def test_detector_finds_the_astronaut(detector_mnn, photos):
    det = Detector(detector_mnn).detect(cv2.imread(str(photos["astronaut"])))
    assert len(det) == 1 and det.scores[0] > 0.5
    x1, y1, x2, y2 = det.boxes[0]  # MediaPipe's pose detector boxes the face
    assert 120 < (x1 + x2) / 2 < 300 and 60 < (y1 + y2) / 2 < 260
    assert det.keypoints.shape == (1, 4, 2)


def test_prepare_packs_into_the_backend_input_as_warp_then_pack_did(detector_mnn, photos):
    """The Predictor's fast path (crop_pack into MNN's own input memory, BGRA warp where it pays)
    gives the detector the same bits as the plain 3-channel warp + pack it used before."""
    from edgepose.processing import transforms
    from edgepose.processing.image import InputPacker

    det = Detector(detector_mnn)
    size = det.spec.input_size
    zidane = cv2.imread(str(photos["zidane"]))
    images = {name: cv2.imread(str(path)) for name, path in photos.items()}
    images["large"] = cv2.resize(zidane, (2600, 1500))  # too large for the BGRA route
    images["narrow"] = np.random.default_rng(0).integers(0, 256, (301, 97, 3), np.uint8)
    for name, image in images.items():
        tensor, matrix, _ = det.prepare(image)
        assert det.backend._placeholder_for(tensor) is not None, name  # run() copies nothing
        crop = np.empty((1, size[1], size[0], 3), np.uint8)
        transforms.warp(image, matrix, size, out=crop[0], border=det.spec.border)
        assert np.array_equal(tensor, InputPacker(det.spec).pack(crop)), name


def test_no_person_gives_an_empty_result_and_a_drawing_that_says_so(detector_mnn, blazepose_fp16):
    from edgepose.visualize import draw_pose

    grey = np.full((480, 640, 3), 127, np.uint8)
    result = Pipeline.from_files(detector_mnn, blazepose_fp16)(grey)
    assert len(result) == 0 and result.keypoints.shape == (0, 33, 2)
    assert result.to_dict()["instances"] == []
    drawn = draw_pose(grey, result)
    assert (drawn != grey).any()  # the "no person detected" label


def test_swapped_models_are_refused_naming_both_head_kinds(detector_mnn, blazepose_fp16):
    with pytest.raises(MetadataError, match=r"detector model \(head 'ssd'\).*pose model.*landmarks"):
        Predictor(detector_mnn)
    with pytest.raises(MetadataError, match=r"pose model \(head 'landmarks'\).*detector model.*ssd"):
        Detector(blazepose_fp16)
    with pytest.raises(InputError, match="detector must be"):
        Pipeline(Predictor(blazepose_fp16), Predictor(blazepose_fp16))


def test_a_million_boxes_fail_before_anything_is_allocated(blazepose_fp16):
    predictor = Predictor(blazepose_fp16)
    boxes = np.tile(np.array([[10, 10, 100, 100]], np.float32), (1_000_000, 1))
    t0 = time.perf_counter()
    with pytest.raises(BBoxError, match="at most 1000"):
        predictor.predict(np.zeros((200, 200, 3), np.uint8), boxes)
    assert time.perf_counter() - t0 < 5  # was a 39 s loop, then a 183 GiB allocation
    with pytest.raises(BBoxError, match="outside"):
        predictor.predict(np.zeros((200, 200, 3), np.uint8), rois=[Roi(-500, -500, 10, 10)])


def test_max_people_and_rounds(detector_mnn, blazepose_fp16, photos):
    bus = cv2.imread(str(photos["bus"]))
    single = Pipeline.from_files(detector_mnn, blazepose_fp16, rounds=1)(bus)
    several = Pipeline.from_files(detector_mnn, blazepose_fp16)(bus)
    capped = Pipeline.from_files(detector_mnn, blazepose_fp16, max_people=2)(bus)
    assert len(single) == 1 and len(several) >= 3 and len(capped) == 2
    np.testing.assert_allclose(several.keypoints[0], single.keypoints[0])  # the first pass is MediaPipe's
    assert (several.extras["presence"] >= 0.5).all()
    # distinct people: their keypoint centres lie apart
    centres = several.keypoints.mean(1)
    gaps = np.linalg.norm(centres[:, None] - centres[None], axis=-1) + np.eye(len(centres)) * 1e9
    assert gaps.min() > 50
    with pytest.raises(InputError, match="max_people"):
        Pipeline.from_files(detector_mnn, blazepose_fp16, max_people=0)


def _cli(*args):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "edgepose", *args], capture_output=True, text=True, timeout=600)


def test_cli_predict_runs_the_detector_the_card_names(blazepose_fp16, photos, tmp_path):
    import json

    out = tmp_path / "bus.png"
    proc = _cli("predict", str(blazepose_fp16), str(photos["bus"]), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert len(data["instances"]) >= 3
    person = data["instances"][0]
    assert {"bbox", "keypoints", "presence", "detection_score"} <= set(person)
    assert len(person["keypoints"]) == 33 and person["presence"] >= 0.5
    assert cv2.imread(str(out)).shape == cv2.imread(str(photos["bus"])).shape
    # With a box, the model runs on that box alone, as before.
    proc = _cli("predict", str(blazepose_fp16), str(photos["bus"]), "--bbox", "45,395,250,910")
    assert proc.returncode == 0 and len(json.loads(proc.stdout)["instances"]) == 1


def test_cli_demo_on_bus_writes_every_person(tmp_path):
    import json

    proc = _cli("demo", "--image", "bus", "-o", str(tmp_path), "--repeats", "2")
    assert proc.returncode == 0, proc.stderr
    assert "people     3" in proc.stdout or "people     4" in proc.stdout, proc.stdout
    data = json.loads((tmp_path / "bus_pose.json").read_text())
    assert len(data["instances"]) >= 3 and (tmp_path / "bus_pose.png").is_file()
    assert "detector" in proc.stdout and "keypoints" in proc.stdout  # stage latencies


def test_cli_predict_refuses_to_overwrite_the_input(blazepose_fp16, photos, tmp_path):
    import shutil

    photo = tmp_path / "bus.png"
    cv2.imwrite(str(photo), cv2.imread(str(photos["bus"])))
    before = photo.read_bytes()
    proc = _cli("predict", str(blazepose_fp16), str(photo), "-o", str(photo))
    assert proc.returncode == 1 and "overwrite" in proc.stderr
    assert photo.read_bytes() == before
    shutil.rmtree(tmp_path, ignore_errors=True)


def test_random_init_models_warn(blazepose_fp16):
    from edgepose.errors import RandomWeightsWarning

    with pytest.warns(RandomWeightsWarning, match="random initial weights"):
        Predictor(blazepose_fp16, provenance={"weights": "random-init"})
