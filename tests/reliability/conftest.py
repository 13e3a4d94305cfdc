"""Fixtures for the reliability suite: a private cache dir, helpers to run code in a child process.

Anything that could crash the interpreter (a hostile model file, a native race) runs in a child
process, so a crash fails one test instead of killing pytest.

The full mutation fuzz (>= 1000 mutants, a few minutes) runs when EDGEPOSE_FUZZ_FULL=1 (or
`-m slow` with it); CI runs a seeded sample of EDGEPOSE_FUZZ_SAMPLE mutants (default 40).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
if str(HERE) not in sys.path:  # reliability_fuzz beside the tests
    sys.path.insert(0, str(HERE))


@pytest.fixture(scope="session")
def verdict_cache(tmp_path_factory) -> Path:
    """An edgepose cache dir of its own, so verdicts of mutants never reach the user's cache."""
    return tmp_path_factory.mktemp("edgepose-cache")


@pytest.fixture
def private_cache(verdict_cache, monkeypatch) -> Path:
    monkeypatch.setenv("EDGEPOSE_CACHE", str(verdict_cache))
    from edgepose import mnn_file

    mnn_file.clear_memo()
    return verdict_cache


def run_python(code: str, *, env: dict | None = None, timeout: float = 300, stdin: str | None = None,
               cwd: str | Path | None = None) -> subprocess.CompletedProcess:
    """Run `code` in a fresh interpreter (the repository importable); never raises on its exit."""
    full_env = {**os.environ, **(env or {})}
    full_env["PYTHONPATH"] = os.pathsep.join([str(REPO), full_env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout, env=full_env, input=stdin, cwd=cwd)


def last_json(text: str) -> dict:
    for line in reversed(text.strip().splitlines()):
        try:
            return json.loads(line)
        except ValueError:
            continue
    raise AssertionError(f"no JSON line in {text!r}")
