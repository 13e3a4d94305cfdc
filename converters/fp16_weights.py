"""Weights rounded to FP16 before MNN stores them, so `--fp16` rounds instead of truncating.

Why: MNN's converter (`--fp16`, SaveHalfFloat.cpp) casts convolution weights and float Const
blobs with `half_float::half(w)` under its library's default rounding style, which truncates
toward zero. Truncation is biased: every weight shrinks by half an FP16 step on average, and in deep
nets with realistic BatchNorm statistics (folded into the weights) the bias adds up layer after layer
(measured here: an EfficientNet-B0-style net at cosine 0.9976 / max rel 0.12 against FP32;
MobileNetV3-Small-style 0.9990 / 0.048). Rounding to nearest is unbiased (0.999993 / 3.9e-3 and
0.999997 / 2.0e-3 on the same nets).

How: the FP16 stage converts a copy of its source in which every float weight MNN will store in
FP16 already holds an FP16 value (rounded to nearest even, clipped to +-65504, as MNN clips).
Truncating a value FP16 can represent is exact, so the `.fp16.mnn` file ends up holding the
correctly rounded weights. What MNN keeps in FP32 is left untouched: biases, normalisation
parameters (BatchNormalization, LayerNormalization, InstanceNormalization), PRelu slopes.

One MNN transformation would undo it: folding a BatchNormalization into the Conv before it
computes new weights after our rounding. So the ONNX copy has such pairs folded first (exactly
MNN's fold: w * gamma / sqrt(var + eps), bias (b - mean) * gamma / sqrt(var + eps) + beta), and the
folded weights rounded. Other constants MNN computes itself (e.g. the 1/6 of its HardSwish) are
beyond reach and still truncate; on the nets above they cost <= 5.5e-4 relative.
"""
from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from edgepose.errors import ConversionError

log = logging.getLogger(__name__)

FP16_MAX = 65504.0

# ONNX inputs MNN keeps in FP32 (op type -> input positions): biases and normalisation parameters.
_ONNX_KEEP_FP32 = {
    "Conv": {2}, "ConvTranspose": {2}, "Gemm": {2},
    "BatchNormalization": {1, 2, 3, 4}, "LayerNormalization": {1, 2}, "InstanceNormalization": {1, 2},
    "PRelu": {1},
}
# TFLite: bias inputs and PRELU's alpha.
_TFLITE_KEEP_FP32 = {"CONV_2D": {2}, "DEPTHWISE_CONV_2D": {2}, "FULLY_CONNECTED": {2}, "TRANSPOSE_CONV": {3},
                     "CONV_3D": {2}, "PRELU": {1}}


def round_to_fp16(values: np.ndarray) -> np.ndarray:
    """float32 values rounded to the nearest FP16 value (ties to even), as float32; clipped to +-65504."""
    a = np.asarray(values, np.float32)
    return np.clip(a, -FP16_MAX, FP16_MAX).astype(np.float16).astype(np.float32)


class _Stats:
    def __init__(self) -> None:
        self.tensors = 0
        self.values = 0
        self.changed = 0
        self.kept_fp32 = 0

    def add(self, before: np.ndarray, after: np.ndarray) -> None:
        self.tensors += 1
        self.values += before.size
        self.changed += int(np.count_nonzero(before != after))

    def details(self, **extra: Any) -> dict[str, Any]:
        return {"fp16_weights": "rounded to nearest before MNN's truncating cast",
                "rounded_tensors": self.tensors, "rounded_values": self.values,
                "values_changed_by_rounding": self.changed, "tensors_kept_fp32": self.kept_fp32, **extra}


