"""MNN's native converter and offline quantiser, run in a child process.

Why a child process: the native tools have segfaulted here (the quantiser's KL method) and a
crash must become a clear error, not a dead interpreter. Why `_tools` and not `MNN.tools`:
MNN's Python tool wrappers import a logging module that runs `pip install` and contacts a
server at import time; the native extension does neither. Its return value is not trusted
either (it returns True even when conversion failed), so success means "the log says so and
the output file loads".
"""
from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

from edgepose import files
from edgepose.errors import ConversionError, EdgePoseError, UnsupportedOperatorError

log = logging.getLogger(__name__)

# The child imports only the native extension and calls one function with an argv list. The
# list comes on stdin, not the command line: a model card (--bizCode) can be far larger than the
# 128 KiB the kernel allows one argument ("Argument list too long").
_CHILD = """
import json, sys
import _tools
argv = json.loads(sys.stdin.read())
ok = getattr(_tools, sys.argv[1])(argv)
sys.stdout.flush()
sys.exit(0 if ok in (True, None, 0) else 3)
"""

_LOST_SCRATCH = "Can't open file:.__convert_external_data.bin"
_UNSUPPORTED = re.compile(r"These Op Not Support:\s*(.+)")  # ONNX: every unsupported op type on one line
# TFLite: MNN stops at the first builtin it lacks and logs `Check failed: creator ==> NOT_SUPPORTED_OP:
# [ DENSIFY ]` then "[ERROR] Convert error, please check your file format." (and returns success);
# a custom op it does not know logs the line below and then crashes (SIGSEGV), without its name.
_TFLITE_UNSUPPORTED = re.compile(r"NOT_SUPPORTED_OP: \[ (\w+) \]")
_TFLITE_UNKNOWN_CUSTOM = "Now Only support Custom op of"
_FAILED_MARKERS = ("Converted Failed", "Model File Does Not Exist", "Error", "error:")

FRAMEWORKS = ("ONNX", "TFLITE", "MNN", "TF", "CAFFE", "TORCH")


@dataclass(frozen=True)
class NativeRun:
    """What one native tool run did: its argv, exit code and combined log."""

    tool: str
    argv: tuple[str, ...]
    returncode: int
    log: str


def check_timeout(timeout: float) -> float:
    """A usable timeout in seconds: finite and positive (NaN would never expire, inf never stop)."""
    try:
        value = float(timeout)
    except (TypeError, ValueError):
        raise ConversionError(f"--timeout must be a number of seconds, got {timeout!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise ConversionError(f"--timeout must be a positive, finite number of seconds, got {timeout!r}")
    return value


def _subject(tool: str, argv: Sequence[str]) -> str:
    """The model file a tool run works on (its --modelFile, or mnnquant's first path)."""
    args = list(argv)
    if "--modelFile" in args and args.index("--modelFile") + 1 < len(args):
        return Path(args[args.index("--modelFile") + 1]).name
    paths = [a for a in args[1:] if not a.startswith("-")]
    return Path(paths[0]).name if paths else "?"


def _text(data: str | bytes | None) -> str:
    if data is None:
        return ""
    return data.decode(errors="replace") if isinstance(data, bytes) else data


def run_native(tool: str, argv: Sequence[str], *, timeout: float = 900.0) -> NativeRun:
    """Run `_tools.<tool>(argv)` in a child Python; turn crashes and hangs into ConversionError."""
    if tool not in ("mnnconvert", "mnnquant"):
        raise ValueError(f"unknown MNN tool {tool!r}")
    timeout = check_timeout(timeout)
    subject = _subject(tool, argv)
    # Path arguments must be absolute: the child runs in its own scratch directory, as MNN's
    # converter keeps weights in `./.__convert_external_data.bin` while it works, so two
    # conversions sharing a working directory silently corrupt each other's weights (seen
    # here: 7 of 12 concurrent conversions wrong, all logging "Converted Success!").
    cmd = [sys.executable, "-c", _CHILD, tool]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    try:
        with tempfile.TemporaryDirectory(prefix=f"edgepose-{tool}-") as scratch:
            # On any exception here (a timeout, Ctrl-C, SIGTERM turned into SystemExit by
            # terminate_cleanly) subprocess.run kills and reaps the child before the scratch
            # directory and the caller's .part file are removed.
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=scratch,
                                  input=json.dumps(list(argv)), errors="replace")
    except subprocess.TimeoutExpired as exc:
        # TimeoutExpired carries bytes even in text mode (and either part may be None)
        out = _text(exc.stdout) + _text(exc.stderr)
        raise ConversionError(
            f"MNN {tool} did not finish within {timeout:g} s on {subject} and was stopped; "
            f"last log line: {_last_line(out)!r}. Raise the timeout or check the model") from None
    text = proc.stdout + proc.stderr
    run = NativeRun(tool, tuple(argv), proc.returncode, text)
    if proc.returncode < 0:
        sig = -proc.returncode
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
        killed = " (killed from outside, e.g. kill -9 or the out-of-memory killer)" if sig == signal.SIGKILL else ""
        raise ConversionError(
            f"MNN {tool} crashed ({name}{killed}) while processing {subject}; "
            f"last log line: {_last_line(text)!r}. The input file is untouched; try another method/options",
            log=text)  # for callers that recognise the tool's messages
    if proc.returncode not in (0, 3):
        raise ConversionError(f"MNN {tool} failed on {subject} (exit {proc.returncode}): {_last_line(text)!r}",
                              log=text)  # the whole log, for a log file the message can name
    if _LOST_SCRATCH in text:
        raise ConversionError(
            f"MNN {tool} lost its scratch weights file ({_LOST_SCRATCH}); its output cannot be trusted. "
            "Another conversion may have shared the working directory; run it again")
    return run


