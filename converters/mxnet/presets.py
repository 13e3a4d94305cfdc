"""Proposed metadata for GluonCV checkpoints: SimplePose specs and the ImageNet classifiers' inputs.

Pure data, for the converter pipeline to attach when it translates a GluonCV export (which
carries no edgepose metadata). Values follow GluonCV 0.10: inputs are RGB normalised with the
ImageNet mean/std (here in 0..255 units), SimplePose takes a 256x192 (h x w) crop of a person box
enlarged 1.25x (`upscale_bbox_fn(bbox, 1.25)` in its detector_to_simple_pose) and returns
17 COCO heatmaps at 1/4 resolution.
"""
from __future__ import annotations

from edgepose.spec import ModelSpec

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

# Single-output graphs: `outputs` stays empty ("by position") because Gluon's layer names
# (e.g. conv3_fwd) depend on how many blocks the exporting process had created before.
PRESETS: dict[str, ModelSpec] = {
    name: ModelSpec(
        name=name, input_size=(192, 256), head="heatmap", num_keypoints=17, layout="NCHW", color="RGB",
        mean=IMAGENET_MEAN, std=IMAGENET_STD, input_name="data", decode={"refine": "taylor"},
        keypoint_names=COCO_NAMES, skeleton=COCO_SKELETON, flip_pairs=COCO_FLIP, bbox_padding=1.25,
        provenance={"source": "gluoncv.model_zoo", "gluoncv": "0.10.5", "framework": "mxnet"})
    for name in SIMPLE_POSE_MODELS
}

# ImageNet classifiers (benchmark table B): not pose models, so no ModelSpec; what a run needs.
CLASSIFIERS: dict[str, dict] = {
    name: {"input_shape": (1, 3, 224, 224), "color": "RGB", "mean": IMAGENET_MEAN, "std": IMAGENET_STD,
           "num_classes": 1000}
    for name in ("resnet18_v1b", "resnet50_v1d", "resnet50_v1d_0.86", "resnet50_v1d_0.48", "resnet50_v1d_0.37",
                 "resnet50_v1d_0.11", "resnet101_v1d", "resnet101_v1d_0.76", "resnet101_v1d_0.73", "resnet18_v1b_0.89",
                 "resnet50_v1", "mobilenet1.0", "mobilenetv2_1.0", "mobilenetv3_large", "mobilenetv3_small")
}


def input_shape_for(name: str) -> tuple[int, int, int, int]:
    """The NCHW input shape a GluonCV model of this name is translated with (batch 1)."""
    if name in PRESETS:
        w, h = PRESETS[name].input_size
        return (1, 3, h, w)
    if name in CLASSIFIERS:
        return CLASSIFIERS[name]["input_shape"]
    raise KeyError(f"no MXNet preset named {name!r}; known: {sorted(PRESETS) + sorted(CLASSIFIERS)}")