# --- ONNX -----------------------------------------------------------------------------------------------
def round_onnx_weights(src: str | Path, dst: str | Path) -> dict[str, Any]:
    """Write `dst`: the ONNX model at `src` with Conv+BatchNormalization pairs folded and every float
    weight MNN stores in FP16 rounded to an FP16 value. Returns counts for the report."""
    import onnx
    from onnx import numpy_helper

    src, dst = Path(src), Path(dst)
    try:
        model = onnx.load(str(src))
    except Exception as exc:  # noqa: BLE001 - protobuf/IO errors
        raise ConversionError(f"cannot read {src.name} to round its weights to FP16: {exc}") from None
    folded = fold_conv_batchnorm(model)
    keep = _onnx_fp32_inputs(model.graph)
    stats = _Stats()
    for init in model.graph.initializer:
        if init.data_type != onnx.TensorProto.FLOAT:
            continue
        if init.name in keep:
            stats.kept_fp32 += 1
            continue
        before = numpy_helper.to_array(init)
        after = round_to_fp16(before)
        stats.add(before, after)
        init.CopyFrom(numpy_helper.from_array(after, init.name))
    for node in model.graph.node:  # float tensors of Constant nodes become MNN Const blobs too
        if node.op_type != "Constant":
            continue
        for attr in node.attribute:
            if attr.name == "value" and attr.t.data_type == onnx.TensorProto.FLOAT:
                if any(o in keep for o in node.output):
                    stats.kept_fp32 += 1
                    continue
                before = numpy_helper.to_array(attr.t)
                after = round_to_fp16(before)
                stats.add(before, after)
                attr.t.CopyFrom(numpy_helper.from_array(after, attr.t.name))
    _save_onnx(model, dst)
    return stats.details(conv_batchnorm_folded=folded)


def _onnx_fp32_inputs(graph) -> set[str]:
    """Names read at an input MNN keeps in FP32 (a name used both ways stays FP32: never worse)."""
    keep: set[str] = set()
    for node in graph.node:
        for i in _ONNX_KEEP_FP32.get(node.op_type, ()):
            if i < len(node.input) and node.input[i]:
                keep.add(node.input[i])
    return keep


