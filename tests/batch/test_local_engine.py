"""The local engine against a serial loop of `Pipeline`, error rows, resumption, and workers that really die.

Worker deaths are real: the test-only hook (edgepose.batch.CRASH_HOOK_ENV) makes the worker process
that picks up a marked input send itself SIGSEGV or SIGKILL, or exit; nothing in the engine is mocked.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

pa = pytest.importorskip("pyarrow")
import pyarrow.parquet as pq  # noqa: E402

from edgepose.batch import (CRASH_HOOK_ENV, BatchConfig, read_journal, read_results, run_batch,  # noqa: E402
                            table_digest)
from edgepose.sources import open_source  # noqa: E402


def by_frame(table):
    groups: dict[tuple[str, int | None], list[dict]] = {}
    for row in table.to_pylist():
        groups.setdefault((row["source"], row["frame"]), []).append(row)
    return groups


def test_local_engine_equals_a_serial_pipeline_row_for_row(local_run, dataset):
    """Every frame's people, in order, with the exact float32 keypoints, scores, boxes, detection scores
    and presence that `Pipeline.__call__` gives on the same frame in this process."""
    from edgepose.demo import default_pipeline

    summary, table = local_run
    pipeline = default_pipeline()
    groups = by_frame(table)
    expected_frames = {}
    for path in sorted(dataset.rglob("*")):
        if path.suffix.lower() in (".jpg", ".png") and path.name != "broken.jpg":
            expected_frames[(str(path), 0)] = cv2.imread(str(path), cv2.IMREAD_COLOR)
    with open_source(dataset / "clips" / "bus_pan.mp4") as frames:
        for frame in frames:
            expected_frames[(str(dataset / "clips" / "bus_pan.mp4"), frame.index)] = frame.image
    assert len(expected_frames) == 5 + 6
    people_total = 0
    for key, image in expected_frames.items():
        result = pipeline(image)
        rows = groups.pop(key)
        if len(result) == 0:
            assert [r["status"] for r in rows] == ["no_person"]
            continue
        people_total += len(result)
        assert [r["person"] for r in rows] == list(range(len(result)))
        assert all(r["status"] == "ok" and r["width"] == image.shape[1] and r["height"] == image.shape[0]
                   for r in rows)
        np.testing.assert_array_equal(np.array([r["keypoints"] for r in rows], np.float32), result.keypoints)
        np.testing.assert_array_equal(np.array([r["scores"] for r in rows], np.float32), result.scores)
        np.testing.assert_array_equal(np.array([r["bbox"] for r in rows], np.float32), result.bboxes)
        np.testing.assert_array_equal(np.array([r["detection_score"] for r in rows], np.float32),
                                      result.extras["detection_score"])
        np.testing.assert_array_equal(np.array([r["presence"] for r in rows], np.float32), result.extras["presence"])
    assert people_total >= 8  # bus: 3 people, the clip: 1-2 per frame, astronaut, grace_hopper
    upright = [r for r in table.to_pylist() if r["source"].endswith("phone_rotated.jpg")]
    assert (upright[0]["width"], upright[0]["height"]) == (600, 512)  # the EXIF rotation applied
    # What is left is the two bad files, one error row each, and nothing else.
    assert sorted(groups) == [(str(dataset / "broken.jpg"), None), (str(dataset / "clips" / "truncated.mp4"), None)]
    broken, truncated = groups[(str(dataset / "broken.jpg"), None)], groups[(str(dataset / "clips" / "truncated.mp4"), None)]
    assert broken[0]["status"] == "error" and broken[0]["error"].startswith("ImageError: ")
    assert truncated[0]["status"] == "error" and truncated[0]["error"].startswith("VideoError: ")
    assert summary.inputs == summary.done == 8 and summary.errors == 2 and summary.frames == 11
    assert summary.workers == 2 and not summary.worker_deaths
    times = [r["time"] for r in table.to_pylist() if r["source"].endswith("bus_pan.mp4")]
    assert max(times) == pytest.approx(5 / 30.0)


def test_a_rerun_skips_what_is_done(local_run, dataset, tmp_path, pipeline_config):
    out = tmp_path / "out"
    first = run_batch([dataset / "astronaut.png", dataset / "broken.jpg"], out, config=pipeline_config, workers=1)
    assert first.done == 2
    second = run_batch([dataset], out, config=pipeline_config, workers=2)
    assert (second.skipped, second.done) == (2, 6)
    third = run_batch([dataset], out, config=pipeline_config, workers=2)
    assert (third.skipped, third.done, third.rows) == (8, 0, 0)
    assert table_digest(read_results(out)) == table_digest(local_run[1])
    retry = run_batch([dataset], out, config=pipeline_config, workers=1, retry_errors=True)
    assert retry.done == 2 and retry.errors == 2  # broken files stay broken
    assert table_digest(read_results(out)) == table_digest(local_run[1])


def crash_env(monkeypatch, spec: str) -> None:
    monkeypatch.setenv(CRASH_HOOK_ENV, spec)


@pytest.mark.parametrize("action, how", [("segv", "killed by SIGSEGV (a native crash)"),
                                         ("kill", "killed by SIGKILL (killed: the kernel's OOM killer"),
                                         ("exit", "exited with status 3")])
def test_a_worker_that_dies_twice_on_an_input_gives_an_error_row(monkeypatch, small_folder, tmp_path,
                                                                 pipeline_config, action, how):
    folder = small_folder({"crashme.png": "astronaut", "other.jpg": "grace_hopper"})
    crash_env(monkeypatch, f"crashme:{action}")
    summary = run_batch([folder], tmp_path / "out", config=pipeline_config, workers=2)
    rows = read_results(tmp_path / "out").to_pylist()
    bad = [r for r in rows if r["source"].endswith("crashme.png")]
    assert len(bad) == 1 and bad[0]["status"] == "error"
    assert bad[0]["error"].startswith("WorkerDied: the worker running this input " + how.split(" (")[0])
    assert [d["attempt"] for d in summary.worker_deaths] == [1, 2]
    assert all(how in d["how"] for d in summary.worker_deaths)
    good = [r for r in rows if r["source"].endswith("other.jpg")]
    assert good and all(r["status"] == "ok" for r in good)
    assert summary.done == 2 and summary.errors == 1


def test_a_worker_that_dies_once_is_retried_and_the_rows_are_the_same(monkeypatch, small_folder, tmp_path,
                                                                       pipeline_config):
    folder = small_folder({"crashme.png": "astronaut", "other.jpg": "bus"})
    clean = run_batch([folder], tmp_path / "clean", config=pipeline_config, workers=1)
    crash_env(monkeypatch, f"crashme:once-segv:{tmp_path / 'crashed-once'}")
    summary = run_batch([folder], tmp_path / "out", config=pipeline_config, workers=2)
    assert (tmp_path / "crashed-once").exists()
    assert [d["attempt"] for d in summary.worker_deaths] == [1] and summary.errors == 0 == clean.errors
    assert table_digest(read_results(tmp_path / "out")) == table_digest(read_results(tmp_path / "clean"))


def test_an_input_that_hangs_is_killed_by_item_timeout(monkeypatch, small_folder, tmp_path, pipeline_config):
    folder = small_folder({"slow.png": "astronaut", "other.jpg": "grace_hopper"})
    # A hang: SIGSTOP freezes the worker on its input (as a deadlock in native code would).
    monkeypatch.setenv(CRASH_HOOK_ENV, "slow:stop")
    summary = run_batch([folder], tmp_path / "out", config=pipeline_config, workers=1, item_timeout=10)
    rows = {r["source"].rsplit("/", 1)[1]: r for r in read_results(tmp_path / "out").to_pylist()}
    assert rows["slow.png"]["status"] == "error" and "longer than 10 s" in rows["slow.png"]["error"]
    assert rows["other.jpg"]["status"] == "ok"


def test_a_killed_run_leaves_parts_that_open_and_resumes_to_the_same_rows(local_run, dataset, tmp_path):
    """SIGKILL the whole `edgepose batch` process group after its first input is journalled; every
    Parquet part on disk opens, and a rerun recovers the journal, runs the rest and ends with
    exactly the rows of an uninterrupted run."""
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "edgepose", "batch", str(dataset), "-o", str(out), "-j", "1", "--no-progress",
           "--part-rows", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            parts = list(out.glob("part-*.parquet"))
            if len(parts) >= 2:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the run ended before it could be killed"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    parts = list(out.glob("part-*.parquet"))
    assert 2 <= len(parts) < 8
    for part in parts:
        pq.read_table(part)  # a part under its final name always opens
    before = set(read_results(out)["source"].to_pylist())
    summary = run_batch([dataset], out, config=BatchConfig().resolved(), workers=2)
    assert summary.skipped >= len(before) and summary.done == 8 - summary.skipped
    assert table_digest(read_results(out)) == table_digest(local_run[1])


def test_journal_keeps_finished_inputs_of_a_killed_run(dataset, tmp_path):
    """Kill while rows sit in the journal (no part yet): the next run turns them into a part."""
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "edgepose", "batch", str(dataset), "-o", str(out), "-j", "1", "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            journals = list(out.glob(".journal-*.arrows"))
            if journals and len(read_journal(journals[0])) >= 2:
                break
            time.sleep(0.05)
        assert proc.poll() is None
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert not list(out.glob("part-*.parquet"))
    journalled = len(read_journal(next(out.glob(".journal-*.arrows"))))
    summary = run_batch([dataset / "astronaut.png"], out, config=BatchConfig().resolved(), workers=1)
    assert summary.recovered_rows > 0 and summary.skipped + summary.done == 1
    assert len(set(read_results(out)["source"].to_pylist())) >= journalled


def test_boxes_mode_equals_predictor_on_the_same_boxes(dataset, tmp_path, pipeline_config):
    """--model with --boxes: the keypoint model alone on the boxes of a JSON per image."""
    import json

    from edgepose import Predictor, assets

    boxes_dir = tmp_path / "boxes"
    boxes_dir.mkdir()
    for name, box in assets.PHOTO_PERSON_BOXES.items():
        src = [p for p in dataset.iterdir() if p.stem == name][0]
        (boxes_dir / f"{name}.json").write_text(json.dumps({"boxes": [list(box)], "scores": [0.75]}))
    (boxes_dir / "grace_hopper.json").write_text("[]")  # nobody here
    config = BatchConfig(model=pipeline_config.model, boxes=str(boxes_dir)).resolved()
    images = sorted(p for p in dataset.iterdir() if p.suffix in (".jpg", ".png") and p.name != "broken.jpg")
    run_batch(images + [dataset / "clips" / "bus_pan.mp4"], tmp_path / "out", config=config, workers=2)
    rows = {Path(r["source"]).name: r for r in read_results(tmp_path / "out").to_pylist()}
    predictor = Predictor(pipeline_config.model)
    for name in ("astronaut", "bus", "zidane"):
        src = [p for p in images if p.stem == name][0]
        result = predictor.predict(cv2.imread(str(src)), [list(assets.PHOTO_PERSON_BOXES[name])])
        row = rows[src.name]
        np.testing.assert_array_equal(np.array([row["keypoints"]], np.float32), result.keypoints)
        np.testing.assert_array_equal(np.array([row["scores"]], np.float32), result.scores)
        assert row["detection_score"] == 0.75 and row["presence"] == pytest.approx(float(result.extras["presence"][0]))
    assert rows["grace_hopper.jpg"]["status"] == "no_person"
    assert rows["bus_pan.mp4"]["status"] == "error" and "no boxes file" in rows["bus_pan.mp4"]["error"]


def test_cli_batch_with_annotations_and_progress(dataset, tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "COLUMNS": "100"}
    res = subprocess.run([sys.executable, "-m", "edgepose", "batch", str(dataset / "bus.jpg"),
                          str(dataset / "clips" / "bus_pan.mp4"), str(dataset / "broken.jpg"), "-o", str(out),
                          "-j", "2", "--annotate"], capture_output=True, text=True, env=env, timeout=600)
    assert res.returncode == 0, res.stderr
    assert "3 run now" in res.stdout and "items/s" in res.stdout
    assert "item/s" in res.stderr or "items/s" in res.stderr  # the progress bar
    assert "broken.jpg: ImageError" in res.stderr
    assert cv2.imread(str(out / "annotated" / "bus.pose.jpg")).shape == cv2.imread(str(dataset / "bus.jpg")).shape
    cap = cv2.VideoCapture(str(out / "annotated" / "bus_pan.pose.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 6
    cap.release()
    again = subprocess.run([sys.executable, "-m", "edgepose", "batch", str(dataset / "bus.jpg"), "-o", str(out),
                            "--no-progress"], capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "1 already in" in again.stdout
    other = subprocess.run([sys.executable, "-m", "edgepose", "batch", str(dataset / "bus.jpg"), "-o", str(out),
                            "--rounds", "1", "--no-progress"], capture_output=True, text=True, timeout=600)
    assert other.returncode == 1 and "another pipeline" in other.stderr and "rounds" in other.stderr


def test_ctrl_c_keeps_the_finished_inputs_in_a_part(dataset, tmp_path):
    """SIGINT to `edgepose batch` (Ctrl-C): exit status 130, the inputs finished so far are in a Parquet
    part (the journal is rolled), no worker is left running, and a rerun does only the rest."""
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "edgepose", "batch", str(dataset), "-o", str(out), "-j", "2", "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        journals = list(out.glob(".journal-*.arrows"))
        if journals and len(read_journal(journals[0])) >= 1:
            break
        time.sleep(0.05)
    children = child_pids(proc.pid)
    assert children  # the workers
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert not list(out.glob(".journal-*")) and list(out.glob("part-*.parquet"))
    done = set(read_results(out)["source"].to_pylist())
    assert 1 <= len(done) < 8
    time.sleep(1)
    assert not [pid for pid in children if alive(pid)]
    summary = run_batch([dataset], out, config=BatchConfig().resolved(), workers=2)
    assert summary.skipped == len(done) and summary.done == 8 - len(done)


def child_pids(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
