"""MNN's own levers, measured against edgepose's MNN default (issue 13, item 5).

    edgepose bench levers                                   # BlazePose full, hand_landmark_full, 3 zoo models
    edgepose bench levers deeppose pose_landmark_full --rounds 9 --json

The baseline is what a Predictor runs today: `MNNBackend` on the FP16 file with edgepose's
defaults (Module API, session precision "high", Winograd level 1, memory/power "normal"). Every
lever changes one thing:

  session precision   normal | low | low_bf16 (baseline: high); and the FP32 file at high
  memory mode         low | high (runtime-manager config "memory"; baseline normal)
  power mode          low | high (config "power"; baseline normal)
  Module API          rearrange=True; shape_mutable=False; both (static shapes)
  session API         Interpreter + createSession (Session_Release mode), precision high
  runtime hints       WINOGRAD_MEMORY_LEVEL 3 (MNN's default); GEOMETRY_COMPUTE_MASK 0; MEM_ALLOCATOR_TYPE 1;
                      runtime mode Session_Memory_Cache
  converter           --optimizeLevel 2; --optimizePrefer 1 | 2; for TFLite sources --keepInputFormat=false
                      (NCHW input instead of the source's NHWC); a control file re-made with the defaults

Each case runs the same random input and is timed against its reference alone, in alternating
pairs (edgepose.benchmarks.timing.interleave with two cases: A B B A ...), reported as the median of
the per-pair ratios (< 1 is faster). Pairs last ~2 x target_ms, so on a shared machine the load
changes little within one, far less than within a round of 25 cases. The reference is the
baseline, except for converter flags: the file re-made with the converter's defaults (the cached
baseline file may come from another conversion route). `max_rel_diff` is the largest |output - baseline output| over the
largest |baseline output|, so a faster lever that changes the numbers shows it.

The Module / session runners here do what MNNBackend.run does (const input, forward, NC4HW4 ->
NCHW, read), so the `module replica` row (edgepose's settings through this file's runner) checks
that the runner itself costs what the backend costs.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .stats import paired_ratio, summarize
from .timing import interleave

log = logging.getLogger(__name__)

SCHEMA = "edgepose.bench.levers/1"
DEFAULT_MODELS = ("pose_landmark_full", "hand_landmark_full", "deeppose", "simdr_320", "tokenpose_direct")
QUICK_MODELS = ("hand_landmark_lite",)
BASELINE = "baseline (edgepose default)"
# MNN Interpreter::HintMode / SessionMode values (include/MNN/Interpreter.hpp, MNN 3.x)
HINT_MEM_ALLOCATOR_TYPE = 2
HINT_WINOGRAD_MEMORY_LEVEL = 3
HINT_GEOMETRY_COMPUTE_MASK = 4
SESSION_RELEASE = 1
SESSION_MEMORY_COLLECT, SESSION_MEMORY_CACHE = 10, 11
# MNN keeps hints on the CPU runtime that runtime managers of one configuration share, so a hint
# one lever sets would leak into every module loaded after it: each runner here sets all of them
# (MNN's defaults, with edgepose's Winograd level 1), the hint levers are loaded last, and a
# second baseline loaded after them shows whether anything leaked.
DEFAULT_HINTS = {HINT_WINOGRAD_MEMORY_LEVEL: 1, HINT_GEOMETRY_COMPUTE_MASK: 0xFFFF, HINT_MEM_ALLOCATOR_TYPE: 0}
# BackendConfig::MemoryMode / PowerMode: Normal 0, High 1, Low 2 (pymnn takes them as ints only)
MODES = {"normal": 0, "high": 1, "low": 2}
CONVERTER_CONTROL = "converter defaults (re-made)"
CONVERTER_LEVERS = {  # name -> extra mnnconvert flags (all with --fp16, as the baseline file)
    "converter defaults (re-made)": ["--optimizeLevel", "1", "--optimizePrefer", "0"],
    "converter --optimizeLevel 2": ["--optimizeLevel", "2"],
    "converter --optimizePrefer 1 (smallest)": ["--optimizePrefer", "1"],
    "converter --optimizePrefer 2 (fastest)": ["--optimizePrefer", "2"],
    "converter --optimizeLevel 2 --optimizePrefer 2": ["--optimizeLevel", "2", "--optimizePrefer", "2"],
}
TFLITE_ONLY = {"converter --keepInputFormat=false (NCHW input)": ["--keepInputFormat=false"]}


@dataclass
class Lever:
    name: str
    group: str
    run: Callable[[], Any]
    outputs: dict[str, np.ndarray]  # one run's outputs, for the accuracy figure
    note: str = ""


@dataclass
class LeverRow:
    """One model: each lever's samples and, timed in the same pairs of calls, its reference's."""

    model: str
    names: list[str]
    groups: dict[str, str]
    samples: dict[str, list[float]]
    diffs: dict[str, float | None]
    notes: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    reference: dict[str, str] = field(default_factory=dict)          # lever -> what it is compared with
    reference_samples: dict[str, list[float]] = field(default_factory=dict)

    def ratio(self, name: str) -> float:
        ref = self.reference_samples.get(name) or self.samples[self.reference.get(name, BASELINE)]
        return paired_ratio(self.samples[name], ref)

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "skipped": self.skipped, "levers": [
            {"name": n, "group": self.groups[n], "median_ms": summarize(self.samples[n]).median,
             "compared_with": self.reference.get(n, BASELINE), "ratio": self.ratio(n),
             "rel_spread": summarize(self.samples[n]).rel_spread, "max_rel_diff": self.diffs.get(n),
             "note": self.notes.get(n, ""), "samples": self.samples[n],
             "reference_samples": self.reference_samples.get(n)}
            for n in self.names]}


@dataclass
class LeverResult:
    rows: list[LeverRow]
    cpu: dict[str, Any]
    env: dict[str, Any]
    options: dict[str, Any]
    unresolved: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "cpu": self.cpu, "env": self.env, "options": self.options,
                "rows": [r.to_dict() for r in self.rows], "unresolved": self.unresolved}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def markdown(self) -> str:
        return levers_markdown(self)


# --- runners ----------------------------------------------------------------------------------
def _mnn():
    from edgepose._native import import_mnn

    return import_mnn()


def _input_array(base: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """The shared random NHWC/NCHW image in the layout `shape` asks for (same values)."""
    shape = tuple(shape)
    if base.shape == shape:
        return base
    if base.ndim == 4 and (base.shape[0], base.shape[3], base.shape[1], base.shape[2]) == shape:
        return np.ascontiguousarray(base.transpose(0, 3, 1, 2))
    if base.ndim == 4 and (base.shape[0], base.shape[2], base.shape[3], base.shape[1]) == shape:
        return np.ascontiguousarray(base.transpose(0, 2, 3, 1))
    raise ValueError(f"cannot lay out an input of shape {base.shape} as {shape}")


def module_runner(path: Path, base: np.ndarray, *, config: dict[str, Any] | None = None,
                  hints: dict[int, int] | None = None, mode: int = SESSION_MEMORY_COLLECT,
                  **load: Any) -> Callable[[], dict[str, np.ndarray]]:
    """The Module API the way MNNBackend drives it, with other runtime-manager config / hints / load options."""
    from edgepose._native import quiet_native_stdout
    from edgepose.backends.mnn import MNNBackend

    ref = MNNBackend(path)  # checks the file (structure + child run) and gives names and layouts
    MNN = _mnn()
    F = MNN.expr
    with quiet_native_stdout():
        rt = MNN.nn.create_runtime_manager(({"backend": "CPU", "numThread": 1, "precision": "high",
                                             **(config or {})},))
        for key, value in {**DEFAULT_HINTS, **(hints or {})}.items():
            rt.set_hint(key, value)
        rt.set_mode(mode)
    module = MNN.nn.load_module_from_file(str(path), list(ref.file_info.input_names), list(ref.file_info.output_names),
                                          runtime_manager=rt, **load)
    t = ref.inputs[0]
    x = _input_array(base, t.shape)
    fmt = F.NHWC if t.layout == "NHWC" else F.NCHW
    names = [o.name for o in ref.outputs]
    del ref

    def run() -> dict[str, np.ndarray]:
        outs = module.forward([F.const(x, list(x.shape), fmt)])
        if not isinstance(outs, (list, tuple)):
            outs = [outs]
        result = {}
        for name, var in zip(names, outs):
            if var.data_format == F.NC4HW4:
                var = F.convert(var, F.NCHW)
            result[name] = np.array(var.read(), dtype=np.float32, copy=True)
        return result

    run.keep = (rt, module)  # type: ignore[attr-defined]  # the runtime must outlive the module
    run()
    return run


def session_runner(path: Path, base: np.ndarray, *, config: dict[str, Any] | None = None) -> Callable[[], dict]:
    """The older Interpreter/Session API: copy in, runSession, copy every output to a host tensor."""
    from edgepose._native import quiet_native_stdout
    from edgepose.backends.mnn import MNNBackend

    MNNBackend(path)  # the same file checks as the backend
    MNN = _mnn()
    with quiet_native_stdout():
        interp = MNN.Interpreter(str(path))
        interp.setSessionMode(SESSION_RELEASE)
        interp.setSessionHint(HINT_WINOGRAD_MEMORY_LEVEL, 1)
        session = interp.createSession({"backend": "CPU", "numThread": 1, "precision": "high", **(config or {})})
    inp = interp.getSessionInput(session)
    x = _input_array(base, inp.getShape())
    host_in = MNN.Tensor(list(x.shape), MNN.Halide_Type_Float, x, inp.getDimensionType())
    outs = interp.getSessionOutputAll(session)
    hosts = {k: MNN.Tensor(v, v.getDimensionType()) for k, v in outs.items()}

    def run() -> dict[str, np.ndarray]:
        inp.copyFrom(host_in)
        interp.runSession(session)
        result = {}
        for k, v in outs.items():
            v.copyToHostTensor(hosts[k])
            result[k] = np.array(hosts[k].getNumpyData(), dtype=np.float32, copy=True)
        return result

    run.keep = (interp, session, host_in, hosts)  # type: ignore[attr-defined]
    run()
    return run


def reset_runtime() -> None:
    """Set MNN's shared CPU runtime (edgepose's configuration) back to the default hints and mode."""
    from edgepose._native import quiet_native_stdout

    MNN = _mnn()
    with quiet_native_stdout():
        rt = MNN.nn.create_runtime_manager(({"backend": "CPU", "numThread": 1, "precision": "high"},))
        for key, value in DEFAULT_HINTS.items():
            rt.set_hint(key, value)
        rt.set_mode(SESSION_MEMORY_COLLECT)


def backend_runner(path: Path, base: np.ndarray, **options: Any) -> Callable[[], dict]:
    from edgepose.backends.mnn import MNNBackend

    b = MNNBackend(path, **options)
    t = b.inputs[0]
    feeds = {t.name: _input_array(base, t.shape)}
    run = (lambda: b.run(feeds))
    run()
    return run


# --- converter files --------------------------------------------------------------------------
def converted(src: Path, framework: str, out_dir: Path, tag: str, flags: Sequence[str], biz_code: str | None) -> Path:
    """`src` converted with --fp16 and `flags` (edgepose.converters.mnn_native: a child process), cached."""
    from edgepose.converters.mnn_native import convert_to_mnn

    dst = out_dir / f"{src.stem}.{tag}.fp16.mnn"
    if not dst.is_file():
        convert_to_mnn(src, dst, framework=framework, fp16=True, biz_code=biz_code, extra_args=list(flags))
    return dst


def _tag(name: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in name.split(" ", 1)[1]).strip("_")[:60]


def _source(name: str, cache: Path):
    from .models_source import resolve_for
    from .variants import parse_variants

    return resolve_for(name, parse_variants(["mnn-fp32", "mnn-fp16", "ort-fp32", "tflite"]), cache=cache)


def _converter_input(source, out_dir: Path) -> tuple[Path, str] | None:
    arts = source.artifacts
    if ("tflite", "fp32") in arts:
        src = Path(arts[("tflite", "fp32")])
        from edgepose.converters.tflite_model import operator_counts

        if "DENSIFY" in operator_counts(src):
            from edgepose.converters.tflite_densify import densify_tflite

            dense = out_dir / f"{src.stem}.dense.tflite"
            if not dense.is_file():
                densify_tflite(src, dense)
            src = dense
        return src, "TFLITE"
    if ("onnx", "fp32") in arts:
        return Path(arts[("onnx", "fp32")]), "ONNX"
    return None


# --- the run ----------------------------------------------------------------------------------
def levers_for(name: str, cache: Path, base_seed: int = 0, converter: bool = True,
               only: Sequence[str] | None = None) -> tuple[list[Lever], dict[str, str]]:
    """The levers of one model, loaded and run once; `only`: names to keep (the baseline and the
    converter control always stay)."""
    source = _source(name, cache)
    reset_runtime()  # a previous model's hint levers must not reach this model's baseline
    fp16 = Path(source.artifacts[("mnn", "fp16")])
    fp32 = Path(source.artifacts[("mnn", "fp32")])
    from edgepose.backends.mnn import MNNBackend

    probe = MNNBackend(fp16)
    shape = tuple(d if isinstance(d, int) and d > 0 else 1 for d in probe.inputs[0].shape)
    del probe
    base = np.random.default_rng(base_seed).random(shape, dtype=np.float32)
    specs: list[tuple[str, str, Callable[[], Callable[[], Any]], str]] = [
        (BASELINE, "baseline", lambda: backend_runner(fp16, base), "MNNBackend, FP16 file, precision high, Winograd 1"),
        ("module replica (edgepose settings)", "control", lambda: module_runner(fp16, base), "this runner, same settings"),
        ("FP32 file", "weights", lambda: backend_runner(fp32, base), ""),
    ]
    for p in ("normal", "low", "low_bf16"):
        specs.append((f"precision {p}", "session precision", (lambda p=p: backend_runner(fp16, base, precision=p)), ""))
    for m in ("low", "high"):  # pymnn reads "memory"/"power" as ints only (a string is silently ignored)
        specs.append((f"memory {m}", "memory mode",
                      (lambda m=m: module_runner(fp16, base, config={"memory": MODES[m]})), ""))
    for m in ("low", "high"):
        specs.append((f"power {m}", "power mode",
                      (lambda m=m: module_runner(fp16, base, config={"power": MODES[m]})), ""))
    specs += [
        ("Module rearrange=True", "Module API", lambda: module_runner(fp16, base, rearrange=True), ""),
        ("Module shape_mutable=False", "Module API", lambda: module_runner(fp16, base, shape_mutable=False), ""),
        ("Module rearrange + static shapes", "Module API",
         lambda: module_runner(fp16, base, rearrange=True, shape_mutable=False), ""),
        ("session API", "API", lambda: session_runner(fp16, base), "Interpreter/createSession, Session_Release"),
    ]
    skipped: dict[str, str] = {}
    if converter:
        out_dir = cache / "levers" / f"{name}-{_short_sha(fp16)}"
        out_dir.mkdir(parents=True, exist_ok=True)
        conv = _converter_input(source, out_dir)
        biz = source.spec.to_json() if source.spec is not None else None
        if conv is None:
            skipped["converter"] = "no ONNX or TFLite source"
        else:
            src, framework = conv
            flags = dict(CONVERTER_LEVERS)
            if framework == "TFLITE":
                flags.update(TFLITE_ONLY)
            for lever, extra in flags.items():
                try:
                    path = converted(src, framework, out_dir, _tag(lever), extra, biz)
                except Exception as exc:  # noqa: BLE001 - a flag MNN refuses is a finding, not a crash
                    skipped[lever] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
                    continue
                specs.append((lever, "converter", (lambda path=path: backend_runner(path, base)),
                              " ".join(extra)))
    specs += [  # last: see DEFAULT_HINTS
        ("hint WINOGRAD_MEMORY_LEVEL 3", "runtime hint",
         lambda: module_runner(fp16, base, hints={HINT_WINOGRAD_MEMORY_LEVEL: 3}), "MNN's own default level"),
        ("hint GEOMETRY_COMPUTE_MASK 0", "runtime hint",
         lambda: module_runner(fp16, base, hints={HINT_GEOMETRY_COMPUTE_MASK: 0}), ""),
        ("hint MEM_ALLOCATOR_TYPE 1", "runtime hint",
         lambda: module_runner(fp16, base, hints={HINT_MEM_ALLOCATOR_TYPE: 1}), ""),
        ("mode Session_Memory_Cache", "runtime hint", lambda: module_runner(fp16, base, mode=SESSION_MEMORY_CACHE), ""),
        ("baseline, re-opened last", "control", lambda: backend_runner(fp16, base), "checks that no hint leaked"),
    ]
    if only is not None:
        keep = set(only) | {BASELINE, CONVERTER_CONTROL}
        specs = [sp for sp in specs if sp[0] in keep]
    levers = []
    for lname, group, make, note in specs:
        try:
            run = make()
            levers.append(Lever(lname, group, run, run(), note))
        except Exception as exc:  # noqa: BLE001 - a lever MNN cannot run is reported, the rest go on
            skipped[lname] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    return levers, skipped


def _short_sha(path: Path) -> str:
    from edgepose.files import sha256_file

    return sha256_file(path)[:12]


def _max_rel_diff(out: dict[str, np.ndarray], ref: dict[str, np.ndarray]) -> float | None:
    worst = 0.0
    refs = list(ref.values())
    for i, (k, a) in enumerate(out.items()):
        b = ref.get(k, refs[i] if i < len(refs) else None)
        if b is None:
            return None
        a = np.asarray(a, np.float32)
        if a.shape != b.shape:
            try:
                a = _input_array(a, b.shape)
            except ValueError:
                if a.size != b.size:
                    return None
                a = a.reshape(b.shape)
        scale = float(np.max(np.abs(b))) or 1.0
        worst = max(worst, float(np.max(np.abs(a - b))) / scale)
    return worst


def measure_levers(name: str, *, cache: Path, rounds: int, warmup: int, target_ms: float,
                   converter: bool = True, paired: bool = True, only: Sequence[str] | None = None) -> LeverRow:
    """paired=True: each lever is timed against its reference alone, A B B A ..., `rounds` pairs (a pair
    lasts ~2 x target_ms, so load changes between the two are small); False: all levers in one interleave."""
    levers, skipped = levers_for(name, cache, converter=converter, only=only)
    by_name = {lv.name: lv for lv in levers}
    if BASELINE not in by_name:
        raise RuntimeError(f"{name}: the baseline could not run ({skipped.get(BASELINE)})")
    reference = {lv.name: (CONVERTER_CONTROL if lv.group == "converter" and lv.name != CONVERTER_CONTROL
                           and CONVERTER_CONTROL in by_name else BASELINE) for lv in levers}
    samples, ref_samples = {}, {}
    if paired:
        base = interleave({BASELINE: by_name[BASELINE].run}, rounds=rounds, warmup=warmup, target_ms=target_ms)
        samples[BASELINE] = base[BASELINE].samples
        for lv in levers:
            if lv.name == BASELINE:
                continue
            ref = reference[lv.name]
            t = interleave({lv.name: lv.run, f"{ref} ": by_name[ref].run}, rounds=rounds, warmup=warmup,
                           target_ms=target_ms)
            samples[lv.name], ref_samples[lv.name] = t[lv.name].samples, t[f"{ref} "].samples
    else:
        timings = interleave({lv.name: lv.run for lv in levers}, rounds=rounds, warmup=warmup, target_ms=target_ms)
        samples = {k: t.samples for k, t in timings.items()}
    out_ref = by_name[BASELINE].outputs
    return LeverRow(name, [lv.name for lv in levers], {lv.name: lv.group for lv in levers}, samples,
                    {lv.name: _max_rel_diff(lv.outputs, by_name[reference[lv.name]].outputs if lv.group == "converter"
                                            else out_ref) for lv in levers},
                    {lv.name: lv.note for lv in levers if lv.note}, skipped, reference, ref_samples)


def run_levers(models: Sequence[str] | None = None, *, rounds: int = 11, warmup: int = 3, target_ms: float = 100.0,
               cache: Path | None = None, converter: bool = True, paired: bool = True,
               only: Sequence[str] | None = None, progress: bool = False) -> LeverResult:
    from edgepose.cpu import cpu_info

    from .harness import _progress, default_cache, environment, record_end_load

    cache = Path(cache) if cache else default_cache()
    names = list(models or DEFAULT_MODELS)
    env = environment()
    bar = _progress(progress)
    bar.start(total=len(names), desc="MNN levers (models)")
    rows, unresolved = [], {}
    for name in names:
        try:
            rows.append(measure_levers(name, cache=cache, rounds=rounds, warmup=warmup, target_ms=target_ms,
                                       converter=converter, paired=paired, only=only))
        except Exception as exc:  # noqa: BLE001 - one model that cannot be prepared does not sink the rest
            log.warning("%s: %s: %s", name, type(exc).__name__, exc)
            unresolved[name] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
        bar.update(1)
    bar.close()
    record_end_load(env)
    options = {"models": names, "rounds": rounds, "warmup": warmup, "target_ms": target_ms, "paired": paired, "only": list(only) if only else None,
               "mnn": env["versions"].get("MNN")}
    return LeverResult(rows, cpu_info().to_dict(), env, options, unresolved)


# --- report -----------------------------------------------------------------------------------
def levers_markdown(res: LeverResult) -> str:
    from .engine_matrix import AVX2_NOTE, cpu_line

    o, env = res.options, res.env
    fmt = (lambda la: "/".join(f"{v:.2f}" for v in la) if la else "?")
    models = [r.model for r in res.rows]
    how = (f"each lever timed against its reference alone, {o['rounds']} alternating pairs (A B B A ...) of "
           f"~{o['target_ms']:g} ms samples" if o.get("paired", True) else f"{o['rounds']} interleaved rounds")
    lines = [f"MNN {o.get('mnn')} levers on {cpu_line(res.cpu)}; one thread; {how}. Figure: lever / reference as the "
             f"median of per-pair ratios (< 1.00 is faster); the reference is edgepose's default (MNNBackend, FP16 "
             f"file, precision high, Winograd level 1; its ms in the first row), for converter flags the file re-made "
             f"with the converter's defaults. {env.get('time', '')}, load average "
             f"{fmt(env.get('loadavg_start'))} at the start, {fmt(env.get('loadavg_end'))} at the end.",
             "", "| lever | group | " + " | ".join(models) + " | max rel. output diff |",
             "|---|---|" + "---|" * len(models) + "---|"]
    names: list[str] = []
    for r in res.rows:
        names += [n for n in r.names if n not in names]
    groups = {n: g for r in res.rows for n, g in r.groups.items()}
    for n in names:
        cells = []
        diffs = []
        for r in res.rows:
            if n not in r.samples:
                cells.append("—")
                continue
            if n == BASELINE:
                cells.append(f"{summarize(r.samples[n]).median:.2f} ms")
            else:
                cells.append(f"{r.ratio(n):.3f}")
            d = r.diffs.get(n)
            if d is not None:
                diffs.append(d)
        diff = f"{max(diffs):.1e}" if diffs else "—"
        lines.append(f"| {n} | {groups[n]} | " + " | ".join(cells) + f" | {diff} |")
    skipped = {f"{r.model}: {k}": v for r in res.rows for k, v in r.skipped.items()}
    if skipped:
        lines += ["", "Not measured: " + "; ".join(f"{k} ({v})" for k, v in skipped.items()) + "."]
    if res.unresolved:
        lines.append("Models not measured: " + "; ".join(f"{k} ({v})" for k, v in res.unresolved.items()) + ".")
    if not str(res.cpu.get("class", "")).startswith("x86-avx2"):
        lines.append(AVX2_NOTE)
    return "\n".join(lines) + "\n"


def run_levers_command(args) -> int:
    """`edgepose bench levers [models]`: Markdown (or --json) to stdout, levers.{md,json} in -o."""
    from edgepose.files import atomic_write_text

    from .cli import pin_single_thread, timing_options

    pin_single_thread()
    models = args.models[1:] or (QUICK_MODELS if args.quick else DEFAULT_MODELS)
    res = run_levers(models, **timing_options(args))
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "levers.md", res.markdown())
    atomic_write_text(out / "levers.json", res.to_json())
    print(res.to_json() if args.json else res.markdown())
    return 0
