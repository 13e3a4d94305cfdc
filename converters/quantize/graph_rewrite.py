"""ONNX graph pass for INT8: ConvTranspose(4x4, stride 2, pad 1) -> four 2x2 Convs + Concat + DepthToSpace.

Why: ONNX Runtime's CPU provider (1.32) has no int8 ConvTranspose kernel. The quantiser still wraps
ConvTranspose in Q/DQ, so an INT8 graph runs DQ -> float ConvTranspose -> Q and dequantises its int8
weights on every call; SimpleBaseline-style heads then run slower in INT8 than in FP32 (simdr 0.68x).
Conv and Concat become QLinearConv / QLinearConcat (uint8, NHWC) in ORT's QDQ path, so after the
rewrite the deconvolution's MACs are all int8. The rewrite only regroups weights: it is exact in float.

Maths (per spatial axis; 2-D is the product of two axes). ConvTranspose with k=4, s=2, p=1 gives
out[2i + r] = sum_j x[j] W[2(i - j) + r + 1]: two taps per output phase r,
    r = 0: x[i-1] W[3] + x[i]   W[1]   = 2-tap conv, weights (W[3], W[1]), pad (before 1, after 0)
    r = 1: x[i]   W[2] + x[i+1] W[0]   = 2-tap conv, weights (W[2], W[0]), pad (before 0, after 1)
Each of the four phases (ry, rx) is therefore a stride-1 2x2 Conv with pads (1-ry, 1-rx, ry, rx) and
an HxW output. Concat puts phase p = 2*ry + rx in channel block p and DepthToSpace(2, DCR) interleaves
the blocks into the 2Hx2W output. MACs equal the deconvolution's. Nothing depends on H or W, so
dynamic spatial sizes and batches work. A BatchNormalization that only reads the ConvTranspose is
folded into the Convs (after DepthToSpace it could not be fused and would stay float).

Measured (simdr, 1 thread, ORT 1.32, interleaved medians): INT8 0.69x -> 1.7x of FP32. One 2x2 Conv
with 4*Cout outputs over (H+1)x(W+1) plus four phase Slices (the PyTorch form) was ~10% slower in
INT8 and 0.93x in FP32; this form costs nothing in FP32. DepthToSpace itself runs in float between a
DQ and a Q (the quantiser has no rule for it), ~3% of the INT8 time; Reshape/Transpose forms were no faster.
Only the ONNX Runtime INT8 graph gets it: MNN runs the original ConvTranspose faster (the rewritten
FP16 graphs were 0.78-0.87x), and ORT FP32 gains only on wide deconvs (heatmap 1.19x, simdr 0.99x).
"""
from __future__ import annotations

import logging
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

log = logging.getLogger(__name__)

# ConvTranspose kernel index of tap d of output phase r's 2x2 window (rows i-1, i for r=0; rows i, i+1 for r=1).
_TAPS = {0: (3, 1), 1: (2, 0)}
_MIN_OPSET = 11  # DepthToSpace `mode` (DCR is also the default before it)


