"""`ConvertOptions`: everything `convert` is told besides the source, as one checked object.

Why an object: the CLI, the benchmarks and the API build the same settings; checking them once,
at construction, means a bad value fails before any stage runs (a NaN timeout would never expire).
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from edgepose.errors import ConversionError

from .stages import DEFAULT_OPSET


@dataclass(frozen=True)
class ConvertOptions:
    """How to convert; the fields are `convert`'s keyword arguments (see its docstring).

    output_dir, name                where the artifacts go and their file-name stem.
    spec / preset / meta            the model card, a preset name, field overrides.
    input_shape, weights, params    what some sources need (torch/MXNet shape, a zoo checkpoint,
                                    MXNet .params).
    fp16, dynamic_batch, simplify, opset, timeout   the stages.
    strict, images, tolerances, seed, threads       the parity checks.
    progress                        a progress bar on stderr.
    """

    output_dir: str | Path | None = None
    spec: Any = None
    preset: str | None = None
    meta: Mapping[str, Any] | None = None
    input_shape: tuple[int, ...] | None = None
    weights: str | Path | None = None
    params: str | Path | None = None
    name: str | None = None
    fp16: bool = False
    dynamic_batch: bool = True
    simplify: bool = True
    strict: bool = True
    images: Sequence[Any] | None = None
    opset: int = DEFAULT_OPSET
    timeout: float = 900.0
    tolerances: Mapping[str, Any] = field(default_factory=dict)
    progress: bool = False
    seed: int = 0
    threads: int = 1

    def __post_init__(self) -> None:
        from .mnn_native import check_timeout

        set_ = object.__setattr__
        set_(self, "timeout", check_timeout(self.timeout))  # NaN would never expire: refused up front
        if self.input_shape is not None:
            set_(self, "input_shape", tuple(int(d) for d in self.input_shape) or None)
        set_(self, "tolerances", dict(self.tolerances or {}))
        _check_name(self.name)

    @classmethod
    def from_keywords(cls, options: "ConvertOptions | None" = None, **changes: Any) -> "ConvertOptions":
        """`options` (default: the defaults) with `changes` applied; an unknown keyword is a TypeError."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise TypeError(f"convert() got unexpected keyword argument(s) {', '.join(unknown)}; "
                            f"options are: {', '.join(sorted(known))}")
        return dataclasses.replace(options, **changes) if options is not None else cls(**changes)


def _check_name(name: str | None) -> None:
    """--name is a file-name stem: it cannot point outside the output directory."""
    if name is None:
        return
    text = str(name)
    if (not text or text in (".", "..") or "/" in text or "\\" in text or "\0" in text
            or os.path.isabs(text) or text != text.strip()):
        raise ConversionError(f"--name {text!r} must be a plain file-name stem (no directories, no '..'); "
                              "use -o/--output-dir to choose the folder")
