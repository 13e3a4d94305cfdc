"""The Predictor's fast path (crops warped and packed straight into MNN's input memory) gives the
bits the plain path gives: 3-channel warp, packing into a buffer of its own, a copy into the model.

The plain path is written out here as the Predictor ran it before (transforms.warp, the packing
formulas, Backend.run on a copy, the head's decoder, the inverse crop per instance).
"""
from __future__ import annotations

import gc
import math

import cv2
import numpy as np
import pytest

from edgepose import Predictor
from edgepose.errors import ShapeError
from edgepose.processing import transforms
from edgepose.processing.decoders import decode
from edgepose.processing.roi import Roi, roi_matrix


def _plain_tensor(predictor: Predictor, image: np.ndarray, matrices: np.ndarray) -> np.ndarray:
    spec = predictor.spec
    mean, std = np.asarray(spec.mean, np.float64), np.asarray(spec.std, np.float64)
    scale, offset = 1.0 / std, -mean / std
    source = (2, 1, 0) if spec.color == "RGB" else (0, 1, 2)
    out = []
    for m in matrices:
        crop = transforms.warp(image, m, spec.input_size, border=spec.border)
        if spec.layout == "NCHW":
            planes = cv2.split(crop)
            out.append(np.stack([cv2.addWeighted(planes[s], float(scale[c]), planes[s], 0.0, float(offset[c]),
                                                 dtype=cv2.CV_32F) for c, s in enumerate(source)]))
        else:
            mat = np.zeros((3, 4), np.float32)
            for c, s in enumerate(source):
                mat[c, s], mat[c, 3] = scale[c], offset[c]
            out.append(cv2.transform(crop.astype(np.float32), mat))
    return np.stack(out)


def _plain_predict(predictor: Predictor, image: np.ndarray, matrices: np.ndarray):
    tensor = _plain_tensor(predictor, image, matrices)
    outputs = predictor.backend.run({predictor._input: tensor.copy()})  # the batch at once, from a copy
    roles = {role: outputs[name] for role, name in predictor._roles.items()}
    xy, scores, extras = decode(predictor.spec, roles)
    back = [transforms.invert(m) for m in matrices]
    keypoints = np.stack([transforms.apply_affine(xy[i], back[i]) for i in range(len(matrices))])
    return tensor, keypoints, scores, extras


def _cases(photos):
    bus = cv2.imread(str(photos["bus"]))
    astro = cv2.imread(str(photos["astronaut"]))
    return [
        (astro, dict(bboxes=[[95, 10, 470, 512]])),  # the crop reaches past every edge
        (bus, dict(bboxes=[[50, 230, 260, 900], [660, 200, 810, 880]])),  # two crops
        (astro, dict()),  # the whole image
        (bus, dict()),  # the whole of a larger image: the 3-channel route
        (np.ascontiguousarray(bus[::2, ::2]), dict(bboxes=[[20, 100, 140, 450]])),
        (astro[:, ::-1], dict(bboxes=[[40, 10, 420, 512]])),  # a non-contiguous image
        (astro, dict(rois=[Roi(250, 260, 300, 420, math.radians(25))])),
    ]


@pytest.mark.parametrize("precision", ["fp16", "fp32"])
def test_fast_path_gives_the_plain_paths_bits(blazepose_mnn, photos, precision):
    predictor = Predictor(blazepose_mnn[precision])
    for image, kwargs in _cases(photos):
        tensor, matrices, _ = predictor.prepare(image, **kwargs)
        size = predictor.spec.input_size
        if "rois" in kwargs:
            expected_m = np.stack([roi_matrix(r, size) for r in kwargs["rois"]])
        elif "bboxes" in kwargs:
            expected_m = np.stack([transforms.crop_matrix(*transforms.bbox_to_center_scale(
                np.asarray(b, np.float32), padding=predictor.spec.bbox_padding, aspect=size[0] / size[1]), size)
                for b in kwargs["bboxes"]])
        else:
            expected_m = transforms.whole_image_matrix(image.shape, size)[None]
        np.testing.assert_array_equal(matrices, expected_m)
        plain_tensor, keypoints, scores, extras = _plain_predict(predictor, image, matrices)
        np.testing.assert_array_equal(tensor, plain_tensor)
        result = predictor.predict(image, **kwargs)
        np.testing.assert_array_equal(result.keypoints, keypoints)
        np.testing.assert_array_equal(result.scores, scores)
        assert set(result.extras) == set(extras) | ({"auxiliary"} if "auxiliary" in extras else set())
        aux = transforms.to_image(extras["auxiliary"], matrices)
        np.testing.assert_array_equal(result.extras["auxiliary"], aux)
        for key in set(extras) - {"auxiliary"}:
            np.testing.assert_array_equal(result.extras[key], extras[key])


def test_prepare_packs_into_mnn_input_memory(blazepose_mnn, photos):
    predictor = Predictor(blazepose_mnn["fp16"])
    backend = predictor.backend
    image = cv2.imread(str(photos["astronaut"]))
    tensor, _, _ = predictor.prepare(image, [[95, 10, 470, 512]])
    assert backend._placeholder_for(tensor) is not None  # run() reads it where it is
    assert backend._placeholder_for(tensor.copy()) is None  # a copy is copied in
    assert backend._placeholder_for(tensor[:, :128]) is None
    own = predictor.run_tensor(tensor)
    copied = predictor.run_tensor(tensor.copy())
    assert all(np.array_equal(own[k], copied[k]) for k in own)
    # The same array for the same shape on this thread, a different one on another thread.
    assert predictor.prepare(image, [[95, 10, 470, 512]])[0] is tensor
    import threading

    other = []
    threading.Thread(target=lambda: other.append(predictor.prepare(image, [[95, 10, 470, 512]])[0])).start()
    while not other:
        pass
    assert other[0] is not tensor
    assert other[0].__array_interface__["data"][0] != tensor.__array_interface__["data"][0]


def test_mnn_input_buffer_shapes_and_lifetime(blazepose_mnn):
    from edgepose.backends import open_backend
    from edgepose.backends import mnn as mnn_backend

    backend = open_backend(blazepose_mnn["fp32"], "mnn")
    name, shape = backend.inputs[0].name, (1,) + tuple(backend.inputs[0].shape[1:])
    with pytest.raises(ShapeError):
        backend.input_buffer(name, (1, 3, 5, 5))
    with pytest.raises(ShapeError):
        backend.input_buffer("nope", shape)
    x = np.random.default_rng(0).random(shape, dtype=np.float32)
    buf = backend.input_buffer(name, shape)
    np.copyto(buf, x)
    a = backend.run({name: buf})
    b = backend.run({name: x})
    assert all(np.array_equal(a[k], b[k]) for k in a)
    # Each batch size is a placeholder of its own; the oldest goes beyond MAX_INPUT_SHAPES, and an
    # array over an evicted one stays valid (it is copied in from then on).
    first = backend.input_buffer(name, (2,) + shape[1:])
    for n in range(3, 3 + mnn_backend.MAX_INPUT_SHAPES):
        backend.input_buffer(name, (n,) + shape[1:])
    assert backend._placeholder_for(first) is None
    first[...] = 0.5
    del backend
    gc.collect()
    buf[...] = 1.0  # the memory outlives the backend: the array holds its Var
    assert float(buf.sum()) == buf.size and float(first.mean()) == 0.5
