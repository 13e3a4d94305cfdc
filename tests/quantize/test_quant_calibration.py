"""Calibration data: Predictor-identical crops, pinned samples, and clear errors on bad folders."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from edgepose import assets
from edgepose.converters.quantize import samples
from edgepose.converters.quantize.calibration import from_folder, load_calibration
from edgepose.converters.quantize.mnn_engine import mnn_config, verify_preprocessing
from edgepose.errors import CalibrationError
from edgepose.processing.image import InputPacker
from edgepose.spec import ModelSpec


@pytest.fixture
def photo_dir(tmp_path):
    """Two real photos (one odd-sized, one grayscale) in a folder."""
    bus = cv2.imread(str(assets.fetch_asset("bus")))
    cv2.imwrite(str(tmp_path / "bus_odd.jpg"), bus[3:700, 5:338])  # 333 x 697, odd sizes
    gray = cv2.cvtColor(cv2.imread(str(assets.fetch_asset("astronaut"))), cv2.COLOR_BGR2GRAY)
    cv2.imwrite(str(tmp_path / "astronaut_gray.png"), gray)
    (tmp_path / "notes.txt").write_text("not an image, ignored")
    return tmp_path


def test_crops_are_the_predictors_tensors(hand_predictor):
    """What calibration feeds each engine equals Predictor.prepare's tensor for the same box."""
    cal = load_calibration("pinned:hand", hand_predictor, progress=False).subset(6)
    tensors = cal.tensors(hand_predictor.spec)
    pinned = {s.name: s for s in samples.pinned_samples("hand", "calibration")}
    for i, name in enumerate(cal.names):
        s = pinned[name]
        expected, _, _ = hand_predictor.prepare(s.image, [s.box])
        np.testing.assert_array_equal(tensors[i], expected[0])
    assert cal.crops.dtype == np.uint8 and cal.crops.shape[1:] == (224, 224, 3)


def test_pinned_sets_hold_out_zidane_entirely():
    cal = samples.pinned_samples("person", "calibration")
    hold = samples.pinned_samples("person", "holdout")
    assert {s.photo for s in cal} == {"astronaut", "grace_hopper", "bus"}
    assert {s.photo for s in hold} == {samples.HOLDOUT_PHOTO}
    hand_cal = samples.pinned_samples("hand", "calibration")
    assert hand_cal and all(s.photo == "bus" for s in hand_cal)
    # every box appears mirrored, and each sample name is unique (it goes into the provenance)
    assert any(".flip." in s.name for s in hand_cal)
    assert len({s.name for s in cal + hold}) == len(cal) + len(hold)


def test_mnn_reads_the_pngs_exactly_as_the_predictor(hand_predictor, tmp_path):
    """MNN's own ImageProcess with our quantiser config reproduces the Predictor's tensor."""
    cal = load_calibration("pinned:hand", hand_predictor, progress=False).subset(2)
    spec = hand_predictor.spec
    pngs = cal.write_pngs(tmp_path / "png")
    config = mnn_config(spec, tmp_path / "png", 2, method="EMA", weight_method="MAX_ABS")
    assert verify_preprocessing(pngs[0], config, cal.tensors(spec)[0], spec.layout) < 1e-5
    wrong = {**config, "format": "BGR"}  # a colour-order mistake must be caught, not calibrated on
    with pytest.raises(CalibrationError, match="differently"):
        verify_preprocessing(pngs[0], wrong, cal.tensors(spec)[0], spec.layout)


def test_folder_with_odd_sized_and_grayscale_images(photo_dir, hand_predictor):
    cal = from_folder(photo_dir, hand_predictor, progress=False)
    assert sorted(cal.names) == ["astronaut_gray.png", "bus_odd.jpg"]
    assert cal.crops.shape == (2, 224, 224, 3)
    gray = cal.crops[cal.names.index("astronaut_gray.png")]
    assert np.array_equal(gray[..., 0], gray[..., 1])  # read as 3 equal channels
    assert set(cal.images) == {"astronaut_gray.png", "bus_odd.jpg"} and all(len(h) == 64 for h in cal.images.values())


