"""Keep native libraries' chatter off stdout.

`import MNN` and MNN's runtime-manager creation print banner lines to the process's stdout
from C++. A CLI that prints JSON, or an app piping stdout, would get them mixed in, so
native stdout is pointed at /dev/null while those calls run.
"""
from __future__ import annotations

import contextlib
import os
import sys
from typing import Iterator


@contextlib.contextmanager
def quiet_native_stdout() -> Iterator[None]:
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # stdout replaced (pytest capture, notebooks)
        fd = 1
    try:
        sys.stdout.flush()
    except (AttributeError, OSError, ValueError):
        pass
    try:
        saved = os.dup(fd)
    except OSError:  # no real fd 1: nothing to protect
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
        yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)
        os.close(devnull)


def import_mnn():
    """Import MNN (runtime parts only) without its stdout banner; a clear error if absent."""
    from .errors import BackendError

    if "MNN" in sys.modules:
        return sys.modules["MNN"]
    try:
        with quiet_native_stdout():
            import MNN  # noqa: F401
            import MNN.expr  # noqa: F401
            import MNN.nn  # noqa: F401
    except ImportError as exc:
        raise BackendError(
            f"the MNN backend needs the MNN package ({exc}); install it with `pip install MNN==3.6.1`"
        ) from exc
    return sys.modules["MNN"]
