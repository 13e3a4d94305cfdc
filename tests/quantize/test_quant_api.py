"""quantize_int8's contract (threshold, strictness, hold-out split) and the CLI flags (table C: tests/benchmarks)."""
from __future__ import annotations

import argparse
import json

import cv2
import pytest

from edgepose import assets
from edgepose.backends import open_backend
from edgepose.converters import convert
from edgepose.converters.cli import int8_options
from edgepose.converters.quantize import Int8Options, add_int8_arguments, fp32_artifacts_from_report, quantize_int8
from edgepose.errors import CalibrationError, ConversionError, ParityError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    add_int8_arguments(parser)
    return parser


def test_threshold_failure_raises_parity_error_with_the_figure(hand_fp32, tmp_path):
    opts = Int8Options(engines=("onnxruntime",), calib_count=4, threshold_px_256=0.01, speed=False, progress=False)
    with pytest.raises(ParityError, match=r"mean keypoint error \d+\.\d+ px at 256 scale > 0.01") as info:
        quantize_int8(hand_fp32, calib="pinned:hand", output_dir=tmp_path, stem="strict", options=opts)
    report = info.value.report
    assert report.engine("onnxruntime").status == "inaccurate"
    assert not (tmp_path / "strict.int8.onnx").exists()  # strict: an inaccurate file is not kept
    saved = json.loads((tmp_path / "strict.int8.json").read_text())
    assert saved["ok"] is False and saved["engines"][0]["status"] == "inaccurate"


def test_no_strict_keeps_the_file_and_reports(hand_fp32, tmp_path):
    opts = Int8Options(engines=("ort",), calib_count=4, threshold_px_256=0.01, strict=False, speed=False,
                       progress=False)
    report = quantize_int8(hand_fp32, calib="pinned:hand", output_dir=tmp_path, stem="lenient", options=opts)
    assert not report.ok and (tmp_path / "lenient.int8.onnx").is_file()
    assert "inaccurate" in report.format_table()


def test_folder_calibration_holds_out_every_fifth_image(hand_fp32, tmp_path):
    bus = cv2.imread(str(assets.fetch_asset("bus")))
    folder = tmp_path / "photos"
    folder.mkdir()
    for i, (x, y) in enumerate([(220, 480), (240, 620), (30, 730), (200, 470), (250, 650)]):
        cv2.imwrite(str(folder / f"hand{i}.png"), bus[y:y + 90, x:x + 90])
    opts = Int8Options(engines=("onnxruntime",), strict=False, speed=False, progress=False)
    report = quantize_int8(hand_fp32, calib=folder, output_dir=tmp_path, stem="folder", options=opts)
    assert report.calibration["samples"] == ["hand0.png", "hand1.png", "hand2.png", "hand3.png"]
    assert report.holdout["samples"] == ["hand4.png"]
    assert report.engine("onnxruntime").accuracy.all_samples == 1


def test_fewer_images_than_asked_is_a_calibration_error(hand_fp32, tmp_path):
    with pytest.raises(CalibrationError, match="asked for 500"):
        quantize_int8(hand_fp32, calib="pinned:hand", output_dir=tmp_path,
                      options=Int8Options(engines=("mnn",), calib_count=500, progress=False))
    with pytest.raises(CalibrationError, match="at least 2 are needed"):
        (tmp_path / "one").mkdir()
        cv2.imwrite(str(tmp_path / "one" / "a.png"), cv2.imread(str(assets.fetch_asset("astronaut"))))
        quantize_int8(hand_fp32, calib=tmp_path / "one", output_dir=tmp_path, options=Int8Options(progress=False))


def test_cli_flags_are_checked_before_converting(tmp_path):
    """The flags become an Int8Options once, and every check runs then (before any FP32 stage)."""
    parser = _parser()
    with pytest.raises(CalibrationError, match="--int8 needs --calib"):
        int8_options(parser.parse_args(["--int8"]))
    with pytest.raises(ConversionError, match="add --int8"):
        int8_options(parser.parse_args(["--calib", str(tmp_path)]))
    with pytest.raises(CalibrationError, match="does not exist"):
        int8_options(parser.parse_args(["--int8", "--calib", str(tmp_path / "missing")]))
    with pytest.raises(ConversionError, match="unknown --method 'fast'.*EMA, KL, ADMM.*minmax"):
        int8_options(parser.parse_args(["--int8", "--calib", "pinned:hand", "--method", "fast"]))
    with pytest.raises(CalibrationError, match="at least 1"):
        int8_options(parser.parse_args(["--int8", "--calib", "pinned:hand", "--calib-count", "0"]))
    assert int8_options(parser.parse_args([])) is None  # no INT8 flags: nothing to check, no INT8
    opts = int8_options(parser.parse_args(["--int8", "--calib", "pinned:hand", "--engine", "ort", "--method", "KL",
                                           "--int8-speed-rounds", "0"]))
    assert (opts.calib, opts.engines, opts.mnn_method, opts.speed) == ("pinned:hand", ("onnxruntime",), "KL", False)
    assert opts.ort_float_fallback is None  # mixed precision on unless switched off
    off = int8_options(parser.parse_args(["--int8", "--calib", "pinned:hand", "--no-ort-float-fallback"]))
    assert off.ort_float_fallback is False
    with pytest.raises(ConversionError, match="--no-ort-float-fallback is an INT8 option"):
        int8_options(parser.parse_args(["--no-ort-float-fallback"]))


