"""Atomic file writes and file hashes: the one place edgepose (and its build-time packages) do either.

Why one place: every output edgepose writes (converted models, reports, videos, Parquet parts,
caches, annotated images) must either appear whole under its name or not at all, and must never
replace the input it was made from. Six hand-written copies of that rule had drifted apart.

    with atomic_path(out, protect=src) as tmp:   # a temporary name beside `out`
        tool(src, tmp)                           # `out` appears only if this block ends without error
    atomic_write_bytes(out, data)                # the same for bytes already in memory
    sha256_file(path)                            # hex digest, read in blocks

The folder of the output must exist (nothing here creates folders: a mistyped path is an error
that names the missing folder, not a new directory tree).
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Iterable, Iterator

from .errors import OutputError

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_text", "sha256_file", "sha256_bytes",
           "write_failure", "umask"]

def umask() -> int:
    """The process umask. Read from /proc where it is shown (Linux): os.umask can only be read by
    setting it, and another thread creating a file in that instant would get the wrong mode."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_failure(path: str | os.PathLike[str], exc: OSError) -> str:
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


def _same_file(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _protected(protect) -> list[Path]:
    if protect is None:
        return []
    if isinstance(protect, (str, os.PathLike)):
        return [Path(protect)]
    return [Path(p) for p in protect if p is not None]


def _ours(exc: OSError, tmp: Path, *paths: Path) -> bool:
    """Whether an OSError is about writing the output (the temporary file or a side file of it,
    the output, its folder) rather than about another file the block read: only the former is a
    write failure; the latter passes through unchanged."""
    names = [n for n in (exc.filename, exc.filename2) if isinstance(n, (str, os.PathLike))]
    if not names:
        return True
    tmp_abs = os.path.abspath(tmp)
    wanted = {os.path.abspath(p) for p in paths}
    return any(os.path.abspath(n) in wanted or os.path.abspath(n).startswith(tmp_abs) for n in names)


def _sync_dir(folder: Path) -> None:
    """fsync a folder, so a rename in it survives a power cut (best effort: not every FS allows it)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(dst: str | os.PathLike[str], *,
                protect: str | os.PathLike[str] | Iterable[str | os.PathLike[str]] | None = None,
                create: bool = False, require_output: bool = True, fsync: bool = True,
                suffix: str = ".part", error: type[Exception] = OutputError) -> Iterator[Path]:
    """Yield a temporary path beside `dst`; it takes the name `dst` only if the block ends without error.

    protect         input file(s) that must never be replaced by this output (refused up front).
    create          leave the (empty) temporary file in place for the block; by default the name
                    is free, for a tool that refuses to overwrite or would take an existing empty
                    file for its own output.
    require_output  an absent or empty file at the end is an error, not a silent empty output.
    fsync           the data (and then the rename) reach the disk before this returns.
    suffix          the temporary name's ending (a tool that picks the format from it: ".part.mp4").
    error           the exception type for failures (OutputError; converters pass ConversionError).

    OSErrors about the output (its folder missing or read-only, a full disk, a directory under
    the name) become `error` with a message from `write_failure`; other exceptions pass through.
    On any failure nothing is left under `dst` or beside it: leftovers that share the temporary
    name's prefix (e.g. a tool's `<output>.json` side file) are removed too. The folder of `dst`
    must exist.
    """
    dst = Path(dst)
    for src in _protected(protect):
        if src.exists() and dst.exists() and _same_file(dst, src):
            raise error(f"refusing to overwrite the input {src} with its own output; choose another name")
    parent = dst.parent if str(dst.parent) else Path(".")
    if dst.is_dir():
        raise error(write_failure(dst, IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(dst))))
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=suffix, dir=parent)
    except OSError as exc:
        raise error(write_failure(dst, exc)) from None
    os.close(fd)
    tmp = Path(tmp_name)
    if not create:
        tmp.unlink()
    try:
        yield tmp
        if require_output and (not tmp.is_file() or tmp.stat().st_size == 0):
            raise error(f"no output was written for {dst}")
        if tmp.exists():
            os.chmod(tmp, 0o666 & ~umask())  # mkstemp makes 0600; outputs get the usual permissions
            if fsync:
                with open(tmp, "rb") as fh:
                    os.fsync(fh.fileno())
            os.replace(tmp, dst)
            if fsync:
                _sync_dir(parent)
    except OSError as exc:
        if not _ours(exc, tmp, dst, parent):
            raise
        raise error(write_failure(dst, exc)) from None
    finally:
        with contextlib.suppress(OSError):
            for leftover in parent.iterdir():
                if leftover.name.startswith(tmp.name):
                    with contextlib.suppress(OSError):
                        leftover.unlink()


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, *, protect=None,
                       error: type[Exception] = OutputError) -> Path:
    """Write `data` to `path` whole or not at all (fsync'd before it takes the name)."""
    path = Path(path)
    with atomic_path(path, protect=protect, create=True, require_output=False, error=error) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
    return path


def atomic_write_text(path: str | os.PathLike[str], text: str, *, protect=None,
                      error: type[Exception] = OutputError) -> Path:
    """`atomic_write_bytes` of `text` as UTF-8."""
    return atomic_write_bytes(path, text.encode("utf-8"), protect=protect, error=error)


def sha256_file(path: str | os.PathLike[str], *, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in blocks (model files can be hundreds of MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_bytes(data: bytes | str) -> str:
    """Hex sha256 of bytes (a str is hashed as UTF-8)."""
    return hashlib.sha256(data.encode("utf-8") if isinstance(data, str) else data).hexdigest()
