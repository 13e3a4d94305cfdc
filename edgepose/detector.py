"""Detector: people in a frame, as boxes, scores and keypoints in image pixels.

    from edgepose import Detector
    people = Detector("pose_detection.mnn").detect(cv2.imread("bus.jpg"))
    people.boxes, people.scores, people.keypoints     # (N, 4), (N,), (N, K, 2)

The frame is letterboxed onto the detector input (aspect kept, zero padding; or stretched if the
metadata says so), the head is decoded by the head registry's decoder (an SSD head: anchors,
sigmoid scores, NMS) and the padding is removed on the way back. numpy and cv2 only.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .heads import HEADS
from .predictor import ModelSession
from .processing import transforms
from .processing.image import load_image
from .processing.roi import Roi, aligned_roi, image_roi, letterbox_roi, roi_matrix
from .spec import ModelSpec


@dataclass(frozen=True)
class Detections:
    """People found in one image, best first, in image pixels.

    boxes      (N, 4) x1, y1, x2, y2
    scores     (N,) detection probability
    keypoints  (N, K, 2) the detector's own keypoints (BlazePose: hip centre, full-body point, ...)
    """

    boxes: np.ndarray
    scores: np.ndarray
    keypoints: np.ndarray
    keypoint_names: tuple[str, ...] = ()

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    def to_dict(self) -> dict[str, Any]:
        return {"detections": [
            {"bbox": [round(float(v), 2) for v in self.boxes[i]], "score": round(float(self.scores[i]), 4),
             "keypoints": [[round(float(x), 2), round(float(y), 2)] for x, y in self.keypoints[i]]}
            for i in range(len(self))]}


class Detector(ModelSession):
    """A person detector (an SSD head such as MediaPipe's pose detector), single-threaded by default.

    model      .mnn or .onnx file with detector metadata (convert with --preset blazepose_detector).
    min_score  detection threshold (default: the metadata's, MediaPipe's 0.5 for BlazePose).
    Other keyword arguments as for Predictor (backend, threads, spec, precision, fields).
    Safe to share between threads, as a Predictor is.
    """

    kind = "detector"

    def __init__(self, model: str | Path, *, min_score: float | None = None, **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        self.min_score = min_score
        self._decoder = HEADS[self.spec.head].resolve_decoder()

    def prepare(self, image: Any) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float, float]]:
        """(input tensor, 2x3 image -> input matrix, letterbox padding as input fractions)."""
        img = load_image(image)
        h, w = img.shape[:2]
        size = self.spec.input_size
        roi, padding = image_roi(w, h), (0.0, 0.0, 0.0, 0.0)
        if self.spec.decode.get("letterbox", True):
            roi, padding = letterbox_roi(roi, size)
        matrix = roi_matrix(roi, size)
        return self._crop_pack(img, matrix[None]), matrix, padding

    def detect(self, image: Any) -> Detections:
        """Every person the detector finds in `image` (a BGR array or a path), best first."""
        img = load_image(image)
        tensor, matrix, _ = self.prepare(img)
        raw = self._decoder(self.spec, self.run_tensor(tensor), min_score=self.min_score)[0]
        back = transforms.invert(matrix)
        boxes = raw.boxes.reshape(-1, 2, 2)
        boxes = transforms.apply_affine(boxes, back).reshape(-1, 4)
        keypoints = transforms.apply_affine(raw.keypoints, back) if raw.keypoints.size else raw.keypoints
        # A box with no area, or wholly outside the frame (an untrained or confused detector), is no one.
        h, w = img.shape[:2]
        x1, y1, x2, y2 = boxes.T if len(boxes) else (np.zeros(0),) * 4
        keep = np.isfinite(boxes).all(1) & (x2 > x1) & (y2 > y1) & (x2 > 0) & (y2 > 0) & (x1 < w) & (y1 < h)
        keypoints = np.asarray(keypoints, np.float32).reshape(len(boxes), self.spec.num_keypoints, 2)
        return Detections(boxes[keep].astype(np.float32), raw.scores[keep], keypoints[keep], self.spec.keypoint_names)

    def rois(self, detections: Detections, pose_spec: ModelSpec) -> list[Roi]:
        """The crop of each detected person for `pose_spec`'s model.

        A model trained on detector-aligned crops (MediaPipe's; `decode.crop == "aligned"`) gets
        the rotated square this detector's alignment recipe describes; any other model gets the
        detector's box, padded by its own bbox_padding and fixed to its input's aspect ratio.
        """
        from .processing.roi import box_roi

        recipe: Mapping[str, Any] | None = self.spec.decode.get("alignment")
        if pose_spec.decode.get("crop") == "aligned" and recipe:
            return [aligned_roi(kp, start=int(recipe["start"]), end=int(recipe["end"]),
                                target_angle_deg=float(recipe.get("target_angle_deg", 90.0)),
                                scale=float(recipe.get("scale", 1.25)))
                    for kp in detections.keypoints]
        aspect = pose_spec.input_size[0] / pose_spec.input_size[1]
        return [box_roi(b, padding=pose_spec.bbox_padding, aspect=aspect) for b in detections.boxes]