def rewrite_conv_transposes(model: onnx.ModelProto, *, fold_batchnorm: bool = True
                            ) -> tuple[onnx.ModelProto, list[str]]:
    """A copy of `model` with every provably equivalent ConvTranspose(4x4, s2, p1) of the main graph
    rewritten (see module doc), and the names of the rewritten nodes. Others are left untouched;
    the input model is not modified. `fold_batchnorm` also folds a BatchNormalization that is the
    ConvTranspose's only consumer into the new Conv."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    opset = next((o.version for o in out.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset < _MIN_OPSET:
        log.warning("ConvTranspose rewrite skipped: opset %d < %d (upgrade the model first)", opset, _MIN_OPSET)
        return out, []
    graph = out.graph
    inits = {i.name: i for i in graph.initializer}
    graph_inputs = {i.name for i in graph.input}
    graph_outputs = {o.name for o in graph.output}
    names = _Names(graph)
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for n in graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)

    new_nodes: list[onnx.NodeProto] = []
    dropped: set[str] = set()  # outputs of the BatchNormalization nodes folded away
    dropped_values: set[str] = set()
    replaced_inputs: set[str] = set()  # initializers the removed nodes read; dropped if now unused
    rewritten: list[str] = []
    for index, node in enumerate(graph.node):
        if node.op_type == "BatchNormalization" and node.output[0] in dropped:
            continue
        params = _match(node, inits, graph_inputs) if node.op_type == "ConvTranspose" else None
        if params is None:
            new_nodes.append(node)
            continue
        weight, bias = params
        replaced_inputs.update(node.input[1:])
        label = node.name or names.fresh(f"ConvTranspose_{index}")
        target = node.output[0]
        bn = _single_bn(node, consumers, graph_outputs, inits, graph_inputs) if fold_batchnorm else None
        if bn is not None:
            weight, bias = _fold_bn(weight, bias, bn, inits)
            dropped.add(bn.output[0])
            replaced_inputs.update(bn.input[1:])
            dropped_values.add(target)
            target = bn.output[0]
        new_nodes.extend(_emit(label, node.input[0], target, weight, bias, graph, names))
        rewritten.append(label)
        log.debug("rewrote ConvTranspose %s as four 2x2 Convs + DepthToSpace%s", label,
                  f" (folded {bn.name or bn.output[0]})" if bn is not None else "")
    if not rewritten:
        return out, []
    del graph.node[:]
    graph.node.extend(new_nodes)
    _drop_unused_initializers(graph, replaced_inputs)
    if dropped_values:
        kept = [v for v in graph.value_info if v.name not in dropped_values]
        del graph.value_info[:]
        graph.value_info.extend(kept)
    log.info("rewrote %d ConvTranspose node(s) as 2x2 Convs + DepthToSpace: %s", len(rewritten), ", ".join(rewritten))
    return out, rewritten


def graph_index(graph: onnx.GraphProto) -> tuple[dict[str, Any], dict[str, Any], dict[str, list[Any]]]:
    """(initializers by name, producer node by tensor, consumer nodes by tensor): what graph walks need."""
    inits = {i.name: i for i in graph.initializer}
    producer = {o: n for n in graph.node for o in n.output}
    consumers: dict[str, list[Any]] = {}
    for n in graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    return inits, producer, consumers


def _attrs(node: onnx.NodeProto) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _auto_pad(attrs: dict) -> str:
    value = attrs.get("auto_pad", b"NOTSET")
    return value.decode() if isinstance(value, bytes) else value


def _const(name: str, inits: dict, graph_inputs: set[str]) -> np.ndarray | None:
    """The initializer's value, or None if it is not a constant (absent, or overridable as an input)."""
    if name not in inits or name in graph_inputs:
        return None
    return numpy_helper.to_array(inits[name])


def _match(node: onnx.NodeProto, inits: dict, graph_inputs: set[str]) -> tuple[np.ndarray, np.ndarray | None] | None:
    """(weight, bias) if `node` is a ConvTranspose the rewrite reproduces exactly, else None."""
    if node.domain not in ("", "ai.onnx") or len(node.input) < 2 or len(node.output) != 1:
        return None
    a = _attrs(node)
    if (_auto_pad(a) != "NOTSET" or list(a.get("strides", [1, 1])) != [2, 2] or list(a.get("pads", [])) != [1, 1, 1, 1]
            or list(a.get("dilations", [1, 1])) != [1, 1] or a.get("group", 1) != 1
            or any(a.get("output_padding", [])) or "output_shape" in a
            or list(a.get("kernel_shape", [4, 4])) != [4, 4]):
        return None
    weight = _const(node.input[1], inits, graph_inputs)
    if weight is None or weight.ndim != 4 or weight.shape[2:] != (4, 4) or weight.dtype.kind != "f":
        return None
    bias = None
    if len(node.input) > 2 and node.input[2]:
        bias = _const(node.input[2], inits, graph_inputs)
        if bias is None or bias.shape != (weight.shape[1],) or bias.dtype != weight.dtype:
            return None
    return weight, bias


def _single_bn(node, consumers, graph_outputs, inits, graph_inputs) -> onnx.NodeProto | None:
    """The inference BatchNormalization that is the only reader of `node`'s output, if foldable."""
    y = node.output[0]
    readers = consumers.get(y, [])
    if y in graph_outputs or len(readers) != 1:
        return None
    bn = readers[0]
    if (bn.op_type != "BatchNormalization" or bn.domain not in ("", "ai.onnx") or bn.input[0] != y
            or len(bn.input) != 5 or any(o for o in bn.output[1:]) or _attrs(bn).get("training_mode", 0)):
        return None
    if any(_const(i, inits, graph_inputs) is None for i in bn.input[1:]):
        return None
    return bn


