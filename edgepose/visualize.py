"""Draw keypoints and the skeleton on an image (OpenCV), for demos and eyeballing results."""
from __future__ import annotations

import cv2
import numpy as np

from .spec import PoseResult

_LEFT, _RIGHT, _CENTRE = (255, 128, 0), (0, 128, 255), (0, 220, 0)  # BGR


def _side(name: str) -> tuple[int, int, int]:
    return _LEFT if name.startswith(("left", "l_")) else _RIGHT if name.startswith(("right", "r_")) else _CENTRE


def draw_pose(image: np.ndarray, result: PoseResult, *, score_threshold: float = 0.5,
              presence_threshold: float = 0.5, draw_boxes: bool = True) -> np.ndarray:
    """A copy of `image` with each instance's skeleton, keypoints and box drawn.

    Keypoints scoring below `score_threshold` (and limbs touching them) are left out, and so is
    every instance whose crop the model says holds no person (presence below
    `presence_threshold`), so a drawing never shows a guess as if it were a detection. An image
    with no person drawn says so in its corner. Line widths follow the image size.
    """
    canvas = image.copy()
    thick = max(1, round(max(image.shape[:2]) / 300))
    names = result.keypoint_names or tuple(str(i) for i in range(result.keypoints.shape[1]))
    presence = result.extras.get("presence")
    drawn = 0
    for i in range(len(result)):
        if presence is not None and float(np.asarray(presence)[i]) < presence_threshold:
            continue
        drawn += 1
        pts, sc = result.keypoints[i], result.scores[i]
        ok = sc >= score_threshold
        if draw_boxes and result.bboxes is not None:
            x1, y1, x2, y2 = (int(round(v)) for v in result.bboxes[i])
            cv2.rectangle(canvas, (x1, y1), (x2, y2), (200, 200, 200), thick, cv2.LINE_AA)
        for a, b in result.skeleton:
            if ok[a] and ok[b]:
                colour = _side(names[a]) if _side(names[a]) == _side(names[b]) else _CENTRE
                cv2.line(canvas, tuple(int(round(v)) for v in pts[a]), tuple(int(round(v)) for v in pts[b]),
                         colour, thick + 1, cv2.LINE_AA)
        for k, (x, y) in enumerate(pts):
            if ok[k]:
                cv2.circle(canvas, (int(round(x)), int(round(y))), thick + 2, _side(names[k]), -1, cv2.LINE_AA)
                cv2.circle(canvas, (int(round(x)), int(round(y))), thick + 2, (255, 255, 255), 1, cv2.LINE_AA)
    if drawn == 0:
        scale = max(0.5, max(image.shape[:2]) / 900)
        cv2.putText(canvas, "no person detected", (10, int(30 * scale)), cv2.FONT_HERSHEY_SIMPLEX, scale,
                    (0, 0, 255), max(1, thick), cv2.LINE_AA)
    return canvas
