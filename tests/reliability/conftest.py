"""Fixtures for the reliability suite: a private cache dir, helpers to run code in a child process.

Anything that could crash the interpreter (a hostile model file, a native race) runs in a child
process, so a crash fails one test instead of killing pytest.

The full mutation fuzz (>= 1000 mutants, a few minutes) runs when EDGEPOSE_FUZZ_FULL=1 (or
`-m slow` with it); CI runs a seeded sample of EDGEPOSE_FUZZ_SAMPLE mutants (default 40).
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # reliability_fuzz and reliability_helpers beside the tests
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
