"""Open `.mnn` files without letting a bad one take the process down.

MNN trusts its model files: a truncated or bit-flipped `.mnn` can crash the interpreter with
SIGSEGV inside `load_module_from_file` or on the first `forward`, and `Module.get_info()`
crashes on a bizCode that is not UTF-8 and leaks ~0.9 MB per call. So edgepose never hands
MNN a file it has not checked, in two steps:

1. **Structure, in Python** (`read_mnn_file`): the FlatBuffer is walked with a bounds check on
   every offset (root table, vtables, strings, vectors, every operator's table and tensor
   indexes, the Input operators' shapes), and what edgepose needs is read from it directly:
   the bizCode (edgepose's metadata), the converter version, input names/shapes/layouts and
   output names. MNN is not involved; a malformed file is a `ModelFileError`.
2. **Behaviour, in a child process** (`verify_mnn_file`): the first time a file's sha256 is
   seen, a child Python loads it with MNN exactly as the backend will (same precision, the
   same input and output names), builds its graph and runs a forward pass on zeros (batch 1,
   then batch 2). A crash, an abort or a hang there is a `ModelFileError` in the parent that
   names the signal and the step. The verdict is cached under the edgepose cache dir
   (`<cache>/verified/`), keyed by the file's sha256, the MNN version and the options, so
   later opens cost one hash (~10 ms for 10 MB).

`EDGEPOSE_MNN_VERIFY=structure` skips step 2 for files you trust (it costs ~0.5 s per new
file); `EDGEPOSE_MNN_VERIFY_TIMEOUT` (seconds, default 120) bounds the child.

What this does not promise: the child runs zeros, so a file that crashes MNN only on some
input values (none is known) would still reach the parent; and the file is hashed, verified
and then loaded by path, so a file swapped in between is caught only by its size, inode and
mtime being compared before and after the load.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import struct
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

from .errors import ModelFileError, OutputError
from .files import atomic_write_text, sha256_bytes

log = logging.getLogger(__name__)

# FlatBuffers' own limit (32-bit offsets); also the most this reads into memory.
MAX_FILE_BYTES = (1 << 31) - 1
MAX_OPS = 1 << 20
MAX_TENSORS = 1 << 22
MAX_INPUT_ELEMENTS = 1 << 28  # 1 GiB of float32 per input: far beyond any image model
VERIFIER_VERSION = 2  # bump when the child checks more: cached verdicts are then redone

# MNN.fbs, table Net (field ids): bizCode 0, extraTensorDescribe 1, extraInfo 2, oplists 3,
# outputName 4, preferForwardType 5, sourceType 6, tensorName 7, tensorNumber 8, usage 9,
# subgraphs 10, mnn_uuid 11. Table Op: inputIndexes 0, main_type 1, main 2, name 3,
# outputIndexes 4, type 5, defaultDimentionFormat 6. Table Input: dims 0, dtype 1, dformat 2.
# Table ExtraInfo: buffer 0, name 1, version 2.
_NET_BIZCODE, _NET_EXTRA_TENSORS, _NET_EXTRA_INFO, _NET_OPS, _NET_OUTPUTS = 0, 1, 2, 3, 4
_NET_TENSOR_NAMES, _NET_TENSOR_NUMBER, _NET_SUBGRAPHS, _NET_UUID = 7, 8, 10, 11
_OP_INPUTS, _OP_MAIN_TYPE, _OP_MAIN, _OP_NAME, _OP_OUTPUTS, _OP_TYPE = 0, 1, 2, 3, 4, 5
_OPTYPE_INPUT = 34
_DTYPES = {1: "float32", 2: "float64", 3: "int32", 4: "uint8", 5: "int16", 6: "int8", 9: "int64"}
_FORMATS = {0: "NCHW", 1: "NHWC", 2: "NC4HW4", 3: "NHWC4"}


@dataclass(frozen=True)
class MNNInput:
    """An Input operator: tensor name, declared dims (-1 or 0 = dynamic), dtype, data format."""

    name: str
    dims: tuple[int, ...]
    dtype: str
    format: str


@dataclass(frozen=True)
class MNNFileInfo:
    """What edgepose reads from an `.mnn` file's FlatBuffer, without MNN."""

    path: Path
    size: int
    sha256: str
    biz_code: bytes | None
    version: str | None
    inputs: tuple[MNNInput, ...]
    output_names: tuple[str, ...]
    op_count: int
    tensor_count: int
    uuid: str | None = None
    stat_key: tuple[int, int, int] = field(default=(0, 0, 0), repr=False, compare=False)

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.inputs)

    @property
    def metadata_text(self) -> str | None:
        """The bizCode as text, or None when absent, empty or not valid UTF-8 (not edgepose's)."""
        if not self.biz_code:
            return None
        try:
            return self.biz_code.decode("utf-8")
        except UnicodeDecodeError:
            return None

    @property
    def biz_code_display(self) -> str | None:
        """The bizCode for display: invalid UTF-8 bytes shown as \\x escapes."""
        if not self.biz_code:
            return None
        return self.biz_code.decode("utf-8", errors="backslashreplace")