def _fold_bn(weight, bias, bn, inits) -> tuple[np.ndarray, np.ndarray]:
    scale, beta, mean, var = (numpy_helper.to_array(inits[i]).astype(np.float64) for i in bn.input[1:])
    eps = _attrs(bn).get("epsilon", 1e-5)
    s = scale / np.sqrt(var + eps)
    b = np.zeros_like(s) if bias is None else bias.astype(np.float64)
    new_w = (weight.astype(np.float64) * s[None, :, None, None]).astype(weight.dtype)
    return new_w, ((b - mean) * s + beta).astype(weight.dtype)


def _phase_weights(weight: np.ndarray) -> list[np.ndarray]:
    """(Cin, Cout, 4, 4) ConvTranspose weight -> four (Cout, Cin, 2, 2) Conv weights, phase p = 2*ry + rx."""
    out = []
    for ry in (0, 1):
        for rx in (0, 1):
            taps = weight[:, :, list(_TAPS[ry])][:, :, :, list(_TAPS[rx])]  # (Cin, Cout, 2, 2)
            out.append(np.ascontiguousarray(taps.transpose(1, 0, 2, 3)))
    return out


def _emit(label: str, x: str, y: str, weight: np.ndarray, bias: np.ndarray | None, graph: onnx.GraphProto,
          names: "_Names") -> list[onnx.NodeProto]:
    nodes, phases = [], []
    for p, w in enumerate(_phase_weights(weight)):
        ry, rx = divmod(p, 2)
        w_name = names.fresh(f"{label}/phase{p}_conv.weight")
        graph.initializer.append(numpy_helper.from_array(w, w_name))
        b_name = None
        if bias is not None:  # one bias per Conv: the quantiser scales a bias by its own Conv's weight scale
            b_name = names.fresh(f"{label}/phase{p}_conv.bias")
            graph.initializer.append(numpy_helper.from_array(bias, b_name))
        out = names.fresh(f"{label}/phase{p}")
        nodes.append(helper.make_node("Conv", [x, w_name] + ([b_name] if b_name else []), [out],
                                      name=names.fresh(f"{label}/phase{p}_conv"), kernel_shape=[2, 2],
                                      pads=[1 - ry, 1 - rx, ry, rx], strides=[1, 1], dilations=[1, 1], group=1))
        phases.append(out)
    stacked = names.fresh(f"{label}/phases")
    nodes.append(helper.make_node("Concat", phases, [stacked], name=names.fresh(f"{label}/phase_concat"), axis=1))
    # DCR: input channel (2*ry + rx) * Cout + c -> output (c, 2h + ry, 2w + rx)
    nodes.append(helper.make_node("DepthToSpace", [stacked], [y], name=names.fresh(f"{label}/depth_to_space"),
                                  blocksize=2, mode="DCR"))
    return nodes


def _drop_unused_initializers(graph: onnx.GraphProto, candidates: set[str]) -> None:
    used = set(o.name for o in graph.output)

    def visit(g: onnx.GraphProto) -> None:
        for n in g.node:
            used.update(n.input)
            for a in n.attribute:
                for sub in ([a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs)):
                    visit(sub)

    visit(graph)
    kept = [i for i in graph.initializer if i.name in used or i.name not in candidates]
    if len(kept) != len(graph.initializer):
        del graph.initializer[:]
        graph.initializer.extend(kept)


class _Names:
    """Fresh tensor/node names that collide with nothing already in the graph."""

    def __init__(self, graph: onnx.GraphProto):
        self.taken = {i.name for i in graph.initializer} | {i.name for i in graph.input}
        self.taken |= {o.name for o in graph.output} | {v.name for v in graph.value_info}
        for n in graph.node:
            self.taken.update(n.input)
            self.taken.update(n.output)
            self.taken.add(n.name)

    def fresh(self, base: str) -> str:
        name, k = base, 1
        while name in self.taken:
            name, k = f"{base}_{k}", k + 1
        self.taken.add(name)
        return name


# --- the stem: Conv(3x3, stride 2) on a few-channel graph input ---------------------------------------
MAX_STEM_CHANNELS = 4


