"""TFLite -> MNN in one call, for files that need no parity report: the runtime's pinned demo
models (reached through the `edgepose.model_builders` entry point, so the runtime never imports
build-time code) and the benchmarks' cached conversions. Sparse (DENSIFY) weights, which MNN
cannot read, are made dense first. `edgepose convert` is the checked path for users' models.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

from .mnn_native import convert_to_mnn
from .tflite_model import operator_counts


def tflite_to_mnn_file(source: str | Path, target: str | Path, *, fp16: bool, biz_code: str | None = None,
                       timeout: float = 900.0) -> Path:
    """Convert `source` (.tflite) to the MNN file `target` (written atomically), densifying if needed."""
    source, target = Path(source), Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="edgepose-tflite-mnn-") as tmp:
        if "DENSIFY" in operator_counts(source):
            from .tflite_densify import densify_tflite

            dense = Path(tmp) / f"{source.stem}.dense.tflite"
            densify_tflite(source, dense)
            source = dense
        convert_to_mnn(source, target, framework="TFLITE", fp16=fp16, biz_code=biz_code, timeout=timeout)
    return target