# --- the FlatBuffer walk -------------------------------------------------------------------------
class _Malformed(Exception):
    pass


class _Table:
    __slots__ = ("buf", "pos", "vt", "nfields", "size")

    def __init__(self, buf: "_Buffer", pos: int, what: str) -> None:
        buf.need(pos, 4, what)
        vt = pos - buf.i32(pos)
        buf.need(vt, 4, f"{what} vtable")
        vsize, tsize = buf.u16(vt), buf.u16(vt + 2)
        if vsize < 4 or vsize % 2:
            raise _Malformed(f"{what}: vtable size {vsize}")
        buf.need(vt, vsize, f"{what} vtable")
        buf.need(pos, max(tsize, 4), what)
        self.buf, self.pos, self.vt, self.nfields, self.size = buf, pos, vt, (vsize - 4) // 2, tsize

    def field(self, i: int, width: int, what: str) -> int | None:
        if i >= self.nfields:
            return None
        off = self.buf.u16(self.vt + 4 + 2 * i)
        if off == 0:
            return None
        if off + width > self.size:
            raise _Malformed(f"{what}: field {i} lies outside its table")
        return self.pos + off

    def scalar(self, i: int, fmt: str, default: int, what: str) -> int:
        p = self.field(i, struct.calcsize(fmt), what)
        return default if p is None else struct.unpack_from("<" + fmt, self.buf.data, p)[0]

    def _target(self, i: int, what: str) -> int | None:
        p = self.field(i, 4, what)
        if p is None:
            return None
        return self.buf.deref(p, what)

    def table(self, i: int, what: str) -> "_Table | None":
        t = self._target(i, what)
        return None if t is None else _Table(self.buf, t, what)

    def string(self, i: int, what: str) -> bytes | None:
        t = self._target(i, what)
        return None if t is None else self.buf.string_at(t, what)

    def vector(self, i: int, elem: int, what: str, limit: int) -> tuple[int, int] | None:
        t = self._target(i, what)
        if t is None:
            return None
        self.buf.need(t, 4, what)
        n = self.buf.u32(t)
        if n > limit:
            raise _Malformed(f"{what}: {n} entries (at most {limit})")
        self.buf.need(t + 4, n * elem, what)
        return t + 4, n

    def ints(self, i: int, what: str, limit: int) -> list[int]:
        v = self.vector(i, 4, what, limit)
        if v is None:
            return []
        start, n = v
        return list(struct.unpack_from(f"<{n}i", self.buf.data, start))

    def tables(self, i: int, what: str, limit: int) -> Iterator[_Table]:
        v = self.vector(i, 4, what, limit)
        if v is None:
            return
        start, n = v
        for k in range(n):
            yield _Table(self.buf, self.buf.deref(start + 4 * k, what), f"{what}[{k}]")

    def strings(self, i: int, what: str, limit: int) -> list[bytes]:
        v = self.vector(i, 4, what, limit)
        if v is None:
            return []
        start, n = v
        return [self.buf.string_at(self.buf.deref(start + 4 * k, what), f"{what}[{k}]") for k in range(n)]


