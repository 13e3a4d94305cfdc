"""A model file never kills the process: hostile and corrupt `.mnn` files get a ModelFileError.

Measured on BlazePose FP16 (the demo's model), before this suite: 11 of 60 mutated files killed
the interpreter (SIGSEGV), and so did a valid file whose bizCode was not UTF-8. Loading the
mutants straight into MNN, 19 of 300 still do; through edgepose, none (see reliability_fuzz.py).

Every test that hands MNN a hostile file does it in a child process, so a regression fails a
test instead of killing pytest.
"""
from __future__ import annotations

import json
import os
import random
import subprocess

import pytest
pytest.importorskip("hypothesis")  # build-time extra (dev): skip without it
from reliability_helpers import last_json, run_python
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgepose import mnn_file
from edgepose.errors import ModelFileError
from reliability_fuzz import heap_corrupting_model, rewired_model, run_fuzz

FUZZ_SEED = 14
SAMPLE = int(os.environ.get("EDGEPOSE_FUZZ_SAMPLE", "40"))
FULL = int(os.environ.get("EDGEPOSE_FUZZ_COUNT", "1000"))


@pytest.fixture(scope="module")
def model(blazepose_mnn):
    return blazepose_mnn["fp16"]


@pytest.fixture(scope="module")
def model_bytes(model) -> bytes:
    return model.read_bytes()


# --- the structural walk (pure Python: safe in-process) -------------------------------------------
def test_reads_metadata_inputs_outputs_without_mnn(model):
    info, _ = mnn_file.read_mnn_file(model)
    assert info.input_names == ("input_1",)
    assert info.inputs[0].dims == (1, 256, 256, 3) and info.inputs[0].format == "NHWC"
    assert info.output_names == ("Identity", "Identity_1", "Identity_2", "Identity_3", "Identity_4")
    assert json.loads(info.metadata_text)["head"] == "landmarks"
    assert info.version and info.op_count > 100


