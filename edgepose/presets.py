"""Metadata for known external models: MediaPipe BlazePose and hand landmarks, GluonCV SimplePose.

Pure data: the converters attach a preset to a model that comes without edgepose metadata,
and the demo uses BlazePose's. MediaPipe values follow its own graphs (0.10.14): RGB input in
[0, 1], landmarks as (x, y, z, visibility, presence) in input pixels, visibility/presence as
logits, the pose/hand flag already a probability. GluonCV 0.10 SimplePose: RGB with the ImageNet
mean/std, a 256x192 (h x w) crop of the person box enlarged 1.25x, 17 COCO heatmaps at 1/4 size.
"""
from __future__ import annotations

from .errors import MetadataError
from .spec import ModelSpec

BLAZEPOSE_NAMES = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye",
    "right_eye_outer", "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_pinky",
    "right_pinky", "left_index", "right_index", "left_thumb", "right_thumb", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle", "left_heel", "right_heel",
    "left_foot_index", "right_foot_index",
)
BLAZEPOSE_SKELETON = (
    (0, 1), (1, 2), (2, 3), (3, 7), (0, 4), (4, 5), (5, 6), (6, 8), (9, 10), (11, 12), (11, 13),
    (13, 15), (15, 17), (15, 19), (15, 21), (17, 19), (12, 14), (14, 16), (16, 18), (16, 20),
    (16, 22), (18, 20), (11, 23), (12, 24), (23, 24), (23, 25), (24, 26), (25, 27), (26, 28),
    (27, 29), (28, 30), (29, 31), (30, 32), (27, 31), (28, 32),
)
BLAZEPOSE_FLIP = tuple((a, a + 3) for a in (1, 2, 3)) + (
    (7, 8), (9, 10), (11, 12), (13, 14), (15, 16), (17, 18), (19, 20), (21, 22), (23, 24),
    (25, 26), (27, 28), (29, 30), (31, 32))

HAND_NAMES = ("wrist",) + tuple(
    f"{finger}_{joint}"
    for finger, joints in (("thumb", ("cmc", "mcp", "ip", "tip")),
                           ("index_finger", ("mcp", "pip", "dip", "tip")),
                           ("middle_finger", ("mcp", "pip", "dip", "tip")),
                           ("ring_finger", ("mcp", "pip", "dip", "tip")),
                           ("pinky", ("mcp", "pip", "dip", "tip")))
    for joint in joints)
HAND_SKELETON = (
    (0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (5, 9), (9, 10), (10, 11),
    (11, 12), (9, 13), (13, 14), (14, 15), (15, 16), (13, 17), (0, 17), (17, 18), (18, 19), (19, 20),
)

IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)

COCO_NAMES = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
    "right_knee", "left_ankle", "right_ankle",
)
COCO_SKELETON = (
    (15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7), (6, 8),
    (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6),
)
COCO_FLIP = ((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16))

SIMPLE_POSE_MODELS = tuple(f"simple_pose_resnet{d}_{v}" for d in (18, 50, 101, 152) for v in ("v1b", "v1d")
                           if not (d == 18 and v == "v1d"))

_MEDIAPIPE_INPUT = dict(layout="NHWC", color="RGB", mean=(0.0, 0.0, 0.0), std=(255.0, 255.0, 255.0))