class _Buffer:
    def __init__(self, data: bytes, trace: list[tuple[int, int]] | None = None) -> None:
        self.data = data
        self.n = len(data)
        self.trace = trace  # (offset, length) of every structural read, for the fuzz tests

    def need(self, pos: int, length: int, what: str) -> None:
        if pos < 0 or length < 0 or pos + length > self.n:
            raise _Malformed(f"{what} points outside the file (offset {pos}, {length} bytes, file {self.n} bytes)")
        if self.trace is not None:
            self.trace.append((pos, min(length, 64)))


    def u16(self, pos: int) -> int:
        self.need(pos, 2, "field")
        return struct.unpack_from("<H", self.data, pos)[0]

    def i32(self, pos: int) -> int:
        self.need(pos, 4, "field")
        return struct.unpack_from("<i", self.data, pos)[0]

    def u32(self, pos: int) -> int:
        self.need(pos, 4, "field")
        return struct.unpack_from("<I", self.data, pos)[0]

    def deref(self, pos: int, what: str) -> int:
        off = self.u32(pos)
        if off == 0:
            raise _Malformed(f"{what}: null offset")
        target = pos + off
        self.need(target, 4, what)
        return target

    def string_at(self, pos: int, what: str) -> bytes:
        n = self.u32(pos)
        self.need(pos + 4, n + 1, what)
        if self.data[pos + 4 + n] != 0:
            raise _Malformed(f"{what}: string is not terminated")
        return bytes(self.data[pos + 4:pos + 4 + n])


def _text(raw: bytes | None, what: str) -> str:
    if raw is None:
        raise _Malformed(f"{what} is missing")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _Malformed(f"{what} is not valid UTF-8") from None


def parse_mnn_bytes(data: bytes, *, trace: list[tuple[int, int]] | None = None) -> dict[str, Any]:
    """The fields edgepose uses, from an MNN FlatBuffer; raises _Malformed (caught by callers).
    `trace` collects the (offset, length) of the structure read (what a fuzz test should hit)."""
    buf = _Buffer(data, trace)
    if buf.n < 12:
        raise _Malformed(f"{buf.n} bytes is too short for an MNN model")
    net = _Table(buf, buf.deref(0, "root table"), "Net")
    biz = net.string(_NET_BIZCODE, "bizCode")
    extra = net.table(_NET_EXTRA_INFO, "extraInfo")
    version = None
    if extra is not None:
        raw = extra.string(2, "extraInfo.version")
        version = raw.decode("utf-8", errors="replace") if raw is not None else None
    tensor_names = net.strings(_NET_TENSOR_NAMES, "tensorName", MAX_TENSORS)
    tensor_number = net.scalar(_NET_TENSOR_NUMBER, "i", 0, "tensorNumber")
    if tensor_number < 0 or tensor_number > MAX_TENSORS:
        raise _Malformed(f"tensorNumber {tensor_number}")
    n_tensors = max(len(tensor_names), tensor_number)
    names = [_text(n, f"tensorName[{k}]") for k, n in enumerate(tensor_names)]
    inputs: list[dict[str, Any]] = []
    produced: list[int] = []
    consumed: set[int] = set()
    n_ops = 0
    for k, op in enumerate(net.tables(_NET_OPS, "oplists", MAX_OPS)):
        n_ops += 1
        what = f"operator {k}"
        ins = op.ints(_OP_INPUTS, f"{what} inputIndexes", MAX_TENSORS)
        outs = op.ints(_OP_OUTPUTS, f"{what} outputIndexes", MAX_TENSORS)
        for idx in (*ins, *outs):
            if not 0 <= idx < n_tensors:
                raise _Malformed(f"{what} refers to tensor {idx}, but the model has {n_tensors}")
        consumed.update(ins)
        produced.extend(outs)
        name = op.string(_OP_NAME, f"{what} name")
        if name is not None:
            _text(name, f"{what} name")
        op_type = op.scalar(_OP_TYPE, "i", 0, f"{what} type")
        main_type = op.scalar(_OP_MAIN_TYPE, "B", 0, f"{what} main_type")
        main = op.table(_OP_MAIN, f"{what} parameters") if main_type else None
        if op_type == _OPTYPE_INPUT:
            if len(outs) != 1:
                raise _Malformed(f"{what} is an Input with {len(outs)} outputs")
            if outs[0] >= len(names):
                raise _Malformed(f"{what} is an Input whose tensor has no name")
            dims: list[int] = []
            dtype, fmt = 1, 2
            if main is not None:
                dims = main.ints(0, f"{what} Input dims", 16)
                dtype = main.scalar(1, "i", 1, f"{what} Input dtype")
                fmt = main.scalar(2, "b", 2, f"{what} Input dformat")
            count = 1
            for d in dims:
                if d < -1:
                    raise _Malformed(f"{what} is an Input with dimension {d}")
                count *= max(d, 1)
            if count > MAX_INPUT_ELEMENTS:
                raise _Malformed(f"{what} is an Input of {count} elements (dims {dims})")
            inputs.append({"name": names[outs[0]], "dims": tuple(dims), "dtype": _DTYPES.get(dtype, f"dtype{dtype}"),
                           "format": _FORMATS.get(fmt, f"format{fmt}")})
    if n_ops == 0:
        raise _Malformed("the model has no operators")
    outputs = [_text(n, f"outputName[{k}]") for k, n in enumerate(net.strings(_NET_OUTPUTS, "outputName", MAX_TENSORS))]
    if not outputs:  # MNN's own rule: a tensor no operator reads is an output
        seen: set[int] = set()
        outputs = [names[i] for i in produced if i not in consumed and i < len(names)
                   and not (i in seen or seen.add(i))]
    known = set(names)
    for name in outputs:
        if name not in known:
            raise _Malformed(f"output {name!r} is not a tensor of the model")
    if not inputs:
        raise _Malformed("the model has no Input operator")
    if not outputs:
        raise _Malformed("the model has no outputs")
    # Tables MNN walks that edgepose does not read: their structure is checked all the same.
    for _ in net.tables(_NET_EXTRA_TENSORS, "extraTensorDescribe", MAX_TENSORS):
        pass
    for _ in net.tables(_NET_SUBGRAPHS, "subgraphs", MAX_OPS):
        pass
    uuid = net.string(_NET_UUID, "mnn_uuid")
    return {"biz_code": biz, "version": version, "inputs": inputs, "output_names": outputs,
            "op_count": n_ops, "tensor_count": n_tensors,
            "uuid": uuid.decode("utf-8", errors="replace") if uuid is not None else None}


