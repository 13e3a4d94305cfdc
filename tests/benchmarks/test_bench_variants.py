"""Variant spelling: parse, name, artifact, errors."""
from __future__ import annotations

import pytest

from edgepose.benchmarks.variants import (DEFAULT_VARIANTS, Variant, VariantError, parse_variant,
                                          parse_variants)
from edgepose.errors import EdgePoseError


@pytest.mark.parametrize("text,expected,artifact,precision", [
    ("mnn-fp16", Variant("mnn", "fp16"), ("mnn", "fp16"), "high"),
    ("mnn-fp16@low", Variant("mnn", "fp16", "low"), ("mnn", "fp16"), "low"),
    ("MNN-FP32@normal", Variant("mnn", "fp32", "normal"), ("mnn", "fp32"), "normal"),
    ("ort-fp32", Variant("onnxruntime", "fp32"), ("onnx", "fp32"), None),
    ("ort", Variant("onnxruntime", "fp32"), ("onnx", "fp32"), None),
    ("tflite", Variant("tflite", "fp32"), ("tflite", "fp32"), None),
    ("mnn-int8", Variant("mnn", "int8"), ("mnn", "int8"), "high"),
])
def test_parse(text, expected, artifact, precision):
    v = parse_variant(text)
    assert v == expected and v.artifact == artifact and v.session_precision == precision
    assert parse_variant(v.name) == v  # names round-trip


@pytest.mark.parametrize("bad", ["cuda-fp16", "mnn-fp8", "ort-fp32@low", "mnn-fp16@turbo", "tflite-fp16", ""])
def test_bad_variants_explain(bad):
    with pytest.raises(VariantError) as err:
        parse_variant(bad)
    assert isinstance(err.value, EdgePoseError)
    assert repr(bad) in str(err.value)  # the message quotes what was wrong


def test_defaults_parse_and_dedupe():
    assert [v.name for v in parse_variants(DEFAULT_VARIANTS)] == list(DEFAULT_VARIANTS)
    assert [v.name for v in parse_variants("mnn-fp16,ort,ort-fp32")] == ["mnn-fp16", "ort-fp32"]
