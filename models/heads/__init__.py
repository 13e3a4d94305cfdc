"""Pose heads; importing this package registers every model built with them."""
from . import heatmap, integral, regression, simdr, tokenpose  # noqa: F401  (registers the models)
from .common import KeypointMapTrunk, SigmaBranch
from .heatmap import HeatmapHead
from .integral import IntegralHead
from .regression import RegressionHead
from .simdr import SimDRHead
from .tokenpose import TokenPoseHead

__all__ = ["HeatmapHead", "IntegralHead", "KeypointMapTrunk", "RegressionHead", "SigmaBranch",
           "SimDRHead", "TokenPoseHead"]
