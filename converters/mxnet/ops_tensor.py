"""Translators of MXNet's tensor operators: arithmetic, reshaping, slicing, softmax, resizing.
Semantics follow MXNet 1.x (src/operator/tensor/*)."""
from __future__ import annotations

import math

import numpy as np

from .builder import Tensor, onnx_dtype
from .context import OpContext, register
from .ops_nn import _unary


# ---- identity-like ------------------------------------------------------------------------------


@register("Dropout", "_copy", "identity", "BlockGrad", "stop_gradient", "make_loss", "MakeLoss",
          "LinearRegressionOutput", "MAERegressionOutput", ignores=(1,))
def identity(cx: OpContext) -> list[Tensor]:
    # Returning the input keeps the graph free of Identity nodes; heads get one if needed.
    return [cx.x]


@register("LogisticRegressionOutput", ignores=(1,))
def logistic_output(cx: OpContext) -> list[Tensor]:
    return [_unary(cx, "Sigmoid", cx.x)]


# ---- element-wise arithmetic ----------------------------------------------------------------------

_BINARY = {
    "add": "Add", "plus": "Add", "sub": "Sub", "minus": "Sub", "mul": "Mul", "div": "Div",
    "power": "Pow", "maximum": "Max", "minimum": "Min",
}
_ELEMWISE_NAMES = {
    "elemwise_add": "add", "elemwise_sub": "sub", "elemwise_mul": "mul", "elemwise_div": "div",
    "_Plus": "add", "_plus": "add", "_add": "add", "_Minus": "sub", "_minus": "sub", "_sub": "sub",
    "_Mul": "mul", "_mul": "mul", "_Div": "div", "_div": "div", "_Power": "power", "_power": "power",
    "_Maximum": "maximum", "_maximum": "maximum", "_Minimum": "minimum", "_minimum": "minimum",
}
_BROADCAST_NAMES = {f"broadcast_{k}": k for k in _BINARY}


def _binary(cx: OpContext, kind: str, *, same_shape: bool) -> list[Tensor]:
    cx.need_inputs(2)
    a, b = cx.ins
    if same_shape and a.shape != b.shape:
        raise cx.shape_error(f"inputs must have equal shapes, got {a.shape} and {b.shape}")
    try:
        shape = np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise cx.shape_error(f"input shapes {a.shape} and {b.shape} do not broadcast") from None
    return [cx.emit(_BINARY[kind], [a, b], shape, out=0)]


for _name, _kind in _ELEMWISE_NAMES.items():
    register(_name)(lambda cx, _k=_kind: _binary(cx, _k, same_shape=True))
for _name, _kind in _BROADCAST_NAMES.items():
    register(_name)(lambda cx, _k=_kind: _binary(cx, _k, same_shape=False))


@register("ElementWiseSum", "add_n")
def add_n(cx: OpContext) -> list[Tensor]:
    shapes = {t.shape for t in cx.ins}
    if len(shapes) != 1:
        raise cx.shape_error(f"inputs must have equal shapes, got {sorted(shapes)}")
    if len(cx.ins) == 1:
        return [cx.x]
    return [cx.emit("Sum", list(cx.ins), cx.x.shape, out=0)]


# (ONNX op, scalar on the left?) for MXNet's tensor-scalar operators.
_SCALAR = {
    "_plus_scalar": ("Add", False), "_PlusScalar": ("Add", False),
    "_minus_scalar": ("Sub", False), "_MinusScalar": ("Sub", False),
    "_rminus_scalar": ("Sub", True), "_RMinusScalar": ("Sub", True),
    "_mul_scalar": ("Mul", False), "_MulScalar": ("Mul", False),
    "_div_scalar": ("Div", False), "_DivScalar": ("Div", False),
    "_rdiv_scalar": ("Div", True), "_RDivScalar": ("Div", True),
    "_power_scalar": ("Pow", False), "_PowerScalar": ("Pow", False),
    "_rpower_scalar": ("Pow", True), "_RPowerScalar": ("Pow", True),
    "_maximum_scalar": ("Max", False), "_MaximumScalar": ("Max", False),
    "_minimum_scalar": ("Min", False), "_MinimumScalar": ("Min", False),
}
_COMPARE_SCALAR = {
    "_equal_scalar": ("Equal", False), "_not_equal_scalar": ("Equal", True),
    "_greater_scalar": ("Greater", False), "_greater_equal_scalar": ("Less", True),
    "_lesser_scalar": ("Less", False), "_lesser_equal_scalar": ("Greater", True),
}


