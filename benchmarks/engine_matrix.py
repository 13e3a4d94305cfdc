"""The engine x model matrix: every engine that can run a model, timed side by side, and the engine
`backend="auto"` picks, as a ratio to the fastest (issue 13, item 7).

    edgepose bench engines                       # table-A zoo + the MediaPipe models
    edgepose bench engines deeppose hand_landmark_lite --rounds 9 --json

    from edgepose.benchmarks.engine_matrix import run_engine_matrix
    matrix = run_engine_matrix(["deeppose", "pose_landmark_full"])
    print(matrix.markdown())

Per model:

1. The files: the model's MNN FP16 file (what `edgepose convert --fp16` and the demo open), its
   siblings (MNN FP32, simplified ONNX, dense .tflite) and, for a MediaPipe model, the source
   .tflite as an alternative, exactly as a user passes it (edgepose.demo.default_pipeline).
2. The pick: `Predictor(file, backend="auto", alternatives=...)` (a `Detector` for a detector
   head) with the choice cache redirected to a fresh file, so the pick is probed now, not read
   from an earlier verdict.
3. The matrix: every (engine, file) candidate the auto probe considers
   (edgepose.backends.auto.candidate_files x READERS), each opened the way auto opens it
   (`open_backend(file, engine, threads=1)`, edgepose's defaults), timed interleaved
   (edgepose.benchmarks.timing.interleave) on one random input. Ratios are to the candidate with
   the lowest median (median / fastest median, so >= 1; the median of per-round ratios,
   stats.paired_ratio, is in the JSON too).
4. The check: auto's candidate median / the fastest median, from that same interleaved run. If it misses
   `tolerance` (5 %), the two are timed again, alone and interleaved with twice the rounds,
   once, and the verdict is the median of that run's per-round ratios (stats.paired_ratio: what
   the auto probe itself decides on); the ratio of the two medians is kept beside it.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from .models_source import expand_names, resolve_for
from .stats import paired_ratio, summarize
from .timing import interleave
from .variants import parse_variants

log = logging.getLogger(__name__)

SCHEMA = "edgepose.bench.engines/1"
# The three MediaPipe models of issue 13 (BlazePose full landmark, its detector, a hand landmark
# model) and the lite hand model beside its full one.
MEDIAPIPE = ("pose_landmark_full", "pose_detection", "hand_landmark_full", "hand_landmark_lite")
DEFAULT_MODELS = ("table-a", "mediapipe")
QUICK_MODELS = ("deeppose", "hand_landmark_lite")
TOLERANCE = 0.05
_VARIANTS = ("mnn-fp32", "mnn-fp16", "ort-fp32", "tflite")
ENGINE_NAMES = {"mnn": "MNN", "onnxruntime": "ONNX Runtime", "litert": "LiteRT", "openvino": "OpenVINO"}
# Matrix columns: (engine, MNN weights or None); a candidate goes to the first column that takes it.
COLUMNS = (("mnn", "fp32"), ("mnn", "fp16"), ("onnxruntime", None), ("litert", None), ("openvino", None))
AVX2_NOTE = ("The AVX2-only class (x86-avx2: AMD EPYC Zen 1-3, no AVX-512/VNNI) is not available on this "
             "machine; its matrix is to be measured there with the same command.")


def expand_matrix_names(items: Sequence[str] | None) -> list[str]:
    """Model arguments with `mediapipe` (the pinned MediaPipe models) and the harness's groups expanded."""
    out: list[str] = []
    for item in list(items or DEFAULT_MODELS):
        names = list(MEDIAPIPE) if item == "mediapipe" else expand_names([item])
        out += [n for n in names if n not in out]
    return out


@dataclass
class Candidate:
    label: str      # "engine:file name", as edgepose.backends.auto labels it
    engine: str
    path: str
    column: str

    @property
    def file(self) -> str:
        return Path(self.path).name


