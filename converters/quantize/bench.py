"""INT8 variants of a model and rows for a table like seed_figures.md's table C (FP32 vs INT8).

    from edgepose.converters.quantize.bench import int8_variants, table_c_rows, format_table_c
    report = int8_variants("deeppose", output_dir="out/")          # zoo name, .onnx or .tflite
    print(format_table_c(table_c_rows(report)))

Zoo models have random weights unless trained ones are given, so their INT8 accuracy is
recorded but not enforced (strict=False): the speed columns are the point there.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from .api import Int8Options, Int8Report, quantize_int8

TABLE_C_COLUMNS = ("model", "engine", "method", "fp32_ms", "int8_ms", "speedup", "mean_px_256", "max_px_256",
                   "pck", "status")


def int8_variants(model: str | Path, *, output_dir: str | Path, calib: Any = None,
                  fp32: Mapping[str, str | Path] | None = None, spec=None, preset: str | None = None,
                  options: Int8Options | None = None, engines: Sequence[str] = ("mnn", "onnxruntime")) -> Int8Report:
    """FP32 files (converted here unless `fp32` is given) -> INT8 per engine, with speed and accuracy.

    model    a zoo name, or an .onnx / .tflite file (preset= for a TFLite model without a card).
    calib    default: the pinned photos that fit the model ("pinned:hand" for hand models).
    """
    from ..pipeline import convert
    from .cli import fp32_artifacts_from_report
    from .samples import kind_for

    out = Path(output_dir)
    if fp32 is None:
        conv = convert(model, output_dir=out, spec=spec, preset=preset, strict=False)
        fp32 = fp32_artifacts_from_report(conv, model if isinstance(model, (str, Path)) and Path(model).is_file()
                                          else None)
        stem = conv.stem
        name = (conv.spec or {}).get("name") or stem
    else:
        stem = Path(next(iter(fp32.values()))).name.split(".")[0]
        name = stem
    opts = options or Int8Options(engines=tuple(engines), strict=False, progress=False)
    return quantize_int8(fp32, calib=calib or f"pinned:{kind_for(str(name))}", spec=spec, output_dir=out,
                         stem=stem, options=opts)


def table_c_rows(report: Int8Report) -> list[dict[str, Any]]:
    """One row per engine: FP32 and INT8 ms (1 thread, interleaved medians), speed-up, keypoint error."""
    rows = []
    for e in report.engines:
        acc, sp = e.accuracy, e.speed
        rows.append({
            "model": report.model, "engine": e.engine, "method": e.details.get("method"),
            "fp32_ms": sp.fp32_ms if sp else None, "int8_ms": sp.int8_ms if sp else None,
            "speedup": sp.speedup if sp else None,
            "mean_px_256": acc.mean_px_256 if acc else None, "max_px_256": acc.max_px_256 if acc else None,
            "pck": acc.pck if acc else None, "status": e.status if not e.error or e.status != "failed" else
            f"failed: {e.error}",
        })
    return rows


def format_table_c(rows: Sequence[Mapping[str, Any]]) -> str:
    """Markdown table in the shape of table C (FP32 | INT8 | speed-up | accuracy)."""
    head = ("| model | engine | method | FP32 ms | INT8 ms | speed-up | INT8 vs FP32 mean px @256 | max px | "
            "PCK@0.05 | status |")
    lines = [head, "|" + "---|" * 10]
    for r in rows:
        def f(key: str, digits: int = 2, suffix: str = "") -> str:
            v = r.get(key)
            return f"{v:.{digits}f}{suffix}" if isinstance(v, (int, float)) else "-"
        lines.append(f"| {r['model']} | {r['engine']} | {r.get('method') or '-'} | {f('fp32_ms')} | {f('int8_ms')} | "
                     f"{f('speedup', 2, 'x')} | {f('mean_px_256')} | {f('max_px_256', 1)} | {f('pck', 3)} | "
                     f"{r['status']} |")
    return "\n".join(lines)