def _scalar_op(cx: OpContext) -> list[Tensor]:
    x = cx.x
    op_type, swap = _SCALAR[cx.node.op]
    c = cx.const(np.array(cx.a.float("scalar", 0.0), x.dtype), "scalar", x.dtype)
    return [cx.emit(op_type, [c, x] if swap else [x, c], x.shape, out=0, dtype=x.dtype)]


def _compare_scalar(cx: OpContext) -> list[Tensor]:
    # MXNet returns 0/1 in the input dtype; "not" variants are the negation of the opposite test.
    x = cx.x
    op_type, negate = _COMPARE_SCALAR[cx.node.op]
    c = cx.const(np.array(cx.a.float("scalar", 0.0), x.dtype), "scalar", x.dtype)
    mask = cx.emit(op_type, [x, c], x.shape, dtype=np.bool_)
    if negate:
        mask = cx.emit("Not", [mask], x.shape, dtype=np.bool_)
    return [cx.emit("Cast", [mask], x.shape, out=0, dtype=x.dtype, to=onnx_dtype(x.dtype))]


for _name in _SCALAR:
    register(_name)(_scalar_op)
for _name in _COMPARE_SCALAR:
    register(_name)(_compare_scalar)


@register("clip")
def clip(cx: OpContext) -> list[Tensor]:
    x = cx.x
    lo = cx.const(np.array(cx.a.float("a_min"), x.dtype), "min", x.dtype)
    hi = cx.const(np.array(cx.a.float("a_max"), x.dtype), "max", x.dtype)
    return [cx.emit("Clip", [x, lo, hi], x.shape, out=0)]


_UNARY = {"exp": "Exp", "log": "Log", "sqrt": "Sqrt", "abs": "Abs", "negative": "Neg",
          "reciprocal": "Reciprocal", "floor": "Floor", "ceil": "Ceil", "erf": "Erf", "sin": "Sin",
          "cos": "Cos", "sign": "Sign"}


def _unary_math(cx: OpContext) -> list[Tensor]:
    return [_unary(cx, _UNARY[cx.node.op], cx.x)]


for _name in _UNARY:
    register(_name)(_unary_math)


@register("square")
def square(cx: OpContext) -> list[Tensor]:
    return [cx.emit("Mul", [cx.x, cx.x], cx.x.shape, out=0)]


@register("rsqrt")
def rsqrt(cx: OpContext) -> list[Tensor]:
    root = _unary(cx, "Sqrt", cx.x, out=None)
    return [_unary(cx, "Reciprocal", root)]


@register("Cast", "cast")
def cast(cx: OpContext) -> list[Tensor]:
    dtype = np.dtype(cx.a.str("dtype", "float32"))
    return [cx.emit("Cast", [cx.x], cx.x.shape, out=0, dtype=dtype, to=onnx_dtype(dtype))]


# ---- shape manipulation ---------------------------------------------------------------------------