@dataclass
class ModelRow:
    """One model: every candidate's samples (ms per call, one per round) and the auto pick."""

    model: str
    candidates: list[Candidate]
    samples: dict[str, list[float]]
    calls_per_sample: dict[str, int]
    auto: dict[str, Any] | None            # the Choice (backend, path, probe medians), or None if it failed
    auto_error: str | None = None
    probe_s: float | None = None
    skipped: dict[str, str] = field(default_factory=dict)
    remeasure: dict[str, Any] | None = None  # {"samples": {label: [...]}, "ratio": float} when auto missed once

    @property
    def medians(self) -> dict[str, float]:
        return {k: summarize(v).median for k, v in self.samples.items()}

    @property
    def fastest(self) -> str:
        med = self.medians
        return min(med, key=med.get)

    def ratio(self, label: str) -> float:
        """label's median / the fastest candidate's median, both from the same interleaved run (>= 1)."""
        med = self.medians
        return med[label] / med[self.fastest]

    def paired(self, label: str) -> float:
        """Median of the per-round ratios label / fastest (the steadier figure on a loaded machine)."""
        return paired_ratio(self.samples[label], self.samples[self.fastest])

    @property
    def auto_label(self) -> str | None:
        if not self.auto:
            return None
        return f"{self.auto['backend']}:{Path(self.auto['path']).name}"

    @property
    def auto_ratio(self) -> float | None:
        label = self.auto_label
        return self.ratio(label) if label in self.samples else None

    @property
    def final_auto_ratio(self) -> float | None:
        """The re-measured ratio when there was one (auto missed the tolerance in the matrix run): the
        median of the head-to-head per-round ratios, which load drifting between rounds does not move
        (the ratio of the two medians is kept beside it in the JSON)."""
        if self.remeasure is not None:
            return self.remeasure.get("paired_ratio", self.remeasure["ratio"])
        return self.auto_ratio

    def within(self, tolerance: float = TOLERANCE) -> bool | None:
        r = self.final_auto_ratio
        return None if r is None else r <= 1.0 + tolerance

    def to_dict(self, tolerance: float = TOLERANCE) -> dict[str, Any]:
        med = self.medians
        return {
            "model": self.model,
            "candidates": [{**asdict(c), "median_ms": med[c.label], "ratio_to_fastest": self.ratio(c.label),
                            "paired_ratio_to_fastest": self.paired(c.label),
                            "rel_spread": summarize(self.samples[c.label]).rel_spread,
                            "calls_per_sample": self.calls_per_sample[c.label], "samples": self.samples[c.label]}
                           for c in self.candidates if c.label in self.samples],
            "fastest": self.fastest, "fastest_ms": med[self.fastest],
            "auto": self.auto, "auto_error": self.auto_error, "auto_label": self.auto_label,
            "probe_s": self.probe_s, "auto_ratio": self.auto_ratio, "remeasure": self.remeasure,
            "final_auto_ratio": self.final_auto_ratio, "within_tolerance": self.within(tolerance),
            "skipped": self.skipped,
        }


