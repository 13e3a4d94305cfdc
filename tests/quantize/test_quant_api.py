"""quantize_int8's contract (threshold, strictness, hold-out split) and the CLI flags (table C: tests/benchmarks)."""
from __future__ import annotations

import argparse
import json

import cv2
import pytest

from edgepose import assets
from edgepose.converters.quantize import (Int8Options, add_int8_arguments, check_int8_args,
                                          fp32_artifacts_from_report, quantize_from_args, quantize_int8)
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
    parser = _parser()
    with pytest.raises(CalibrationError, match="--int8 needs --calib"):
        check_int8_args(parser.parse_args(["--int8"]))
    with pytest.raises(ConversionError, match="add --int8"):
        check_int8_args(parser.parse_args(["--calib", str(tmp_path)]))
    with pytest.raises(CalibrationError, match="does not exist"):
        check_int8_args(parser.parse_args(["--int8", "--calib", str(tmp_path / "missing")]))
    with pytest.raises(ConversionError, match="unknown --method 'fast'.*EMA, KL, ADMM.*minmax"):
        check_int8_args(parser.parse_args(["--int8", "--calib", "pinned:hand", "--method", "fast"]))
    with pytest.raises(CalibrationError, match="at least 1"):
        check_int8_args(parser.parse_args(["--int8", "--calib", "pinned:hand", "--calib-count", "0"]))
    check_int8_args(parser.parse_args([]))  # no INT8 flags: nothing to check


def test_convert_then_quantize_from_args(tmp_path, hand_tflite):
    """The wiring the convert CLI uses: FP32 conversion report -> fp32 artifacts -> INT8 from the flags."""
    from edgepose.converters.pipeline import convert

    conv = convert(hand_tflite, output_dir=tmp_path, preset="hand_landmark_lite", name="hl")
    fp32 = fp32_artifacts_from_report(conv, hand_tflite)
    assert set(fp32) == {"mnn", "tflite"}
    args = _parser().parse_args(["--int8", "--calib", "pinned:hand", "--engine", "mnn", "--method", "EMA",
                                 "--method", "minmax", "--calib-count", "4", "--int8-no-strict",
                                 "--int8-speed-rounds", "0", "--keep-float", "first"])
    report = quantize_from_args(args, fp32, output_dir=conv.output_dir, stem=conv.stem)
    mnn = report.engine("mnn")
    assert mnn.artifact == tmp_path / "hl.int8.mnn" and mnn.artifact.is_file()
    # MNN's EMA path cannot keep layers in float: the request is reported, not silently dropped
    assert mnn.details["method"] == "EMA" and mnn.details["keep_float"] == []
    assert len(mnn.details["keep_float_ignored"]) == 1 and any("--keep-float ignored" in n for n in mnn.notes)
    assert mnn.speed is None and report.report_path == tmp_path / "hl.int8.json"