def infer_reshape(spec: tuple[int, ...], dshape: tuple[int, ...], reverse: bool) -> tuple[int, ...]:
    """MXNet's Reshape shape codes (0 copy, -1 infer, -2 copy rest, -3 merge two, -4 split one).

    `reverse` reverses input dims and codes, applies them, and reverses back - exactly as MXNet's
    InferReshapeShape does, including its plain reversal of (-4, a, b) groups.
    """
    src = list(dshape[::-1] if reverse else dshape)
    params = list(spec[::-1] if reverse else spec)
    out: list[int] = []
    si, inf = 0, -1
    i = 0
    while i < len(params):
        d = params[i]
        if d == 0:
            if si >= len(src):
                raise ValueError("0 copies a dimension the input does not have")
            out.append(src[si])
            si += 1
        elif d == -1:
            if inf >= 0:
                raise ValueError("only one dimension can be -1")
            inf = len(out)
            out.append(1)
            si += 1
        elif d == -2:
            out.extend(src[si:])
            si = len(src)
        elif d == -3:
            if si + 1 >= len(src):
                raise ValueError("-3 needs two input dimensions")
            out.append(src[si] * src[si + 1])
            si += 2
        elif d == -4:
            if i + 2 >= len(params) or si >= len(src):
                raise ValueError("-4 needs two following values and an input dimension")
            d0, d1, d2 = src[si], params[i + 1], params[i + 2]
            si += 1
            i += 2
            if d1 == -1 and d2 == -1:
                raise ValueError("-4's split dims cannot both be -1")
            if d1 == -1:
                d1 = d0 // d2
            if d2 == -1:
                d2 = d0 // d1
            if d1 * d2 != d0:
                raise ValueError(f"-4 cannot split {d0} into {d1} x {d2}")
            out.extend([d1, d2])
        elif d > 0:
            out.append(d)
            si += 1
        else:
            raise ValueError(f"unknown shape code {d}")
        i += 1
    if inf >= 0:
        rest = int(np.prod(out))
        total = int(np.prod(dshape))
        if rest == 0 or total % rest:
            raise ValueError("cannot infer the -1 dimension")
        out[inf] = total // rest
    if reverse:
        out = out[::-1]
    return tuple(out)


@register("Reshape", "reshape")
def reshape(cx: OpContext) -> list[Tensor]:
    x = cx.x
    spec = cx.a.tuple("shape", ())
    try:
        if spec:
            shape = infer_reshape(tuple(spec), x.shape, cx.a.bool("reverse", False))
        else:
            target = cx.a.tuple("target_shape", ())
            if not target:
                raise ValueError("neither 'shape' nor 'target_shape' is set")
            target = list(target)
            if cx.a.bool("keep_highest", False):
                target[0] = x.shape[0]
            if target.count(0) > 1:
                raise ValueError("only one 0 (inferred) dimension in target_shape")
            if 0 in target:
                rest = int(np.prod([t for t in target if t]))
                target[target.index(0)] = int(np.prod(x.shape)) // rest
            shape = tuple(target)
    except ValueError as exc:
        raise cx.shape_error(f"shape={spec or cx.a.str('target_shape')} cannot reshape {x.shape}: {exc}") from None
    if int(np.prod(shape)) != int(np.prod(x.shape)):
        raise cx.shape_error(f"shape={spec} gives {shape} ({int(np.prod(shape))} elements) "
                             f"from input {x.shape} ({int(np.prod(x.shape))} elements)")
    return [cx.emit("Reshape", [x, cx.ints(shape, "shape")], shape, out=0, dtype=x.dtype)]


@register("Flatten", "flatten")
def flatten(cx: OpContext) -> list[Tensor]:
    x = cx.x
    shape = (x.shape[0], int(np.prod(x.shape[1:]))) if x.shape else (1, 1)
    return [cx.emit("Flatten", [x], shape, out=0, axis=1, dtype=x.dtype)]


@register("transpose")
def transpose(cx: OpContext) -> list[Tensor]:
    x = cx.x
    axes = cx.a.tuple("axes", ()) or tuple(reversed(range(len(x.shape))))
    axes = tuple(a % len(x.shape) for a in axes)
    if sorted(axes) != list(range(len(x.shape))):
        raise cx.shape_error(f"axes {axes} are not a permutation of {len(x.shape)} dims")
    return [cx.emit("Transpose", [x], tuple(x.shape[a] for a in axes), out=0, perm=list(axes), dtype=x.dtype)]


