"""Variants: one model run one way (runtime x weight format x session precision).

Spelled `<runtime>-<weights>[@<precision>]`:
  mnn-fp32, mnn-fp16          MNN file with FP32 / FP16-stored weights (edgepose's session precision, "high")
  mnn-fp16@normal, @low, ...  the same file under another MNN session precision (normal | high | low | low_bf16)
  ort-fp32                    ONNX Runtime, one intra-op thread, on the simplified ONNX file
  tflite                      the TFLite reference runtime (LiteRT, edgepose's litert backend), one thread
  ov-fp32                     OpenVINO (f32, latency hint, one thread) on the source .tflite, else the ONNX file
  mnn-int8, ort-int8          INT8 files, measured when a source provides them (the INT8 converters)

Each variant names the artifact it needs: (file format, weights). A model source lists the
artifacts it has; a variant without its artifact is skipped for that model, not an error.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from edgepose.errors import EdgePoseError

RUNTIMES = {"mnn": "mnn", "ort": "onnxruntime", "onnxruntime": "onnxruntime", "tflite": "tflite",
            "ov": "openvino", "openvino": "openvino"}
FILE_FORMAT = {"mnn": "mnn", "onnxruntime": "onnx", "tflite": "tflite", "openvino": "onnx"}
# Engines that read more than one format: the formats they take, in order of preference.
FILE_FORMATS = {"openvino": ("tflite", "onnx")}
# The edgepose backend each runtime runs on.
BACKEND = {"mnn": "mnn", "onnxruntime": "onnxruntime", "tflite": "litert", "openvino": "openvino"}
WEIGHTS = ("fp32", "fp16", "int8")
MNN_PRECISIONS = ("normal", "high", "low", "low_bf16")

# edgepose's own MNN session precision (the Predictor default).
DEFAULT_MNN_PRECISION = "high"
DEFAULT_VARIANTS = ("mnn-fp32", "mnn-fp16", "mnn-fp16@normal", "mnn-fp16@low", "ort-fp32", "tflite", "ov-fp32")
QUICK_VARIANTS = ("mnn-fp16", "ort-fp32")
# The write-up's setting for table A: FP16-converted file, MNN's default session precision.
TABLE_VARIANT = "mnn-fp16@normal"

_PATTERN = re.compile(r"^(?P<rt>[a-z]+)(?:-(?P<w>[a-z0-9]+))?(?:@(?P<p>[a-z_0-9]+))?$")


class VariantError(EdgePoseError, ValueError):
    """A variant string that does not parse."""


@dataclass(frozen=True, order=True)
class Variant:
    runtime: str            # "mnn" | "onnxruntime" | "tflite"
    weights: str = "fp32"   # "fp32" | "fp16" | "int8"
    precision: str | None = None  # MNN session precision; None = edgepose's default

    @property
    def name(self) -> str:
        short = {"onnxruntime": "ort", "openvino": "ov"}.get(self.runtime, self.runtime)
        base = short if self.runtime == "tflite" else f"{short}-{self.weights}"
        return f"{base}@{self.precision}" if self.precision else base

    @property
    def artifact(self) -> tuple[str, str]:
        """(file format, weights) of the file this variant runs."""
        return FILE_FORMAT[self.runtime], self.weights

    @property
    def artifacts(self) -> tuple[tuple[str, str], ...]:
        """Every (file format, weights) this variant can run, preferred first."""
        formats = FILE_FORMATS.get(self.runtime, (FILE_FORMAT[self.runtime],))
        return tuple((f, "fp32" if f == "tflite" else self.weights) for f in formats)

    @property
    def backend(self) -> str:
        return BACKEND[self.runtime]

    @property
    def session_precision(self) -> str | None:
        if self.runtime != "mnn":
            return None
        return self.precision or DEFAULT_MNN_PRECISION

    def __str__(self) -> str:
        return self.name


def parse_variant(text: str | Variant) -> Variant:
    """`mnn-fp16@low` -> Variant("mnn", "fp16", "low"); errors list the valid spellings."""
    if isinstance(text, Variant):
        return text
    m = _PATTERN.match(str(text).strip().lower())
    hint = ("variants are <runtime>-<weights>[@<precision>] with runtime mnn | ort | tflite | ov, "
            f"weights {' | '.join(WEIGHTS)}, MNN precision {' | '.join(MNN_PRECISIONS)}; e.g. "
            f"{', '.join(DEFAULT_VARIANTS)}")
    if not m or m.group("rt") not in RUNTIMES:
        raise VariantError(f"cannot read variant {text!r}: {hint}")
    runtime = RUNTIMES[m.group("rt")]
    weights = m.group("w") or "fp32"
    precision = m.group("p")
    if weights not in WEIGHTS:
        raise VariantError(f"unknown weights {weights!r} in {text!r}: {hint}")
    if precision is not None:
        if runtime != "mnn":
            raise VariantError(f"{text!r}: a session precision (@...) applies to MNN only")
        if precision not in MNN_PRECISIONS:
            raise VariantError(f"unknown MNN precision {precision!r} in {text!r}: {hint}")
    if runtime == "tflite" and weights != "fp32":
        raise VariantError(f"{text!r}: the TFLite reference runs the source .tflite file as it is; write `tflite`")
    return Variant(runtime, weights, precision)


def parse_variants(items) -> list[Variant]:
    """Parse a list (or a comma-separated string), dropping duplicates, keeping order."""
    if isinstance(items, str):
        items = [s for s in items.split(",") if s.strip()]
    out: list[Variant] = []
    for item in items:
        v = parse_variant(item)
        if v not in out:
            out.append(v)
    return out