PRESETS: dict[str, ModelSpec] = {
    # pose_landmark_by_roi_cpu + tensors_to_pose_landmarks_and_segmentation: 256x256 crop of the
    # aligned ROI with replicated borders, 39 points (33 + 6 auxiliary), heatmap refinement (kernel 7).
    "blazepose_full": ModelSpec(
        name="blazepose_full", input_size=(256, 256), head="landmarks", num_keypoints=33,
        input_name="input_1", outputs={"landmarks": "Identity", "presence": "Identity_1", "heatmap": "Identity_3"},
        decode={"values_per_point": 5, "z_index": 2, "visibility_index": 3, "presence_index": 4,
                "presence_activation": "none", "heatmap_refine": {"kernel_size": 7, "min_confidence": 0.5},
                "crop": "aligned", "presence_threshold": 0.5, "detector": "blazepose_detector"},
        keypoint_names=BLAZEPOSE_NAMES, skeleton=BLAZEPOSE_SKELETON, flip_pairs=BLAZEPOSE_FLIP,
        border="replicate", **_MEDIAPIPE_INPUT),
    # pose_detection_cpu + pose_detection_to_roi: 224x224 letterboxed input in [-1, 1] (zero border),
    # 2254 SSD anchors, 4 keypoints per person (hip centre, full-body size/rotation point, shoulder
    # centre, upper-body point), weighted NMS; the ROI turns keypoint 0 -> 1 vertical, x1.25.
    "blazepose_detector": ModelSpec(
        name="blazepose_detector", input_size=(224, 224), head="ssd", num_keypoints=4,
        input_name="input_1", outputs={"boxes": "Identity", "scores": "Identity_1"},
        layout="NHWC", color="RGB", mean=(127.5, 127.5, 127.5), std=(127.5, 127.5, 127.5), border="zero",
        keypoint_names=("hip_center", "full_body_scale", "shoulder_center", "upper_body_scale"),
        decode={"anchors": {"num_layers": 5, "min_scale": 0.1484375, "max_scale": 0.75,
                            "strides": [8, 16, 32, 32, 32], "anchor_offset": [0.5, 0.5],
                            "aspect_ratios": [1.0], "fixed_anchor_size": True},
                "num_coords": 12, "box_coord_offset": 0, "keypoint_coord_offset": 4, "values_per_keypoint": 2,
                "box_scale": [224.0, 224.0, 224.0, 224.0], "reverse_output_order": True,
                "sigmoid_score": True, "score_clipping": 100.0, "min_score": 0.5,
                "nms": {"algorithm": "weighted", "iou_threshold": 0.3},
                "letterbox": True,
                "alignment": {"start": 0, "end": 1, "target_angle_deg": 90.0, "scale": 1.25}},
        provenance={"source": "mediapipe/modules/pose_detection/pose_detection.tflite"}),
    **{
        f"hand_landmark_{size}": ModelSpec(
            name=f"hand_landmark_{size}", input_size=(224, 224), head="landmarks", num_keypoints=21,
            input_name="input_1", outputs={"landmarks": "Identity", "presence": "Identity_1"},
            decode={"values_per_point": 3, "z_index": 2, "presence_activation": "none"},
            keypoint_names=HAND_NAMES, skeleton=HAND_SKELETON, **_MEDIAPIPE_INPUT)
        for size in ("lite", "full")
    },
    # GluonCV's YOLOv3 (MobileNet1.0, COCO) exported with its box_nms: (ids, scores, boxes) of the top 100,
    # boxes in input pixels; class 0 is "person". GluonCV's simple_pose demo pairs it with SimplePose
    # (detector_to_simple_pose: boxes above 0.5, person class, crops enlarged 1.25x).
    "yolo3_mobilenet1.0_coco": ModelSpec(
        name="yolo3_mobilenet1.0_coco", input_size=(416, 416), head="boxes", num_keypoints=0,
        layout="NCHW", color="RGB", mean=IMAGENET_MEAN, std=IMAGENET_STD, input_name="data",
        outputs={"classes": "yolov30_slice_axis1_output", "scores": "yolov30_slice_axis2_output",
                 "boxes": "yolov30_slice_axis3_output"},
        decode={"class_ids": [0], "min_score": 0.5, "letterbox": True},
        provenance={"source": "gluoncv.model_zoo", "gluoncv": "0.10.5", "framework": "mxnet"}),
    # Single-output graphs: `outputs` stays empty ("by position") because Gluon's layer names
    # (e.g. conv3_fwd) depend on how many blocks the exporting process had created before.
    **{
        name: ModelSpec(
            name=name, input_size=(192, 256), head="heatmap", num_keypoints=17, layout="NCHW", color="RGB",
            mean=IMAGENET_MEAN, std=IMAGENET_STD, input_name="data", decode={"refine": "taylor"},
            keypoint_names=COCO_NAMES, skeleton=COCO_SKELETON, flip_pairs=COCO_FLIP, bbox_padding=1.25,
            provenance={"source": "gluoncv.model_zoo", "gluoncv": "0.10.5", "framework": "mxnet"})
        for name in SIMPLE_POSE_MODELS
    },
}


def list_presets() -> list[str]:
    return sorted(PRESETS)


def get_preset(name: str) -> ModelSpec:
    try:
        return PRESETS[name]
    except KeyError:
        raise MetadataError(f"unknown preset {name!r}; known presets: {', '.join(list_presets())}") from None