@register("SwapAxis", "swapaxes")
def swapaxes(cx: OpContext) -> list[Tensor]:
    x = cx.x
    perm = list(range(len(x.shape)))
    d1, d2 = cx.a.int("dim1", 0) % len(perm), cx.a.int("dim2", 0) % len(perm)
    perm[d1], perm[d2] = perm[d2], perm[d1]
    return [cx.emit("Transpose", [x], tuple(x.shape[a] for a in perm), out=0, perm=perm, dtype=x.dtype)]


@register("expand_dims")
def expand_dims(cx: OpContext) -> list[Tensor]:
    x = cx.x
    axis = cx.a.int("axis")
    if axis < 0:
        axis += len(x.shape) + 1
    shape = x.shape[:axis] + (1,) + x.shape[axis:]
    return [cx.emit("Unsqueeze", [x, cx.ints([axis], "axes")], shape, out=0, dtype=x.dtype)]


@register("squeeze")
def squeeze(cx: OpContext) -> list[Tensor]:
    x = cx.x
    axes = cx.a.tuple("axis", None)
    axes = [a % len(x.shape) for a in axes] if axes else [i for i, d in enumerate(x.shape) if d == 1]
    if any(x.shape[a] != 1 for a in axes):
        raise cx.shape_error(f"cannot squeeze axes {axes} of shape {x.shape}")
    shape = tuple(d for i, d in enumerate(x.shape) if i not in axes)
    return [cx.emit("Squeeze", [x, cx.ints(axes, "axes")], shape, out=0, dtype=x.dtype)]


@register("Concat", "concat")
def concat(cx: OpContext) -> list[Tensor]:
    nd = len(cx.x.shape)
    dim = cx.a.int("dim", 1)
    axis = dim % nd
    for t in cx.ins[1:]:
        if len(t.shape) != nd or any(a != b for i, (a, b) in enumerate(zip(t.shape, cx.x.shape)) if i != axis):
            raise cx.shape_error(f"cannot concatenate {cx.x.shape} and {t.shape} along dim {dim}")
    shape = list(cx.x.shape)
    shape[axis] = sum(t.shape[axis] for t in cx.ins)
    if len(cx.ins) == 1:
        return [cx.x]
    return [cx.emit("Concat", list(cx.ins), shape, out=0, axis=axis, dtype=cx.x.dtype)]


def _split_count(cx: OpContext) -> int:
    return cx.a.int("num_outputs", 1)


@register("SliceChannel", "split")
def split(cx: OpContext) -> list[Tensor]:
    x = cx.x
    n = _split_count(cx)
    axis = cx.a.int("axis", 1) % len(x.shape)
    if x.shape[axis] % n:
        raise cx.shape_error(f"dim {axis} of {x.shape} does not split into {n} equal parts")
    part = list(x.shape)
    part[axis] //= n
    parts = cx.emit_multi("Split", [x, cx.ints([part[axis]] * n, "split")], [part] * n, axis=axis)
    if not cx.a.bool("squeeze_axis", False):
        return parts
    if part[axis] != 1:
        raise cx.shape_error("squeeze_axis=True needs parts of size 1")
    squeezed = tuple(d for i, d in enumerate(part) if i != axis)
    axes = cx.ints([axis], "axes")
    return [cx.emit("Squeeze", [p, axes], squeezed, out=i) for i, p in enumerate(parts)]


