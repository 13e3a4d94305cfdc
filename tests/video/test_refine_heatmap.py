"""BlazePose's heatmap refinement, vectorised for tracking's per-frame budget, equals MediaPipe's
per-landmark loop (RefineLandmarksFromHeatmapCalculator, kept here as the reference) on real
heatmaps, with landmarks inside, near the border of and outside the heatmap."""
from __future__ import annotations

import numpy as np

from edgepose.processing.decoders import _sigmoid, refine_from_heatmap
from edgepose.processing.roi import Roi


def loop_reference(xy, hm, in_w, in_h, kernel_size, min_confidence):
    out = xy.copy()
    n, k = xy.shape[:2]
    _, hh, hw, _ = hm.shape
    off = (kernel_size - 1) // 2
    for i in range(n):
        for j in range(k):
            col = int(xy[i, j, 0] / in_w * hw)
            row = int(xy[i, j, 1] / in_h * hh)
            if col < 0 or col >= hw or row < 0 or col >= hh:  # MediaPipe checks col twice
                continue
            r0, r1 = max(0, row - off), min(hh, row + off + 1)
            c0, c1 = max(0, col - off), min(hw, col + off + 1)
            if r0 >= r1 or c0 >= c1:
                continue
            conf = _sigmoid(hm[i, r0:r1, c0:c1, j])
            total = float(conf.sum())
            if conf.max() >= min_confidence and total > 0:
                rows, cols = np.mgrid[r0:r1, c0:c1]
                out[i, j, 0] = float((cols * conf).sum()) / hw / total * in_w
                out[i, j, 1] = float((rows * conf).sum()) / hh / total * in_h
    return out


def test_vectorised_refinement_equals_mediapipes_loop(pipeline, footage):
    spec = pipeline.predictor.spec
    rng = np.random.default_rng(0)
    cases = 0
    for image in footage("bus:pan").frames[::11]:
        people = pipeline(image)
        rois = [Roi(*r) for r in people.extras["roi"]]
        tensor, _, _ = pipeline.predictor.prepare(image, rois=rois)
        out = pipeline.predictor.run_tensor(np.ascontiguousarray(tensor))
        raw = out["landmarks"].reshape(len(rois), -1, 5)[..., :2].astype(np.float32)
        heatmap = np.asarray(out["heatmap"], np.float32)
        for xy in (raw, raw + rng.normal(0, 30, raw.shape).astype(np.float32), -raw, raw * np.float32(2.5),
                   np.full_like(raw, 255.9), np.full_like(raw, 0.0)):
            for min_conf in (0.5, 0.0, 0.99):
                want = loop_reference(xy, heatmap, 256, 256, 7, min_conf)
                got = refine_from_heatmap(xy, heatmap, spec, kernel_size=7, min_confidence=min_conf)
                np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)
                cases += 1
    assert cases >= 18