def read_mnn_file(path: str | Path) -> tuple[MNNFileInfo, bytes]:
    """Read and structurally check an `.mnn` file; (info, the bytes that were checked)."""
    path = Path(path)
    try:
        st = os.stat(path)
        if st.st_size > MAX_FILE_BYTES:
            raise ModelFileError(f"{path} is {st.st_size} bytes, larger than an MNN model can be (2 GiB)")
        with open(path, "rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise ModelFileError(f"model file not found: {path} (check the path)") from None
    except IsADirectoryError:
        raise ModelFileError(f"{path} is a directory, not a model file") from None
    except OSError as exc:
        raise ModelFileError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        fields = parse_mnn_bytes(data)
    except (_Malformed, struct.error, RecursionError) as exc:
        raise ModelFileError(
            f"{path} is not a model MNN can load: its FlatBuffer is malformed ({exc}); check that it is an "
            ".mnn file written by the MNN converter (edgepose convert) and was copied completely") from None
    info = MNNFileInfo(
        path=path, size=len(data), sha256=sha256_bytes(data), biz_code=fields["biz_code"],
        version=fields["version"], inputs=tuple(MNNInput(**i) for i in fields["inputs"]),
        output_names=tuple(fields["output_names"]), op_count=fields["op_count"],
        tensor_count=fields["tensor_count"], uuid=fields["uuid"],
        stat_key=(st.st_ino, st.st_size, st.st_mtime_ns))
    return info, data


def stat_key(path: str | Path) -> tuple[int, int, int]:
    st = os.stat(path)
    return (st.st_ino, st.st_size, st.st_mtime_ns)


# --- the child-process check ---------------------------------------------------------------------
# The child reads its job as JSON on stdin, keeps MNN's chatter off the protocol (fd 1 goes to
# stderr; verdict lines go to a duplicate of the original stdout) and reports each step before
# taking it, so a crash names the step it happened in.
_CHILD = r"""
import json, os, sys
job = json.loads(sys.stdin.read())
proto = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)
def say(**kv):
    proto.write(json.dumps(kv) + "\n"); proto.flush()
if job.get("memory"):
    import resource
    resource.setrlimit(resource.RLIMIT_AS, (job["memory"], job["memory"]))
sys.path[:] = job["sys_path"]
say(step="import")
import gc
import numpy as np
import MNN, MNN.nn, MNN.expr
F = MNN.expr
say(step="runtime", mnn=MNN.version())
rt = MNN.nn.create_runtime_manager(({"backend": "CPU", "numThread": job["threads"], "precision": job["precision"]},))
for hint, value in job["hints"]:
    rt.set_hint(hint, value)
say(step="load")
try:
    module = MNN.nn.load_module_from_file(job["path"], job["inputs"], job["outputs"], runtime_manager=rt)
except Exception as exc:
    say(step="load", error=f"{type(exc).__name__}: {exc}"); sys.exit(0)
if module is None:
    say(step="load", error="MNN returned no module"); sys.exit(0)
say(step="graph")
try:
    graph = F.load_as_dict(job["path"])
    missing = [n for n in job["inputs"] + job["outputs"] if n not in graph]
except Exception as exc:
    say(step="graph", error=f"{type(exc).__name__}: {exc}"); sys.exit(0)
if missing:
    say(step="graph", error=f"the graph lacks tensors {missing}"); sys.exit(0)
# What the backend asks of each input and output (MNN infers shapes here: a broken graph
# crashed on an output's data_format in the fuzz).
say(step="describe")
try:
    for name in job["inputs"] + job["outputs"]:
        var = graph[name]
        (var.name, var.data_format, var.shape, var.dtype)
except Exception as exc:
    say(step="describe", error=f"{type(exc).__name__}: {exc}"); sys.exit(0)
var = None
graph = None
dtypes = {"float32": np.float32, "int32": np.int32, "uint8": np.uint8, "int8": np.int8}
# Each batch size on a fresh module, released after its run: a write past a buffer during a run
# often shows only when that memory is freed (glibc aborts: "malloc_consolidate(): invalid chunk
# size"), which must happen here, where an abort is a verdict, not in the user's process.
for k, batch in enumerate(job["batches"]):
    if k:
        say(step="load")
        try:
            module = MNN.nn.load_module_from_file(job["path"], job["inputs"], job["outputs"], runtime_manager=rt)
        except Exception as exc:
            say(step="load", error=f"{type(exc).__name__}: {exc}"); sys.exit(0)
    feeds = []
    for spec in job["feeds"]:
        shape = [batch] + spec["shape"][1:]
        x = np.zeros(shape, dtypes[spec["dtype"]])
        fmt = F.NHWC if spec["format"] == "NHWC" else F.NCHW
        feeds.append(F.const(x, shape, fmt))
    say(step=f"forward{batch}")
    failed = None
    try:
        outs = module.forward(feeds)
        outs = outs if isinstance(outs, (list, tuple)) else [outs]
        for v in outs:
            if v.data_format == F.NC4HW4:
                v = F.convert(v, F.NCHW)
            np.array(v.read(), copy=True)
    except Exception as exc:
        failed = f"{type(exc).__name__}: {exc}"
    say(step=f"release{batch}")
    outs = feeds = x = v = module = None
    gc.collect()
    if failed:
        say(step=f"forward{batch}", error=failed)
        break
say(step="heap")
rt = None
gc.collect()
try:
    import ctypes
    ctypes.CDLL(None).malloc_trim(0)
except (OSError, AttributeError):
    pass
say(step="done")
"""

_memo: dict[str, dict[str, Any]] = {}
_memo_lock = threading.Lock()
_key_locks: dict[str, threading.Lock] = {}


def verify_mode() -> str:
    """'child' (default) or 'structure' (EDGEPOSE_MNN_VERIFY=structure|0|off: no child check)."""
    value = os.environ.get("EDGEPOSE_MNN_VERIFY", "child").strip().lower()
    return "structure" if value in ("structure", "0", "off", "no", "false") else "child"


def _timeout() -> float:
    try:
        value = float(os.environ.get("EDGEPOSE_MNN_VERIFY_TIMEOUT", "120"))
    except ValueError:
        value = 120.0
    return value if value == value and 0 < value < 1e6 else 120.0


def _memory_limit(size: int) -> int:
    """Address-space cap of the child: generous (8 GiB + 16x the file), so only a runaway
    allocation (a flipped shape asking for terabytes) hits it."""
    return (8 << 30) + 16 * size


def _feeds(info: MNNFileInfo, input_size: tuple[int, int] | None) -> list[dict[str, Any]] | None:
    """Zero inputs to run: the declared dims (batch and dynamic dims filled in), or None if unknown."""
    feeds = []
    for t in info.inputs:
        if t.dtype not in ("float32", "int32", "uint8", "int8"):
            return None
        dims = list(t.dims)
        if not dims:
            return None
        dims[0] = 1
        if any(d <= 0 for d in dims[1:]):
            if input_size is None or len(dims) != 4:
                return None
            w, h = input_size
            fixed = [3, h, w] if t.format != "NHWC" else [h, w, 3]
            dims = [1] + [d if d > 0 else f for d, f in zip(dims[1:], fixed)]
        layout = "NHWC" if t.format == "NHWC" else "NCHW"
        feeds.append({"shape": dims, "dtype": t.dtype, "format": layout})
    return feeds


def _metadata_input_size(info: MNNFileInfo) -> tuple[int, int] | None:
    text = info.metadata_text
    if not text or not text.lstrip().startswith("{"):
        return None
    try:
        size = json.loads(text).get("input_size")
        w, h = int(size[0]), int(size[1])
    except Exception:  # noqa: BLE001 - only a hint for dynamic inputs
        return None
    return (w, h) if 0 < w <= 16384 and 0 < h <= 16384 else None


def _cache_file(key: str) -> Path | None:
    try:
        from .assets import cache_dir

        return cache_dir() / "verified" / f"{key}.json"
    except Exception:  # noqa: BLE001 - no cache dir: verdicts live in memory only
        return None


def _read_cached(key: str) -> dict[str, Any] | None:
    path = _cache_file(key)
    if path is None:
        return None
    try:
        verdict = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(verdict, dict) or not isinstance(verdict.get("ok"), bool):
        return None
    return verdict


def _write_cached(key: str, verdict: dict[str, Any]) -> None:
    path = _cache_file(key)
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(verdict))
    except (OSError, OutputError) as exc:
        log.debug("cannot cache the MNN verdict for %s: %s", key, exc)


