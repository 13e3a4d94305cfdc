"""Metadata for GluonCV checkpoints: SimplePose specs and the ImageNet classifiers' inputs.

Pure data, for the converter pipeline to attach when it translates a GluonCV export (which
carries no edgepose metadata). Values follow GluonCV 0.10: inputs are RGB normalised with the
ImageNet mean/std (here in 0..255 units), SimplePose takes a 256x192 (h x w) crop of a person box
enlarged 1.25x (`upscale_bbox_fn(bbox, 1.25)` in its detector_to_simple_pose) and returns
17 COCO heatmaps at 1/4 resolution.
"""
from __future__ import annotations

from edgepose.presets import (COCO_FLIP, COCO_NAMES, COCO_SKELETON, IMAGENET_MEAN, IMAGENET_STD,  # noqa: F401
                              PRESETS as _ALL_PRESETS, SIMPLE_POSE_MODELS)

# The SimplePose specs live with the runtime's presets (`--preset simple_pose_resnet18_v1b`).
PRESETS = {name: _ALL_PRESETS[name] for name in SIMPLE_POSE_MODELS}

# ImageNet classifiers (benchmark table B): not pose models, so no ModelSpec; what a run needs.
CLASSIFIERS: dict[str, dict] = {
    name: {"input_shape": (1, 3, 224, 224), "color": "RGB", "mean": IMAGENET_MEAN, "std": IMAGENET_STD,
           "num_classes": 1000}
    for name in ("resnet18_v1b", "resnet50_v1d", "resnet50_v1d_0.86", "resnet50_v1d_0.48", "resnet50_v1d_0.37",
                 "resnet50_v1d_0.11", "resnet101_v1d", "resnet101_v1d_0.76", "resnet101_v1d_0.73", "resnet18_v1b_0.89",
                 "resnet50_v1", "mobilenet1.0", "mobilenetv2_1.0", "mobilenetv3_large", "mobilenetv3_small",
                 "se_resnet18_v1", "resnest14", "densenet121", "inceptionv3")
}
CLASSIFIERS["inceptionv3"] = {**CLASSIFIERS["inceptionv3"], "input_shape": (1, 3, 299, 299)}  # its 8x8 final pool


def input_shape_for(name: str) -> tuple[int, int, int, int]:
    """The NCHW input shape a GluonCV model of this name is translated with (batch 1)."""
    if name in PRESETS:
        w, h = PRESETS[name].input_size
        return (1, 3, h, w)
    if name in CLASSIFIERS:
        return CLASSIFIERS[name]["input_shape"]
    raise KeyError(f"no MXNet preset named {name!r}; known: {sorted(PRESETS) + sorted(CLASSIFIERS)}")
