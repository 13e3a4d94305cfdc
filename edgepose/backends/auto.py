"""`backend="auto"`: the fastest installed engine for this model on this CPU, measured, not guessed.

Candidates are the file itself and the same model in the other formats edgepose knows: siblings
that `edgepose convert` leaves beside it (`x.mnn`, `x.fp16.mnn`, `x.onnx`, `x.sim.onnx`,
`x.tflite`, `x.dense.tflite`; INT8 files are never swapped in for float ones) plus any
`alternatives` given, each with every installed engine that reads its format (MNN; ONNX Runtime;
LiteRT; OpenVINO for .onnx and .tflite). A probe times them interleaved (order rotated each
round, after a warm-up), one inference at a time on the same random input, and compares each
round's time with the model's own file's in that round, so load that slows every engine alike
cancels out; near ties are timed again head to head, and the model's own file stays unless beaten
by 2 %. The verdict is cached under the edgepose cache dir (or EDGEPOSE_BACKEND_CHOICE_CACHE),
keyed by CPU model, family/model/stepping and class, engine versions, thread count and the files'
sha256, so a machine probes a model once; a verdict probed with the CPU busy (load >= 1 per core)
is provisional and probed again by later processes, pooling the rounds, up to three probes.
Which engines were timed, how fast, and whether the verdict is provisional is in
`Predictor.describe()`.
"""
from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import BackendError, EdgePoseError
from ..files import sha256_file
from .base import Backend

log = logging.getLogger(__name__)

# Which engines read which file type, in the order ties are broken (MNN first: the edge default).
READERS = {".mnn": ("mnn",), ".onnx": ("onnxruntime", "openvino"), ".tflite": ("litert", "openvino")}
_STEM_TAGS = (".fp16", ".sim", ".dense", ".fp32")


@dataclass
class Choice:
    backend: str
    path: str
    cpu: str
    threads: int
    median_ms: dict[str, float] = field(default_factory=dict)  # "engine:file" -> ms
    skipped: dict[str, str] = field(default_factory=dict)  # candidates that could not run, and why
    cached: bool = False
    ratios: dict[str, float] = field(default_factory=dict)  # median per-round time / the model's own file's
    load_per_core: float | None = None  # 1-minute load average / cores when probed (highest of the probes)
    provisional: bool = False  # probed on a busy CPU: re-probed by the next process (up to MAX_PROBES)
    probes: int = 1
    round_ratios: dict[str, list[float]] = field(default_factory=dict)  # every probe's per-round ratios

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def base_stem(path: Path) -> str:
    name = path.name[: -len(path.suffix)] if path.suffix else path.name
    for tag in _STEM_TAGS:
        if name.endswith(tag):
            name = name[: -len(tag)]
    return name


def candidate_files(path: Path, alternatives: Sequence[str | Path] = ()) -> list[Path]:
    """The model and its float siblings / alternatives, existing files only, the model first."""
    path = Path(path)
    out = [path]
    stem = base_stem(path)
    for suffix in READERS:
        for tag in ("", *_STEM_TAGS):
            p = path.with_name(f"{stem}{tag}{suffix}")
            if p.is_file() and p not in out and ".int8" not in p.name:
                out.append(p)
    for alt in alternatives:
        p = Path(alt)
        if p.is_file() and p not in out:
            out.append(p)
    return out


def _installed(engine: str) -> bool:
    import importlib.util

    module = {"mnn": "MNN", "onnxruntime": "onnxruntime", "litert": "ai_edge_litert", "openvino": "openvino"}[engine]
    return importlib.util.find_spec(module) is not None


def _cache_file() -> Path:
    """EDGEPOSE_BACKEND_CHOICE_CACHE, else <edgepose cache>/backend-choice.json."""
    env = os.environ.get("EDGEPOSE_BACKEND_CHOICE_CACHE")
    if env:
        return Path(env).expanduser()
    from ..assets import cache_dir

    return cache_dir() / "backend-choice.json"


