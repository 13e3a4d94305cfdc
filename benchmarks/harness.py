"""The benchmark run: every model x variant (raw session and predict) plus the reference
workload, timed in one interleaved loop; then static figures (parameters, MACs, file size),
attained GFLOP/s against this core's peak, and peak RSS from fresh child processes.

    from edgepose.benchmarks import run_benchmark
    result = run_benchmark(["deeppose", "heatmap"], variants=["mnn-fp16", "ort-fp32"])
    print(result.markdown())
"""
from __future__ import annotations

import logging
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .cpu import CpuPeak, cpu_peak
from .models_source import ModelSource, describe_source, expand_names, resolve_for
from .source import SourceUnavailableError
from .reference import CANONICAL_REFERENCE, REF_MACS, reference_callables
from .runners import Session, open_session
from .stats import Summary, paired_ratio, paired_ratios, relative_overhead, summarize
from .timing import interleave
from .variants import DEFAULT_VARIANTS, QUICK_VARIANTS, Variant, parse_variants

log = logging.getLogger(__name__)

MODES = ("session", "predict")


@dataclass
class BenchOptions:
    """What to measure and how hard. `quick()` gives the CI setting."""

    models: Sequence[str] = ("table-a",)
    variants: Sequence[str | Variant] = DEFAULT_VARIANTS
    rounds: int = 7
    warmup: int = 3
    target_ms: float = 100.0
    predict: bool = True
    memory: bool = True
    image: Any = "astronaut"          # an asset name, an image path or a BGR array
    bbox: Sequence[float] | None = None  # default: the pinned photo's person box; () = whole image
    cache: Path | None = None
    threads: int = 1
    fma_units: int | None = None
    ghz: float | None = None
    progress: bool = False
    build_fixtures: bool = False      # build the MXNet fixtures (tables B/C) when they are missing

    @classmethod
    def quick(cls, **changes: Any) -> "BenchOptions":
        base = dict(models=("quick",), variants=QUICK_VARIANTS, rounds=5, warmup=2, target_ms=30.0)
        base.update(changes)
        return cls(**base)


@dataclass
class Row:
    """One model x variant: timings (ms per call), normalised time, static figures, memory."""

    model: str
    variant: str
    path: str
    file_mb: float
    session_ms: list[float]
    predict_ms: list[float] | None
    ref_ms: list[float]
    params: int | None = None
    macs: int | None = None
    rss: dict | None = None
    table_id: str | None = None
    published_ms: tuple[float, ...] | None = None
    number: int = 1

    @property
    def session(self) -> Summary:
        return summarize(self.session_ms)

    @property
    def predict(self) -> Summary | None:
        return summarize(self.predict_ms) if self.predict_ms else None

    @property
    def normalised(self) -> Summary:
        """Model time / reference time, per round (see edgepose.benchmarks.reference)."""
        return summarize(paired_ratios(self.session_ms, self.ref_ms))

    @property
    def predict_overhead(self) -> float | None:
        """Median over rounds of predict / raw session - 1."""
        return relative_overhead(self.predict_ms, self.session_ms) if self.predict_ms else None

    def gflops(self) -> float | None:
        """Attained GFLOP/s of the raw session (2 flops per MAC) at its median time."""
        return 2.0 * self.macs / (self.session.median * 1e6) if self.macs else None

    @property
    def key(self) -> str:
        return f"{self.model}|{self.variant}"

    def to_dict(self, peak_gflops: float | None = None) -> dict:
        g = self.gflops()
        pred = self.predict
        return {
            "model": self.model, "variant": self.variant, "path": self.path, "file_mb": self.file_mb,
            "params": self.params, "macs": self.macs, "table_id": self.table_id,
            "published_ms": list(self.published_ms) if self.published_ms else None,
            "calls_per_sample": self.number,
            "session": {**self.session.to_dict(), "samples": self.session_ms},
            "predict": {**pred.to_dict(), "samples": self.predict_ms} if pred else None,
            "predict_overhead": self.predict_overhead,
            "normalised": {**self.normalised.to_dict(), "reference": CANONICAL_REFERENCE},
            "gflops": g, "fraction_of_peak": (g / peak_gflops) if g and peak_gflops else None,
            "rss": self.rss,
        }