@contextlib.contextmanager
def _atomic_output(src: Path, dst: Path, tool: str) -> Iterator[Path]:
    """A temporary path beside `dst` for the tool to write (edgepose.files.atomic_path); renamed to
    `dst` only when the tool wrote a whole MNN file.

    Refuses to overwrite the input. On any failure nothing is left under `dst` nor beside it
    (MNN's quantiser also drops a `<output>.json` scale dump next to its output). A missing or
    torn output on a nearly full disk is reported as such (MNN's tools do not report write errors).
    """
    if not src.is_file():
        raise ConversionError(f"source model not found: {src}")
    if dst.resolve() == src.resolve():
        raise ConversionError(f"refusing to overwrite the input {src} with the {tool} output")
    dst.parent.mkdir(parents=True, exist_ok=True)
    # not created: the tool creates it (an existing empty file would look like output)
    with files.atomic_path(dst, require_output=False, error=ConversionError) as tmp:
        yield tmp.resolve()
        if not tmp.is_file() or tmp.stat().st_size == 0:
            _check_disk(dst.parent, src, tool)
            raise ConversionError(f"MNN {tool} wrote no model for {src.name}")
        _check_written(tmp, dst, src, tool)


def _free_bytes(folder: Path) -> int | None:
    try:
        st = os.statvfs(folder)
    except (OSError, AttributeError):
        return None
    return st.f_bavail * st.f_frsize


def _check_disk(folder: Path, src: Path, tool: str) -> None:
    """A tool that wrote nothing or a torn file on a (nearly) full disk: say so, not "bad model".
    MNN's tools do not report write errors; the free space is what tells."""
    free = _free_bytes(folder)
    need = max(1 << 20, src.stat().st_size if src.is_file() else 0)
    if free is not None and free < need:
        raise ConversionError(
            f"no space left on the device holding {folder} ({free} bytes free, the model needs about "
            f"{need}): MNN {tool} could not write its output for {src.name}; free some space and run it again")


def _check_written(tmp: Path, dst: Path, src: Path, tool: str) -> None:
    """The tool's output is a whole MNN FlatBuffer (a full disk leaves a torn one)."""
    from edgepose.errors import ModelFileError
    from edgepose.mnn_file import read_mnn_file

    try:
        read_mnn_file(tmp)
    except ModelFileError as exc:
        _check_disk(dst.parent, src, tool)
        raise ConversionError(f"MNN {tool} wrote a broken model for {src.name} ({exc})") from None


@contextlib.contextmanager
def terminate_cleanly() -> Iterator[None]:
    """While converting, SIGTERM stops like Ctrl-C: the native child is killed and reaped, its
    scratch directory and the pending `.part` files removed, then the process exits with 143.
    (Without it, SIGTERM killed the parent at once and left both behind, the child running.)"""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):  # noqa: ARG001 - signal handler signature
        print("edgepose: terminated (SIGTERM); removing partial files", file=sys.stderr)
        raise SystemExit(128 + signum)

    try:
        previous = signal.signal(signal.SIGTERM, stop)
    except (ValueError, OSError):
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def convert_to_mnn(src: str | Path, dst: str | Path, *, framework: str, fp16: bool = False,
                   biz_code: str | None = None, extra_args: Sequence[str] = (),
                   timeout: float = 900.0) -> NativeRun:
    """Convert `src` (ONNX / TFLite / ...) to an MNN file at `dst`, atomically.

    Only a run whose log reports success and whose output exists is renamed to `dst`, so a
    failure leaves no half-written file. `biz_code` is stored in the model (edgepose keeps
    its metadata JSON there). Paths in `extra_args` must be absolute (see run_native).
    """
    src, dst = Path(src), Path(dst)
    framework = framework.upper()
    if framework not in FRAMEWORKS:
        raise ValueError(f"framework must be one of {FRAMEWORKS}, got {framework!r}")
    with _atomic_output(src, dst, "mnnconvert") as tmp:
        argv = ["mnnconvert", "-f", framework, "--modelFile", str(src.resolve()), "--MNNModel", str(tmp)]
        if fp16:
            argv.append("--fp16")
        if biz_code is not None:
            argv += ["--bizCode", biz_code]
        try:
            run = run_native("mnnconvert", argv + list(extra_args), timeout=timeout)
        except ConversionError as exc:  # a crash may still be an unsupported operator the log names
            _check_unsupported(exc.log, src)
            raise
        _check_convert_log(run, src)
    log.debug("mnnconvert %s -> %s\n%s", src, dst, run.log)
    return run


