"""Where ONNX Runtime's int8 kernels saturate on x86 CPUs without VNNI, emulated in numpy on any CPU.

Without VNNI (AVX2 and AVX-512 without VNNI), MLAS multiplies the uint8 activations by the int8
weights with `vpmaddubsw`: two neighbouring products are summed into an int16 with saturation
(2 x 255 x 127 = 64770 > 32767), then widened (`vpmaddwd`) and accumulated in int32. The pairs are
neighbours along the GEMM depth K, ordered (kernel position, input channel): the ConvSym kernel
(`ConvSymKernelAvx2.S`, `MultiplyAccumulateRowAvx2`) packs 4 input channels per kernel position
(`MlasConvSymPackW`), the QGEMM path (`QgemmU8S8KernelAvx2`) runs on an NHWC im2col whose filter
QLinearConv reorders to K = kernel position x input channel. The raw uint8 codes are multiplied
(the zero point is corrected afterwards), so inputs with a mid-range zero point (residual streams,
linear bottlenecks, the normalised image) saturate most. Depthwise convolutions widen to 32 bits
first (`vpmovzxbd`/`vpmovsxbd` + `vpmaddwd`) and cannot saturate. VNNI (`vpdpbusd`) and AMX
accumulate in int32: nothing saturates there.

int8 activations (S8S8) fare no better: on x86 ONNX Runtime turns their Q/DQ pairs into uint8 ones
(code + 128, QDQS8ToU8Transformer) and runs the same U8S8 kernels; they are analysed that way.

`analyse(qdq_model, tensors)` runs the QDQ model (ONNX Runtime, graph optimisations off, so the
uint8 codes are the reference ones), rebuilds each Conv / Gemm / MatMul's uint8 input and int8
weights, forms every pair sum and reports per layer how many saturate and how far that moves the
layer's output, in output quantisation steps. Checked against the real kernels under QEMU's
AVX2-only EPYC-Rome model (converters/quantize/README.md).
"""
from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

INT16_MIN, INT16_MAX = -32768, 32767
_CHUNK = 1 << 22  # pair sums formed per step (elements)


@dataclass
class LayerSaturation:
    node: str               # the float Conv / Gemm / MatMul node of the QDQ graph
    op: str
    weight: str             # its float weight's name (what a reduce_range override names)
    axis: int               # the weight's per-channel axis
    pairs: int              # pair sums formed over the crops
    saturated: int          # of them outside int16
    max_pair: int           # largest |pair sum| seen (32767 is the limit)
    max_error_steps: float  # largest change of one output value, in output quantisation steps
    mean_error_steps: float  # mean change over all output values
    channel_max_pair: tuple[int, ...] = ()  # largest |pair sum| per output channel (along `axis`)

    @property
    def fraction(self) -> float:
        return self.saturated / self.pairs if self.pairs else 0.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("channel_max_pair")
        return {**d, "fraction": self.fraction}


