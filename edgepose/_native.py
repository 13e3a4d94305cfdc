"""Keep native libraries' chatter off stdout, and import MNN once, whatever the threads do.

`import MNN` and MNN's runtime-manager creation print banner lines to the process's stdout
from C++. A CLI that prints JSON, or an app piping stdout, would get them mixed in, so
native stdout is pointed at /dev/null while those calls run.

Both are process-wide operations, so both are serialised:
- the fd-1 redirect holds a process-wide lock (re-entrant: nesting in one thread is fine). Two
  threads redirecting at once used to save each other's /dev/null as "the real stdout" and
  leave fd 1 on /dev/null for good. While a redirect is active, anything any thread writes to
  fd 1 goes to /dev/null; the windows are the MNN import and each runtime creation (ms).
- `import_mnn` imports under a lock and publishes the module only once its submodules are
  loaded: four threads creating their first Predictor at once used to get the half-initialised
  module from `sys.modules` ("partially initialized module 'MNN'").
"""
from __future__ import annotations

import contextlib
import os
import sys
import threading
from typing import Any, Iterator

_STDOUT_LOCK = threading.RLock()
_IMPORT_LOCK = threading.Lock()
_MNN: Any = None


@contextlib.contextmanager
def quiet_native_stdout() -> Iterator[None]:
    with _STDOUT_LOCK:
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
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
        except OSError:
            os.close(saved)
            yield
            return
        try:
            os.dup2(devnull, fd)
            yield
        finally:
            os.dup2(saved, fd)
            os.close(saved)
            os.close(devnull)


def import_mnn():
    """Import MNN (runtime parts only) without its stdout banner; a clear error if absent."""
    global _MNN
    if _MNN is not None:
        return _MNN
    from .errors import BackendError

    with _IMPORT_LOCK:
        if _MNN is None:
            try:
                with quiet_native_stdout():
                    import MNN  # noqa: F401
                    import MNN.expr  # noqa: F401
                    import MNN.nn  # noqa: F401
            except ImportError as exc:
                raise BackendError(
                    f"the MNN backend needs the MNN package ({exc}); install it with `pip install MNN==3.6.1`"
                ) from exc
            _MNN = sys.modules["MNN"]
    return _MNN