def quantize_mnn(src: str | Path, dst: str | Path, config: dict, *, timeout: float = 1800.0) -> NativeRun:
    """Offline INT8 quantisation of an MNN FP32 model (`mnnquant`), atomically, in a child process.

    `config` is MNN's quantisation JSON (path, format, mean/normal, width/height, used_image_num,
    feature_quantize_method, weight_quantize_method, ...). The stock Python entry of mnnquant
    passes three strings where the extension wants one list; this passes the list.
    """
    src, dst = Path(src), Path(dst)
    if "path" in config:  # the calibration folder, read by the child from its scratch dir
        config = {**config, "path": str(Path(config["path"]).resolve())}
    with tempfile.TemporaryDirectory(prefix="edgepose-mnnquant-cfg-") as cfg_dir:
        cfg = Path(cfg_dir) / "config.json"
        cfg.write_text(json.dumps(config))
        with _atomic_output(src, dst, "mnnquant") as tmp:
            run = run_native("mnnquant", ["mnnquant", str(src.resolve()), str(tmp), str(cfg)], timeout=timeout)
    return run


def _check_convert_log(run: NativeRun, src: Path) -> None:
    _check_unsupported(run.log, src)
    if "Converted Success" not in run.log:
        raise ConversionError(f"MNN converter failed on {src.name}: {_first_error_line(run.log)!r}", log=run.log)


def _check_unsupported(text: str, src: Path) -> None:
    """Raise UnsupportedOperatorError if the converter's log says an operator stopped it."""
    tflite_ops = list(dict.fromkeys(_TFLITE_UNSUPPORTED.findall(text)))
    if tflite_ops:
        from .tflite_ops import REWRITES

        hints = [REWRITES[op] for op in tflite_ops if op in REWRITES]
        raise UnsupportedOperatorError(
            f"MNN cannot convert {src.name}: its TFLite converter has no operator {', '.join(tflite_ops)} "
            "(it logged NOT_SUPPORTED_OP and stops at the first such operator, so others may follow). "
            + ("; ".join(hints) or "Cut the graph before it or replace it with builtin ops, or keep the model "
                                   "on TFLite"), operator=tflite_ops[0])
    if _TFLITE_UNKNOWN_CUSTOM in text:
        from . import tflite_model
        from .tflite_ops import MNN_CUSTOM_OPS

        try:
            customs = sorted({name for name, custom in tflite_model.graph_operators(src)
                              if custom and name not in MNN_CUSTOM_OPS})
        except EdgePoseError:
            customs = []
        raise UnsupportedOperatorError(
            f"MNN cannot convert {src.name}: its TFLite converter does not know the custom operator(s) "
            f"{', '.join(customs) or '(unnamed)'} (it logged \"{_TFLITE_UNKNOWN_CUSTOM} "
            "'TFLite_Detection_PostProcess'\"); cut the graph before them or keep the model on TFLite",
            operator=customs[0] if customs else None)
    match = _UNSUPPORTED.search(text)
    if match:
        ops = match.group(1).split()
        names = ", ".join(op.split("::")[-1] for op in ops)
        raise UnsupportedOperatorError(
            f"MNN cannot convert {src.name}: unsupported operator(s) {names} ({' '.join(ops)}). "
            "Replace them in the source model (e.g. decompose them into supported ops, or re-export "
            "with another opset), or deploy the ONNX model with the onnxruntime backend instead",
            operator=ops[0].split("::")[-1] if ops else None)


def _first_error_line(text: str) -> str:
    for line in text.splitlines():
        if any(marker in line for marker in _FAILED_MARKERS):
            return line.strip()
    return _last_line(text)


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    return lines[-1] if lines else "(no output)"