def _slice_spec(cx: OpContext, x: Tensor, axes, begins, ends, steps) -> list[Tensor]:
    """Python-style slicing; axes with a negative step become a Gather of explicit indices.

    Why: MNN 3.6.1 crashed ("free(): invalid size") in 5 of 5 runs of our six-output slice test
    graph when negative steps were ONNX Slices (each slice alone ran fine); the index list is
    exact and ran cleanly everywhere.
    """
    fwd, back, shape = [], [], list(x.shape)
    for axis, b, e, s in zip(axes, begins, ends, steps):
        s = 1 if s is None else s
        if s == 0:
            raise cx.shape_error("slice step cannot be 0")
        start, stop, step = slice(b, e, s).indices(x.shape[axis])
        index = range(start, stop, step)
        if len(index) == 0:
            raise cx.shape_error(f"slice begin={b} end={e} step={s} is empty on dim {axis} of {x.shape}")
        shape[axis] = len(index)
        (fwd if step > 0 else back).append((axis, index))
    y = x
    if fwd:
        cur = list(y.shape)
        for axis, index in fwd:
            cur[axis] = len(index)
        last = not back
        bounds = [cx.ints([r.start for _, r in fwd], "starts"), cx.ints([r.stop for _, r in fwd], "ends"),
                  cx.ints([a for a, _ in fwd], "axes"), cx.ints([r.step for _, r in fwd], "steps")]
        y = cx.emit("Slice", [y, *bounds], cur, out=0 if last else None, dtype=x.dtype)
    for k, (axis, index) in enumerate(back):
        cur = list(y.shape)
        cur[axis] = len(index)
        y = cx.emit("Gather", [y, cx.ints(list(index), "indices")], cur, out=0 if k == len(back) - 1 else None,
                    dtype=x.dtype, axis=axis)
    return [y]


@register("slice", "crop")
def slice_op(cx: OpContext) -> list[Tensor]:
    x = cx.x
    begin = cx.a.tuple("begin", ())
    end = cx.a.tuple("end", ())
    step = cx.a.tuple("step", ()) or (None,) * len(begin)
    if len(begin) != len(end) or len(step) != len(begin) or len(begin) > len(x.shape):
        raise cx.shape_error(f"begin={begin}, end={end}, step={step} do not fit shape {x.shape}")
    return _slice_spec(cx, x, list(range(len(begin))), begin, end, step)


@register("slice_axis")
def slice_axis(cx: OpContext) -> list[Tensor]:
    x = cx.x
    axis = cx.a.int("axis") % len(x.shape)
    return _slice_spec(cx, x, [axis], [cx.a.int("begin", 0)], [cx.a.int("end", None)], [1])


@register("Pad", "pad")
def pad(cx: OpContext) -> list[Tensor]:
    x = cx.x
    width = cx.a.tuple("pad_width", ())
    nd = len(x.shape)
    if len(width) != 2 * nd:
        raise cx.shape_error(f"pad_width {width} needs {2 * nd} values for shape {x.shape}")
    mode = cx.a.str("mode", "constant")
    if mode not in ("constant", "edge", "reflect"):
        raise cx.unsupported(f"Pad mode {mode!r}")
    pads = [width[2 * i] for i in range(nd)] + [width[2 * i + 1] for i in range(nd)]
    shape = tuple(d + pads[i] + pads[i + nd] for i, d in enumerate(x.shape))
    value = cx.const(cx.a.float("constant_value", 0.0), "value")
    return [cx.emit("Pad", [x, cx.ints(pads, "pads"), value], shape, out=0, mode=mode)]


# ---- reductions -------------------------------------------------------------------------------------

def _reduce(cx: OpContext, op_type: str) -> list[Tensor]:
    x = cx.x
    nd = len(x.shape)
    axes = cx.a.tuple("axis", ())
    axes = sorted({a % nd for a in axes}) if axes else list(range(nd))
    if cx.a.bool("exclude", False):
        axes = [i for i in range(nd) if i not in axes]
    keep = cx.a.bool("keepdims", False)
    shape = tuple(1 if i in axes else d for i, d in enumerate(x.shape)) if keep else \
        tuple(d for i, d in enumerate(x.shape) if i not in axes)
    scalar = shape == ()  # MXNet (legacy shape semantics) returns (1,), not a 0-d array
    out = None if scalar else 0
    if op_type == "ReduceSum":  # axes became an input in opset 13; the others follow in opset 18
        y = cx.emit(op_type, [x, cx.ints(axes, "axes")], shape, out=out, keepdims=int(keep))
    else:
        y = cx.emit(op_type, [x], shape, out=out, axes=axes, keepdims=int(keep))
    if scalar:
        y = cx.emit("Reshape", [y, cx.ints([1], "shape")], (1,), out=0)
    return [y]