def analyse(model: str | Path, tensors: np.ndarray, *, input_name: str | None = None) -> list[LayerSaturation]:
    """Per Conv / Gemm / MatMul with uint8 activations and int8 weights: the pair sums on `tensors`
    ((N, ...) float input batches, run one at a time). Depthwise convolutions are left out (no pairs)."""
    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper

    graph_model = onnx.load(str(model))
    graph = graph_model.graph
    from .graph_rewrite import graph_index

    inits, producer, consumers = graph_index(graph)

    def const(name: str) -> np.ndarray | None:
        if name in inits:
            return numpy_helper.to_array(inits[name])
        node = producer.get(name)
        if node is not None and node.op_type == "Constant":
            return numpy_helper.to_array(node.attribute[0].t)
        return None

    layers = []
    for node in graph.node:
        if node.op_type not in ("Conv", "Gemm", "MatMul") or len(node.input) < 2:
            continue
        dq_x, dq_w = producer.get(node.input[0]), producer.get(node.input[1])
        if dq_x is None or dq_w is None or dq_x.op_type != "DequantizeLinear" or dq_w.op_type != "DequantizeLinear":
            continue
        w_q = const(dq_w.input[0])
        x_zp = const(dq_x.input[2]) if len(dq_x.input) > 2 else None
        if w_q is None or w_q.dtype != np.int8 or x_zp is None or x_zp.dtype not in (np.uint8, np.int8):
            continue  # int8 weights only: U8U8 / 16-bit kernels widen before multiplying
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type == "Conv" and attrs.get("group", 1) > 1 and w_q.shape[1] == 1:
            continue  # depthwise: widened to 32 bits, no pairs
        # int8 activations: on x86 ONNX Runtime shifts them to uint8 (code + 128, QDQS8ToU8Transformer)
        # and runs the same U8S8 kernels
        shift = 128 if x_zp.dtype == np.int8 else 0
        layers.append({"node": node, "attrs": attrs, "w_q": w_q, "x_q": dq_x.input[0], "shift": shift,
                       "x_scale": float(const(dq_x.input[1])), "x_zp": int(x_zp) + shift,
                       "w_scale": np.atleast_1d(const(dq_w.input[1])).astype(np.float64),
                       "y_scale": _output_scale(node, consumers, const)})
    if not layers:
        return []

    wanted = list(dict.fromkeys(layer["x_q"] for layer in layers))
    known = {o.name for o in graph.output}
    for layer in layers:
        name = layer["x_q"]
        if name not in known:
            known.add(name)
            graph.output.append(onnx.helper.make_tensor_value_info(
                name, onnx.TensorProto.INT8 if layer["shift"] else onnx.TensorProto.UINT8, None))
    with tempfile.TemporaryDirectory(prefix="edgepose-sat-") as tmp:
        path = Path(tmp) / "probe.onnx"
        onnx.save(graph_model, str(path))
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        options.intra_op_num_threads = 1
        options.log_severity_level = 3
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = input_name or session.get_inputs()[0].name
    totals = {id(layer["node"]): np.zeros(5) for layer in layers}  # pairs, saturated, max_pair, max_err, sum_err
    counts = {id(layer["node"]): 0 for layer in layers}
    channel = {id(layer["node"]): np.zeros(0, np.int64) for layer in layers}
    for i in range(len(tensors)):
        values = dict(zip(wanted, session.run(wanted, {name: tensors[i:i + 1]})))
        for layer in layers:
            codes = values[layer["x_q"]]
            if layer["shift"]:
                codes = (codes.astype(np.int16) + 128).astype(np.uint8)
            blocks = [_pair_sums(a, w) for a, w in _operands(layer, codes)]  # one per group
            pairs, saturated = sum(b[0] for b in blocks), sum(b[1] for b in blocks)
            per_channel = np.concatenate([b[2] for b in blocks])
            err = np.concatenate([b[3] for b in blocks], axis=1)
            max_pair = int(per_channel.max()) if per_channel.size else 0
            seen = channel[id(layer["node"])]
            channel[id(layer["node"])] = per_channel if not seen.size else np.maximum(seen, per_channel)
            steps = np.abs(err) * layer["x_scale"] * _per_output(layer["w_scale"], err.shape[1])
            if layer["y_scale"]:
                steps = steps / layer["y_scale"]
            t = totals[id(layer["node"])]
            t[0] += pairs
            t[1] += saturated
            t[2] = max(t[2], max_pair)
            t[3] = max(t[3], float(steps.max()) if steps.size else 0.0)
            t[4] += float(steps.sum())
            counts[id(layer["node"])] += steps.size
    out = []
    for layer in layers:
        t = totals[id(layer["node"])]
        node = layer["node"]
        weight_dq = producer[node.input[1]]
        attrs = layer["attrs"]
        axis = 0 if node.op_type == "Conv" or (node.op_type == "Gemm" and attrs.get("transB", 0)) else 1
        weight = weight_dq.input[0]
        weight = weight[:-len("_quantized")] if weight.endswith("_quantized") else weight
        out.append(LayerSaturation(node=node.name, op=node.op_type, weight=weight, axis=axis, pairs=int(t[0]),
                                   saturated=int(t[1]), max_pair=int(t[2]), max_error_steps=round(float(t[3]), 3),
                                   mean_error_steps=float(t[4] / max(counts[id(node)], 1)),
                                   channel_max_pair=tuple(int(v) for v in channel[id(node)])))
    return out


