"""Every kind of bad input raises an edgepose.errors exception whose message says what to do."""
from __future__ import annotations

import numpy as np
import pytest

from edgepose import Predictor
from edgepose.errors import (BackendError, BBoxError, EdgePoseError, ImageError, MetadataError,
                             ModelFileError, ShapeError)


@pytest.fixture(scope="module")
def predictor(blazepose_mnn):
    return Predictor(blazepose_mnn["fp32"])


def test_missing_model_file(tmp_path):
    with pytest.raises(ModelFileError, match="not found"):
        Predictor(tmp_path / "nope.mnn")


@pytest.mark.parametrize("suffix", [".mnn", ".onnx"])
def test_file_that_is_not_a_model(tmp_path, suffix):
    if suffix == ".onnx":
        pytest.importorskip("onnxruntime")  # the `ort` extra: without it the error is "install onnxruntime"
    bad = tmp_path / f"bad{suffix}"
    bad.write_bytes(b"this is not a model at all" * 10)
    with pytest.raises(ModelFileError, match="not a model"):
        Predictor(bad)


def test_unknown_suffix_and_backend(tmp_path, blazepose_mnn):
    other = tmp_path / "model.bin"
    other.write_bytes(b"x")
    with pytest.raises(ModelFileError, match="backend"):
        Predictor(other)
    with pytest.raises(BackendError, match="valid backends: litert, mnn, onnxruntime"):
        Predictor(blazepose_mnn["fp32"], backend="tensorrt")
    with pytest.raises(BackendError, match="precision"):
        Predictor(blazepose_mnn["fp32"], precision="lowBF16x")


@pytest.mark.parametrize("image, hint", [
    (np.zeros((64, 64), np.uint8), "COLOR_GRAY2BGR"),
    (np.zeros((64, 64, 1), np.uint8), "COLOR_GRAY2BGR"),
    (np.zeros((64, 64, 4), np.uint8), "COLOR_BGRA2BGR"),
    (np.zeros((0, 0, 3), np.uint8), "empty"),
    (np.zeros((64, 64, 3), np.float32), "uint8"),
    ([[1, 2, 3]], "numpy array"),
    (None, "numpy array"),
])
def test_bad_images(predictor, image, hint):
    with pytest.raises(ImageError, match=hint):
        predictor.predict(image)


def test_image_path_that_is_not_an_image(predictor, tmp_path):
    text = tmp_path / "notes.jpg"
    text.write_text("hello")
    with pytest.raises(ImageError, match="not an image"):
        predictor.predict(text)
    with pytest.raises(ImageError, match="not found"):
        predictor.predict(tmp_path / "missing.jpg")


@pytest.mark.parametrize("bbox, hint", [
    ([10, 10, 10, 50], "empty"),
    ([50, 10, 20, 40], "empty"),
    ([700, 700, 800, 800], "outside"),
    ([-200, -200, -10, -10], "outside"),
    ([1, 2, 3], "shaped"),
    ([0, 0, np.nan, 10], "non-finite"),
    (np.zeros((0, 4)), "empty"),
])
def test_bad_bboxes(predictor, bbox, hint):
    with pytest.raises(BBoxError, match=hint):
        predictor.predict(np.zeros((480, 640, 3), np.uint8), bboxes=bbox)


def test_model_without_metadata_names_the_missing_fields(blazepose_mnn_bare):
    with pytest.raises(MetadataError, match="input_size, head, num_keypoints"):
        Predictor(blazepose_mnn_bare)


def test_wrong_input_size_for_a_model_without_metadata(blazepose_mnn_bare):
    fields = dict(head="landmarks", num_keypoints=33, layout="NHWC", std=(255, 255, 255),
                  outputs={"landmarks": "Identity"}, decode={"values_per_point": 5})
    with pytest.raises(ShapeError, match=r"input_size=\(width=224, height=224\)"):
        Predictor(blazepose_mnn_bare, input_size=(224, 224), **fields)
    with pytest.raises(ShapeError, match="NHWC"):
        Predictor(blazepose_mnn_bare, input_size=(256, 256), **{**fields, "layout": "NCHW"})


def test_explicit_fields_make_a_bare_model_work(blazepose_mnn_bare, blazepose_mnn, photos):
    from edgepose.presets import get_preset

    image = str(photos["bus"])
    bare = Predictor(blazepose_mnn_bare, spec=get_preset("blazepose_full"))
    embedded = Predictor(blazepose_mnn["fp32"])
    np.testing.assert_allclose(bare.predict(image, [[45, 395, 250, 910]]).keypoints,
                               embedded.predict(image, [[45, 395, 250, 910]]).keypoints, atol=1e-4)


def test_sidecar_metadata_is_read(tmp_path, blazepose_mnn_bare):
    import shutil

    from edgepose.predictor import sidecar_path
    from edgepose.presets import get_preset

    model = tmp_path / "side.mnn"
    shutil.copy(blazepose_mnn_bare, model)
    sidecar_path(model).write_text(get_preset("blazepose_full").to_json())
    assert Predictor(model).spec.num_keypoints == 33


def test_metadata_naming_a_missing_output(blazepose_mnn):
    with pytest.raises(MetadataError, match="lacks"):
        Predictor(blazepose_mnn["fp32"], outputs={"landmarks": "no_such_output"})


def test_all_errors_share_one_base():
    for cls in (BackendError, BBoxError, ImageError, MetadataError, ModelFileError, ShapeError):
        assert issubclass(cls, EdgePoseError)