for _name, _op in (("mean", "ReduceMean"), ("sum", "ReduceSum"), ("max", "ReduceMax"),
                   ("min", "ReduceMin"), ("prod", "ReduceProd")):
    register(_name)(lambda cx, _o=_op: _reduce(cx, _o))


# ---- softmax family ---------------------------------------------------------------------------------

def _softmax_axis(cx: OpContext, x: Tensor, axis: int, *, log: bool = False) -> Tensor:
    return cx.emit("LogSoftmax" if log else "Softmax", [x], x.shape, out=0, axis=axis)


def _softmax_flat(cx: OpContext, x: Tensor) -> Tensor:
    """Softmax over everything but the batch axis, shape kept (MXNet's 'instance' mode)."""
    if len(x.shape) == 2:
        return _softmax_axis(cx, x, 1)
    flat = cx.emit("Flatten", [x], (x.shape[0], int(np.prod(x.shape[1:]))), axis=1)
    sm = cx.emit("Softmax", [flat], flat.shape, axis=1)
    return cx.emit("Reshape", [sm, cx.ints(x.shape, "shape")], x.shape, out=0)


@register("softmax", "log_softmax")
def softmax(cx: OpContext) -> list[Tensor]:
    x = cx.x
    if cx.a.bool("use_length", False):
        raise cx.unsupported("softmax with use_length=True")
    temperature = cx.a.float("temperature", None)
    if temperature not in (None, 1.0):
        x = cx.emit("Div", [x, cx.const(temperature, "temperature")], x.shape)
    axis = cx.a.int("axis", -1) % len(x.shape)
    return [_softmax_axis(cx, x, axis, log=cx.node.op == "log_softmax")]


@register("SoftmaxOutput", "Softmax", ignores=(1,))
def softmax_output(cx: OpContext) -> list[Tensor]:
    x = cx.x
    if cx.a.bool("multi_output", False):
        return [_softmax_axis(cx, x, 1)]
    if cx.a.bool("preserve_shape", False):
        return [_softmax_axis(cx, x, len(x.shape) - 1)]
    return [_softmax_flat(cx, x)]


@register("SoftmaxActivation")
def softmax_activation(cx: OpContext) -> list[Tensor]:
    # 'instance' is the last axis on MXNet 1.x's CPU kernel (the same as per-instance for 2-D
    # input, the only case cuDNN accepts); measured against MXNet 1.9.1 with a 4-D input.
    x = cx.x
    if cx.a.str("mode", "instance") == "channel":
        return [_softmax_axis(cx, x, 1)]
    return [_softmax_axis(cx, x, len(x.shape) - 1)]


# ---- resizing ---------------------------------------------------------------------------------------

