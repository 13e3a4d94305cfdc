"""pytest-benchmark suite for edgepose: `pytest benchmarks/` (full) or `pytest benchmarks/ --bench-quick`.

One session-wide interleaved run of the harness (every model x variant, raw session and
predict, plus the reference workload) feeds the regression, overhead and table-A checks;
the pytest-benchmark tests time each case again with pytest-benchmark's own machinery, so
`--benchmark-save` / `--benchmark-compare` work as usual. Quick mode is on with
--bench-quick, EDGEPOSE_BENCH_QUICK=1, or when CI=true (and --bench-full is not given).
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from edgepose.benchmarks import baseline as bl
from edgepose.benchmarks.models_source import expand_names
from edgepose.benchmarks.variants import DEFAULT_VARIANTS, QUICK_VARIANTS, parse_variants

HERE = Path(__file__).resolve().parent


def pytest_addoption(parser):
    g = parser.getgroup("edgepose-bench", "edgepose benchmarks")
    g.addoption("--bench-quick", action="store_true", help="CI setting: 3 models, 2 variants, few rounds, lenient")
    g.addoption("--bench-full", action="store_true", help="full run even when CI=true")
    g.addoption("--bench-models", help="comma-separated models/groups (default table-a; quick: quick)")
    g.addoption("--bench-variants", help=f"comma-separated variants (default {','.join(DEFAULT_VARIANTS)})")
    g.addoption("--bench-rounds", type=int, help="interleaved rounds (default 7; quick 5)")
    g.addoption("--bench-baseline", default=str(bl.DEFAULT_BASELINE), help="normalised baseline JSON to compare with")
    g.addoption("--bench-threshold", type=float, help="allowed normalised slowdown (default 0.30; quick 1.0)")
    g.addoption("--bench-save-baseline", nargs="?", const=str(bl.DEFAULT_BASELINE), default=None,
                help="after the run, merge its normalised figures into this baseline JSON")
    g.addoption("--bench-output", default=".benchmarks/edgepose", help="where report.md/json and table_a.png go")
    g.addoption("--bench-cache", help="cache dir for converted models")


def is_quick(config) -> bool:
    if config.getoption("--bench-full"):
        return False
    return bool(config.getoption("--bench-quick") or os.environ.get("EDGEPOSE_BENCH_QUICK") == "1"
                or os.environ.get("CI", "").lower() == "true")


def _models(config) -> list[str]:
    text = config.getoption("--bench-models")
    items = [m for m in text.split(",") if m.strip()] if text else (["quick"] if is_quick(config) else ["table-a"])
    return expand_names(items)


def _variants(config) -> list[str]:
    text = config.getoption("--bench-variants")
    items = text.split(",") if text else (QUICK_VARIANTS if is_quick(config) else DEFAULT_VARIANTS)
    return [v.name for v in parse_variants(list(items))]


def pytest_generate_tests(metafunc):
    if "bench_case" in metafunc.fixturenames:
        cases = [(m, v, mode) for m in _models(metafunc.config) for v in _variants(metafunc.config)
                 for mode in ("session", "predict")]
        metafunc.parametrize("bench_case", cases, ids=[f"{m}-{v}-{mode}" for m, v, mode in cases])
    if "bench_key" in metafunc.fixturenames:
        keys = [f"{m}|{v}" for m in _models(metafunc.config) for v in _variants(metafunc.config)]
        metafunc.parametrize("bench_key", keys, ids=[k.replace("|", "-") for k in keys])


@pytest.fixture(scope="session")
def bench_quick(pytestconfig) -> bool:
    return is_quick(pytestconfig)


@pytest.fixture(scope="session")
def bench_cache(pytestconfig) -> Path:
    from edgepose.benchmarks.harness import default_cache

    given = pytestconfig.getoption("--bench-cache")
    return Path(given) if given else default_cache()


@pytest.fixture(scope="session")
def bench_result(pytestconfig, bench_quick, bench_cache, bench_baseline):
    """The session's interleaved harness run (raw session + predict + reference), reports written.

    Depends on bench_baseline so the committed baseline is read before --bench-save-baseline rewrites it.
    """
    from edgepose.benchmarks.cli import pin_single_thread
    from edgepose.benchmarks.harness import BenchOptions, run_benchmark
    from edgepose.benchmarks.report import write_reports

    pin_single_thread()
    base = BenchOptions.quick() if bench_quick else BenchOptions()
    rounds = pytestconfig.getoption("--bench-rounds") or base.rounds
    opts = BenchOptions(**{**base.__dict__, "models": tuple(_models(pytestconfig)),
                           "variants": tuple(_variants(pytestconfig)), "rounds": rounds, "memory": False,
                           "cache": bench_cache})
    result = run_benchmark(options=opts)
    out = Path(pytestconfig.getoption("--bench-output"))
    write_reports(result, out)
    state = getattr(pytestconfig, "_edgepose_bench", None) or {}
    pytestconfig._edgepose_bench = {**state, "result": result, "output": out}
    save = pytestconfig.getoption("--bench-save-baseline")
    if save:
        bl.save_baseline(result, Path(save))
        pytestconfig._edgepose_bench["saved"] = save
    return result


def _extra_run(pytestconfig, cache: Path, name: str, models, variants, rounds: int):
    """A separate interleaved run (raw session only) whose reports go to <bench-output>/<name>/."""
    from edgepose.benchmarks.cli import pin_single_thread
    from edgepose.benchmarks.harness import BenchOptions, run_benchmark
    from edgepose.benchmarks.report import write_reports

    pin_single_thread()
    opts = BenchOptions(models=tuple(models), variants=tuple(variants), rounds=rounds, warmup=2, target_ms=60.0,
                        predict=False, memory=False, cache=cache)
    result = run_benchmark(options=opts)
    out = Path(pytestconfig.getoption("--bench-output")) / name
    paths = write_reports(result, out)
    return result, paths


# Quick mode's one INT8 case: ONNX Runtime FP32 vs INT8 on deeppose (~25 s cold, ~5 s cached).
QUICK_INT8 = (("deeppose",), ("ort-fp32", "ort-int8"), 3)


@pytest.fixture(scope="session")
def bench_int8_result(pytestconfig, bench_quick, bench_cache):
    """FP32 vs INT8 (table C): quick = deeppose on ORT; full = table-c + the pinned TFLite models, both engines."""
    from edgepose.benchmarks.models_source import GROUP_VARIANTS

    if bench_quick:
        models, variants, rounds = QUICK_INT8
    else:
        models = ("table-c", "int8-tflite")
        variants = GROUP_VARIANTS["int8-tflite"]
        rounds = pytestconfig.getoption("--bench-rounds") or 7
    return _extra_run(pytestconfig, bench_cache, "int8", models, variants, rounds)


@pytest.fixture(scope="session")
def bench_table_b_result(pytestconfig, bench_quick, bench_cache):
    """Table B (full mode only): the pruned ResNets and their originals from the MXNet fixtures."""
    from edgepose.benchmarks.models_source import GROUP_VARIANTS

    if bench_quick:
        pytest.skip("table B runs in full mode (--bench-full): ~10 ResNets at 224x224")
    rounds = pytestconfig.getoption("--bench-rounds") or 7
    return _extra_run(pytestconfig, bench_cache, "table-b", ("table-b",), GROUP_VARIANTS["table-b"], rounds)


@pytest.fixture(scope="session")
def bench_note(pytestconfig):
    """bench_note(text): a line (or block) for the terminal summary's edgepose section."""
    def add(text: str) -> None:
        state = getattr(pytestconfig, "_edgepose_bench", None)
        if state is None:
            state = pytestconfig._edgepose_bench = {"notes": []}
        state.setdefault("notes", []).append(text)
    return add


