"""Inputs from SOURCEs, and the output folder: journal, atomic parts, resume bookkeeping (no models run)."""
from __future__ import annotations

import json
import os

import pytest

pa = pytest.importorskip("pyarrow")
import pyarrow.parquet as pq  # noqa: E402

from edgepose.batch import (STATUS_ERROR, STATUS_OK, ResultWriter, expand_sources, read_journal,  # noqa: E402
                            read_results, result_schema)
from edgepose.errors import BatchError  # noqa: E402


def touch(path, data=b"x"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_folders_recurse_in_natural_order_and_skip_other_files(tmp_path):
    for name in ("f10.jpg", "f2.jpg", "sub/a.mp4", "sub/b.PNG", "notes.txt", ".hidden.jpg", ".cache/x.jpg"):
        touch(tmp_path / "d" / name)
    items = expand_sources([tmp_path / "d"])
    assert [(os.path.relpath(i.key, tmp_path / "d"), i.kind, i.rel) for i in items] == [
        ("f2.jpg", "image", "f2.jpg"), ("f10.jpg", "image", "f10.jpg"),
        ("sub/a.mp4", "video", "sub/a.mp4"), ("sub/b.PNG", "image", "sub/b.PNG")]
    assert all(os.path.isabs(i.key) for i in items)


def test_globs_list_files_and_duplicates(tmp_path):
    for name in ("a/1.jpg", "a/2.jpg", "b/c.mp4"):
        touch(tmp_path / name)
    lst = tmp_path / "inputs.txt"
    lst.write_text("# clips\nb/c.mp4\n\na/1.jpg\nmissing.jpg\n")
    items = expand_sources([str(tmp_path / "a" / "*.jpg"), lst])
    keys = [os.path.relpath(i.key, tmp_path) for i in items]
    assert keys == ["a/1.jpg", "a/2.jpg", "b/c.mp4", "missing.jpg"]  # a/1.jpg once; list entries relative to it
    missing = items[-1]
    assert missing.kind == "error" and "does not exist" in missing.error


def test_sources_that_name_nothing_become_error_inputs(tmp_path):
    (tmp_path / "empty").mkdir()
    touch(tmp_path / "doc.pdf")
    items = expand_sources([tmp_path / "empty", str(tmp_path / "*.png"), tmp_path / "doc.pdf", tmp_path / "nope"])
    assert [i.kind for i in items] == ["error"] * 4
    assert "holds no image or video" in items[0].error
    assert "matches no image or video" in items[1].error
    assert "not an image, a video or a list file" in items[2].error
    assert "does not exist" in items[3].error


def test_output_folder_inside_a_source_is_not_read(tmp_path):
    touch(tmp_path / "a.jpg")
    touch(tmp_path / "out" / "annotated" / "a.pose.jpg")
    assert [os.path.basename(i.key) for i in expand_sources([tmp_path], exclude=tmp_path / "out")] == ["a.jpg"]


def test_same_relative_names_from_two_sources_get_full_path_names(tmp_path):
    touch(tmp_path / "x" / "p.jpg")
    touch(tmp_path / "y" / "p.jpg")
    rels = [i.rel for i in expand_sources([tmp_path / "x", tmp_path / "y"])]
    assert len(set(rels)) == 2


# --- the writer ---------------------------------------------------------------------------------------
K = 3
SCHEMA = result_schema(K)
MANIFEST = {"pipeline": {"model": "sha-a", "rounds": 3}}


def rows_table(source, n=2, status=STATUS_OK):
    rows = [{"source": source, "frame": 0, "time": 0.0, "person": i if status == STATUS_OK else None,
             "status": status, "bbox": [1, 2, 3, 4] if status == STATUS_OK else None, "detection_score": 0.9,
             "presence": 0.8, "keypoints": [[float(i), 1.0]] * K if status == STATUS_OK else None,
             "scores": [0.5] * K if status == STATUS_OK else None, "width": 10, "height": 10,
             "error": "ImageError: bad" if status == STATUS_ERROR else None} for i in range(n)]
    return pa.Table.from_pylist(rows, schema=SCHEMA)


def test_parts_roll_every_part_rows_and_resume_reads_them(tmp_path):
    w = ResultWriter(tmp_path, SCHEMA, MANIFEST, part_rows=4)
    for name in "abc":
        w.add(rows_table(name))
    assert len(w.parts_written) == 1  # a + b = 4 rows rolled; c is in the journal
    assert len(list(tmp_path.glob(".journal-*.arrows"))) == 1
    w.close()
    assert not list(tmp_path.glob(".journal-*")) and len(list(tmp_path.glob("part-*.parquet"))) == 2
    again = ResultWriter(tmp_path, SCHEMA, MANIFEST)
    assert again.finished == {"a": False, "b": False, "c": False}
    again.close()
    assert read_results(tmp_path).num_rows == 6


def test_a_killed_run_loses_only_the_torn_last_input(tmp_path):
    w = ResultWriter(tmp_path, SCHEMA, MANIFEST, part_rows=1000)
    for name in ("a", "b", "c"):
        w.add(rows_table(name))
    journal = next(tmp_path.glob(".journal-*.arrows"))
    # What a SIGKILL in the middle of writing "c" leaves: the file cut inside its batch.
    data = journal.read_bytes()
    w._sink.close()
    w._lock_fh.close()
    journal.write_bytes(data[:-40])
    assert len(read_journal(journal)) == 2
    (tmp_path / ".part-x.parquet.1234.tmp").write_bytes(b"half a part")  # a rename that never happened
    w2 = ResultWriter(tmp_path, SCHEMA, MANIFEST)
    assert w2.recovered_rows == 4 and set(w2.finished) == {"a", "b"}
    assert not list(tmp_path.glob(".journal-*")) and not list(tmp_path.glob(".part-*.tmp"))
    w2.add(rows_table("c"))
    w2.close()
    assert sorted(set(read_results(tmp_path)["source"].to_pylist())) == ["a", "b", "c"]
    for part in tmp_path.glob("part-*.parquet"):
        pq.read_table(part)


def test_a_journal_with_no_complete_batch_recovers_nothing(tmp_path):
    (tmp_path / ".journal-x.arrows").write_bytes(b"\xff\xff\xff\xff\x10")
    w = ResultWriter(tmp_path, SCHEMA, MANIFEST)
    assert w.recovered_rows == 0 and w.finished == {}
    w.close()


def test_errors_are_finished_and_retry_errors_drops_their_rows(tmp_path):
    w = ResultWriter(tmp_path, SCHEMA, MANIFEST)
    w.add(rows_table("good"))
    w.add(rows_table("bad", n=1, status=STATUS_ERROR))
    w.close()
    w = ResultWriter(tmp_path, SCHEMA, MANIFEST)
    assert w.finished == {"good": False, "bad": True}
    assert w.drop_sources(["bad"]) == 1
    assert w.finished == {"good": False}
    w.close()
    assert set(read_results(tmp_path)["source"].to_pylist()) == {"good"}


def test_another_pipeline_is_refused_and_one_run_at_a_time(tmp_path):
    w = ResultWriter(tmp_path, SCHEMA, MANIFEST)
    with pytest.raises(BatchError, match="another edgepose batch run"):
        ResultWriter(tmp_path, SCHEMA, MANIFEST)
    w.add(rows_table("a"))
    w.close()
    with pytest.raises(BatchError, match="another pipeline.*rounds"):
        ResultWriter(tmp_path, SCHEMA, {"pipeline": {"model": "sha-a", "rounds": 1}})
    assert json.loads((tmp_path / "batch.json").read_text())["pipeline"] == MANIFEST["pipeline"]


def test_output_must_be_a_folder(tmp_path):
    (tmp_path / "f").write_text("")
    with pytest.raises(BatchError, match="is a file"):
        ResultWriter(tmp_path / "f", SCHEMA, MANIFEST)