def test_mixed_precision_can_be_switched_off(hand_fp32, tmp_path):
    """--no-ort-float-fallback reaches the ONNX Runtime engine: no ranking runs, every tensor is INT8."""
    opts = Int8Options(engines=("onnxruntime",), calib_count=4, speed=False, progress=False, strict=False,
                       ort_float_fallback=False)
    report = quantize_int8(hand_fp32, calib="pinned:hand", output_dir=tmp_path, stem="nofb", options=opts)
    (engine,) = report.engines
    assert engine.details["settings"]["float_fallback"] is False
    assert "float_fallback" not in engine.details or not engine.details["float_fallback"]


def test_int8_engines_run_as_stages_of_convert(tmp_path, hand_tflite):
    """The CLI's wiring: flags -> Int8Options -> convert(int8=...) -> one report, INT8 a stage after MNN FP32."""
    args = _parser().parse_args(["--int8", "--calib", "pinned:hand", "--engine", "mnn", "--method", "EMA",
                                 "--method", "minmax", "--calib-count", "4", "--int8-no-strict",
                                 "--int8-speed-rounds", "0", "--keep-float", "first"])
    report = convert(hand_tflite, output_dir=tmp_path, preset="hand_landmark_lite", name="hl", int8=int8_options(args))
    assert [s.name for s in report.stages] == ["tflite->mnn", "int8-mnn"]
    stage = report.stage("int8-mnn")
    assert (stage.source, stage.precision, stage.artifact) == ("hl.mnn", "int8", tmp_path / "hl.int8.mnn")
    mnn = report.int8.engine("mnn")
    assert mnn.artifact == tmp_path / "hl.int8.mnn" and mnn.fp32_artifact == tmp_path / "hl.mnn"
    assert stage.status == mnn.status and report.ok == (mnn.status == "ok")
    # MNN's EMA path cannot keep layers in float: the request is reported, not silently dropped
    assert mnn.details["method"] == "EMA" and mnn.details["keep_float"] == []
    assert len(mnn.details["keep_float_ignored"]) == 1 and any("--keep-float ignored" in n for n in mnn.notes)
    assert mnn.speed is None and report.int8.report_path == tmp_path / "hl.int8.json"
    card = json.loads(open_backend(mnn.artifact).metadata)
    assert card["provenance"]["precision"] == "int8" and card["provenance"]["quantization"]["engine"] == "mnn"
    saved = json.loads((tmp_path / "hl.report.json").read_text())
    assert saved["int8"]["engines"][0]["artifact"] == "hl.int8.mnn" and saved["stages"][1]["name"] == "int8-mnn"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hl.int8.json", "hl.int8.mnn", "hl.mnn", "hl.report.json"]
    assert "INT8 hl" not in report.format_table() and "INT8 hand_landmark_lite" in report.format_table()
    # the FP32 files the stages wrote are what quantize_int8 takes on its own
    assert set(fp32_artifacts_from_report(report, hand_tflite)) == {"mnn", "tflite"}


def test_strict_int8_failure_in_convert_runs_every_engine_then_raises(tmp_path, hand_tflite):
    """Engines are alternatives: the first failing does not stop the second; the error names both and
    carries the conversion report (FP32 kept, INT8 files not)."""
    opts = Int8Options(calib="pinned:hand", calib_count=4, threshold_px_256=0.01, speed=False, progress=False)
    with pytest.raises(ParityError, match="mnn: mean keypoint error.*onnxruntime: mean keypoint error") as info:
        convert(hand_tflite, output_dir=tmp_path, preset="hand_landmark_lite", name="s", int8=opts)
    report = info.value.report
    assert info.value.stage == "int8-mnn" and not report.ok and report.error.startswith("ParityError")
    assert [(s.name, s.status, s.artifact) for s in report.stages] == [
        ("tflite->mnn", "ok", tmp_path / "s.mnn"), ("int8-mnn", "inaccurate", None),
        ("int8-onnxruntime", "inaccurate", None)]
    assert [e.status for e in report.int8.engines] == ["inaccurate", "inaccurate"]
    assert not any(tmp_path.glob("s.int8.*nn*")) and not any(p.name.startswith(".") for p in tmp_path.iterdir())
    assert json.loads((tmp_path / "s.report.json").read_text())["int8"]["ok"] is False