def rewrite_strided_stem(model: onnx.ModelProto) -> tuple[onnx.ModelProto, list[str]]:
    """A copy of `model` where a Conv(3x3, stride 2) reading a graph input of <= 4 channels becomes
    SpaceToDepth(2) + Conv(2x2, stride 1); the names of the rewritten Convs.

    Why: ONNX Runtime's int8 convolution runs im2col + an int8 GEMM whose depth is Cin*9 = 27 for an
    RGB stem, which its kernels handle badly: ShuffleNetV2's 3->24 stem took 0.48 ms in int8 against
    0.23 ms in float (16 % of DeepPose's INT8 time). On the space-to-depth input (4*Cin channels, half
    the size) the same convolution is a 2x2 one with depth 48: 0.23 ms in int8 (+0.09 ms for the
    float SpaceToDepth), DeepPose INT8 1.47x -> 1.59x of FP32. FP32 gains nothing (0.97x), so this is
    for the INT8 graph only. Exact in float: zero taps fill the 2x2 kernel where the 3x3 has none.

    Maths (per axis): with top padding t in {0, 1}, output i reads input rows 2i + k - t (k = 0..2);
    writing a row as 2a + p (p = its parity, the SpaceToDepth block row) puts them on two block rows
    a = i - t + d, d in {0, 1}, so kernel tap k = 2d + p - t, and the 2x2 Conv pads (t, 1 - t).
    SpaceToDepth's channel order (DCR) is (2p + q) * Cin + c.
    """
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    inits = {i.name: i for i in graph.initializer}
    graph_inputs = {i.name: i for i in graph.input if i.name not in inits}
    declared = {i.name for i in graph.input}
    names = _Names(graph)
    new_nodes, rewritten, replaced = [], [], set()
    for node in graph.node:
        params = _match_stem(node, inits, graph_inputs, declared) if node.op_type == "Conv" else None
        if params is None:
            new_nodes.append(node)
            continue
        weight, top, left = params
        label = node.name or names.fresh("stem_conv")
        s2d = names.fresh(f"{label}/space_to_depth")
        new_nodes.append(helper.make_node("SpaceToDepth", [node.input[0]], [s2d], name=s2d, blocksize=2))
        w_name = names.fresh(f"{label}/s2d_weight")
        graph.initializer.append(numpy_helper.from_array(_stem_weights(weight, top, left), w_name))
        conv = helper.make_node("Conv", [s2d, w_name] + list(node.input[2:]), list(node.output), name=label,
                                kernel_shape=[2, 2], strides=[1, 1], dilations=[1, 1], group=1,
                                pads=[top, left, 1 - top, 1 - left])
        new_nodes.append(conv)
        replaced.add(node.input[1])
        rewritten.append(label)
    if not rewritten:
        return out, []
    del graph.node[:]
    graph.node.extend(new_nodes)
    _drop_unused_initializers(graph, replaced)
    log.info("rewrote stem Conv %s as SpaceToDepth + 2x2 Conv", ", ".join(rewritten))
    return out, rewritten


def _match_stem(node: onnx.NodeProto, inits: dict, graph_inputs: dict, declared_inputs: set[str]
                ) -> tuple[np.ndarray, int, int] | None:
    """(weight, top pad, left pad) if `node` is a stem Conv the rewrite reproduces exactly, else None.
    graph_inputs: the real inputs (no initializer); declared_inputs: every name graph.input lists."""
    if node.domain not in ("", "ai.onnx") or node.input[0] not in graph_inputs or len(node.output) != 1:
        return None
    a = _attrs(node)
    pads = list(a.get("pads", [0, 0, 0, 0]))
    if (_auto_pad(a) != "NOTSET"
            or list(a.get("strides", [1, 1])) != [2, 2] or list(a.get("dilations", [1, 1])) != [1, 1]
            or a.get("group", 1) != 1 or len(pads) != 4 or pads[0] not in (0, 1) or pads[1] not in (0, 1)
            or pads[2:] != [1, 1]):
        return None
    overridable = declared_inputs  # an initializer also listed as an input can be fed: not a constant
    weight = _const(node.input[1], inits, overridable)
    if weight is None or weight.ndim != 4 or weight.shape[2:] != (3, 3) or weight.shape[1] > MAX_STEM_CHANNELS:
        return None
    if len(node.input) > 2 and node.input[2] and _const(node.input[2], inits, overridable) is None:
        return None
    dims = graph_inputs[node.input[0]].type.tensor_type.shape.dim
    hw = [d.dim_value if d.HasField("dim_value") else 0 for d in dims[2:]]
    if len(dims) != 4 or len(hw) != 2 or any(v <= 0 or v % 2 for v in hw):  # SpaceToDepth needs even H, W
        return None
    return weight, int(pads[0]), int(pads[1])