def _mnn_version() -> str:
    try:
        from importlib.metadata import version

        return version("MNN")
    except Exception:  # noqa: BLE001
        return "unknown"


def verify_mnn_file(info: MNNFileInfo, *, precision: str = "high", hints: Sequence[tuple[int, int]] = (),
                    threads: int = 1, use_cache: bool = True) -> dict[str, Any]:
    """Load and run `info.path` in a child process once per (sha256, MNN version, options) with the
    runtime options the backend uses (precision, runtime hints); returns the verdict, raising
    ModelFileError when the file crashed, hung or failed to load."""
    memory = _memory_limit(info.size)
    hints = [[int(h), int(v)] for h, v in hints]
    threads = max(1, int(threads))
    key_src = json.dumps([VERIFIER_VERSION, _mnn_version(), precision, hints, threads, memory, info.input_names,
                          list(info.output_names)])
    key = f"{info.sha256}-{sha256_bytes(key_src)[:16]}"
    with _memo_lock:
        verdict = _memo.get(key)
        lock = _key_locks.setdefault(key, threading.Lock())
    if verdict is None:
        with lock:  # one child per file, however many threads open it at once
            with _memo_lock:
                verdict = _memo.get(key)
            if verdict is None and use_cache:
                verdict = _read_cached(key)
            if verdict is None:
                verdict = _run_child(info, precision=precision, hints=hints, threads=threads, memory=memory)
                if verdict.get("cache", True) and use_cache:
                    _write_cached(key, verdict)
            if verdict.get("cache", True):
                with _memo_lock:
                    _memo[key] = verdict
    if not verdict["ok"]:
        raise ModelFileError(f"{info.path} {verdict['reason']}")
    return verdict