@dataclass
class EngineMatrix:
    rows: list[ModelRow]
    cpu: dict[str, Any]
    env: dict[str, Any]
    options: dict[str, Any]
    unresolved: dict[str, str] = field(default_factory=dict)

    @property
    def tolerance(self) -> float:
        return float(self.options.get("tolerance", TOLERANCE))

    @property
    def misses(self) -> list[ModelRow]:
        return [r for r in self.rows if r.within(self.tolerance) is False]

    def to_dict(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "cpu": self.cpu, "env": self.env, "options": self.options,
                "rows": [r.to_dict(self.tolerance) for r in self.rows], "unresolved": self.unresolved,
                "misses": [r.model for r in self.misses]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def markdown(self) -> str:
        return matrix_markdown(self)


# --- files and candidates ---------------------------------------------------------------------
def model_files(name: str, *, cache: Path) -> tuple[Path, list[Path], Any]:
    """(the file a user opens, alternatives passed beside it, the card) for a model name or file."""
    source = resolve_for(name, parse_variants(list(_VARIANTS)), cache=cache)
    arts = source.artifacts
    primary = arts.get(("mnn", "fp16")) or arts.get(("mnn", "fp32")) or arts.get(("mnn", "file")) \
        or arts.get(("onnx", "fp32")) or arts.get(("tflite", "fp32"))
    if primary is None:
        from edgepose.errors import ModelFileError

        raise ModelFileError(f"{name}: no MNN, ONNX or TFLite file to run")
    alternatives = [p for (fmt, w), p in arts.items() if w != "int8" and p != primary]
    return Path(primary), [Path(p) for p in alternatives], source.spec


def _column(engine: str, path: Path) -> str:
    if engine == "mnn":
        return f"MNN {'fp16' if '.fp16.' in path.name else 'fp32'}"
    return ENGINE_NAMES.get(engine, engine)


def candidates_for(primary: Path, alternatives: Sequence[Path]) -> tuple[list[Candidate], dict[str, str]]:
    """Every (engine, file) the auto probe would consider, and those not installed."""
    from edgepose.backends.auto import READERS, _installed, candidate_files

    out, skipped = [], {}
    for p in candidate_files(primary, alternatives):
        for engine in READERS.get(p.suffix.lower(), ()):
            label = f"{engine}:{p.name}"
            if not _installed(engine):
                skipped[label] = "not installed"
                continue
            out.append(Candidate(label, engine, str(p), _column(engine, p)))
    return out, skipped


@contextlib.contextmanager
def fresh_choice_cache(folder: Path | None = None) -> Iterator[Path]:
    """Point backend="auto"'s verdict cache (EDGEPOSE_BACKEND_CHOICE_CACHE) at a new, empty file for the
    duration, so every pick is probed now (models, assets and MNN verification marks stay where they are)."""
    with tempfile.TemporaryDirectory(prefix="edgepose-engines-", dir=folder) as tmp:
        path = Path(tmp) / "backend-choice.json"
        saved = os.environ.get("EDGEPOSE_BACKEND_CHOICE_CACHE")
        os.environ["EDGEPOSE_BACKEND_CHOICE_CACHE"] = str(path)
        try:
            yield path
        finally:
            if saved is None:
                os.environ.pop("EDGEPOSE_BACKEND_CHOICE_CACHE", None)
            else:
                os.environ["EDGEPOSE_BACKEND_CHOICE_CACHE"] = saved


def auto_pick(primary: Path, alternatives: Sequence[Path], spec: Any, *, threads: int = 1) -> tuple[Any, float]:
    """What `Predictor(primary, backend="auto", alternatives=...)` (or a Detector) picks, and the seconds it took."""
    from edgepose import Detector, Predictor
    from edgepose.heads import HEADS

    cls = Detector if spec is not None and HEADS[spec.head].kind == "detector" else Predictor
    t0 = time.perf_counter()
    session = cls(primary, backend="auto", threads=threads, spec=spec, alternatives=list(alternatives))
    took = time.perf_counter() - t0
    choice = session.backend_choice
    del session
    return choice, took


# --- the run ----------------------------------------------------------------------------------
def measure_model(name: str, *, cache: Path, rounds: int, warmup: int, target_ms: float, threads: int = 1,
                  tolerance: float = TOLERANCE, remeasure: bool = True, pick: bool = True,
                  progress=None) -> ModelRow:
    from edgepose.backends import open_backend
    from edgepose.backends.auto import random_feeds
    from edgepose.errors import EdgePoseError

    primary, alternatives, spec = model_files(name, cache=cache)
    candidates, skipped = candidates_for(primary, alternatives)
    choice, probe_s, auto_error = None, None, None
    if pick:
        try:
            choice, probe_s = auto_pick(primary, alternatives, spec, threads=threads)
        except EdgePoseError as exc:
            auto_error = str(exc).splitlines()[0][:300]
            log.warning("backend='auto' failed for %s: %s", name, auto_error)
    cases, opened = {}, []
    for c in candidates:
        try:
            backend = open_backend(c.path, c.engine, threads=threads)
            feeds = random_feeds(backend, np.random.default_rng(0))
            backend.run(feeds)
        except EdgePoseError as exc:
            skipped[c.label] = str(exc).splitlines()[0][:200]
            continue
        opened.append(c)
        cases[c.label] = (lambda b=backend, f=feeds: b.run(f))
    if not cases:
        raise RuntimeError(f"{name}: no engine could run any of its files ({skipped})")
    timings = interleave(cases, rounds=rounds, warmup=warmup, target_ms=target_ms, progress=progress)
    row = ModelRow(name, opened, {k: t.samples for k, t in timings.items()},
                   {k: t.number for k, t in timings.items()},
                   choice.to_dict() if choice is not None else None, auto_error, probe_s, skipped)
    label, ratio = row.auto_label, row.auto_ratio
    if remeasure and ratio is not None and ratio > 1.0 + tolerance and label != row.fastest:
        pair = {label: cases[label], row.fastest: cases[row.fastest]}
        again = interleave(pair, rounds=2 * rounds, warmup=warmup, target_ms=target_ms)
        med = {k: summarize(t.samples).median for k, t in again.items()}
        row.remeasure = {"samples": {k: t.samples for k, t in again.items()}, "rounds": 2 * rounds,
                         "ratio": med[label] / med[row.fastest],
                         "paired_ratio": paired_ratio(again[label].samples, again[row.fastest].samples)}
    return row


def run_engine_matrix(models: Sequence[str] | None = None, *, rounds: int = 11, warmup: int = 3,
                      target_ms: float = 100.0, threads: int = 1, cache: Path | None = None,
                      tolerance: float = TOLERANCE, remeasure: bool = True, pick: bool = True,
                      progress: bool = False) -> EngineMatrix:
    """The matrix for `models` (registry names, groups, `mediapipe`, pinned assets, files); see the module doc."""
    from edgepose.cpu import cpu_info

    from .harness import _progress, default_cache, environment, record_end_load

    cache = Path(cache) if cache else default_cache()
    names = expand_matrix_names(models)
    env = environment()  # engine versions included
    bar = _progress(progress)
    rows, unresolved = [], {}
    with fresh_choice_cache() as choice_file:
        bar.start(total=len(names), desc="engine matrix (models)")
        for name in names:
            try:
                rows.append(measure_model(name, cache=cache, rounds=rounds, warmup=warmup, target_ms=target_ms,
                                          threads=threads, tolerance=tolerance, remeasure=remeasure, pick=pick,
                                          ))
            except Exception as exc:  # noqa: BLE001 - one model that cannot be prepared does not sink the matrix
                log.warning("%s: %s: %s", name, type(exc).__name__, exc)
                unresolved[name] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
            bar.update(1)
        bar.close()
        env["choice_cache"] = f"fresh per run ({choice_file.name} in a temporary directory)"
    record_end_load(env)
    options = {"models": names, "rounds": rounds, "warmup": warmup, "target_ms": target_ms, "threads": threads,
               "tolerance": tolerance, "remeasure": remeasure}
    return EngineMatrix(rows, cpu_info().to_dict(), env, options, unresolved)


# --- report -----------------------------------------------------------------------------------
def cpu_line(cpu: dict[str, Any]) -> str:
    ident = f", {cpu['ident']}" if cpu.get("ident") else ""
    return f"{cpu.get('model_name')} ({cpu.get('vendor')}{ident}), class **{cpu.get('class')}**"


def _cell(row: ModelRow, labels: list[str]) -> str:
    present = [k for k in labels if k in row.samples]
    if not present:
        return "—"
    med = row.medians
    best = min(present, key=med.get)
    tag = ""
    if len(present) > 1 or ".dense." in best:
        tag = f" `{best.split(':', 1)[1]}`"
    text = f"{med[best]:.2f} ({row.ratio(best):.2f}){tag}"
    return f"**{text}**" if best == row.fastest else text


def matrix_markdown(m: EngineMatrix) -> str:
    o, env = m.options, m.env
    load = env.get("loadavg_start")
    load_end = env.get("loadavg_end")
    fmt = (lambda la: "/".join(f"{v:.2f}" for v in la) if la else "?")
    lines = [
        f"Engine x model matrix on {cpu_line(m.cpu)}; one thread, {o['rounds']} interleaved rounds "
        f"(samples of ~{o['target_ms']:g} ms), median ms per call and (ratio to the fastest engine's median for "
        f"that model); fastest in bold. {env.get('time', '')}, load average "
        f"{fmt(load)} at the start, {fmt(load_end)} at the end.",
        "",
        "| model | MNN fp32 | MNN fp16 | ONNX Runtime | LiteRT | OpenVINO | auto picks | auto / fastest |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in m.rows:
        cols = {name: [] for name in ("MNN fp32", "MNN fp16", "ONNX Runtime", "LiteRT", "OpenVINO")}
        for c in r.candidates:
            cols.setdefault(c.column, []).append(c.label)
        if r.auto_label:
            pick = f"{ENGINE_NAMES.get(r.auto['backend'], r.auto['backend'])} `{Path(r.auto['path']).name}`"
        else:
            pick = f"failed: {r.auto_error}"
        ratio = r.auto_ratio
        verdict = "—" if ratio is None else f"{ratio:.3f}"
        if r.remeasure is not None:
            verdict += (f" → {r.final_auto_ratio:.3f} re-measured head to head (medians "
                        f"{r.remeasure['ratio']:.3f})")
        if r.within(m.tolerance) is False:
            verdict += " **miss**"
        lines.append(f"| {r.model} | " + " | ".join(_cell(r, v) for v in cols.values()) + f" | {pick} | {verdict} |")
    lines += ["", f"auto within {m.tolerance:.0%} of the fastest: "
              f"{sum(1 for r in m.rows if r.within(m.tolerance))} of {len(m.rows)} models"
              + (f"; misses: {', '.join(r.model for r in m.misses)}" if m.misses else "") + "."]
    absent = sorted({k for r in m.rows for k, v in r.skipped.items() if v == "not installed"})
    if absent:
        lines.append(f"Not installed here: {', '.join(absent)}.")
    failed = {f"{r.model} {k}": v for r in m.rows for k, v in r.skipped.items() if v != "not installed"}
    if failed:
        lines.append("Could not run: " + "; ".join(f"{k} ({v})" for k, v in failed.items()) + ".")
    if m.unresolved:
        lines.append("Not measured: " + "; ".join(f"{k} ({v})" for k, v in m.unresolved.items()) + ".")
    lines.append("ONNX Runtime reads ONNX only: the MediaPipe models ship as .tflite with no ONNX beside them, "
                 "so their ONNX Runtime cell is empty (as it is for a user's `backend=\"auto\"`).")
    if not str(m.cpu.get("class", "")).startswith("x86-avx2"):
        lines.append(AVX2_NOTE)
    return "\n".join(lines) + "\n"


def write_matrix(m: EngineMatrix, out_dir: str | Path) -> dict[str, Path]:
    from edgepose.files import atomic_write_text

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"md": out / "engines.md", "json": out / "engines.json"}
    atomic_write_text(paths["md"], m.markdown())
    atomic_write_text(paths["json"], m.to_json())
    return paths


def run_engines_command(args) -> int:
    """`edgepose bench engines [models]`: the matrix as Markdown (or --json), engines.{md,json} in -o."""
    from .cli import pin_single_thread, timing_options

    pin_single_thread()
    models = args.models[1:] or (QUICK_MODELS if args.quick else DEFAULT_MODELS)
    matrix = run_engine_matrix(models, **timing_options(args))
    paths = write_matrix(matrix, args.output_dir)
    if args.json:
        print(matrix.to_json())
    else:
        print(matrix.markdown())
        print(f"Reports: {paths['md']}, {paths['json']}")
    return 0

