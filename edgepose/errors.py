"""One exception hierarchy for everything edgepose raises on purpose.

Every message says what was wrong and what to do about it. Catch `EdgePoseError` to
handle all of them; the CLI turns them into a one-line error and a non-zero exit.
"""
from __future__ import annotations


class EdgePoseError(Exception):
    """Base class of every error edgepose raises deliberately."""


class ModelFileError(EdgePoseError):
    """A model path is missing, unreadable, or not a model the backend can load."""


class MetadataError(EdgePoseError):
    """Model metadata is missing, incomplete or inconsistent with the model."""


class BackendError(EdgePoseError):
    """An unknown backend name, a backend that is not installed, or a failed run."""


class InputError(EdgePoseError, ValueError):
    """An image, bbox or tensor handed to the runtime is not usable."""


class ImageError(InputError):
    """The image is not a BGR uint8 array (or a readable image file)."""


class BBoxError(InputError):
    """A bounding box is malformed, empty or lies outside the image."""


class ShapeError(InputError):
    """A tensor does not have the shape the model expects."""


class ConversionError(EdgePoseError):
    """A conversion stage failed (tool error, crash, timeout, bad source model)."""


class UnsupportedOperatorError(ConversionError):
    """The source model uses an operator a converter cannot translate."""

    def __init__(self, message: str, operator: str | None = None, node: str | None = None):
        super().__init__(message)
        self.operator = operator
        self.node = node


class ParityError(ConversionError):
    """A converted artifact disagrees with its source beyond the tolerance."""


class AssetError(EdgePoseError):
    """A pinned asset (model, photo) could not be fetched, extracted or verified."""


class CalibrationError(EdgePoseError):
    """Calibration data for INT8 quantisation is missing or unusable."""


class RandomWeightsWarning(UserWarning):
    """The model's provenance says its weights are random (an untrained model-zoo export): its
    keypoints are noise. Raised as a warning, not an error, so benchmarks can still run it."""