@register("UpSampling")
def upsampling(cx: OpContext) -> list[Tensor]:
    scale = cx.a.int("scale")
    kind = cx.a.str("sample_type", "nearest")
    if kind == "bilinear":
        return _upsample_bilinear(cx, scale)
    if kind != "nearest":
        raise cx.unsupported(f"UpSampling sample_type={kind!r}")
    base = cx.x
    if len(base.shape) != 4:
        raise cx.shape_error(f"needs a 4-D input, got {base.shape}")
    out_hw = (base.shape[2] * scale, base.shape[3] * scale)
    resized = []
    for t in cx.ins:
        if len(t.shape) != 4 or out_hw[0] % t.shape[2] or out_hw[1] % t.shape[3]:
            raise cx.shape_error(f"input {t.shape} does not upsample to {out_hw}")
        factor = (out_hw[0] // t.shape[2], out_hw[1] // t.shape[3])
        shape = t.shape[:2] + out_hw
        last = len(cx.ins) == 1
        if factor == (1, 1):
            resized.append(t)
            continue
        resized.append(cx.emit("Resize", [t, "", cx.const([1.0, 1.0, float(factor[0]), float(factor[1])], "scales")],
                               shape, out=0 if last else None, mode="nearest",
                               coordinate_transformation_mode="asymmetric", nearest_mode="floor"))
    if len(resized) == 1:
        return resized
    if cx.a.str("multi_input_mode", "concat") == "sum":
        if len({t.shape for t in resized}) != 1:
            raise cx.shape_error("multi_input_mode='sum' needs inputs with equal channel counts")
        return [cx.emit("Sum", resized, resized[0].shape, out=0)]
    shape = (base.shape[0], sum(t.shape[1] for t in resized)) + out_hw
    return [cx.emit("Concat", resized, shape, out=0, axis=1)]


def _upsample_bilinear(cx: OpContext, scale: int) -> list[Tensor]:
    # MXNet implements it as a grouped Deconvolution with the given (bilinear) weight.
    cx.need_inputs(2)
    x, w = cx.ins
    c = x.shape[1]
    k = 2 * scale - scale % 2
    p = int(np.ceil((scale - 1) / 2.0))
    if tuple(w.shape) != (c, 1, k, k):
        raise cx.shape_error(f"bilinear weight {w.name!r} has shape {w.shape}, expected {(c, 1, k, k)}")
    shape = x.shape[:2] + tuple(scale * (d - 1) + k - 2 * p for d in x.shape[2:])
    return [cx.emit("ConvTranspose", [x, w], shape, out=0, kernel_shape=[k, k], strides=[scale, scale],
                    pads=[p, p, p, p], group=c)]


# ---- matrix products ----------------------------------------------------------------------------------

@register("dot", "batch_dot")
def dot(cx: OpContext) -> list[Tensor]:
    cx.need_inputs(2)
    a, b = cx.ins
    want = 2 if cx.node.op == "dot" else 3
    if len(a.shape) != want or len(b.shape) != want:
        raise cx.unsupported(f"{cx.node.op} of {a.shape} and {b.shape} (only {want}-D operands)")

    def maybe_t(t: Tensor, flag: str) -> Tensor:
        if not cx.a.bool(flag, False):
            return t
        perm = list(range(want - 2)) + [want - 1, want - 2]
        return cx.emit("Transpose", [t], tuple(t.shape[i] for i in perm), perm=perm)

    a, b = maybe_t(a, "transpose_a"), maybe_t(b, "transpose_b")
    if a.shape[-1] != b.shape[-2] or a.shape[:-2] != b.shape[:-2]:
        raise cx.shape_error(f"cannot multiply {a.shape} by {b.shape}")
    return [cx.emit("MatMul", [a, b], a.shape[:-1] + b.shape[-1:], out=0)]


@register("broadcast_to")
def broadcast_to(cx: OpContext) -> list[Tensor]:
    x = cx.x
    target = cx.a.tuple("shape", ())
    if len(target) != len(x.shape):
        raise cx.shape_error(f"shape {target} does not match the input's {len(x.shape)} dims")
    shape = tuple(d if t == 0 else t for d, t in zip(x.shape, target))
    if any(d not in (1, t) for d, t in zip(x.shape, shape)):
        raise cx.shape_error(f"cannot broadcast {x.shape} to {shape}")
    return [cx.emit("Expand", [x, cx.ints(shape, "shape")], shape, out=0, dtype=x.dtype)]


# ---- generators, tiling and repetition (GluonCV's YOLOv3 head and upsampling) ------------------------

@register("_arange")
def arange(cx: OpContext) -> list[Tensor]:
    """A constant: MXNet computes value_i = start + (i // repeat) * step in the output dtype."""
    if cx.a.bool("infer_range", False):
        raise cx.unsupported("_arange with infer_range=True (its length comes from another operand)")
    start = cx.a.float("start", 0.0)
    stop = cx.a.float("stop", None)
    step = cx.a.float("step", 1.0)
    repeat = cx.a.int("repeat", 1)
    if stop is None:
        start, stop = 0.0, start
    if step == 0 or repeat < 1:
        raise cx.shape_error(f"step={step} and repeat={repeat} give no range")
    n = max(0, int(math.ceil((stop - start) / step)))  # MXNet's RangeShape, in double
    if n == 0:
        raise cx.shape_error(f"_arange(start={start}, stop={stop}, step={step}) is empty")
    dtype = np.dtype(cx.a.str("dtype", "float32"))
    k = (np.arange(n * repeat) // repeat).astype(dtype)
    value = (k * dtype.type(step) + dtype.type(start)).astype(dtype)
    return [cx.const(value, "arange", dtype)]


@register("slice_like")
def slice_like(cx: OpContext) -> list[Tensor]:
    """data[:d_0, :d_1, ...] with the ends taken from shape_like's shape (on `axes`, or all of them)."""
    cx.need_inputs(2)
    x, like = cx.ins
    nd = len(x.shape)
    axes = cx.a.tuple("axes", ())
    if axes:
        axes = [a + nd if a < 0 else a for a in axes]
        if any(not 0 <= a < nd or a >= len(like.shape) for a in axes):
            raise cx.shape_error(f"axes {cx.a.tuple('axes')} do not fit data {x.shape} and shape_like {like.shape}")
    else:
        if len(like.shape) != nd:
            raise cx.shape_error(f"without axes, shape_like {like.shape} must have the rank of data {x.shape}")
        axes = list(range(nd))
    ends = [like.shape[a] for a in axes]
    if any(e > x.shape[a] for a, e in zip(axes, ends)):
        raise cx.shape_error(f"shape_like {like.shape} is larger than data {x.shape} on axes {axes}")
    shape = list(x.shape)
    for a, e in zip(axes, ends):
        shape[a] = e
    if x.value is not None:  # constant data (YOLOv3's offset grid): the slice is a constant too
        return [cx.const(x.value[tuple(slice(0, d) for d in shape)], "sliced", x.dtype)]
    if tuple(shape) == x.shape:
        return [x]
    return [cx.emit("Slice", [x, cx.ints([0] * len(axes), "starts"), cx.ints(ends, "ends"), cx.ints(axes, "axes")],
                    shape, out=0, dtype=x.dtype)]


@register("tile")
def tile(cx: OpContext) -> list[Tensor]:
    """numpy.tile: reps shorter than the rank are padded with leading 1s; longer ones add leading dims."""
    x = cx.x
    reps = cx.a.tuple("reps", ())
    if not reps or any(r is None or r < 1 for r in reps):
        raise cx.shape_error(f"reps={reps} must be positive integers")
    nd = max(len(x.shape), len(reps))
    reps = (1,) * (nd - len(reps)) + tuple(reps)
    if len(x.shape) < nd:
        lifted = (1,) * (nd - len(x.shape)) + x.shape
        x = cx.emit("Reshape", [x, cx.ints(lifted, "lifted")], lifted, dtype=x.dtype)
    shape = tuple(d * r for d, r in zip(x.shape, reps))
    if all(r == 1 for r in reps):
        return [x]
    return [cx.emit("Tile", [x, cx.ints(reps, "reps")], shape, out=0, dtype=x.dtype)]


@register("repeat")
def repeat(cx: OpContext) -> list[Tensor]:
    """numpy.repeat: each element `repeats` times along `axis` (the flattened input without one).

    A Gather of explicit indices (0, 0, 1, 1, ...): one exact node that every runtime here runs.
    """
    x = cx.x
    reps = cx.a.int("repeats")
    if reps is None or reps < 1:
        raise cx.shape_error(f"repeats={reps} must be a positive integer")
    axis = cx.a.int("axis", None)
    if axis is None:
        flat = (int(np.prod(x.shape)),)
        x = cx.emit("Reshape", [x, cx.ints(flat, "flat")], flat, dtype=x.dtype)
        axis = 0
    nd = len(x.shape)
    if not -nd <= axis < nd:
        raise cx.shape_error(f"axis {axis} is out of range for shape {x.shape}")
    axis %= nd
    shape = list(x.shape)
    shape[axis] *= reps
    index = np.repeat(np.arange(x.shape[axis]), reps)
    return [cx.emit("Gather", [x, cx.ints(index, "indices")], shape, out=0, axis=axis, dtype=x.dtype)]