def summarise(layers: list[LayerSaturation], *, crops: int, source: str = "") -> dict[str, Any]:
    """What an x86 CPU without VNNI would compute differently, in a few figures for the report."""
    hit = [r for r in layers if r.saturated]
    worst = max(layers, key=lambda r: r.mean_error_steps, default=None)
    return {"crops": crops, "source": source, "layers": len(layers), "layers_saturating": len(hit),
            "pairs": sum(r.pairs for r in layers), "saturated": sum(r.saturated for r in layers),
            "max_error_steps": max((r.max_error_steps for r in layers), default=0.0),
            "worst_layer": worst.node if worst is not None and worst.saturated else None,
            "worst_mean_error_steps": round(worst.mean_error_steps, 4) if worst is not None else 0.0}


def pair_safe_ranges(layers: list[LayerSaturation], model: str | Path, *,
                     limit: float) -> tuple[dict[str, tuple[int, list[float]]], dict[str, Any]]:
    """Per-channel weight ranges that keep every pair sum seen under `limit`.

    A channel whose largest pair sum (full-range weights, from `analyse`) exceeds `limit` gets the
    range r = absmax x 127 / q with q = floor(127 x limit / max pair), at least 64 (2 x 255 x 64 =
    32640 cannot saturate whatever the input), so its int8 codes stay within [-q, q]; the other
    channels keep their full range. Returns ({weight: (axis, [r per channel])} for the weights with a
    narrowed channel, a summary)."""
    import onnx
    from onnx import numpy_helper

    wanted = {r.weight: r for r in layers if r.channel_max_pair and max(r.channel_max_pair) > limit}
    weights = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(model)).graph.initializer
               if i.name in wanted}
    ranges: dict[str, tuple[int, list[float]]] = {}
    narrowed = total = 0
    smallest = 127
    for name, layer in wanted.items():
        if name not in weights:
            continue
        w = np.moveaxis(weights[name].astype(np.float64), layer.axis, 0)
        absmax = np.abs(w.reshape(w.shape[0], -1)).max(axis=1)
        pairs = np.asarray(layer.channel_max_pair, np.float64)
        if pairs.shape != absmax.shape:
            continue
        q = np.where(pairs > limit, np.clip(np.floor(127 * limit / np.maximum(pairs, 1)), 64, 127), 127)
        ranges[name] = (layer.axis, [float(v) for v in absmax * 127 / q])
        narrowed += int((q < 127).sum())
        smallest = min(smallest, int(q.min()))
    total = sum(len(r.channel_max_pair) for r in layers)
    return ranges, {"layers": len(ranges), "of_layers": len(layers), "channels": narrowed, "of_channels": total,
                    "smallest_qmax": smallest, "limit": round(limit)}


def _output_scale(node, consumers, const) -> float | None:
    """The scale of the QuantizeLinear that quantises this node's output (through a Relu/Clip)."""
    name = node.output[0]
    for _ in range(3):
        nexts = consumers.get(name, [])
        q = next((n for n in nexts if n.op_type == "QuantizeLinear"), None)
        if q is not None:
            value = const(q.input[1])
            return float(value) if value is not None else None
        follow = next((n for n in nexts if n.op_type in ("Relu", "Clip", "LeakyRelu", "PRelu")), None)
        if follow is None:
            return None
        name = follow.output[0]
    return None


def _per_output(w_scale: np.ndarray, m: int) -> np.ndarray:
    return np.broadcast_to(w_scale if w_scale.size == m else w_scale[:1], (m,))


