"""Translators of MXNet's neural-network layers: convolutions, normalisation, pooling, dense,
activations. Semantics follow MXNet 1.x's operator definitions (src/operator/nn/*)."""
from __future__ import annotations

import math

import numpy as np

from .builder import Tensor
from .context import OpContext, register

F32_LOWEST = float(np.finfo(np.float32).min)


def _spatial(cx: OpContext, key: str, nsp: int, default: int | None) -> tuple[int, ...]:
    value = cx.a.tuple(key, None)
    if not value:
        if default is None:
            raise cx.shape_error(f"attribute {key!r} is required")
        return (default,) * nsp
    if len(value) == 1 and nsp > 1:
        value = value * nsp
    if len(value) != nsp or any(v is None for v in value):
        raise cx.shape_error(f"{key}={value} does not match {nsp} spatial dimension(s)")
    return tuple(int(v) for v in value)


def _check_layout(cx: OpContext, nsp: int) -> None:
    layout = cx.a.str("layout")
    expected = {1: "NCW", 2: "NCHW", 3: "NCDHW"}.get(nsp)
    if layout not in (None, expected):
        raise cx.unsupported(f"layout {layout} (only channel-first {expected})")


def _conv_geometry(cx: OpContext):
    x = cx.x
    kernel = cx.a.tuple("kernel")
    if not kernel:
        raise cx.shape_error("attribute 'kernel' is required")
    nsp = len(kernel)
    if len(x.shape) != nsp + 2:
        raise cx.shape_error(f"a {nsp}-D kernel needs a {nsp + 2}-D input, got shape {x.shape}")
    _check_layout(cx, nsp)
    stride = _spatial(cx, "stride", nsp, 1)
    dilate = _spatial(cx, "dilate", nsp, 1)
    pad = _spatial(cx, "pad", nsp, 0)
    group = cx.a.int("num_group", 1)
    return tuple(int(k) for k in kernel), stride, dilate, pad, group


def _weight(cx: OpContext, expected: tuple[int, ...], what: str) -> Tensor:
    w = cx.ins[1]
    if tuple(w.shape) != tuple(expected):
        raise cx.shape_error(
            f"weight {w.name!r} has shape {w.shape} but {what} needs {tuple(expected)}; "
            "check the input shape (channels) or that the params belong to this symbol")
    return w


def _bias(cx: OpContext, n: int, no_bias: bool) -> Tensor | None:
    if no_bias:
        return None
    if len(cx.ins) < 3:
        raise cx.shape_error("no_bias=False but no bias input")
    b = cx.ins[2]
    if tuple(b.shape) != (n,):
        raise cx.shape_error(f"bias {b.name!r} has shape {b.shape}, expected ({n},)")
    return b


