"""A fixed reference workload, timed in the same rounds as the models, to normalise them.

A model's time divided by the reference's time in the same round is a figure that travels
between machines better than milliseconds: a faster or busier CPU speeds up or slows down
both. The workload is a stack of 1x1 convolutions (a plain GEMM, no Winograd shortcut), built
from fixed numbers, run single-threaded by MNN (the canonical reference, `ref-mnn`) and by
ONNX Runtime (`ref-ort`, reported for information).
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

REF_CHANNELS = 256
REF_SIZE = 28
REF_LAYERS = 8
REF_VERSION = "1"
# MACs of the workload: layers x H x W x Cin x Cout.
REF_MACS = REF_LAYERS * REF_SIZE * REF_SIZE * REF_CHANNELS * REF_CHANNELS
REFERENCE_KEYS = ("ref-mnn", "ref-ort")
CANONICAL_REFERENCE = "ref-mnn"


def build_reference_onnx(dst: Path) -> Path:
    """Write the reference graph: input (1, 256, 28, 28) -> 8 x (Conv 1x1 256->256, Relu)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(1234)
    nodes, inits = [], []
    prev = "input"
    for i in range(REF_LAYERS):
        w = (rng.standard_normal((REF_CHANNELS, REF_CHANNELS, 1, 1)) * np.sqrt(2.0 / REF_CHANNELS)).astype(np.float32)
        b = np.zeros(REF_CHANNELS, np.float32)
        inits += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(b, f"b{i}")]
        nodes.append(helper.make_node("Conv", [prev, f"w{i}", f"b{i}"], [f"c{i}"], kernel_shape=[1, 1]))
        out = "output" if i == REF_LAYERS - 1 else f"r{i}"
        nodes.append(helper.make_node("Relu", [f"c{i}"], [out]))
        prev = out
    shape = [1, REF_CHANNELS, REF_SIZE, REF_SIZE]
    graph = helper.make_graph(nodes, "edgepose_reference",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, shape)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="edgepose.benchmarks")
    model.ir_version = 8
    onnx.checker.check_model(model)
    dst.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(dst))
    return dst


def reference_files(cache: Path) -> dict[str, Path]:
    """The reference as ONNX and MNN (FP32) files, built once into the cache."""
    from edgepose.converters.mnn_native import convert_to_mnn

    root = Path(cache) / "reference"
    onnx_path = root / f"ref_conv1x1_v{REF_VERSION}.onnx"
    mnn_path = onnx_path.with_suffix(".mnn")
    if not onnx_path.is_file():
        build_reference_onnx(onnx_path)
    if not mnn_path.is_file():
        convert_to_mnn(onnx_path, mnn_path, framework="ONNX", fp16=False)
    return {"ref-ort": onnx_path, "ref-mnn": mnn_path}


def reference_callables(cache: Path, *, threads: int = 1) -> dict[str, object]:
    """{"ref-mnn": fn, "ref-ort": fn}: zero-argument single-thread runs of the reference."""
    from edgepose.backends import open_backend

    files = reference_files(cache)
    x = np.random.default_rng(0).random((1, REF_CHANNELS, REF_SIZE, REF_SIZE), dtype=np.float32)
    out = {}
    for key, path in files.items():
        try:
            backend = open_backend(path, "mnn" if key == "ref-mnn" else "onnxruntime", threads=threads)
        except Exception as exc:  # noqa: BLE001 - ORT is optional; the MNN reference is required
            if key == CANONICAL_REFERENCE:
                raise
            log.warning("reference %s unavailable: %s", key, exc)
            continue
        feeds = {"input": x}
        out[key] = (lambda b=backend: b.run(feeds))
    return out
