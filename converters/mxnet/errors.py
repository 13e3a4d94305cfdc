"""Errors of the MXNet reader and translator, all within edgepose's one hierarchy.

Why subclasses: callers can tell "this file is not an MXNet checkpoint" (ModelFileError)
from "the checkpoint is fine but does not fit the input shape" (ConversionError) without
parsing messages; catching the edgepose base classes still catches all of them.
"""
from __future__ import annotations

from edgepose.errors import ConversionError, ModelFileError, UnsupportedOperatorError

__all__ = ["MXNetFileError", "MXNetSymbolError", "MissingParameterError", "MXNetShapeError",
           "UnsupportedOperatorError"]


class MXNetFileError(ModelFileError):
    """A `.params` file is missing, truncated, not MXNet's NDArray format, or holds sparse/unknown data."""


class MXNetSymbolError(ModelFileError):
    """A `-symbol.json` file is missing, not JSON, or not an MXNet symbol graph."""


class MissingParameterError(ConversionError):
    """The symbol names a parameter (weight, bias, running statistic) the params file lacks."""


class MXNetShapeError(ConversionError):
    """Shapes do not fit at some node (wrong input shape, weight shape mismatch, bad Reshape)."""

    def __init__(self, message: str, node: str | None = None, operator: str | None = None):
        super().__init__(message)
        self.node = node
        self.operator = operator
