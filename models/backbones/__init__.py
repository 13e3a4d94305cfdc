"""Backbones: ShuffleNetV2 (x0.5-x2.0) and EfficientRep (YOLOv6), each returning a dict of named maps."""
from .efficientrep import EfficientRep, RepVGGBlock
from .shufflenetv2 import STAGE_CHANNELS, ShuffleNetV2

__all__ = ["EfficientRep", "RepVGGBlock", "STAGE_CHANNELS", "ShuffleNetV2"]
