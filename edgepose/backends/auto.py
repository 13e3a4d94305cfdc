"""`backend="auto"`: the fastest installed engine for this model on this CPU, measured, not guessed.

Candidates are the file itself and the same model in the other formats edgepose knows: siblings
that `edgepose convert` leaves beside it (`x.mnn`, `x.fp16.mnn`, `x.onnx`, `x.sim.onnx`,
`x.tflite`, `x.dense.tflite`; INT8 files are never swapped in for float ones) plus any
`alternatives` given, each with every installed engine that reads its format (MNN; ONNX Runtime;
LiteRT; OpenVINO for .onnx and .tflite). A short probe times them interleaved, single inference
at a time on the same random input, and the median-fastest wins. The verdict is cached under the
edgepose cache dir, keyed by CPU model and class, thread count and the files' sha256, so a
machine probes a model once. Which engines were timed, and how fast, is in `Predictor.describe()`.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import BackendError, EdgePoseError
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


def _sha(path: Path) -> str:
    from ..files import sha256_file

    return sha256_file(path)


def _cache_file() -> Path:
    from ..assets import cache_dir

    return cache_dir() / "backend-choice.json"


def _feeds(backend: Backend, rng: np.random.Generator) -> dict[str, np.ndarray]:
    feeds = {}
    for t in backend.inputs:
        shape = [d if isinstance(d, int) and d > 0 else 1 for d in t.shape]
        feeds[t.name] = rng.random(shape, dtype=np.float32) if t.dtype == "float32" else np.zeros(shape, t.dtype)
    return feeds


def choose(path: str | Path, *, threads: int = 1, alternatives: Sequence[str | Path] = (), rounds: int = 7,
           budget_ms: float = 60.0, use_cache: bool = True) -> Choice:
    """Probe every (engine, file) candidate for `path` and return the fastest (cached per machine)."""
    from ..cpu import cpu_info
    from . import open_backend

    files = candidate_files(Path(path), alternatives)
    info = cpu_info()
    cpu = f"{info.model_name} ({info.cpu_class})"
    key = "|".join([cpu, str(threads), *sorted(f"{p.suffix}:{_sha(p)}" for p in files)])
    cache = _cache_file()
    if use_cache and cache.is_file():
        try:
            entry = json.loads(cache.read_text()).get(key)
        except (OSError, ValueError):
            entry = None
        if entry and Path(entry["path"]).is_file():
            return Choice(**{**entry, "cached": True})
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
                feeds = _feeds(backend, rng)
                backend.run(feeds)  # warm-up; also proves it runs
                runners[label] = (backend, feeds)
            except EdgePoseError as exc:
                skipped[label] = str(exc).splitlines()[0][:200]
    if not runners:
        raise BackendError(f"backend='auto': no installed engine could run {Path(path).name} "
                           f"({'; '.join(f'{k}: {v}' for k, v in skipped.items())})")
    calls = {}
    for label, (backend, feeds) in runners.items():  # calls per sample from a first timing
        t0 = time.perf_counter()
        backend.run(feeds)
        calls[label] = max(1, int(budget_ms / max((time.perf_counter() - t0) * 1e3, 0.01) / len(runners)))
    samples: dict[str, list[float]] = {label: [] for label in runners}
    for _ in range(rounds):
        for label, (backend, feeds) in runners.items():
            t0 = time.perf_counter()
            for _ in range(calls[label]):
                backend.run(feeds)
            samples[label].append((time.perf_counter() - t0) * 1e3 / calls[label])
    medians = {label: float(np.median(v)) for label, v in samples.items()}
    order = list(runners)  # stable tie-break: the model's own file and MNN first
    best = min(order, key=lambda k: (round(medians[k], 3), order.index(k)))
    engine, name = best.split(":", 1)
    chosen = next(p for p in files if p.name == name)
    choice = Choice(engine, str(chosen), cpu, threads, medians, skipped)
    if use_cache:
        _store(cache, key, choice)
    log.info("backend=auto for %s on %s: %s (%s)", Path(path).name, cpu, best,
             ", ".join(f"{k} {v:.2f} ms" for k, v in sorted(medians.items(), key=lambda kv: kv[1])))
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
