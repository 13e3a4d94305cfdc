"""Helpers of the reliability suite, importable by a name no other test folder uses
(`from conftest import` found whichever conftest came first on sys.path)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


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