@dataclass
class BenchResult:
    rows: list[Row]
    reference: dict[str, list[float]]
    cpu: CpuPeak
    env: dict[str, Any]
    options: dict[str, Any]
    sources: list[dict] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def row(self, model: str, variant: str) -> Row | None:
        return next((r for r in self.rows if r.model == model and r.variant == variant), None)

    def ratio(self, model: str, baseline: str, variant: str) -> float | None:
        """Median of per-round ratios model / baseline (raw session) for one variant."""
        a, b = self.row(model, variant), self.row(baseline, variant)
        if a is None or b is None:
            return None
        return paired_ratio(a.session_ms, b.session_ms)

    @property
    def variants(self) -> list[str]:
        return list(dict.fromkeys(r.variant for r in self.rows))

    def to_dict(self) -> dict:
        peak = self.cpu.peak_gflops
        ref = {k: {**summarize(v).to_dict(), "samples": v,
                   "gflops": 2.0 * REF_MACS / (summarize(v).median * 1e6)} for k, v in self.reference.items()}
        return {"schema": "edgepose.bench/1", "env": self.env, "cpu": self.cpu.to_dict(), "options": self.options,
                "reference": {"macs": REF_MACS, "canonical": CANONICAL_REFERENCE, "timings": ref},
                "rows": [r.to_dict(peak) for r in self.rows], "sources": self.sources, "skipped": self.skipped}

    def markdown(self) -> str:
        from .report import results_markdown

        return results_markdown(self)


def default_cache() -> Path:
    """Where converted benchmark models are kept: $EDGEPOSE_CACHE/bench or the user cache dir."""
    from edgepose.assets import cache_dir

    return cache_dir() / "bench"


def load_bench_image(image: Any, bbox: Sequence[float] | None) -> tuple[np.ndarray, list[list[float]] | None]:
    """(BGR image, bboxes) for predict: a pinned photo and its person box by default."""
    import cv2

    from edgepose import assets

    if isinstance(image, np.ndarray):
        img = image
    elif isinstance(image, str) and image in assets.ASSETS:
        try:
            img = cv2.imread(str(assets.fetch_asset(image)), cv2.IMREAD_COLOR)
        except Exception as exc:  # noqa: BLE001 - offline: a synthetic image times the same
            log.warning("photo %r unavailable (%s); using a synthetic 512x512 image", image, exc)
            img = np.random.default_rng(0).integers(0, 256, (512, 512, 3), dtype=np.uint8)
        if bbox is None and image in assets.PHOTO_PERSON_BOXES:
            bbox = assets.PHOTO_PERSON_BOXES[image]
    else:
        img = cv2.imread(str(image), cv2.IMREAD_COLOR)
        if img is None:
            from edgepose.errors import ImageError

            raise ImageError(f"cannot read image {image!r}; pass an image file or one of "
                             f"{', '.join(assets.PHOTO_PERSON_BOXES)}")
    boxes = [list(map(float, bbox))] if bbox else None
    return img, boxes


