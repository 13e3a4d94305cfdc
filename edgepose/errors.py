"""One exception hierarchy for everything edgepose raises on purpose.

Every message says what was wrong and what to do about it. Catch `EdgePoseError` to
handle all of them; the CLI turns them into a one-line error and a non-zero exit.
"""
from __future__ import annotations


class EdgePoseError(Exception):
    """Base class of every error edgepose raises deliberately.

    report  set by the converters when the error stops a conversion: the report so far (already
            saved beside the artifacts), so a caller can show its figures. None otherwise.
    """

    report: object = None


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
    """A conversion stage failed (tool error, crash, timeout, bad source model).

    Optional context, set by the converters so a caller can show more than the message:
    report    the conversion's report so far (a converters ConversionReport / Int8Report), already
              saved beside the artifacts; None when the failure came before any report existed.
    stage     the name of the stage that failed (e.g. "onnx->mnn-fp16", "int8-mnn"), or None.
    output    the model output that failed its check (a ParityError's worst output), or None.
    log       an upstream tool's whole log ("" if none), for callers that recognise its messages.
    log_path  the file that log was written to (named in the message), or None.
    """

    def __init__(self, message: str = "", *, report: object = None, stage: str | None = None,
                 output: str | None = None, log: str = "", log_path: object = None) -> None:
        super().__init__(message)
        self.report = report
        self.stage = stage
        self.output = output
        self.log = log
        self.log_path = log_path


class UnsupportedOperatorError(ConversionError):
    """The source model uses an operator a converter cannot translate.

    operator   the first such operator; operators: every one found (in graph order); node: where.
    """

    def __init__(self, message: str, operator: str | None = None, node: str | None = None, *,
                 operators: list[str] | None = None, **context):
        super().__init__(message, **context)
        self.operator = operator
        self.node = node
        self.operators = list(operators) if operators else ([operator] if operator else [])


class ParityError(ConversionError):
    """A converted artifact disagrees with its source beyond the tolerance."""


class AssetError(EdgePoseError):
    """A pinned asset (model, photo) could not be fetched, extracted or verified."""


class CalibrationError(EdgePoseError):
    """Calibration data for INT8 quantisation is missing or unusable."""


class RandomWeightsWarning(UserWarning):
    """The model's provenance says its weights are random (an untrained model-zoo export): its
    keypoints are noise. Raised as a warning, not an error, so benchmarks can still run it."""


class SourceError(InputError):
    """A frame source (video file, image folder, camera, iterator) cannot be opened or read."""


class VideoError(SourceError):
    """A video file is missing, unreadable, corrupt, or in a codec this OpenCV build cannot decode."""


class CameraError(SourceError):
    """A camera index that does not exist, is busy, or gives no frame."""


class EmptySourceError(SourceError):
    """A source that gave no frame at all (empty folder, zero-length video, unmatched glob)."""


class FrameSizeError(SourceError):
    """A stream whose frame size changes part-way (tracking ROIs and an output video need one size)."""


class OutputError(EdgePoseError):
    """An output file (annotated video, JSON lines) cannot be written where asked."""


class DisplayError(EdgePoseError):
    """A live window was asked for but this OpenCV build or session cannot open one."""


class BatchError(EdgePoseError):
    """A batch run cannot start or go on: its output folder, a missing extra (pyarrow, ray), a worker
    that cannot build the pipeline, a Ray cluster. Bad inputs are never this: they become error rows."""
