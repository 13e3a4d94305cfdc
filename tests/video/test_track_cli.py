"""`edgepose track`: annotated video + JSON lines from real footage, written atomically; Ctrl-C keeps
the frames done; every bad input is a one-line error and leaves no file behind."""
from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgepose.errors import DisplayError, FrameSizeError, OutputError
from edgepose.video import Progress, check_display, run_track


def cli(*args, cwd=None, timeout=600):
    return subprocess.run([sys.executable, "-m", "edgepose", "track", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, cwd=cwd)


def read_video(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return frames


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") and ".part" in p.name)


def test_track_writes_an_annotated_video_and_json_lines(tmp_path, footage):
    clip = footage("bus:pan")
    out, lines = tmp_path / "out.mp4", tmp_path / "out.jsonl"
    proc = cli(clip.path, "-o", out, "--jsonl", lines)
    assert proc.returncode == 0, proc.stderr
    assert "frames     45" in proc.stdout and "2 track IDs (1, 2)" in proc.stdout, proc.stdout
    assert "frame/s" in proc.stderr or "fps" in proc.stderr  # the progress bar
    video = read_video(out)
    assert len(video) == 45 and video[0].shape == clip.frames[0].shape
    assert np.abs(video[10].astype(int) - clip.frames[10]).mean() > 1  # skeletons drawn on it
    records = [json.loads(line) for line in lines.read_text().splitlines()]
    assert [r["frame"] for r in records] == list(range(45))
    assert records[1]["time"] == pytest.approx(1 / 30, abs=1e-4) and records[0]["detector_ran"]
    assert {p["id"] for p in records[20]["people"]} == {1, 2}
    person = records[20]["people"][0]
    assert set(person) == {"id", "bbox", "presence", "detected", "keypoints"} and len(person["keypoints"]) == 33
    assert oct(out.stat().st_mode & 0o777) == oct(0o666 & ~_umask())  # not mkstemp's 0600
    assert leftovers(tmp_path) == []


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_track_a_clip_source_to_avi(tmp_path):
    out = tmp_path / "sweep.avi"
    proc = cli("clip:bus:sweep", "-o", out, "--max-frames", 12, "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert len(read_video(out)) == 12 and proc.stderr.strip() == ""


def test_ctrl_c_finishes_the_outputs_cleanly(tmp_path):
    out, lines = tmp_path / "out.mp4", tmp_path / "out.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "edgepose", "track", "clip:bus:sweep", "-o", str(out),
                             "--jsonl", str(lines), "--no-progress"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:  # wait until a few frames are written
        part = [p for p in tmp_path.iterdir() if p.name.startswith(".out.jsonl.")]
        if part and part[0].read_text().count("\n") >= 5:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "stopped    by Ctrl-C" in stderr
    done = len(lines.read_text().splitlines())
    assert 5 <= done < 90
    assert len(read_video(out)) == done  # a whole, playable video of the frames done
    assert leftovers(tmp_path) == []


def test_a_failed_run_leaves_nothing(tmp_path, footage):
    clip = footage("bus:pan")
    shots = tmp_path / "shots"
    shots.mkdir()
    for i in range(6):
        frame = clip.frames[i] if i < 4 else cv2.resize(clip.frames[i], (300, 400))
        cv2.imwrite(str(shots / f"{i}.png"), frame)
    out, lines = tmp_path / "out.mp4", tmp_path / "out.jsonl"
    proc = cli(shots, "-o", out, "--jsonl", lines, "--no-progress")
    assert proc.returncode == 1
    assert "error: frame 4 of folder" in proc.stderr and "300x400" in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists() and not lines.exists() and leftovers(tmp_path) == []


@pytest.mark.parametrize("case", ["corrupt", "truncated", "zero frames", "missing camera", "missing video"])
def test_bad_sources_are_one_line_errors_and_write_nothing(tmp_path, footage, case):
    data = footage("bus:pan").path.read_bytes()
    source = {
        "corrupt": tmp_path / "garbage.mp4", "truncated": tmp_path / "cut.mp4", "zero frames": tmp_path / "empty",
        "missing camera": "99", "missing video": tmp_path / "nope.mp4"}[case]
    if case == "corrupt":
        source.write_bytes(os.urandom(8192))
    elif case == "truncated":
        source.write_bytes(data[: len(data) // 3])
    elif case == "zero frames":
        source.mkdir()
    out = tmp_path / "out.mp4"
    proc = cli(source, "-o", out, "--no-progress")
    expected = {"corrupt": "cannot open .* as a video", "truncated": "corrupt or truncated",
                "zero frames": "gave no frames", "missing camera": "camera 99 could not be opened",
                "missing video": "video file not found"}[case]
    assert proc.returncode == 1
    error = [line for line in proc.stderr.splitlines() if line.startswith("edgepose track: error:")]
    assert len(error) == 1 and __import__("re").search(expected, error[0]), proc.stderr
    assert not out.exists() and leftovers(tmp_path) == []


@pytest.mark.parametrize("case", ["no folder", "a folder", "wrong suffix", "the input", "read-only folder",
                                  "nothing to write"])
def test_unwritable_outputs_fail_before_any_frame(tmp_path, footage, case):
    clip = footage("bus:pan").path
    ro = tmp_path / "ro"
    if case == "read-only folder":
        if os.geteuid() == 0:  # root writes into a chmod-ed folder; nobody writes files into /proc
            if not Path("/proc/self").is_dir():
                pytest.skip("running as root without /proc")
            ro = Path("/proc")
        else:
            ro.mkdir()
            ro.chmod(0o500)
    args = {"no folder": ["-o", tmp_path / "missing" / "out.mp4"], "a folder": ["-o", tmp_path],
            "wrong suffix": ["-o", tmp_path / "out.txt"], "the input": ["-o", clip],
            "read-only folder": ["-o", ro / "edgepose-out.mp4"], "nothing to write": []}[case]
    expected = {"no folder": "does not exist", "a folder": "is a folder", "wrong suffix": "use one of .mp4",
                "the input": "is the input", "read-only folder": "cannot write in", "nothing to write":
                "nothing to write"}[case]
    before = clip.read_bytes()
    t0 = time.time()
    proc = cli(clip, *args, "--no-progress")
    assert proc.returncode == 1 and expected in proc.stderr, proc.stderr
    assert clip.read_bytes() == before
    assert time.time() - t0 < 60  # refused up front, not after tracking the clip


def test_interrupt_and_failure_in_process(tmp_path, pipeline, footage):
    frames = footage("bus:pan").frames

    def interrupted():
        for i, frame in enumerate(frames):
            if i == 7:
                raise KeyboardInterrupt
            yield frame

    summary = run_track(interrupted(), output=tmp_path / "a.mp4", jsonl=tmp_path / "a.jsonl", pipeline=pipeline)
    assert summary.stopped == "Ctrl-C" and summary.frames == 7
    assert len(read_video(tmp_path / "a.mp4")) == 7 and len((tmp_path / "a.jsonl").read_text().splitlines()) == 7

    def failing():
        yield from frames[:5]
        yield cv2.resize(frames[5], (200, 200))

    with pytest.raises(FrameSizeError):
        run_track(failing(), output=tmp_path / "b.mp4", jsonl=tmp_path / "b.jsonl", pipeline=pipeline)
    assert not (tmp_path / "b.mp4").exists() and not (tmp_path / "b.jsonl").exists()
    assert leftovers(tmp_path) == []
    with pytest.raises(OutputError, match="same file"):
        run_track(frames, output=tmp_path / "c.mp4", jsonl=tmp_path / "c.mp4", pipeline=pipeline)


def test_show_needs_gui_opencv_and_says_how(monkeypatch):
    from edgepose import video

    # the runtime alone: headless OpenCV, no GUI build installed
    monkeypatch.setattr(video, "opencv_distributions", lambda: {"opencv-python-headless": "5.0.0.93"})
    monkeypatch.setattr(video, "_gui_backend", lambda: None)
    with pytest.raises(DisplayError, match=r"only the headless build .*pip install \"edgepose\[gui\]\""):
        check_display()
    # the gui extra installed, but the headless build was installed (or reinstalled) last
    monkeypatch.setattr(video, "opencv_distributions",
                        lambda: {"opencv-python": "5.0.0.93", "opencv-python-headless": "5.0.0.93"})
    with pytest.raises(DisplayError, match=r"last installed wins.*--force-reinstall --no-deps \"opencv-python==5.0.0.93\""):
        check_display()
    # the GUI build loads: only a display is missing
    monkeypatch.setattr(video, "_gui_backend", lambda: "QT5")
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(DisplayError, match="needs a display"):
        check_display()
    monkeypatch.setenv("DISPLAY", ":0")
    check_display()  # both builds installed, the GUI one on top, a display: fine


def test_gui_backend_of_this_cv2():
    from edgepose import video

    assert video._gui_backend() is None or isinstance(video._gui_backend(), str)
    assert "opencv-python-headless" in video.opencv_distributions()  # what the runtime installs


def test_show_on_this_headless_install(tmp_path, footage):
    """The project venv has the runtime's headless OpenCV: --show explains itself and writes nothing."""
    proc = cli(footage("bus:pan").path, "--show", "-o", tmp_path / "out.mp4", "--no-progress")
    if proc.returncode == 0:
        pytest.skip("this environment has a GUI OpenCV and a display")
    assert "--show needs" in proc.stderr and not (tmp_path / "out.mp4").exists()


def test_plain_progress_line_without_tqdm():
    stream = io.StringIO()
    bar = Progress(10, stream=stream, use_tqdm=False)
    for _ in range(3):
        bar.update(2)
    bar.close()
    text = stream.getvalue()
    assert "frame 1/10" in text and "fps" in text and text.endswith("\n")