@register("Convolution", "Convolution_v1")
def convolution(cx: OpContext) -> list[Tensor]:
    cx.need_inputs(2, 3)
    kernel, stride, dilate, pad, group = _conv_geometry(cx)
    x = cx.x
    n_out = cx.a.int("num_filter")
    channels = x.shape[1]
    if channels % group:
        raise cx.shape_error(f"input has {channels} channels, not divisible by num_group={group}")
    w = _weight(cx, (n_out, channels // group, *kernel),
                f"an input of {channels} channels (input shape {x.shape}, num_group={group})")
    b = _bias(cx, n_out, cx.a.bool("no_bias", False))
    out = []
    for i, (size, k, s, d, p) in enumerate(zip(x.shape[2:], kernel, stride, dilate, pad)):
        o = (size + 2 * p - d * (k - 1) - 1) // s + 1
        if o < 1:
            raise cx.shape_error(f"spatial dim {i} of size {size} is too small for kernel {k} "
                                 f"(dilate {d}, pad {p}); check the input shape")
        out.append(o)
    return [cx.emit("Conv", [x, w, b], (x.shape[0], n_out, *out), out=0, kernel_shape=list(kernel),
                    strides=list(stride), dilations=list(dilate), pads=list(pad) * 2, group=group)]


@register("Deconvolution")
def deconvolution(cx: OpContext) -> list[Tensor]:
    cx.need_inputs(2, 3)
    kernel, stride, dilate, pad, group = _conv_geometry(cx)
    x = cx.x
    nsp = len(kernel)
    n_out = cx.a.int("num_filter")
    channels = x.shape[1]
    if channels % group or n_out % group:
        raise cx.shape_error(f"channels {channels} / num_filter {n_out} not divisible by num_group={group}")
    w = _weight(cx, (channels, n_out // group, *kernel), f"an input of {channels} channels (shape {x.shape})")
    b = _bias(cx, n_out, cx.a.bool("no_bias", True))
    adj = _spatial(cx, "adj", nsp, 0)
    target = cx.a.tuple("target_shape", ())
    if target and any(t not in (None, 0) for t in target):
        if len(target) != nsp:
            raise cx.shape_error(f"target_shape {target} does not match {nsp} spatial dims")
        pads, adjs = [], []
        for size, k, s, d, t in zip(x.shape[2:], kernel, stride, dilate, target):
            total = s * (size - 1) + d * (k - 1) + 1 - t
            if total < 0:
                raise cx.shape_error(f"target_shape {target} is too big for input {x.shape}")
            adjs.append(total % 2)
            pads.append((total + 1) // 2)
        pad, adj = tuple(pads), tuple(adjs)
    out = []
    for size, k, s, d, p, a in zip(x.shape[2:], kernel, stride, dilate, pad, adj):
        if a >= s and a > 0:
            raise cx.shape_error(f"adj {a} must be smaller than stride {s}")
        out.append(s * (size - 1) + d * (k - 1) + 1 - 2 * p + a)
    attrs = dict(kernel_shape=list(kernel), strides=list(stride), dilations=list(dilate),
                 pads=list(pad) * 2, group=group)
    if any(adj):
        attrs["output_padding"] = list(adj)
    return [cx.emit("ConvTranspose", [x, w, b], (x.shape[0], n_out, *out), out=0, **attrs)]


@register("BatchNorm", "BatchNorm_v1", "_contrib_SyncBatchNorm")
def batchnorm(cx: OpContext) -> list[Tensor]:
    cx.need_inputs(5)
    x, gamma, beta, mean, var = cx.ins
    axis = cx.a.int("axis", 1)
    if axis < 0:
        axis += len(x.shape)
    if axis != 1:
        raise cx.unsupported(f"BatchNorm over axis {cx.a.int('axis', 1)} (only the channel axis 1)")
    c = x.shape[1]
    for t, role in ((gamma, "gamma"), (beta, "beta"), (mean, "moving_mean"), (var, "moving_var")):
        if tuple(t.shape) != (c,):
            raise cx.shape_error(f"{role} {t.name!r} has shape {t.shape} but the input has {c} channels "
                                 f"(input shape {x.shape})")
    # MXNet's symbol default is fix_gamma=True (Gluon writes False): gamma is then ignored (=1).
    if cx.a.bool("fix_gamma", True):
        gamma = cx.const(np.ones((c,), np.float32), "gamma_fixed")
    eps = cx.a.float("eps", 1e-3)
    return [cx.emit("BatchNormalization", [x, gamma, beta, mean, var], x.shape, out=0, epsilon=eps)]


@register("InstanceNorm")
def instancenorm(cx: OpContext) -> list[Tensor]:
    cx.need_inputs(3)
    x, gamma, beta = cx.ins
    c = x.shape[1]
    if tuple(gamma.shape) != (c,) or tuple(beta.shape) != (c,):
        raise cx.shape_error(f"gamma/beta shapes {gamma.shape}/{beta.shape} do not match {c} channels")
    return [cx.emit("InstanceNormalization", [x, gamma, beta], x.shape, out=0,
                    epsilon=cx.a.float("eps", 1e-3))]


@register("LayerNorm")
def layernorm(cx: OpContext) -> list[Tensor]:
    cx.need_inputs(3)
    x, gamma, beta = cx.ins
    axis = cx.a.int("axis", -1) % len(x.shape)
    if axis != len(x.shape) - 1:
        raise cx.unsupported(f"LayerNorm over axis {axis} (only the last axis)")
    n = x.shape[-1]
    if tuple(gamma.shape) != (n,) or tuple(beta.shape) != (n,):
        raise cx.shape_error(f"gamma/beta shapes {gamma.shape}/{beta.shape} do not match the last dim {n}")
    return [cx.emit("LayerNormalization", [x, gamma, beta], x.shape, out=0, axis=-1,
                    epsilon=cx.a.float("eps", 1e-5))]


@register("L2Normalization")
def l2normalization(cx: OpContext) -> list[Tensor]:
    x = cx.x
    mode = cx.a.str("mode", "instance")
    nd = len(x.shape)
    axes = {"instance": list(range(1, nd)), "channel": [1], "spatial": list(range(2, nd))}.get(mode)
    if axes is None:
        raise cx.unsupported(f"L2Normalization mode {mode!r}")
    sq = cx.emit("Mul", [x, x], x.shape)
    red_shape = tuple(1 if i in axes else d for i, d in enumerate(x.shape))
    s = cx.emit("ReduceSum", [sq, cx.ints(axes, "axes")], red_shape, keepdims=1)
    s = cx.emit("Add", [s, cx.const(cx.a.float("eps", 1e-10), "eps")], red_shape)
    norm = cx.emit("Sqrt", [s], red_shape)
    return [cx.emit("Div", [x, norm], x.shape, out=0)]


# ---- activations ------------------------------------------------------------------------------

def _unary(cx: OpContext, op_type: str, x: Tensor, *, out: int | None = 0, **attrs) -> Tensor:
    return cx.emit(op_type, [x], x.shape, out=out, **attrs)


def activation(cx: OpContext, act: str, x: Tensor) -> Tensor:
    simple = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh", "softrelu": "Softplus",
              "softsign": "Softsign"}
    if act in simple:
        return _unary(cx, simple[act], x)
    raise cx.unsupported(f"act_type={act!r}")


@register("Activation")
def activation_op(cx: OpContext) -> list[Tensor]:
    return [activation(cx, cx.a.str("act_type", "relu"), cx.x)]


@register("relu", "sigmoid", "tanh", "softsign")
def activation_fn(cx: OpContext) -> list[Tensor]:
    return [activation(cx, cx.node.op, cx.x)]


@register("LeakyReLU")
def leaky_relu(cx: OpContext) -> list[Tensor]:
    x = cx.x
    act = cx.a.str("act_type", "leaky")
    slope = cx.a.float("slope", 0.25)
    if act == "leaky":
        return [_unary(cx, "LeakyRelu", x, alpha=slope)]
    if act == "elu":
        return [_unary(cx, "Elu", x, alpha=slope)]
    if act == "selu":
        return [_unary(cx, "Selu", x, alpha=1.6732632423543772848170429916717,
                       gamma=1.0507009873554804934193349852946)]
    if act == "rrelu":  # inference: the mean of the random slope range
        lower, upper = cx.a.float("lower_bound", 0.125), cx.a.float("upper_bound", 0.334)
        return [_unary(cx, "LeakyRelu", x, alpha=(lower + upper) / 2.0)]
    if act == "gelu":  # MXNet 1.x's gelu is the erf form
        half = cx.emit("Div", [x, cx.const(math.sqrt(2.0), "sqrt2")], x.shape)
        erf = cx.emit("Erf", [half], x.shape)
        one = cx.emit("Add", [erf, cx.const(1.0, "one")], x.shape)
        xm = cx.emit("Mul", [x, one], x.shape)
        return [cx.emit("Mul", [xm, cx.const(0.5, "half")], x.shape, out=0)]
    if act == "prelu":
        cx.need_inputs(2)
        gamma = cx.const_input(1, "prelu gamma").astype(np.float32)
        if gamma.size not in (1, x.shape[1] if len(x.shape) > 1 else 1):
            raise cx.shape_error(f"prelu gamma has {gamma.size} values but the input has "
                                 f"{x.shape[1]} channels (shape {x.shape})")
        # MXNet broadcasts gamma along axis 1; ONNX broadcasts from the right.
        shaped = gamma.reshape((-1,) + (1,) * (len(x.shape) - 2)) if gamma.size > 1 else gamma.reshape(1)
        return [cx.emit("PRelu", [x, cx.const(shaped, "slope")], x.shape, out=0)]
    raise cx.unsupported(f"LeakyReLU act_type={act!r}")


@register("hard_sigmoid")
def hard_sigmoid(cx: OpContext) -> list[Tensor]:
    return [_unary(cx, "HardSigmoid", cx.x, alpha=cx.a.float("alpha", 0.2), beta=cx.a.float("beta", 0.5))]


# ---- pooling ----------------------------------------------------------------------------------

def _window_lengths(size: int, k: int, s: int, p: int, n_out: int, include_pad: bool) -> np.ndarray:
    """MXNet's per-output divisor along one axis (src/operator/nn/pool.h)."""
    out = np.empty(n_out, np.float64)
    for o in range(n_out):
        start = o * s - p
        end = min(start + k, size + p)
        if include_pad:
            out[o] = end - start
        else:
            out[o] = min(end, size) - max(start, 0)
    return out


@register("Pooling", "Pooling_v1")
def pooling(cx: OpContext) -> list[Tensor]:
    x = cx.x
    pool_type = cx.a.str("pool_type", "max")
    nsp = len(x.shape) - 2
    if nsp < 1:
        raise cx.shape_error(f"needs an N,C,spatial... input, got shape {x.shape}")
    _check_layout(cx, nsp)
    if pool_type not in ("max", "avg", "sum", "lp"):
        raise cx.unsupported(f"pool_type={pool_type!r}")
    if cx.a.bool("global_pool", False):
        shape = x.shape[:2] + (1,) * nsp
        if pool_type == "max":
            return [cx.emit("GlobalMaxPool", [x], shape, out=0)]
        if pool_type == "lp":
            return [cx.emit("GlobalLpPool", [x], shape, out=0, p=cx.a.int("p_value", 2))]
        if pool_type == "avg":
            return [cx.emit("GlobalAveragePool", [x], shape, out=0)]
        avg = cx.emit("GlobalAveragePool", [x], shape)
        return [cx.emit("Mul", [avg, cx.const(float(np.prod(x.shape[2:])), "count")], shape, out=0)]
    kernel = _spatial(cx, "kernel", nsp, None)
    stride = _spatial(cx, "stride", nsp, 1)
    pad = _spatial(cx, "pad", nsp, 0)
    convention = cx.a.str("pooling_convention", "valid")
    if convention not in ("valid", "full"):
        raise cx.unsupported(f"pooling_convention={convention!r}")
    include_pad = cx.a.bool("count_include_pad", True)
    out, extra = [], []
    for size, k, s, p in zip(x.shape[2:], kernel, stride, pad):
        span = size + 2 * p - k
        if span < 0:
            raise cx.shape_error(f"kernel {kernel} is larger than the padded input {x.shape}")
        o = (-(-span // s) if convention == "full" else span // s) + 1
        out.append(o)
        extra.append(max(0, (o - 1) * s + k - (size + 2 * p)))  # windows overhanging the far edge
    shape = x.shape[:2] + tuple(out)
    base = dict(kernel_shape=list(kernel), strides=list(stride))
    if not any(extra):
        if pool_type == "max":
            return [cx.emit("MaxPool", [x], shape, out=0, pads=list(pad) * 2, **base)]
        if pool_type == "lp":
            return [cx.emit("LpPool", [x], shape, out=0, pads=list(pad) * 2, p=cx.a.int("p_value", 2), **base)]
        if pool_type == "avg":
            return [cx.emit("AveragePool", [x], shape, out=0, pads=list(pad) * 2,
                            count_include_pad=int(include_pad), **base)]
    if pool_type == "lp":
        raise cx.unsupported("lp pooling with pooling_convention='full' windows past the edge")
    # 'full' (ceil) windows that run past the input: pad explicitly so ONNX/MNN need no ceil_mode
    # (implementations disagree on it), then correct average divisors with a constant map.
    pads = [0, 0] + list(pad) + [0, 0] + [p + e for p, e in zip(pad, extra)]
    padded_shape = tuple(d + (pads[i] + pads[i + len(x.shape)]) for i, d in enumerate(x.shape))
    fill = F32_LOWEST if pool_type == "max" else 0.0
    xp = cx.emit("Pad", [x, cx.ints(pads, "pads"), cx.const(fill, "pad_value")], padded_shape, mode="constant")
    if pool_type == "max":
        return [cx.emit("MaxPool", [xp], shape, out=0, **base)]
    mean = cx.emit("AveragePool", [xp], shape, **base)
    ksize = float(np.prod(kernel))
    if pool_type == "sum":
        factor = np.array(ksize, np.float32)
    else:
        div = np.ones((), np.float64)
        for size, k, s, p, o in zip(x.shape[2:], kernel, stride, pad, out):
            div = np.multiply.outer(div, _window_lengths(size, k, s, p, o, include_pad))
        factor = (ksize / div).astype(np.float32).reshape((1, 1) + tuple(out))
    return [cx.emit("Mul", [mean, cx.const(factor, "divisor")], shape, out=0)]


# ---- dense ------------------------------------------------------------------------------------

@register("FullyConnected")
def fully_connected(cx: OpContext) -> list[Tensor]:
    cx.need_inputs(2, 3)
    x = cx.x
    n_out = cx.a.int("num_hidden")
    b = _bias(cx, n_out, cx.a.bool("no_bias", False))
    if cx.a.bool("flatten", True):
        n_in = int(np.prod(x.shape[1:]))
        w = _weight(cx, (n_out, n_in), f"an input of shape {x.shape} flattened to {n_in} features")
        if len(x.shape) != 2:
            x = cx.emit("Flatten", [x], (x.shape[0], n_in), axis=1)
        return [cx.emit("Gemm", [x, w, b], (x.shape[0], n_out), out=0, transB=1)]
    n_in = x.shape[-1]
    w = _weight(cx, (n_out, n_in), f"an input whose last dim is {n_in} (shape {x.shape})")
    shape = x.shape[:-1] + (n_out,)
    if w.value is not None:
        wt = cx.const(np.ascontiguousarray(w.value.T), "weight_t", w.value.dtype)
    else:
        wt = cx.emit("Transpose", [w], (n_in, n_out), perm=[1, 0])
    y = cx.emit("MatMul", [x, wt], shape, out=None if b is not None else 0)
    return [y] if b is None else [cx.emit("Add", [y, b], shape, out=0)]


@register("_contrib_AdaptiveAvgPooling2D")
def adaptive_avg_pooling(cx: OpContext) -> list[Tensor]:
    """PyTorch-style adaptive average pooling (bin o spans floor(o*in/out) .. ceil((o+1)*in/out)).

    Output 1x1 (what SE blocks and ResNeSt use) is a GlobalAveragePool; sizes that divide the input
    are an AveragePool; any other size is two constant averaging matrices, A_h @ x @ A_w^T, which is
    the same sum of the same elements per bin.
    """
    x = cx.x
    if len(x.shape) != 4:
        raise cx.shape_error(f"needs an N,C,H,W input, got shape {x.shape}")
    size = cx.a.tuple("output_size", ())
    if not size:
        size = (1, 1)
    elif len(size) == 1:
        size = (size[0], size[0])
    if len(size) != 2 or any(s is None or s < 1 for s in size):
        raise cx.shape_error(f"output_size={cx.a.str('output_size')} must be one or two positive integers")
    (h, w), (oh, ow) = x.shape[2:], size
    shape = x.shape[:2] + (oh, ow)
    if (oh, ow) == (1, 1):
        return [cx.emit("GlobalAveragePool", [x], shape, out=0)]
    if h % oh == 0 and w % ow == 0:
        kernel = [h // oh, w // ow]
        return [cx.emit("AveragePool", [x], shape, out=0, kernel_shape=kernel, strides=kernel)]

    def bins(n_in: int, n_out: int) -> np.ndarray:
        m = np.zeros((n_out, n_in), np.float32)
        for o in range(n_out):
            lo, hi = (o * n_in) // n_out, -(-((o + 1) * n_in) // n_out)
            m[o, lo:hi] = 1.0 / (hi - lo)
        return m

    y = cx.emit("MatMul", [x, cx.const(bins(w, ow).T.copy(), "avg_w")], x.shape[:3] + (ow,))
    return [cx.emit("MatMul", [cx.const(bins(h, oh), "avg_h"), y], shape, out=0)]