def _engine_versions() -> str:
    """Installed engine versions: a new MNN or ONNX Runtime release can change which is fastest."""
    import importlib.metadata as md

    out = []
    for dist in ("MNN", "onnxruntime", "ai-edge-litert", "openvino"):
        try:
            out.append(f"{dist}={md.version(dist)}")
        except md.PackageNotFoundError:
            pass
    return ",".join(out)


def _load_per_core() -> float | None:
    try:
        return os.getloadavg()[0] / max(1, os.cpu_count() or 1)
    except (OSError, AttributeError):
        return None


def random_feeds(backend: Backend, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """One random input per model input (dynamic dimensions as 1): what the probe times every engine on
    (the engine matrix times them on the same)."""
    feeds = {}
    for t in backend.inputs:
        shape = [d if isinstance(d, int) and d > 0 else 1 for d in t.shape]
        feeds[t.name] = rng.random(shape, dtype=np.float32) if t.dtype == "float32" else np.zeros(shape, t.dtype)
    return feeds


# The probe (issue 13): interleaved rounds in rotating order after a warm-up, samples of at least
# MIN_SAMPLE_MS each, decided on per-round ratios to the model's own file so that load which moves
# every engine alike cancels out. Near-ties are timed again head to head; a candidate must beat the
# model's own file by KEEP_OWN to replace it. A verdict probed at BUSY load per core or more is
# provisional: later processes probe again (MAX_PROBES in all) and pool the rounds.
ROUNDS, WARMUP, MIN_SAMPLE_MS = 11, 3, 20.0
NEAR_TIE, KEEP_OWN, BUSY, MAX_PROBES = 1.05, 1.02, 1.0, 3


def _calls_per_sample(backend: Backend, feeds: dict[str, np.ndarray], warmup: int, min_sample_ms: float) -> int:
    for _ in range(max(0, warmup - 1)):
        backend.run(feeds)
    t0 = time.perf_counter()
    backend.run(feeds)
    return max(1, int(np.ceil(min_sample_ms / max((time.perf_counter() - t0) * 1e3, 0.01))))


def _interleave(runners: dict[str, tuple[Backend, dict[str, np.ndarray]]], calls: dict[str, int],
                rounds: int) -> dict[str, list[float]]:
    """Per-call ms of each candidate, one sample per round, the order rotated every round."""
    labels = list(runners)
    samples: dict[str, list[float]] = {label: [] for label in labels}
    for r in range(rounds):
        for label in labels[r % len(labels):] + labels[: r % len(labels)]:
            backend, feeds = runners[label]
            t0 = time.perf_counter()
            for _ in range(calls[label]):
                backend.run(feeds)
            samples[label].append((time.perf_counter() - t0) * 1e3 / calls[label])
    return samples


def _round_ratios(samples: dict[str, list[float]], ref: str) -> dict[str, list[float]]:
    return {label: [t / r for t, r in zip(v, samples[ref])] for label, v in samples.items()}


def _decide(ratios: dict[str, list[float]], order: list[str]) -> str:
    """The candidate with the lowest median ratio; the model's own file (order[0]) unless beaten by KEEP_OWN."""
    score = {label: float(np.median(v)) for label, v in ratios.items()}
    best = min(order, key=lambda k: (round(score[k], 4), order.index(k)))
    return order[0] if score[best] * KEEP_OWN > score[order[0]] else best


def choose(path: str | Path, *, threads: int = 1, alternatives: Sequence[str | Path] = (), rounds: int = ROUNDS,
           min_sample_ms: float = MIN_SAMPLE_MS, warmup: int = WARMUP, use_cache: bool = True) -> Choice:
    """Probe every (engine, file) candidate for `path` and return the fastest (cached per machine)."""
    from ..cpu import cpu_info
    from . import open_backend

    files = candidate_files(Path(path), alternatives)
    info = cpu_info()
    cpu = f"{info.model_name} [{info.ident}] ({info.cpu_class})" if info.ident else f"{info.model_name} ({info.cpu_class})"
    key = "|".join([cpu, _engine_versions(), str(threads), *sorted(f"{p.suffix}:{sha256_file(p)}" for p in files)])
    cache = _cache_file()
    earlier: Choice | None = None
    if use_cache and cache.is_file():
        try:
            entry = json.loads(cache.read_text()).get(key)
        except (OSError, ValueError):
            entry = None
        if entry and Path(entry["path"]).is_file():
            try:
                earlier = Choice(**{**entry, "cached": True})
            except TypeError:  # an entry written by another edgepose version: probe again
                earlier = None
            if earlier is not None and (not earlier.provisional or earlier.probes >= MAX_PROBES):
                return earlier
    runners: dict[str, tuple[Backend, dict[str, np.ndarray]]] = {}
    skipped: dict[str, str] = {}
    rng = np.random.default_rng(0)
    for p in files:
        for engine in READERS.get(p.suffix.lower(), ()):
            label = f"{engine}:{p.name}"
            if not _installed(engine):
                skipped[label] = "not installed"
                continue
            try:
                backend = open_backend(p, engine, threads=threads)
                feeds = random_feeds(backend, rng)
                backend.run(feeds)  # proves it runs
                runners[label] = (backend, feeds)
            except EdgePoseError as exc:
                skipped[label] = str(exc).splitlines()[0][:200]
    if not runners:
        raise BackendError(f"backend='auto': no installed engine could run {Path(path).name} "
                           f"({'; '.join(f'{k}: {v}' for k, v in skipped.items())})")
    load = _load_per_core()
    order = list(runners)  # the model's own file with its first reader first: the reference
    calls = {label: _calls_per_sample(b, f, warmup, min_sample_ms) for label, (b, f) in runners.items()}
    samples = _interleave(runners, calls, rounds)
    ratios = _round_ratios(samples, order[0])
    if earlier is not None:  # pool this probe's rounds with the earlier provisional ones
        for label in ratios:
            ratios[label] = list(earlier.round_ratios.get(label, [])) + ratios[label]
    ranked = sorted(order, key=lambda k: float(np.median(ratios[k])))
    if len(ranked) > 1 and np.median(ratios[ranked[1]]) < NEAR_TIE * np.median(ratios[ranked[0]]):
        pair = {label: runners[label] for label in ranked[:2]}  # a near tie: the two again, head to head
        again = _interleave(pair, calls, 2 * rounds)
        head = _round_ratios(again, ranked[0])
        factor = float(np.median(ratios[ranked[0]]))
        for label in pair:
            ratios[label] = ratios[label] + [r * factor for r in head[label]]
    best = _decide(ratios, order)
    engine, name = best.split(":", 1)
    chosen = next(p for p in files if p.name == name)
    probes = (earlier.probes + 1) if earlier is not None else 1
    loads = [x for x in (load, earlier.load_per_core if earlier else None) if x is not None]
    busy = load is not None and load >= BUSY
    choice = Choice(engine, str(chosen), cpu, threads, {k: float(np.median(v)) for k, v in samples.items()}, skipped,
                    ratios={k: float(np.median(v)) for k, v in ratios.items()},
                    load_per_core=max(loads) if loads else None, provisional=busy and probes < MAX_PROBES,
                    probes=probes, round_ratios={k: [round(x, 5) for x in v] for k, v in ratios.items()})
    if use_cache:
        _store(cache, key, choice)
    log.info("backend=auto for %s on %s: %s (%s)%s", Path(path).name, cpu, best,
             ", ".join(f"{k} x{v:.3f}" for k, v in sorted(choice.ratios.items(), key=lambda kv: kv[1])),
             f" [provisional: load {load:.2f} per core]" if choice.provisional else "")
    return choice


def _store(cache: Path, key: str, choice: Choice) -> None:
    """Merge one verdict into the cache file atomically (a lost race loses a cache entry, no more)."""
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        data = json.loads(cache.read_text()) if cache.is_file() else {}
    except (OSError, ValueError):
        data = {}
    entry = choice.to_dict()
    entry.pop("cached", None)
    data[key] = entry
    from ..errors import OutputError
    from ..files import atomic_write_text

    try:
        atomic_write_text(cache, json.dumps(data, indent=1))
    except OutputError as exc:
        log.warning("could not cache the backend choice: %s", exc)
