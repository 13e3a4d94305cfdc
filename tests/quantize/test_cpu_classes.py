"""INT8 settings per CPU class, chosen with the class injected: what each class really gets.

The ONNX Runtime accuracy of each configuration is tested in test_quant_engines.py; here, that a
CPU without VNNI never gets weights its kernels saturate on, whatever machine runs the tests.
"""
from __future__ import annotations

import argparse
import logging

import pytest

from edgepose.converters.quantize import Int8Options, add_int8_arguments
from edgepose.converters.quantize.api import RECOMMEND_SPEEDUP, recommend
from edgepose.converters.cli import int8_options
from edgepose.converters.quantize.evaluate import Accuracy, Speed
from edgepose.converters.quantize.ort_engine import WEIGHT_RANGES, saturates, select_config
from edgepose.converters.quantize.report import EngineResult
from edgepose.cpu import CLASSES, cpu_class
from edgepose.errors import ConversionError

NO_VNNI = ("x86-avx2", "x86-avx512", "x86-sse", "x86-unknown")
EXACT = ("x86-avx512-vnni", "x86-avx2-vnni", "arm64-i8mm", "arm64-dotprod", "arm64-neon")


@pytest.mark.parametrize("cls", NO_VNNI)
def test_cpus_without_vnni_get_pair_safe_weights(cls):
    config = select_config(cls)
    assert (config.activations, config.weight_range, config.warning) == ("uint8", "pair-safe", None)
    assert not saturates(cls, weight_range=config.weight_range)
    assert config.chosen == "for the CPU class" and cls in config.reason


@pytest.mark.parametrize("cls", EXACT)
def test_cpus_with_exact_int8_sums_get_full_range_u8s8(cls):
    config = select_config(cls)
    assert (config.activations, config.weight_range, config.warning) == ("uint8", "full", None)
    assert config.label == "U8S8" and "VNNI" in config.holds_on


def test_every_class_gets_a_config_that_does_not_saturate_there():
    for cls in CLASSES:
        assert not saturates(cls, weight_range=select_config(cls).weight_range), cls


@pytest.mark.parametrize("acts", ["uint8", "int8"])
def test_full_range_on_a_cpu_without_vnni_is_the_users_choice_and_warned(acts):
    """S8S8 is no way out: ONNX Runtime runs it on the same U8S8 kernels on x86 (7.43 px measured)."""
    config = select_config("x86-avx2", activations=acts, weight_range="full")
    assert config.chosen == "by the user" and config.warning and "saturate" in config.warning
    assert saturates("x86-avx2", weight_range="full") and not saturates("x86-avx2", weight_range="7bit")


def test_this_machine_gets_its_own_class():
    assert select_config() == select_config(cpu_class())


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(ConversionError, match="full, pair-safe, 7bit"):
        select_config("x86-avx2", weight_range="8bit")
    with pytest.raises(ConversionError, match="int8, uint8"):
        Int8Options(ort_activations="int4")
    with pytest.raises(ConversionError, match="x86-avx512-vnni"):
        Int8Options(cpu_class="zen2")


def test_cli_flags_reach_the_options():
    parser = argparse.ArgumentParser()
    add_int8_arguments(parser)
    opts = int8_options(parser.parse_args(["--int8", "--calib", "pinned:hand", "--ort-weight-range", "7bit",
                                                "--ort-activations", "int8", "--int8-cpu-class", "x86-avx2"]))
    assert (opts.ort_weight_range, opts.ort_activations, opts.cpu_class) == ("7bit", "int8", "x86-avx2")
    defaults = int8_options(parser.parse_args(["--int8", "--calib", "pinned:hand"]))
    assert (defaults.ort_weight_range, defaults.ort_activations, defaults.cpu_class) == (None, None, None)
    assert set(WEIGHT_RANGES) == {"full", "pair-safe", "7bit"}


def _result(speedup: float | None, *, status: str = "ok") -> EngineResult:
    r = EngineResult("mnn", status=status)
    r.accuracy = Accuracy(samples=1, keypoints=21, mean_px=1, max_px=2, mean_px_256=1, max_px_256=2, pck=1,
                          worst_sample="x")
    if speedup is not None:
        r.speed = Speed(fp32_ms=10.0, int8_ms=10.0 / speedup, speedup=speedup, rounds=3, calls_per_round=10)
    if status != "ok":
        r.error = "mean keypoint error 9 px"
    return r


@pytest.mark.parametrize("speedup, verdict", [(0.7, "do-not-ship"), (1.1, "marginal"),
                                              (RECOMMEND_SPEEDUP + 0.2, "ship"), (None, "untimed")])
def test_the_verdict_follows_the_measured_speed(speedup, verdict):
    rec = recommend(_result(speedup), target_class=cpu_class())
    assert rec["verdict"] == verdict and rec["ship"] == (verdict == "ship")
    assert rec["timed_on"]["class"] == cpu_class()
    if verdict == "do-not-ship":
        assert "SLOWER than FP32" in rec["reason"] and "do not ship" in rec["reason"]


def test_an_inaccurate_file_is_never_recommended():
    assert recommend(_result(3.0, status="inaccurate"), target_class=cpu_class())["verdict"] == "do-not-ship"


def test_a_file_for_another_class_is_not_recommended_from_this_cpus_timing():
    other = "x86-avx2" if cpu_class() != "x86-avx2" else "x86-avx512-vnni"
    rec = recommend(_result(1.5), target_class=other)
    assert rec["verdict"] == "untimed-on-target" and not rec["ship"] and other in rec["reason"]
    assert recommend(_result(1.5, status="inaccurate"), target_class=other)["verdict"] == "do-not-ship"


def test_a_file_slower_than_fp32_is_never_silent(hand_int8, caplog):
    """Whatever this CPU measures, an engine slower than FP32 is flagged in the report and the table."""
    for e in hand_int8.engines:
        rec = e.recommendation
        assert rec and rec["timed_on"]["class"] == cpu_class()
        if e.status == "ok" and e.speed.speedup < 1.0:
            assert rec["verdict"] == "do-not-ship"
            assert f"{e.engine}: WARNING: INT8 {e.engine} is SLOWER" in hand_int8.format_table()
        elif e.status == "ok" and e.speed.speedup >= RECOMMEND_SPEEDUP:
            assert rec["verdict"] == "ship"


def test_slower_than_fp32_is_logged_for_the_cli(hand_fp32, tmp_path, caplog, monkeypatch):
    """The convert CLI shows WARNING log lines on stderr: a do-not-ship verdict produces one."""
    from edgepose.converters.quantize import api

    monkeypatch.setattr(api, "interleaved_speed", lambda *a, **k: Speed(fp32_ms=5.0, int8_ms=7.5, speedup=0.67,
                                                                          rounds=1, calls_per_round=1))
    with caplog.at_level(logging.WARNING, logger="edgepose.converters.quantize.api"):
        report = api.quantize_int8(hand_fp32, calib="pinned:hand", output_dir=tmp_path, stem="slow",
                                   options=Int8Options(engines=("onnxruntime",), calib_count=2, strict=False,
                                                       threshold_px_256=100.0, progress=False))
    assert report.engine("onnxruntime").recommendation["verdict"] == "do-not-ship"
    assert any("SLOWER than FP32" in r.getMessage() for r in caplog.records)