def fold_conv_batchnorm(model) -> int:
    """Fold each BatchNormalization that only a Conv/ConvTranspose feeds into that layer, in place.

    Only where the layer's weights, bias and the BatchNormalization's parameters are initializers and
    the layer's output has no other reader nor is a graph output. Returns how many were folded.
    """
    from onnx import numpy_helper

    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    readers = Counter(name for node in graph.node for name in node.input)
    graph_outputs = {o.name for o in graph.output}
    producer = {out: node for node in graph.node for out in node.output}
    folded, drop = 0, []
    for bn in graph.node:
        if bn.op_type != "BatchNormalization" or len(bn.output) != 1 or len(bn.input) < 5:
            continue
        conv = producer.get(bn.input[0])
        if conv is None or conv.op_type not in ("Conv", "ConvTranspose") or len(conv.output) != 1:
            continue
        if readers[conv.output[0]] != 1 or conv.output[0] in graph_outputs:
            continue
        names = list(bn.input[1:5]) + [conv.input[1]] + ([conv.input[2]] if len(conv.input) > 2 and conv.input[2] else [])
        if not all(n in inits for n in names) or readers[conv.input[1]] != 1:
            continue
        if len(conv.input) > 2 and conv.input[2] and readers[conv.input[2]] != 1:
            continue
        gamma, beta, mean, var = (numpy_helper.to_array(inits[n]).astype(np.float64) for n in bn.input[1:5])
        eps = next((a.f for a in bn.attribute if a.name == "epsilon"), 1e-5)
        w = numpy_helper.to_array(inits[conv.input[1]])
        if w.dtype != np.float32:
            continue
        scale = gamma / np.sqrt(var + eps)
        group = next((a.i for a in conv.attribute if a.name == "group"), 1)
        wd = w.astype(np.float64)
        if conv.op_type == "Conv":
            wd = wd * scale.reshape((-1,) + (1,) * (w.ndim - 1))
        else:  # ConvTranspose weight: (C_in, C_out / group, k...); output channel g * (C_out/group) + j
            per = w.shape[1]
            wd = (wd.reshape((group, w.shape[0] // group, per) + w.shape[2:])
                  * scale.reshape((group, 1, per) + (1,) * (w.ndim - 2))).reshape(w.shape)
        b = (numpy_helper.to_array(inits[conv.input[2]]).astype(np.float64)
             if len(conv.input) > 2 and conv.input[2] else np.zeros_like(mean))
        new_b = (b - mean) * scale + beta
        inits[conv.input[1]].CopyFrom(numpy_helper.from_array(wd.astype(np.float32), conv.input[1]))
        bias_name = conv.input[2] if len(conv.input) > 2 and conv.input[2] else _unique(graph, conv.output[0] + "_bn_bias")
        tensor = numpy_helper.from_array(new_b.astype(np.float32), bias_name)
        if bias_name in inits:
            inits[bias_name].CopyFrom(tensor)
        else:
            graph.initializer.append(tensor)
            inits[bias_name] = graph.initializer[-1]
            while len(conv.input) < 3:
                conv.input.append("")
            conv.input[2] = bias_name
        conv.output[0] = bn.output[0]
        drop.append(bn)
        folded += 1
    for bn in drop:
        graph.node.remove(bn)
    if drop:  # BatchNormalization parameters nobody reads any more
        used = {name for node in graph.node for name in node.input}
        for init in [i for i in graph.initializer if i.name not in used]:
            graph.initializer.remove(init)
    return folded


def _unique(graph, hint: str) -> str:
    taken = {i.name for i in graph.initializer} | {o for n in graph.node for o in n.output} | {
        i.name for i in graph.input}
    name, k = hint, 1
    while name in taken:
        name, k = f"{hint}_{k}", k + 1
    return name


def _save_onnx(model, dst: Path) -> None:
    import onnx

    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        size = model.ByteSize()
    except Exception:  # noqa: BLE001 - protobuf refuses to size > 2 GB messages
        size = 1 << 31
    if size < 1_900_000_000:
        onnx.save(model, str(dst))
    else:  # beyond protobuf's 2 GB limit: weights beside the graph, as the source had them
        onnx.save(model, str(dst), save_as_external_data=True, all_tensors_to_one_file=True,
                  location=dst.name + ".data")


# --- TFLite -----------------------------------------------------------------------------------------------
def round_tflite_weights(src: str | Path, dst: str | Path) -> dict[str, Any]:
    """Write `dst`: the TFLite model at `src` with every float32 constant MNN stores in FP16 rounded to an
    FP16 value (FP16-stored weights behind DEQUANTIZE already are). Returns counts for the report."""
    from . import tflite_model as tm

    model = tm.load_model(src)
    S = tm.schema()
    names = [tm.opcode_name(oc) for oc in model.operatorCodes or ()]
    float32 = S.TensorType.FLOAT32
    stats = _Stats()
    keep: set[int] = set()  # buffers read as a bias / PRELU alpha anywhere stay FP32
    for sub in model.subgraphs or ():
        for op in sub.operators or ():
            for i in _TFLITE_KEEP_FP32.get(names[op.opcodeIndex], ()):
                if op.inputs is not None and i < len(op.inputs) and op.inputs[i] >= 0:
                    keep.add(int(sub.tensors[int(op.inputs[i])].buffer))
    done: set[int] = set()
    for sub in model.subgraphs or ():
        for tensor in sub.tensors or ():
            if tensor.type != float32 or not tensor.buffer or tensor.buffer in done:
                continue
            done.add(tensor.buffer)
            buf = model.buffers[tensor.buffer]
            if buf.data is None or len(buf.data) == 0:
                continue
            if tensor.buffer in keep:
                stats.kept_fp32 += 1
                continue
            before = np.frombuffer(np.asarray(buf.data, np.uint8).tobytes(), "<f4")
            after = round_to_fp16(before).astype("<f4")
            stats.add(before, after)
            buf.data = np.frombuffer(after.tobytes(), np.uint8).copy()
    data = tm.model_bytes(model)
    Path(dst).write_bytes(data)
    return stats.details()