def test_boxes_json_gives_one_sample_per_box(photo_dir, hand_predictor):
    (photo_dir / "boxes.json").write_text(json.dumps({"bus_odd.jpg": [[230, 490, 290, 545], [250, 635, 295, 695]]}))
    cal = from_folder(photo_dir, hand_predictor, progress=False)
    assert sorted(cal.names) == ["astronaut_gray.png", "bus_odd.jpg#0", "bus_odd.jpg#1"]
    assert cal.boxes[cal.names.index("bus_odd.jpg#1")] == (250.0, 635.0, 295.0, 695.0)


@pytest.mark.parametrize("make, message", [
    (lambda d: None, "has no images"),
    (lambda d: (d / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg"), "cannot be read"),
    (lambda d: cv2.imwrite(str(d / "tiny.png"), np.zeros((4, 4, 3), np.uint8)), "at least 8 pixels"),
    (lambda d: (cv2.imwrite(str(d / "a.png"), np.zeros((64, 64, 3), np.uint8)),
                (d / "boxes.json").write_text('{"missing.jpg": [[0, 0, 10, 10]]}')), "not in the folder"),
    (lambda d: (cv2.imwrite(str(d / "a.png"), np.zeros((64, 64, 3), np.uint8)),
                (d / "boxes.json").write_text('{"a.png": [[50, 50, 10, 10]]}')), "empty"),
])
def test_bad_calibration_folders_raise_calibration_error(tmp_path, hand_predictor, make, message):
    make(tmp_path)
    with pytest.raises(CalibrationError, match=message):
        from_folder(tmp_path, hand_predictor, progress=False)


def test_missing_folder_and_too_few_samples(tmp_path, hand_predictor, photo_dir):
    with pytest.raises(CalibrationError, match="does not exist"):
        from_folder(tmp_path / "nope", hand_predictor, progress=False)
    cal = from_folder(photo_dir, hand_predictor, progress=False)
    with pytest.raises(CalibrationError, match="asked for 5 calibration samples but .* gives only 2"):
        cal.subset(5)
    with pytest.raises(CalibrationError, match="pinned:feet"):
        load_calibration("pinned:feet", hand_predictor, progress=False)


def test_calibration_hash_follows_the_pixels(hand_predictor):
    a = load_calibration("pinned:hand", hand_predictor, progress=False).subset(4)
    b = load_calibration("pinned:hand", hand_predictor, progress=False).subset(4)
    c = load_calibration("pinned:hand", hand_predictor, progress=False).subset(5)
    assert a.sha256 == b.sha256 != c.sha256
    prov = a.provenance()
    assert prov["count"] == 4 and prov["samples"] == a.names and prov["images"] == {"bus": assets.ASSETS["bus"].sha256}


@pytest.mark.parametrize("size", [(64, 48), (48, 64), (192, 256)])
def test_mnn_preprocessing_check_allows_its_rounding_but_not_wrong_cards(tmp_path, size):
    """At 64x48 MNN's identity resample lands about half the values one uint8 level off (measured):
    accepted. A wrong colour order, mean or std is refused at every size."""
    w, h = size
    crop = cv2.resize(cv2.imread(str(assets.fetch_asset("astronaut"))), (w, h), interpolation=cv2.INTER_AREA)
    png = tmp_path / "crop.png"
    cv2.imwrite(str(png), crop)
    spec = ModelSpec(head="heatmap", num_keypoints=5, input_size=(w, h), name="x", mean=(123.675, 116.28, 103.53),
                     std=(58.395, 57.12, 57.375), layout="NCHW", color="RGB")
    want = InputPacker(spec).pack(crop[None])[0]
    config = mnn_config(spec, tmp_path, 1, method="EMA", weight_method="MAX_ABS")
    assert verify_preprocessing(png, config, want, spec.layout) <= 1.01 / 57.12
    for wrong in ({"format": "BGR"}, {"mean": [m + 4 for m in config["mean"]]},
                  {"normal": [n * 1.05 for n in config["normal"]]}):
        with pytest.raises(CalibrationError, match="differently"):
            verify_preprocessing(png, {**config, **wrong}, want, spec.layout)
