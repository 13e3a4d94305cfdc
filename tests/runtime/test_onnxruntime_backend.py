"""The ONNX Runtime backend, tested like the MNN one: Predictor vs the source framework
(torch) on the same crop, and MNN vs ONNX Runtime on the same ONNX model."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

from edgepose import Predictor  # noqa: E402
from edgepose.spec import ModelSpec  # noqa: E402


class TinyIntegralPose(torch.nn.Module):
    """Conv features -> per-keypoint maps -> soft-argmax: outputs normalised coords and scores."""

    def __init__(self, k=5):
        super().__init__()
        self.body = torch.nn.Sequential(
            torch.nn.Conv2d(3, 16, 3, 2, 1), torch.nn.BatchNorm2d(16), torch.nn.ReLU(),
            torch.nn.Conv2d(16, 32, 3, 2, 1), torch.nn.BatchNorm2d(32), torch.nn.ReLU(),
            torch.nn.Conv2d(32, k, 1))

    def forward(self, x):
        maps = self.body(x)
        n, k, h, w = maps.shape
        prob = torch.softmax(maps.flatten(2) * 4.0, -1).reshape(n, k, h, w)
        gx = (torch.arange(w, dtype=x.dtype) + 0.5) / w
        gy = (torch.arange(h, dtype=x.dtype) + 0.5) / h
        coords = torch.stack([(prob.sum(2) * gx).sum(-1), (prob.sum(3) * gy).sum(-1)], -1)
        return coords, prob.flatten(2).amax(-1)


SPEC = ModelSpec(name="tiny", input_size=(96, 128), head="integral", num_keypoints=5,
                 mean=(123.675, 116.28, 103.53), std=(58.395, 57.12, 57.375),
                 outputs={"coords": "coords", "scores": "scores"}, input_name="input")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    torch.manual_seed(0)
    model = TinyIntegralPose().eval()
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):  # non-trivial statistics
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    path = tmp_path_factory.mktemp("ort") / "tiny.onnx"
    torch.onnx.export(model, torch.zeros(1, 3, 128, 96), str(path), input_names=["input"],
                      output_names=["coords", "scores"], dynamic_axes={"input": {0: "N"}},
                      opset_version=17, dynamo=False)
    proto = onnx.load(str(path))
    onnx.helper.set_model_props(proto, {"edgepose": SPEC.to_json()})
    onnx.save(proto, str(path))
    return model, path


def test_predictor_on_onnxruntime_matches_torch_on_the_same_crop(tiny, photos):
    import cv2

    model, path = tiny
    predictor = Predictor(path)
    assert predictor.backend.name == "onnxruntime" and predictor.spec == SPEC
    image = cv2.imread(str(photos["bus"]))
    boxes = [[45, 395, 250, 910], [660, 380, 810, 880]]
    result = predictor.predict(image, boxes)
    tensor, matrices, _ = predictor.prepare(image, boxes)
    with torch.no_grad():
        coords, scores = model(torch.from_numpy(np.ascontiguousarray(tensor)))
    # The reference tensor is rebuilt by hand to check the packing too.
    crop = cv2.warpAffine(image, matrices[0], (96, 128))
    by_hand = ((crop[..., ::-1] - np.array(SPEC.mean)) / np.array(SPEC.std)).transpose(2, 0, 1)
    np.testing.assert_allclose(tensor[0], by_hand, atol=1e-4)
    in_input = np.stack([result.keypoints[i] @ matrices[i][:, :2].T + matrices[i][:, 2] for i in range(2)])
    np.testing.assert_allclose(in_input, coords.numpy() * [96, 128], atol=1e-3)
    np.testing.assert_allclose(result.scores, scores.numpy(), atol=1e-5)


def test_mnn_and_onnxruntime_agree_on_the_same_model(tiny, tmp_path, photos):
    from edgepose.converters.mnn_native import convert_to_mnn

    _, path = tiny
    mnn_path = tmp_path / "tiny.mnn"
    convert_to_mnn(path, mnn_path, framework="ONNX", biz_code=SPEC.to_json())
    image = str(photos["zidane"])
    a = Predictor(path).predict(image, [[740, 40, 1150, 720]])
    b = Predictor(mnn_path).predict(image, [[740, 40, 1150, 720]])
    assert Predictor(mnn_path).backend.name == "mnn"
    # 0.05 px at the 96x128 input scale; the crop is ~4.4x larger in the image.
    np.testing.assert_allclose(a.keypoints, b.keypoints, atol=0.05 * 4.4)