def _run_child(info: MNNFileInfo, *, precision: str, hints: list[list[int]], threads: int,
               memory: int) -> dict[str, Any]:
    feeds = _feeds(info, _metadata_input_size(info))
    job = {"path": str(Path(info.path).resolve()), "inputs": list(info.input_names),
           "outputs": list(info.output_names), "precision": precision, "hints": hints, "threads": threads,
           "memory": memory,
           "sys_path": [p for p in sys.path if p and os.path.isabs(p)],
           "feeds": feeds or [], "batches": [1, 2] if feeds else []}
    timeout = _timeout()
    try:
        proc = subprocess.run([sys.executable, "-I", "-c", _CHILD], input=json.dumps(job), capture_output=True,
                              text=True, errors="replace", timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"ok": False, "cache": False,
                "reason": f"did not load and run in MNN within {timeout:g} s (checked in a child process); "
                          "raise EDGEPOSE_MNN_VERIFY_TIMEOUT if the model is just large"}
    except OSError as exc:
        return {"ok": False, "cache": False, "reason": f"could not be checked: cannot start Python ({exc})"}
    steps = []
    for line in proc.stdout.splitlines():
        try:
            steps.append(json.loads(line))
        except ValueError:
            continue
    last = steps[-1] if steps else {"step": "start"}
    stage = {"import": "importing MNN", "runtime": "creating the MNN runtime", "load": "loading it",
             "graph": "reading its graph", "describe": "describing its inputs and outputs", "start": "starting",
             "heap": "releasing MNN after running it: MNN corrupted its memory",
             "done": "exiting after running it: MNN corrupted its memory"}.get(last.get("step"), "")
    if not stage and str(last.get("step", "")).startswith("forward"):
        stage = f"running it on a batch of {last['step'][7:]}"
    if not stage and str(last.get("step", "")).startswith("release"):
        stage = f"releasing it after a run on a batch of {last['step'][7:]}: MNN corrupted its memory"
    if proc.returncode < 0:
        sig = -proc.returncode
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else f"signal {sig}"
        if sig == signal.SIGKILL:  # the OOM killer or a user: not the file's fault for sure
            return {"ok": False, "cache": False,
                    "reason": f"could not be checked: the MNN check was killed (SIGKILL) while {stage}"}
        return {"ok": False, "reason": f"crashes MNN ({name} while {stage}, in a child process); "
                                      "the file is corrupt or not a model MNN can run"}
    if last.get("step") != "done":
        if "error" in last and last["step"] in ("load", "graph", "describe"):
            return {"ok": False, "reason": f"is not a model MNN can load ({last['error'][:300]}); check that "
                                          "it is an .mnn file written by the MNN converter (edgepose convert)"}
        if last.get("step") in ("start", "import", "runtime"):  # the environment, not the file
            tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1][:300]
            return {"ok": False, "cache": False, "reason": f"could not be checked: the MNN check failed while "
                                                          f"{stage} (exit {proc.returncode}): {tail}"}
        return {"ok": False, "reason": f"makes MNN exit (status {proc.returncode}) while {stage}, in a child "
                                      "process; the file is corrupt or not a model MNN can run"}
    result = {"ok": True, "mnn": next((s["mnn"] for s in steps if "mnn" in s), None)}
    errors = {s["step"]: s["error"] for s in steps if "error" in s}
    if errors:  # a Python-level error on a forward pass: the parent will see it as a BackendError
        result["forward_errors"] = errors
    if not feeds:
        result["note"] = "no forward pass (dynamic or non-numeric inputs)"
    return result


def open_mnn(path: str | Path, *, precision: str = "high", hints: Sequence[tuple[int, int]] = (),
             threads: int = 1) -> MNNFileInfo:
    """Structural check, then (first time only) the child-process check, with the runtime options
    the backend will use; the file's info."""
    info, _ = read_mnn_file(path)
    if verify_mode() == "child":
        verify_mnn_file(info, precision=precision, hints=hints, threads=threads)
    return info


def clear_memo() -> None:
    """Forget in-process verdicts (tests; the on-disk cache is kept)."""
    with _memo_lock:
        _memo.clear()
