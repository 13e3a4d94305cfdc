"""Measure which TFLite builtin operators the installed MNN converter refuses.

    python -m edgepose.converters.measure_tflite_ops [--jobs 8]

Builds one tiny model per BuiltinOperator code (one op, a float input and two constant inputs,
enough for MNN's converter to look the op up), converts each with MNN in its own child process
(mnn_native.run_native) and prints the codes MNN refused with `NOT_SUPPORTED_OP` and the ones it
took, as a Python set to paste into tflite_ops.MNN_BUILTINS. "Took" means only that MNN has a
translator for the code: whether the translation is right is what the parity checks measure.
"""
from __future__ import annotations

import argparse
import re
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

import numpy as np

from edgepose.errors import ConversionError

from . import mnn_native
from . import tflite_model as tm

_REFUSED = re.compile(r"NOT_SUPPORTED_OP: \[ (\w+) \]")


def chain_model(ops: Sequence[str], *, shape: Sequence[int] = (1, 4, 4, 1), constants: int = 0) -> bytes:
    """A .tflite: builtin `ops` (names) applied one after another to a float32 input of `shape`.

    `constants` extra zero-filled constant inputs (same shape) are given to every op.
    """
    S = tm.schema()
    model = S.ModelT()
    model.version = 3
    codes = {}
    for name in ops:
        if name not in codes:
            code = getattr(S.BuiltinOperator, name)
            oc = S.OperatorCodeT()
            oc.builtinCode, oc.deprecatedBuiltinCode, oc.version = code, min(code, 127), 1
            codes[name] = len(codes)
            model.operatorCodes = [*(model.operatorCodes or []), oc]
    model.buffers = [S.BufferT()]
    tensors = []

    def tensor(name: str, data: np.ndarray | None = None) -> int:
        t = S.TensorT()
        t.name, t.shape, t.type = name, np.asarray(shape, np.int32), S.TensorType.FLOAT32
        model.buffers.append(S.BufferT(data=None if data is None else np.frombuffer(data.tobytes(), np.uint8)))
        t.buffer = len(model.buffers) - 1
        tensors.append(t)
        return len(tensors) - 1

    zeros = np.zeros(shape, np.float32)
    sub = S.SubGraphT()
    sub.inputs = [tensor("input")]
    current, sub.operators = sub.inputs[0], []
    for i, name in enumerate(ops):
        op = S.OperatorT()
        op.opcodeIndex = codes[name]
        op.inputs = [current] + [tensor(f"const_{i}_{k}", zeros) for k in range(constants)]
        current = tensor(f"{name.lower()}_{i}")
        op.outputs = [current]
        sub.operators.append(op)
    sub.outputs, sub.tensors = [current], tensors
    model.subgraphs = [sub]
    return tm.model_bytes(model)


def probe(name: str, folder: Path) -> bool:
    """True if MNN's converter has a translator for builtin `name` (it did not log NOT_SUPPORTED_OP)."""
    src = folder / f"{name}.tflite"
    src.write_bytes(chain_model([name], constants=2))
    argv = ["mnnconvert", "-f", "TFLITE", "--modelFile", str(src), "--MNNModel", str(folder / f"{name}.mnn")]
    try:
        log = mnn_native.run_native("mnnconvert", argv, timeout=120).log
    except ConversionError as exc:  # a crash while translating a nonsense op: the translator exists
        log = getattr(exc, "log", str(exc))
    return name not in _REFUSED.findall(log)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=8)
    args = parser.parse_args(argv)
    S = tm.schema()
    names = sorted(k for k, v in vars(S.BuiltinOperator).items()
                   if not k.startswith("_") and isinstance(v, int) and k not in ("CUSTOM", "DELEGATE"))
    with tempfile.TemporaryDirectory(prefix="edgepose-tflite-ops-") as tmp, ThreadPoolExecutor(args.jobs) as pool:
        took = dict(zip(names, pool.map(lambda n: probe(n, Path(tmp)), names)))
    from .tflite_ops import mnn_version

    print(f"# MNN {mnn_version()}: {sum(took.values())} of {len(took)} builtin codes taken")
    print("refused =", sorted(n for n, ok in took.items() if not ok))
    print("MNN_BUILTINS = frozenset(" + repr(sorted(n for n, ok in took.items() if ok)) + ")")
    return 0


if __name__ == "__main__":
    sys.exit(main())