@pytest.fixture(scope="session")
def bench_baseline(pytestconfig) -> dict:
    return bl.load_baseline(pytestconfig.getoption("--bench-baseline"))


@pytest.fixture(scope="session")
def bench_threshold(pytestconfig, bench_quick) -> float:
    given = pytestconfig.getoption("--bench-threshold")
    if given is not None:
        return given
    return bl.QUICK_THRESHOLD if bench_quick else bl.DEFAULT_THRESHOLD


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    state = getattr(config, "_edgepose_bench", None)
    if not state or "result" not in state:
        if state and state.get("notes"):
            terminalreporter.section("edgepose bench")
            for extra in state["notes"]:
                terminalreporter.write_line(extra)
        return
    from edgepose.benchmarks.report import side_by_side_markdown

    result = state["result"]
    tr = terminalreporter
    tr.section("edgepose bench")
    tr.write_line(f"{'quick' if is_quick(config) else 'full'} run; raw session median ms (interleaved, 1 thread):")
    for line in side_by_side_markdown(result).splitlines():
        tr.write_line(line)
    for extra in state.get("notes", []):
        tr.write_line(extra)
    tr.write_line(f"reports: {state['output']}/report.md, report.json, table_a.png")
    if state.get("saved"):
        tr.write_line(f"normalised baseline saved to {state['saved']}")