def test_every_truncation_is_a_model_file_error(tmp_path, model_bytes):
    n = len(model_bytes)
    cuts = sorted({*range(0, 64), *range(0, n, max(1, n // 200)), n - 1, n - 4})
    path = tmp_path / "cut.mnn"
    for cut in cuts:
        path.write_bytes(model_bytes[:cut])
        with pytest.raises(ModelFileError, match="not a model MNN can load"):
            mnn_file.read_mnn_file(path)


def _check_structure(blob: bytes) -> None:
    """The walk on `blob`: a result or ModelFileError, nothing else."""
    try:
        mnn_file.parse_mnn_bytes(blob)
    except mnn_file._Malformed:
        pass


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.binary(min_size=0, max_size=512))
def test_structure_walk_on_random_bytes(blob):
    _check_structure(blob)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.tuples(st.integers(0, 1 << 30), st.integers(1, 255)), min_size=1, max_size=8),
       st.sampled_from(["anywhere", "structure"]))
def test_structure_walk_on_mutants(model_bytes, flips, where):
    ranges = mnn_file_ranges(model_bytes)
    out = bytearray(model_bytes)
    for pos, mask in flips:
        if where == "structure":
            start, length = ranges[pos % len(ranges)]
            pos = start + pos % max(length, 1)
        out[pos % len(out)] ^= mask
    _check_structure(bytes(out))


_RANGES: dict[int, list] = {}


def mnn_file_ranges(data: bytes) -> list[tuple[int, int]]:
    key = hash(data[:4096])
    if key not in _RANGES:
        trace: list[tuple[int, int]] = []
        mnn_file.parse_mnn_bytes(data, trace=trace)
        _RANGES[key] = sorted(set(trace))
    return _RANGES[key]


def test_out_of_range_tensor_index_is_refused(tmp_path, model_bytes):
    """An operator pointing at a tensor past the end: refused by the walk, before MNN reads it."""
    import struct

    buf = mnn_file._Buffer(model_bytes)
    net = mnn_file._Table(buf, buf.deref(0, "root"), "Net")
    op = next(o for o in net.tables(3, "ops", 1 << 20) if o.ints(0, "in", 1 << 20))
    start, _ = op.vector(0, 4, "in", 1 << 20)
    out = bytearray(model_bytes)
    struct.pack_into("<i", out, start, 10_000_000)
    path = tmp_path / "index.mnn"
    path.write_bytes(bytes(out))
    with pytest.raises(ModelFileError, match="refers to tensor 10000000"):
        mnn_file.read_mnn_file(path)


# --- hostile files through the Predictor, in a child process ---------------------------------------
def _open_in_child(path, cache) -> dict:
    code = f"""
        import json
        from edgepose import Predictor
        try:
            p = Predictor({str(path)!r})
            print(json.dumps({{"ok": True, "outputs": p.backend.output_names}}))
        except Exception as exc:
            print(json.dumps({{"ok": False, "type": type(exc).__name__, "error": str(exc)}}))
    """
    proc = run_python(code, env={"EDGEPOSE_CACHE": str(cache)})
    assert proc.returncode == 0, f"the process died ({proc.returncode}): {proc.stderr[-1500:]}"
    return last_json(proc.stdout)


def _with_biz_code(data: bytes, junk: bytes) -> bytes:
    biz = mnn_file.parse_mnn_bytes(data)["biz_code"]
    at = data.find(biz)
    return data[:at] + junk.ljust(len(biz), b"\xff")[:len(biz)] + data[at + len(biz):]


def test_non_utf8_metadata_is_an_error_not_a_crash(tmp_path, model_bytes, verdict_cache):
    """MNN's get_info() killed the process on this file; edgepose never calls it."""
    path = tmp_path / "latin1.mnn"
    path.write_bytes(_with_biz_code(model_bytes, '{"name": "caf\xe9"'.encode("latin-1")))
    result = _open_in_child(path, verdict_cache)
    assert result["type"] == "MetadataError" and "carries no edgepose metadata" in result["error"]


def test_control_characters_in_metadata_are_escaped_by_info(tmp_path, model_bytes, verdict_cache):
    spec = json.loads(mnn_file.parse_mnn_bytes(model_bytes)["biz_code"])
    spec["name"] = "\x1b[31mred\x1b[0m\x07"
    spec["keypoint_names"][0] = "nose\x1b]0;title\x07"
    text = json.dumps(spec)
    biz = mnn_file.parse_mnn_bytes(model_bytes)["biz_code"]
    for field in ("provenance", "flip_pairs", "skeleton"):  # keep the file's layout: make room
        if len(text) > len(biz):
            spec[field] = {} if field == "provenance" else []
            text = json.dumps(spec)
    assert len(text) <= len(biz)
    path = tmp_path / "ansi.mnn"
    path.write_bytes(_with_biz_code(model_bytes, text.encode().ljust(len(biz), b" ")))
    code = f"""
        from edgepose.cli import main
        raise SystemExit(main(["info", {str(path)!r}]))
    """
    proc = run_python(code, env={"EDGEPOSE_CACHE": str(verdict_cache)})
    assert proc.returncode == 0, proc.stderr[-1500:]
    assert "\x1b" not in proc.stdout and "\x07" not in proc.stdout
    assert "\\x1b[31mred" in proc.stdout, proc.stdout


def test_heap_corrupting_model_is_caught_by_the_child_check(tmp_path, model_bytes, verdict_cache):
    """Structurally valid, loads and runs, but MNN writes past a buffer: the process would die
    when the module is freed. The child-process check dies instead, and the verdict is cached."""
    path = tmp_path / "group7.mnn"
    path.write_bytes(heap_corrupting_model(model_bytes))
    mnn_file.read_mnn_file(path)  # the walk accepts it: only running it shows the damage
    result = _open_in_child(path, verdict_cache)
    assert result["type"] == "ModelFileError" and "crashes MNN" in result["error"], result
    again = _open_in_child(path, verdict_cache)
    assert again["error"] == result["error"]


def test_rewired_graph_is_caught_by_the_child_check(tmp_path, model_bytes, verdict_cache):
    """One operator reading a tensor produced later (every index in range): MNN loads it, then
    segfaults when the backend asks an output's format. Found by the full fuzz (seed 14, #80)."""
    path = tmp_path / "rewired.mnn"
    path.write_bytes(rewired_model(model_bytes))
    mnn_file.read_mnn_file(path)
    result = _open_in_child(path, verdict_cache)
    assert result["type"] == "ModelFileError" and "crashes MNN" in result["error"], result


def test_fuzz_sample_never_kills_the_process(model, verdict_cache, tmp_path):
    """A seeded sample of mutants (EDGEPOSE_FUZZ_SAMPLE, default 40), each opened and run by a
    worker process standing in for a user's; the full run is test_fuzz_full."""
    report = run_fuzz(model, count=SAMPLE, seed=FUZZ_SEED, workers=2, env={"EDGEPOSE_CACHE": str(verdict_cache)},
                      keep_dir=tmp_path / "killers")
    assert report.deaths == [], report.summary()
    assert report.untyped == [], report.untyped[:5]
    assert sum(report.outcomes.values()) == SAMPLE, report.summary()


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("EDGEPOSE_FUZZ_FULL") != "1",
                    reason="the full fuzz (>= 1000 mutants, ~6 min on 2 cores) runs with EDGEPOSE_FUZZ_FULL=1")
