"""The one small interface every inference backend implements.

A backend loads one model file, describes its inputs and outputs, exposes the metadata
string embedded in the file (if any) and runs named numpy feeds to named numpy outputs.
Everything model-specific (pre-processing, decoding) lives above it, in the Predictor.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ..errors import ModelFileError, ShapeError


@dataclass(frozen=True)
class TensorInfo:
    """Name, shape (None or a string for a dynamic dimension), dtype and layout of a tensor."""

    name: str
    shape: tuple[int | str | None, ...]
    dtype: str = "float32"
    layout: str | None = None  # "NCHW" / "NHWC" where the backend knows it


class Backend(abc.ABC):
    """Load once, run many times. Implementations reuse their session across `run` calls."""

    name: str = ""

    def __init__(self, path: str | Path, *, threads: int = 1) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise ModelFileError(f"model file not found: {self.path} (check the path)")
        if int(threads) < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        self.threads = int(threads)

    # Implementations fill these two lists when they load the model.
    _inputs: list[TensorInfo]
    _outputs: list[TensorInfo]

    @property
    def inputs(self) -> list[TensorInfo]:
        return list(self._inputs)

    @property
    def outputs(self) -> list[TensorInfo]:
        return list(self._outputs)

    @property
    @abc.abstractmethod
    def metadata(self) -> str | None:
        """The edgepose metadata JSON embedded in the model file, or None."""

    @abc.abstractmethod
    def run(self, feeds: Mapping[str, np.ndarray], outputs: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """Run one inference. `feeds` maps input names to arrays in the model's own layout.

        `outputs`: the output names to return (all of them when None). A backend skips what it can of
        the others: ONNX Runtime does not compute them, MNN does not convert and copy them (BlazePose's
        256x256 segmentation mask, which keypoints never read, is 1.8 % of its run on AMD EPYC Zen 4).
        """

    def wanted_outputs(self, outputs: Sequence[str] | None) -> list[TensorInfo]:
        """The TensorInfo of each requested output name (all outputs for None), in the model's order."""
        if outputs is None:
            return self._outputs
        names = set(outputs)
        unknown = names.difference(t.name for t in self._outputs)
        if unknown:
            raise ShapeError(f"no output named {', '.join(map(repr, sorted(unknown)))} in {self.path.name}; "
                             f"its outputs are {self.output_names}")
        return [t for t in self._outputs if t.name in names]

    def input_buffer(self, name: str, shape: tuple[int, ...]) -> np.ndarray | None:
        """A float32 array of `shape` for input `name` that `run` takes without copying it, or None.

        A backend that copies every feed into memory of its own (MNN) hands that memory out here,
        one array per calling thread and shape, so the caller can write the input straight into it.
        None: the backend reads the caller's array as it is (ONNX Runtime), so the caller keeps its own.
        """
        return None

    @property
    def input_names(self) -> list[str]:
        return [t.name for t in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [t.name for t in self.outputs]

    def describe(self) -> dict:
        return {
            "backend": self.name,
            "path": str(self.path),
            "threads": self.threads,
            "inputs": [vars(t) for t in self.inputs],
            "outputs": [vars(t) for t in self.outputs],
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r}, threads={self.threads})"
