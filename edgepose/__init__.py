"""edgepose: run keypoint/pose models on the CPU, single-threaded, with three lines of code.

    from edgepose import Predictor
    result = Predictor("pose.mnn").predict("person.jpg")
    print(result.keypoints)        # (N, K, 2) in image pixels

Importing edgepose loads numpy and OpenCV only; MNN and ONNX Runtime load with the first
model that needs them, and the converters (torch, onnx, onnxsim) never load here.
"""
from .detector import Detections, Detector
from .errors import EdgePoseError
from .pipeline import Pipeline
from .predictor import Predictor
from .sources import open_source
from .spec import ModelSpec, PoseResult
from .tracking import TrackedFrame, Tracker

__version__ = "0.1.0"
__all__ = ["Detections", "Detector", "EdgePoseError", "ModelSpec", "Pipeline", "PoseResult", "Predictor",
           "TrackedFrame", "Tracker", "__version__", "open_source"]