def _operands(layer: dict[str, Any], x_q: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """[(P, K) uint8 activations, (K, M) int8 weights] in the kernels' K order, one per conv group."""
    node, attrs, w = layer["node"], layer["attrs"], layer["w_q"]
    if node.op_type == "Conv":
        groups = int(attrs.get("group", 1))
        cg, mg = w.shape[1], w.shape[0] // groups
        return [(_im2col(x_q[0, g * cg:(g + 1) * cg], w.shape, attrs, layer["x_zp"]),
                 _conv_weights(w[g * mg:(g + 1) * mg])) for g in range(groups)]
    a = x_q.reshape(-1, x_q.shape[-1]) if node.op_type == "MatMul" else x_q.reshape(x_q.shape[0], -1)
    if node.op_type == "Gemm" and attrs.get("transA", 0):
        a = a.T
    wk = w.T if (node.op_type == "Gemm" and attrs.get("transB", 0)) else w
    return [(a, wk.reshape(wk.shape[0], -1))]


def _conv_weights(w: np.ndarray) -> np.ndarray:
    """(M, C, kh, kw) -> (K = kh*kw*C, M), K ordered kernel position first, then input channel."""
    m, c = w.shape[:2]
    return w.reshape(m, c, -1).transpose(2, 1, 0).reshape(-1, m)


def _im2col(x: np.ndarray, w_shape: tuple[int, ...], attrs: dict[str, Any], zero_point: int) -> np.ndarray:
    """(C, H, W) uint8 -> (P, K) with K ordered (kh, kw, c), padding with the zero point."""
    c, h, wd = x.shape
    kh, kw = w_shape[2], w_shape[3]
    sh, sw = attrs.get("strides", [1, 1])
    dh, dw = attrs.get("dilations", [1, 1])
    pads = list(attrs.get("pads", [0, 0, 0, 0]))
    auto_pad = attrs.get("auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        pads = []
        for size, k, s, d in ((h, kh, sh, dh), (wd, kw, sw, dw)):
            out = -(-size // s)
            total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
            pads.append((total // 2, total - total // 2) if auto_pad == "SAME_UPPER" else (total - total // 2, total // 2))
        pads = [pads[0][0], pads[1][0], pads[0][1], pads[1][1]]
    xp = np.pad(x, ((0, 0), (pads[0], pads[2]), (pads[1], pads[3])), constant_values=zero_point)
    ho = (xp.shape[1] - (kh - 1) * dh - 1) // sh + 1
    wo = (xp.shape[2] - (kw - 1) * dw - 1) // sw + 1
    cols = [xp[:, i * dh:i * dh + sh * (ho - 1) + 1:sh, j * dw:j * dw + sw * (wo - 1) + 1:sw]
            for i in range(kh) for j in range(kw)]                  # each (C, Ho, Wo)
    return np.stack(cols).reshape(kh * kw * c, ho * wo).T          # (P, K), K = (kernel pos, channel)


def _pair_sums(a: np.ndarray, w: np.ndarray) -> tuple[int, int, np.ndarray, np.ndarray]:
    """Pairs (k, k+1), k even, of a @ w as vpmaddubsw forms them: (count, saturated, (M,) max |sum|
    per output channel, (P, M) int64 error that int16 saturation adds to the int32 accumulator)."""
    a = a.astype(np.int32)
    w = w.astype(np.int32)
    if a.shape[1] % 2:
        a = np.pad(a, ((0, 0), (0, 1)))
        w = np.pad(w, ((0, 1), (0, 0)))
    a0, a1, w0, w1 = a[:, 0::2], a[:, 1::2], w[0::2], w[1::2]
    p, half = a0.shape
    m = w.shape[1]
    err = np.zeros((p, m), np.int64)
    saturated, max_pair = 0, np.zeros(m, np.int64)
    step = max(1, _CHUNK // max(half * m, 1))
    for start in range(0, p, step):
        s = a0[start:start + step, :, None] * w0[None] + a1[start:start + step, :, None] * w1[None]  # (p, K/2, M)
        max_pair = np.maximum(max_pair, np.abs(s).max(axis=(0, 1)))
        if max_pair.max() > INT16_MAX:
            over = np.clip(s, INT16_MIN, INT16_MAX)
            over -= s
            hits = np.count_nonzero(over)
            if hits:
                saturated += hits
                err[start:start + step] = over.sum(axis=1)
    return p * half * m, saturated, max_pair, err
