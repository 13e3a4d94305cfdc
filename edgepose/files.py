"""Atomic file writes and file hashes: the one place edgepose (and its build-time packages) do either.

Why one place: every output edgepose writes (converted models, reports, videos, Parquet parts,
caches, annotated images) must either appear whole under its name or not at all, and must never
replace the input it was made from. Six hand-written copies of that rule had drifted apart.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

from .errors import OutputError

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_text", "sha256_file", "sha256_bytes",
           "write_failure", "umask"]


def umask() -> int:
    """The process umask (read without changing it for longer than one call)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_failure(path: Path, exc: OSError) -> str:
    """A one-line message saying why `path` could not be written, and so what to do."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if exc.errno == errno.ENOENT and not parent.exists():
        return f"cannot write {path}: the directory {parent} does not exist"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"cannot write {path}: no space left on the device (the file was not written)"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"cannot write {path}: {parent} is not writable ({exc.strerror})"
    if exc.errno == errno.EISDIR or path.is_dir():
        return f"cannot write {path}: it is a directory"
    return f"cannot write {path}: {exc.strerror or exc}"


@contextlib.contextmanager
def atomic_path(dst: str | Path, *, protect: str | Path | None = None, create: bool = False,
                require_output: bool = True, fsync: bool = True, error: type[Exception] = OutputError
                ) -> Iterator[Path]:
    """Yield a temporary path beside `dst`; it takes the name `dst` only if the block ends without error.

    protect         an input file that must never be replaced by this output (refused up front).
    create          leave the temporary file in place for the block (else the block creates it:
                    a tool that refuses to overwrite, or an existing empty file that would look
                    like output).
    require_output  an absent or empty file at the end is an error, not a silent empty output.
    error           the exception type for failures (OutputError; converters pass ConversionError).

    On any failure nothing is left under `dst` or beside it: leftovers that share the temporary
    name's prefix (e.g. a tool's `<output>.json` side file) are removed too.
    """
    dst = Path(dst)
    if protect is not None and Path(protect).exists() and dst.resolve() == Path(protect).resolve():
        raise error(f"refusing to overwrite the input {protect} with its own output; choose another name")
    try:
        dst.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".part", dir=dst.parent)
    except OSError as exc:
        raise error(write_failure(dst, exc)) from None
    os.close(fd)
    tmp = Path(tmp_name)
    if not create:
        tmp.unlink()
    try:
        yield tmp
        if require_output and (not tmp.is_file() or tmp.stat().st_size == 0):
            raise error(f"no output was written for {dst.name}")
        if tmp.exists():
            os.chmod(tmp, 0o666 & ~umask())  # mkstemp makes 0600; outputs get the usual permissions
            if fsync:
                with open(tmp, "rb") as fh:
                    os.fsync(fh.fileno())
            os.replace(tmp, dst)
    except OSError as exc:
        raise error(write_failure(dst, exc)) from None
    finally:
        for leftover in dst.parent.glob(tmp.name + "*"):
            with contextlib.suppress(OSError):
                leftover.unlink()


def atomic_write_bytes(path: str | Path, data: bytes, *, error: type[Exception] = OutputError) -> Path:
    """Write `data` to `path` whole or not at all (fsync'd before it takes the name)."""
    path = Path(path)
    with atomic_path(path, create=True, require_output=False, error=error) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
    return path


def atomic_write_text(path: str | Path, text: str, *, error: type[Exception] = OutputError) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"), error=error)


def sha256_file(path: str | Path, *, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in blocks (model files can be hundreds of MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_bytes(data: bytes | str) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()
