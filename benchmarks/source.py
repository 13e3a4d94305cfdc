"""What a benchmarked model is (ModelSource), and the error that skips one with its reason.

Its own module so every kind of source (models_source for registry names, assets and files;
mxnet_source for the GluonCV fixtures) can build one without importing the other.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from edgepose.errors import EdgePoseError, ModelFileError
from edgepose.spec import ModelSpec

from .variants import Variant


class SourceUnavailableError(EdgePoseError):
    """A model could not be prepared (fixtures not built, conversion failed): the run goes on, its rows are
    listed under "Skipped" with this message."""


@dataclass
class ModelSource:
    """One model and the files it can be measured from.

    artifacts     (format, weights) -> path, e.g. ("mnn", "fp16"), ("onnx", "fp32"), ("tflite", "fp32").
    onnx          the ONNX graph to count parameters and MACs on (None when there is none).
    table_id      its row of table A and published_ms that row's timings (edgepose.benchmarks.table_a).
    fixed_mnn     a user-given .mnn file: every MNN variant runs this file, whatever its weights.
    raw_only      no pose card (e.g. an ImageNet classifier): time the raw session, no Predictor.
    int8_report   the INT8 step's report (accuracy per engine) when INT8 files were made.
    """

    name: str
    kind: str  # "registry" | "asset" | "file" | "mxnet"
    artifacts: dict[tuple[str, str], Path] = field(default_factory=dict)
    onnx: Path | None = None
    spec: ModelSpec | None = None
    table_id: str | None = None
    published_ms: tuple[float, ...] | None = None
    fixed_mnn: bool = False
    raw_only: bool = False
    int8_report: dict[str, Any] | None = None

    def applicable(self, variants: Iterable[Variant]) -> list[Variant]:
        """The requested variants this source has a file for (a fixed .mnn maps all MNN ones to it)."""
        out: list[Variant] = []
        for v in variants:
            if self.fixed_mnn:
                if v.runtime != "mnn":
                    continue
                v = Variant("mnn", "file", v.precision)
            elif not any(a in self.artifacts for a in v.artifacts):
                continue
            if v not in out:
                out.append(v)
        return out

    def path_for(self, variant: Variant) -> Path:
        if self.fixed_mnn and variant.runtime == "mnn":
            return self.artifacts[("mnn", "file")]
        for artifact in variant.artifacts:
            if artifact in self.artifacts:
                return self.artifacts[artifact]
        raise ModelFileError(f"{self.name} has no {variant.artifact[1]} {variant.artifact[0]} file "
                             f"for variant {variant.name}; it has {sorted(self.artifacts)}")
