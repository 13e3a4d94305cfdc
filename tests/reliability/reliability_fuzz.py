"""Mutation fuzz of `.mnn` loading: seeded mutants of a real model, each opened by a worker process.

A worker is a stand-in for a user's process: it opens each mutant with `edgepose.Predictor` and,
when that succeeds, predicts on a blank image with one box and with two boxes (the batched path).
Every mutant must end in a result or an edgepose error; a worker that dies (a signal) is exactly
what edgepose promises never happens, so the runner records the mutant that killed it, saves it
for reproduction, and starts a fresh worker for the rest.

Mutants are generated inside the worker from (base file, seed, index), so nothing but indexes
crosses the pipe and a crashing mutant can be regenerated. Kinds:

    truncate      the file cut at a random length (a quarter of them in the first 4 KiB)
    flip          1-4 random bytes XORed with a random non-zero mask, anywhere in the file
    flip-struct   the same inside the FlatBuffer structure (tables, vtables, vectors, strings,
                  operator parameters: what edgepose.mnn_file walks), where a flip is most likely
                  to mislead a loader rather than just change a weight
    fill-struct   a run of 2-16 structural bytes set to 0x00 or 0xFF
    bizcode       the metadata string's bytes replaced by invalid UTF-8 / control characters

Command line (the full run; the tests run a seeded sample):

    python tests/reliability/reliability_fuzz.py --model pose_landmark_full.fp16.mnn --count 1000
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

KINDS = ("truncate", "flip", "flip-struct", "fill-struct", "bizcode")
WEIGHTS = (0.2, 0.2, 0.4, 0.15, 0.05)


def structure_ranges(data: bytes) -> list[tuple[int, int]]:
    from edgepose.mnn_file import parse_mnn_bytes

    trace: list[tuple[int, int]] = []
    parse_mnn_bytes(data, trace=trace)
    return sorted(set(trace))


def biz_code_range(data: bytes) -> tuple[int, int] | None:
    """(offset, length) of the bizCode bytes in the file."""
    from edgepose.mnn_file import parse_mnn_bytes

    biz = parse_mnn_bytes(data)["biz_code"]
    if not biz:
        return None
    at = data.find(biz)
    return (at, len(biz)) if at >= 0 else None


def mutate(data: bytes, seed: int, index: int, ranges: list[tuple[int, int]],
           biz: tuple[int, int] | None) -> tuple[str, bytes]:
    """Mutant `index` of `data` for `seed` (deterministic): (description, bytes)."""
    rng = random.Random(f"{seed}:{index}")
    kind = rng.choices(KINDS, WEIGHTS)[0]
    out = bytearray(data)
    if kind == "truncate":
        cut = rng.randrange(0, 4096) if rng.random() < 0.25 else rng.randrange(0, len(data))
        return f"truncate@{cut}", bytes(out[:cut])
    if kind == "bizcode" and biz is not None:
        at, n = biz
        k = rng.randrange(1, min(n, 64) + 1)
        start = at + rng.randrange(0, n - k + 1)
        junk = bytes(rng.choice([0xFF, 0xFE, 0xC0, 0x80, 0x1B, 0x00, 0x07]) for _ in range(k))
        out[start:start + k] = junk
        return f"bizcode@{start}+{k}", bytes(out)
    if kind in ("flip-struct", "fill-struct", "bizcode") and ranges:
        pos, length = rng.choice(ranges)
        if kind == "fill-struct":
            n = rng.randrange(2, 17)
            value = rng.choice([0x00, 0xFF])
            start = pos + rng.randrange(0, max(length, 1))
            out[start:start + n] = bytes([value]) * len(out[start:start + n])
            return f"fill-struct@{start}+{n}={value:#x}", bytes(out)
        positions = [pos + rng.randrange(0, max(length, 1)) for _ in range(rng.randrange(1, 5))]
    else:
        positions = [rng.randrange(0, len(data)) for _ in range(rng.randrange(1, 5))]
    desc = []
    for p in positions:
        if p >= len(out):
            continue
        mask = rng.randrange(1, 256)
        out[p] ^= mask
        desc.append(f"{p}^{mask:#x}")
    return f"{kind}@{','.join(desc)}", bytes(out)


# --- worker ------------------------------------------------------------------------------------
def worker(base: Path, seed: int, indexes: list[int], scratch: Path) -> None:
    """Open each mutant; one JSON line per step on the protocol fd (stdout is MNN's)."""
    proto = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # native chatter goes to stderr

    def say(**kv) -> None:
        proto.write(json.dumps(kv) + "\n")
        proto.flush()

    import numpy as np

    from edgepose import Predictor
    from edgepose.errors import EdgePoseError

    data = base.read_bytes()
    ranges, biz = structure_ranges(data), biz_code_range(data)
    image = np.full((240, 320, 3), 127, np.uint8)
    for i in indexes:
        desc, blob = mutate(data, seed, i, ranges, biz)
        path = scratch / f"mutant-{i}.mnn"
        path.write_bytes(blob)
        say(i=i, start=desc)
        t0 = time.perf_counter()
        try:
            predictor = Predictor(path)
            predictor.predict(image, bboxes=[[40, 20, 200, 220]])
            predictor.predict(image, bboxes=[[40, 20, 200, 220], [100, 10, 300, 230]])
            del predictor
            gc.collect()  # MNN's damage to the heap, if any, shows when the module is freed
            outcome, message = "ok", ""
        except EdgePoseError as exc:
            outcome, message = type(exc).__name__, str(exc)[:300]
        except Exception as exc:  # noqa: BLE001 - an untyped error is a finding too
            outcome, message = f"untyped:{type(exc).__name__}", str(exc)[:300]
        finally:
            path.unlink(missing_ok=True)
        say(i=i, outcome=outcome, error=message, seconds=round(time.perf_counter() - t0, 3))
    say(done=True)


# --- runner ------------------------------------------------------------------------------------
@dataclass
class FuzzReport:
    count: int = 0
    outcomes: Counter = field(default_factory=Counter)
    deaths: list[dict] = field(default_factory=list)  # mutants that killed the worker
    untyped: list[dict] = field(default_factory=list)  # mutants that raised a non-edgepose error
    seconds: float = 0.0

    def summary(self) -> str:
        parts = ", ".join(f"{k} {v}" for k, v in self.outcomes.most_common())
        return (f"{self.count} mutants in {self.seconds:.0f} s: {parts}; "
                f"worker deaths {len(self.deaths)}, untyped errors {len(self.untyped)}")


def _chunks(items: list[int], n: int) -> list[list[int]]:
    return [items[k::n] for k in range(n)]


def run_fuzz(base: Path, *, count: int, seed: int = 0, workers: int = 2, env: dict | None = None,
             keep_dir: Path | None = None, timeout: float = 3600.0, start: int = 0) -> FuzzReport:
    """Mutants start .. start+count-1 of `base`, spread over `workers` processes (one reader
    thread each); a worker that dies is replaced by a fresh one for its remaining mutants."""
    import threading

    report = FuzzReport(count=count)
    lock = threading.Lock()
    t0 = time.time()
    deadline = t0 + timeout
    env = {**os.environ, **(env or {})}
    data = base.read_bytes()
    ranges, biz = structure_ranges(data), biz_code_range(data)

    def record_death(current: dict, returncode: int) -> None:
        i = current["i"]
        death = {"i": i, "mutation": current["start"], "returncode": returncode}
        if keep_dir is not None:
            keep_dir.mkdir(parents=True, exist_ok=True)
            _, blob = mutate(data, seed, i, ranges, biz)
            saved = keep_dir / f"mutant-{seed}-{i}.mnn"
            saved.write_bytes(blob)
            death["saved"] = str(saved)
        report.deaths.append(death)
        report.outcomes["WORKER DIED"] += 1

    def chain(indexes: list[int], scratch: str) -> None:
        while indexes and time.time() < deadline:
            cmd = [sys.executable, str(Path(__file__).resolve()), "worker", "--model", str(base),
                   "--seed", str(seed), "--scratch", scratch]
            p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL, text=True, env=env)
            p.stdin.write(json.dumps(indexes))
            p.stdin.close()
            finished: set[int] = set()
            current = None
            for line in p.stdout:
                try:
                    msg = json.loads(line)
                except ValueError:
                    continue
                if "start" in msg:
                    current = msg
                elif "outcome" in msg:
                    finished.add(msg["i"])
                    current = None
                    with lock:
                        report.outcomes[msg["outcome"]] += 1
                        if msg["outcome"].startswith("untyped:"):
                            report.untyped.append(msg)
                if time.time() > deadline:
                    p.kill()
                    break
            p.wait()
            if p.returncode != 0 and current is not None:  # the worker died on this mutant
                finished.add(current["i"])
                with lock:
                    record_death(current, p.returncode)
            elif p.returncode != 0:
                with lock:
                    report.outcomes[f"worker exit {p.returncode}"] += 1
                return
            indexes = [i for i in indexes if i not in finished]

    with tempfile.TemporaryDirectory(prefix="edgepose-fuzz-") as scratch:
        threads = [threading.Thread(target=chain, args=(chunk, scratch), daemon=True)
                   for chunk in _chunks(list(range(start, start + count)), max(1, workers))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    report.seconds = time.time() - t0
    return report


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", nargs="?", default="run", choices=("run", "worker"))
    parser.add_argument("--model", type=Path, help="base .mnn file (default: the demo's BlazePose FP16)")
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--scratch", type=Path)
    parser.add_argument("--keep", type=Path, help="save mutants that kill the worker here")
    args = parser.parse_args(list(argv) if argv is not None else None)
    if args.mode == "worker":
        worker(args.model, args.seed, json.loads(sys.stdin.read()), args.scratch)
        return 0
    model = args.model
    if model is None:
        from edgepose.demo import demo_model

        model = demo_model()
    with tempfile.TemporaryDirectory(prefix="edgepose-fuzz-cache-") as cache:
        report = run_fuzz(model, count=args.count, seed=args.seed, workers=args.workers, start=args.start,
                          env={"EDGEPOSE_CACHE": cache}, keep_dir=args.keep)
    print(report.summary())
    for d in report.deaths:
        print("DIED", d)
    for u in report.untyped[:20]:
        print("UNTYPED", u)
    return 1 if report.deaths or report.untyped else 0


if __name__ == "__main__":
    repo = Path(__file__).resolve().parents[2]
    if str(repo) not in sys.path:
        sys.path.insert(0, str(repo))
    sys.exit(main())


def heap_corrupting_model(data: bytes) -> bytes:
    """A structurally valid copy of BlazePose whose first convolution claims group=7.

    Every offset and index is in bounds (edgepose.mnn_file's walk accepts it) and MNN loads and
    runs it, but MNN writes past a buffer on the way: glibc aborts the process when it next
    checks the heap (here, at exit: "malloc_consolidate(): invalid chunk size", SIGABRT). Only
    the child-process check can catch a file like this.
    """
    import struct as _struct

    from edgepose.mnn_file import _Buffer, _Table

    buf = _Buffer(data)
    net = _Table(buf, buf.deref(0, "root"), "Net")
    out = bytearray(data)
    for op in net.tables(3, "oplists", 1 << 20):
        if op.scalar(5, "i", 0, "type") != 12:  # OpType Convolution
            continue
        common = op.table(2, "Convolution2D").table(0, "Convolution2DCommon")
        pos = common.field(9, 4, "group")  # Convolution2DCommon.group
        if pos is not None:
            _struct.pack_into("<i", out, pos, 7)
            return bytes(out)
    raise ValueError("no convolution with an explicit group field")


def rewired_model(data: bytes, op_index: int = 107, tensor: int = 141) -> bytes:
    """A structurally valid BlazePose whose operator `op_index` reads tensor `tensor` (produced later)
    instead of its own input: every index is in range, but MNN's shape inference on the broken
    graph reads freed memory and crashes (SIGSEGV) when an output's format is asked for. Found by
    the fuzz (seed 14, mutant 80: one flipped byte in an inputIndexes vector)."""
    import struct as _struct

    from edgepose.mnn_file import _Buffer, _Table

    buf = _Buffer(data)
    net = _Table(buf, buf.deref(0, "root"), "Net")
    op = list(net.tables(3, "oplists", 1 << 20))[op_index]
    start, n = op.vector(0, 4, "inputIndexes", 1 << 20)
    out = bytearray(data)
    _struct.pack_into("<i", out, start, tensor)
    return bytes(out)