def _stem_weights(weight: np.ndarray, top: int, left: int) -> np.ndarray:
    """(O, C, 3, 3) stride-2 kernel -> (O, 4C, 2, 2) kernel over SpaceToDepth(2) channels (DCR order)."""
    o, c = weight.shape[:2]
    out = np.zeros((o, 4 * c, 2, 2), weight.dtype)
    for p in (0, 1):
        for q in (0, 1):
            block = slice((2 * p + q) * c, (2 * p + q + 1) * c)
            for dy in (0, 1):
                ky = 2 * dy + p - top
                for dx in (0, 1):
                    kx = 2 * dx + q - left
                    if 0 <= ky < 3 and 0 <= kx < 3:
                        out[:, block, dy, dx] = weight[:, :, ky, kx]
    return out


# --- nodes kept in float inside a QDQ graph ------------------------------------------------------------
def pin_float(model: onnx.ModelProto, names) -> list[str]:
    """Keep the named float Conv / Gemm nodes of a QDQ graph float when ONNX Runtime loads it; edits
    `model` in place and returns the nodes changed.

    Why: ONNX Runtime (1.20+) runs a level-1 graph transformer, WeightBiasQuantization, on every
    Conv / ConvTranspose / Gemm whose input comes from a DequantizeLinear with a per-tensor scale and
    whose output goes (through Relu / Clip at most) into a QuantizeLinear: it quantises the float
    weight itself, symmetric **per-tensor** int8, and the bias to int32, so the node becomes an int8
    node unit. A node left out of quantisation (`nodes_to_exclude`) between quantised neighbours is
    exactly that pattern, so it silently ran with per-tensor weights, worse than the per-channel ones
    it was meant to escape (hand_landmark_full, its second conv left "float": 9.3 px instead of
    3.3 px on the held-out crops; the same file with ORT's optimisations off: 3.4 px).
    The transformer needs a scalar input scale: the node's input DequantizeLinear is given the same
    scale and zero point repeated per channel (axis 1), which computes the same values and which the
    transformer does not match.
    """
    graph = model.graph
    wanted = set(names)
    inits, producer, consumers = graph_index(graph)
    taken = _Names(graph)
    done: list[str] = []
    for node in list(graph.node):
        if node.name not in wanted or node.op_type not in ("Conv", "ConvTranspose", "Gemm") or len(node.input) < 2:
            continue
        dq = producer.get(node.input[0])
        if dq is None or dq.op_type != "DequantizeLinear" or node.input[1] not in inits or len(dq.input) < 2:
            continue  # input not dequantised, or weights already quantised: nothing for ORT to rewrite
        if dq.input[1] not in inits or (len(dq.input) > 2 and dq.input[2] not in inits):
            continue
        scale = numpy_helper.to_array(inits[dq.input[1]])
        if scale.size != 1:
            continue
        weight = numpy_helper.to_array(inits[node.input[1]])
        attrs = _attrs(node)
        if node.op_type == "Conv":
            channels = weight.shape[1] * int(attrs.get("group", 1))
        elif node.op_type == "ConvTranspose":
            channels = weight.shape[0]
        else:
            if attrs.get("transA", 0):
                continue
            channels = weight.shape[1] if attrs.get("transB", 0) else weight.shape[0]
        if channels < 2:
            continue
        zero = (numpy_helper.to_array(inits[dq.input[2]]) if len(dq.input) > 2
                else np.zeros((), np.uint8))
        s_name, z_name = taken.fresh(node.name + "_in_scale_per_channel"), taken.fresh(node.name + "_in_zp_per_channel")
        graph.initializer.extend([numpy_helper.from_array(np.full(channels, scale.item(), scale.dtype), s_name),
                                  numpy_helper.from_array(np.full(channels, zero.item(), zero.dtype), z_name)])
        out = taken.fresh(node.input[0] + "_per_channel")
        new = helper.make_node("DequantizeLinear", [dq.input[0], s_name, z_name], [out],
                               name=taken.fresh(node.name + "_in_dq_per_channel"), axis=1)
        position = list(graph.node).index(dq)
        graph.node.insert(position + 1, new)
        node.input[0] = out
        if len(consumers.get(dq.output[0], [])) == 1 and dq.output[0] not in {o.name for o in graph.output}:
            graph.node.remove(dq)
        done.append(node.name)
    return done