def test_fuzz_full(model, verdict_cache, tmp_path):
    report = run_fuzz(model, count=FULL, seed=FUZZ_SEED, workers=max(2, os.cpu_count() or 2),
                      env={"EDGEPOSE_CACHE": str(verdict_cache)}, keep_dir=tmp_path / "killers")
    print(report.summary())
    assert report.deaths == [], report.summary()
    assert report.untyped == [], report.untyped[:5]
    assert sum(report.outcomes.values()) == FULL


# --- the verdict cache and the child's protocol (in-process, the child simulated) ---------------------
def test_verdict_is_cached_and_a_broken_cache_entry_is_checked_again(private_cache, model, monkeypatch):
    info, _ = mnn_file.read_mnn_file(model)
    mnn_file.verify_mnn_file(info)
    entries = list((private_cache / "verified").glob(f"{info.sha256}-*.json"))
    assert entries and json.loads(entries[0].read_text())["ok"] is True
    mnn_file.clear_memo()

    def no_child(*a, **k):
        raise AssertionError("a cached verdict must not start a child")

    real_run = subprocess.run
    monkeypatch.setattr(subprocess, "run", no_child)
    mnn_file.verify_mnn_file(info)
    mnn_file.clear_memo()
    monkeypatch.setattr(subprocess, "run", real_run)
    entries[0].write_text("{not json")
    assert mnn_file.verify_mnn_file(info)["ok"]
    assert json.loads(entries[0].read_text())["ok"] is True


_FAKE_CRASH = r'''
import json, os, signal, sys
job = json.loads(sys.stdin.read())
print(json.dumps({"step": "load"}), flush=True)
os.kill(os.getpid(), signal.SIGSEGV)
'''
_FAKE_HANG = r'''
import json, sys, time
print(json.dumps({"step": "load"}), flush=True)
time.sleep(60)
'''


def test_a_crash_in_the_child_is_a_model_file_error(private_cache, model, monkeypatch, tmp_path):
    path = tmp_path / "m.mnn"
    path.write_bytes(model.read_bytes() + b"\0" * random.Random(1).randrange(1, 64))  # a new sha256
    monkeypatch.setattr(mnn_file, "_CHILD", _FAKE_CRASH)
    with pytest.raises(ModelFileError, match=r"crashes MNN \(SIGSEGV while loading it"):
        mnn_file.open_mnn(path)
    mnn_file.clear_memo()
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: (_ for _ in ()).throw(AssertionError("cached")))
    with pytest.raises(ModelFileError, match="crashes MNN"):  # the verdict was cached on disk
        mnn_file.open_mnn(path)


def test_a_hang_in_the_child_is_an_error_that_is_not_cached(private_cache, model, monkeypatch, tmp_path):
    path = tmp_path / "slow.mnn"
    path.write_bytes(model.read_bytes() + b"\0\0\0")
    monkeypatch.setattr(mnn_file, "_CHILD", _FAKE_HANG)
    monkeypatch.setenv("EDGEPOSE_MNN_VERIFY_TIMEOUT", "1")
    with pytest.raises(ModelFileError, match="within 1 s"):
        mnn_file.open_mnn(path)
    info, _ = mnn_file.read_mnn_file(path)
    assert not list((private_cache / "verified").glob(f"{info.sha256}-*.json"))


def test_structure_mode_starts_no_child(private_cache, model, monkeypatch):
    monkeypatch.setenv("EDGEPOSE_MNN_VERIFY", "structure")
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: (_ for _ in ()).throw(AssertionError("child")))
    assert mnn_file.open_mnn(model).input_names == ("input_1",)