def environment() -> dict[str, Any]:
    import importlib.metadata as md

    versions = {}
    for dist in ("MNN", "onnxruntime", "ai-edge-litert", "openvino", "numpy", "opencv-python-headless", "torch", "onnx"):
        try:
            versions[dist] = md.version(dist)
        except md.PackageNotFoundError:
            pass
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    return {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
            "versions": versions, "loadavg_start": load, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def record_end_load(env: dict[str, Any]) -> None:
    """env["loadavg_end"]: the load average when a run ends (beside environment()'s loadavg_start)."""
    try:
        env["loadavg_end"] = os.getloadavg()
    except OSError:
        pass


def _static_figures(source: ModelSource) -> tuple[int | None, int | None]:
    if source.onnx is None:
        return None, None
    try:
        from .macs import graph_cost

        cost = graph_cost(source.onnx)
        return cost.params, cost.macs
    except Exception as exc:  # noqa: BLE001 - a MAC count is a nice-to-have, never fatal
        log.warning("cannot count MACs of %s: %s", source.onnx, exc)
        return None, None


def open_sessions(sources: list[ModelSource], variants: list[Variant], *, image, bboxes, predict: bool,
                  threads: int) -> tuple[list[Session], list[str]]:
    sessions = []
    missing: dict[str, list[str]] = {}
    for source in sources:
        applicable = source.applicable(variants)
        for v in variants:
            if v not in applicable and not (source.fixed_mnn and v.runtime == "mnn"):
                missing.setdefault(v.name, []).append(source.name)
        feed = None
        for v in applicable:
            s = open_session(source, v, image=image if predict else None, bboxes=bboxes, feed=feed,
                             threads=threads)
            if feed is None and s.predictor is not None and v.runtime != "tflite":
                feed = s.predictor.prepare(image, bboxes)[0] if image is not None else None
            sessions.append(s)
    skipped = [f"{v} (no {parse_variants([v])[0].artifact[0]} file): {', '.join(names)}" for v, names in missing.items()]
    return sessions, skipped


def run_benchmark(models: Sequence[str] | None = None, *, options: BenchOptions | None = None,
                  **changes: Any) -> BenchResult:
    """Measure `models` (registry names, groups, pinned assets or files) in every variant.

    Keyword arguments override fields of `options` (e.g. rounds=3, variants=["mnn-fp16"]).
    """
    opts = options or BenchOptions()
    if models is not None:
        changes["models"] = tuple(models)
    if changes:
        opts = BenchOptions(**{**opts.__dict__, **changes})
    variants = parse_variants(list(opts.variants))
    cache = Path(opts.cache) if opts.cache else default_cache()
    names = expand_names(opts.models)
    env = environment()
    peak = cpu_peak(fma_units=opts.fma_units, ghz=opts.ghz)
    image, bboxes = load_bench_image(opts.image, opts.bbox) if opts.predict else (None, None)

    progress = _progress(opts.progress)
    progress.set("preparing models")
    sources, unresolved = [], []
    for name in names:
        try:
            sources.append(resolve_for(name, variants, cache=cache, build_fixtures=opts.build_fixtures))
        except SourceUnavailableError as exc:
            # Fixtures not built (tables B/C), a conversion that failed: the rest of the run goes on,
            # the report says why.
            log.warning("%s skipped: %s", name, exc)
            unresolved.append((name, str(exc)))
        progress.set(f"prepared {name}")
    sessions, skipped = open_sessions(sources, variants, image=image, bboxes=bboxes, predict=opts.predict,
                                      threads=opts.threads)
    skipped += _unresolved_lines(unresolved)
    cases: dict[str, Any] = dict(reference_callables(cache, threads=opts.threads))
    for s in sessions:
        cases[f"{s.key}|session"] = s.raw
        if s.predict is not None:
            cases[f"{s.key}|predict"] = s.predict
    progress.start(total=opts.rounds * len(cases), desc=f"timing {len(sessions)} model-variants")
    timings = interleave(cases, rounds=opts.rounds, warmup=opts.warmup, target_ms=opts.target_ms,
                         progress=progress.update)
    progress.close()

    statics = {s.name: _static_figures(s) for s in sources}
    ref = timings[CANONICAL_REFERENCE].samples
    rows = []
    for s in sessions:
        params, macs = statics[s.source.name]
        pred = timings.get(f"{s.key}|predict")
        rows.append(Row(model=s.source.name, variant=s.variant.name, path=str(s.path),
                        file_mb=s.path.stat().st_size / 1e6, session_ms=timings[f"{s.key}|session"].samples,
                        predict_ms=pred.samples if pred else None, ref_ms=ref, params=params, macs=macs,
                        table_id=s.source.table_id, published_ms=s.source.published_ms,
                        number=timings[f"{s.key}|session"].number))
    del sessions, cases
    if opts.memory:
        from .memory import peak_rss

        it = _progress(opts.progress)
        it.start(total=len(rows), desc="peak RSS (child processes)")
        for row in rows:
            try:
                variant = _variant_of(row.variant)
                row.rss = peak_rss(Path(row.path), variant).to_dict()
            except Exception as exc:  # noqa: BLE001 - memory is reported, never fatal
                log.warning("peak RSS of %s failed: %s", row.key, exc)
            it.update(1)
        it.close()
    record_end_load(env)
    opt_dict = {k: (list(v) if isinstance(v, tuple) else v) for k, v in opts.__dict__.items()
                if k not in ("image", "cache")}
    opt_dict.update(variants=[v.name for v in variants], models=names,
                    image=opts.image if isinstance(opts.image, str) else "array", bboxes=bboxes)
    return BenchResult(rows=rows, reference={k: timings[k].samples for k in timings if k.startswith("ref-")},
                       cpu=peak, env=env, options=opt_dict, sources=[describe_source(s) for s in sources],
                       skipped=skipped)


def _unresolved_lines(unresolved: list[tuple[str, str]]) -> list[str]:
    """One line per distinct reason (all MXNet models share "fixtures not built")."""
    by_reason: dict[str, list[str]] = {}
    for name, reason in unresolved:
        by_reason.setdefault(reason, []).append(name)
    return [f"{_name_list(names)}: {reason}" for reason, names in by_reason.items()]


def _name_list(names: list[str]) -> str:
    return ", ".join(names) if len(names) <= 3 else f"{len(names)} models ({names[0]} ... {names[-1]})"


def _variant_of(name: str) -> Variant:
    if name.startswith("mnn-file"):
        prec = name.split("@", 1)[1] if "@" in name else None
        return Variant("mnn", "file", prec)
    return parse_variants([name])[0]


class _progress:
    """tqdm on stderr when asked (and installed); otherwise silent."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar = None

    def set(self, text: str) -> None:
        if self.enabled:
            log.info("%s", text)

    def start(self, *, total: int, desc: str) -> None:
        if not self.enabled:
            return
        try:
            from tqdm import tqdm
        except ImportError:
            return
        self.bar = tqdm(total=total, desc=desc, file=sys.stderr, leave=False, dynamic_ncols=True)

    def update(self, n: int) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
