"""Why an engine's INT8 file is not faster than its FP32 file (measured here; see the issue-7 report)."""
from __future__ import annotations

EXPLANATIONS = {
    "mnn": "MNN INT8 is not faster than FP32 here (x{speedup:.2f})",
    "onnxruntime": "ONNX Runtime INT8 is not faster than FP32 here (x{speedup:.2f})",
}


def explanation(engine: str, speedup: float) -> str:
    return EXPLANATIONS.get(engine, "{engine} INT8 is not faster (x{speedup:.2f})").format(engine=engine, speedup=speedup)
