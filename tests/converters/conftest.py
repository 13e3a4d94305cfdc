"""Fixtures for the converter tests: small stand-in models and one shared full conversion."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # the helper modules beside the tests (nets, onnx_models)
    sys.path.insert(0, str(HERE))


@pytest.fixture(scope="session")
def photo(photos) -> Path:
    """One real photo (pinned asset) for parity inputs."""
    return photos["astronaut"]


@pytest.fixture(scope="module")
def deeppose_run(tmp_path_factory, photo):
    """TinyShuffleDeepPose through every stage (torch -> ONNX -> onnxsim -> MNN FP32 / FP16)."""
    from nets import deeppose_spec, tiny_deeppose

    from edgepose.converters import convert

    out = tmp_path_factory.mktemp("deeppose")
    model = tiny_deeppose()
    report = convert(model, output_dir=out, spec=deeppose_spec(), name="tdp", fp16=True, images=[photo])
    return report, model, out


# More members of the pinned mediapipe wheel than edgepose.assets pins for the runtime: the TFLite
# tests need a second sparse model, a model with custom ops MNN lacks and one with a custom op it knows.
MEDIAPIPE_EXTRA = {
    "face_detection_full_range_sparse": (
        "mediapipe/modules/face_detection/face_detection_full_range_sparse.tflite",
        "2c3728e6da56f21e21a320433396fb06d40d9088f2247c05e5635a688d45dfe1"),
    "face_landmark_with_attention": (  # custom ops Landmarks2TransformMatrix, TransformTensorBilinear, ...
        "mediapipe/modules/face_landmark/face_landmark_with_attention.tflite",
        "e06a804e0144f9929eda782122916b35d60c697c3c9344013ca2bbe76a6ce2b4"),
    "selfie_segmentation": (  # custom op Convolution2DTransposeBias, which MNN converts
        "mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite",
        "9ee168ec7c8f2a16c56fe8e1cfbc514974cbbb7e434051b455635f1bd1462f5c"),
}


@pytest.fixture(scope="session")
def mediapipe_model():
    """mediapipe_model(name) -> Path of a MEDIAPIPE_EXTRA model, extracted from the pinned wheel
    (the one edgepose.assets downloads) with its sha256 checked, cached beside the pinned assets."""
    import tempfile

    from edgepose import assets

    pinned = assets.ASSETS["pose_detection"]
    extras = {name: assets.Asset(pinned.package, pinned.version, member, sha)
              for name, (member, sha) in MEDIAPIPE_EXTRA.items()}
    folder = assets.asset_path("pose_detection").parent

    def get(name: str) -> Path:
        target = folder / extras[name].filename
        if target.is_file() and assets.sha256_of(target) == extras[name].sha256:
            return target
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="edgepose-wheel-") as tmp:
            wheel = assets._download_wheel(pinned, Path(tmp))  # the runtime's own fetch, one download for all
            for asset in extras.values():
                assets._extract(wheel, asset, folder / asset.filename)
        return target

    return get
