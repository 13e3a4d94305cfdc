"""`_contrib_box_nms`: MXNet's box non-maximum suppression as an ONNX NonMaxSuppression subgraph.

MXNet 1.9.1 (src/operator/contrib/bounding_box-inl.h, BoxNMSForward), per batch of rows
(..., N, W) holding a score, four coordinates and optionally a class id:

 1. valid rows: score > valid_thresh (and, with id_index >= 0, id != background_id);
 2. the valid rows sorted by score, descending (stable), and only the first `topk` kept;
 3. greedy NMS in that order: a row is suppressed when its IoU with a kept, higher-scoring row is
    > overlap_thresh; with id_index >= 0 and force_suppress=False only rows whose ids (cast to int)
    are equal suppress each other;
 4. the output has the input's shape: the kept rows (all W fields, copied) first, in score order,
    then rows of -1; coordinates converted if out_format differs from in_format (MXNet skips a row
    whose first coordinate is negative, the -1 rows included).

The ONNX graph does the same with static shapes except NonMaxSuppression's own output:
Where(valid, score, -inf) -> the best `topk` in MXNet's order (score, then row index: see _candidates;
runtimes' TopK break ties differently); NonMaxSuppression runs on them, fed their ranks as scores (so
it cannot break ties its own way either) and corner boxes (MNN ignores center_point_box). Per-class
suppression without knowing the classes statically: one NMS "class" slot per candidate j, holding
the candidates of j's class when j is the first (highest-scoring) candidate of it, -inf elsewhere
(so every class is suppressed exactly once, on its own rows). The selected candidate indices become a
keep mask; a TopK on (keep * k + k - 1 - i) puts the kept candidates first in candidate (= score)
order; -1 fills the rest. The IoU is the runtime's: the same formula as MXNet's for corner boxes
(intersection / (area_a + area_b - intersection), both > threshold).
"""
from __future__ import annotations

import numpy as np

from onnx import TensorProto

from .builder import Tensor
from .context import OpContext, register
from .ops_nn import F32_LOWEST

_NEG_INF = float("-inf")
FLOAT, INT32 = TensorProto.FLOAT, TensorProto.INT32
# Candidates (after topk) the subgraph handles: it builds k x k comparison matrices (16 MB at 2048).
MAX_CANDIDATES = 2048


@register("_contrib_box_nms", "_contrib_box_non_maximum_suppression")
def box_nms(cx: OpContext) -> list[Tensor]:
    x = cx.x
    if len(x.shape) < 2:
        raise cx.shape_error(f"input must have at least 2 dims (boxes, fields), got {x.shape}")
    n, width = x.shape[-2], x.shape[-1]
    a = cx.a
    overlap = a.float("overlap_thresh", 0.5)
    valid_thresh = a.float("valid_thresh", 0.0)
    topk = a.int("topk", -1)
    cs = a.int("coord_start", 2)
    si = a.int("score_index", 1)
    ii = a.int("id_index", -1)
    background = a.float("background_id", -1.0)
    force = a.bool("force_suppress", False)
    fmt_in, fmt_out = a.str("in_format", "corner"), a.str("out_format", "corner")
    for fmt in (fmt_in, fmt_out):
        if fmt not in ("corner", "center"):
            raise cx.unsupported(f"box format {fmt!r}")
    need = 5 + (1 if ii >= 0 else 0)
    if width < need:
        raise cx.shape_error(f"rows need at least {need} fields (score, 4 coordinates{', id' if ii >= 0 else ''}), "
                             f"got {width}")
    if not (0 <= cs and cs + 3 < width) or not (0 <= si < width) or cs <= si <= cs + 3:
        raise cx.shape_error(f"coord_start={cs} / score_index={si} do not fit rows of {width} fields")
    if ii >= 0 and (ii >= width or cs <= ii <= cs + 3 or ii == si):
        raise cx.shape_error(f"id_index={ii} does not fit rows of {width} fields")
    k = n if topk < 0 else min(n, topk)
    if k < 1:  # MXNet returns the input unchanged
        return [x]
    if k > MAX_CANDIDATES:
        raise cx.unsupported(
            f"box_nms over {k} candidate boxes (topk={topk}, {n} rows): the faithful ONNX form compares every "
            f"pair of candidates (k x k), which is limited to k <= {MAX_CANDIDATES}; set topk (GluonCV's "
            "detectors use 400: net.set_nms(nms_topk=400)) and export again")
    lead = x.shape[:-2]
    batches = int(np.prod(lead)) if lead else 1
    x3 = x if len(x.shape) == 3 else cx.emit("Reshape", [x, cx.ints((batches, n, width), "shape3")],
                                              (batches, n, width))
    per_class = ii >= 0 and not force
    outs = []
    for b in range(batches):
        rows = _pick(cx, x3, b, 0, (n, width))
        out = _one_batch(cx, rows, n=n, width=width, k=k, cs=cs, si=si, ii=ii, background=background,
                         valid_thresh=valid_thresh, overlap=overlap, per_class=per_class,
                         center=fmt_in == "center", tag=f"b{b}")
        if fmt_in != fmt_out:
            out = _convert_format(cx, out, cs=cs, width=width, rows=k, to_center=fmt_out == "center")
        if n > k:  # rows beyond topk are always -1
            filler = cx.const(np.full((n - k, width), -1.0, np.float32), "filler")
            out = cx.emit("Concat", [out, filler], (n, width), axis=0)
        outs.append(out)
    if batches == 1:
        return [cx.emit("Reshape", [outs[0], cx.ints(x.shape, "out_shape")], x.shape, out=0)]
    lifted = [cx.emit("Unsqueeze", [o, cx.ints([0], "axis0")], (1, n, width)) for o in outs]
    stacked = cx.emit("Concat", lifted, (batches, n, width), axis=0)
    return [cx.emit("Reshape", [stacked, cx.ints(x.shape, "out_shape")], x.shape, out=0)]


def _candidates(cx: OpContext, masked: Tensor, *, n: int, k: int, tag: str) -> tuple[Tensor, Tensor]:
    """(scores, row indices) of the k best rows in MXNet's order: score descending, row index ascending
    among equal scores, whatever order the runtime's TopK gives ties (MNN's differs from ONNX Runtime's;
    random-weight YOLOv3 has 235 tied scores in its top 400).

    The k-th score v comes from a TopK (values do not depend on tie order). MXNet takes every row above
    v and, of the rows equal to v, the first ones by index (a CumSum counts them); a second TopK returns
    exactly that set, and a rank = #(better score) + #(equal score, lower index) over the k x k pairs
    puts it in order.
    """
    top, _ = _topk(cx, masked, k, f"{tag}_kth")
    kth = cx.emit("Slice", [top, cx.ints([k - 1], "last"), cx.ints([k], "end"), cx.ints([0], "axis0")], (1,))
    above = cx.emit("Greater", [masked, kth], (n,), dtype=np.bool_)
    at = cx.emit("Equal", [masked, kth], (n,), dtype=np.bool_)
    n_above = cx.emit("ReduceSum", [cx.emit("Cast", [above], (n,), to=FLOAT), cx.ints([0], "axis0")], (1,),
                      keepdims=1)
    room = cx.emit("Sub", [cx.const([float(k)], "k_float"), n_above], (1,))
    position = cx.emit("CumSum", [cx.emit("Cast", [at], (n,), to=FLOAT), cx.const(np.array(0, np.int64), "axis",
                                                                                   np.int64)], (n,))
    fits = cx.emit("Not", [cx.emit("Greater", [position, room], (n,), dtype=np.bool_)], (n,), dtype=np.bool_)
    chosen = cx.emit("Or", [above, cx.emit("And", [at, fits], (n,), dtype=np.bool_)], (n,), dtype=np.bool_)
    only = cx.emit("Where", [chosen, masked, cx.const(_NEG_INF, "neg_inf")], (n,))
    vals, idx = _topk(cx, only, k, f"{tag}_candidates")
    col = cx.emit("Unsqueeze", [vals, cx.ints([1], "axis1")], (k, 1))
    row = cx.emit("Unsqueeze", [vals, cx.ints([0], "axis0")], (1, k))
    icol = cx.emit("Unsqueeze", [idx, cx.ints([1], "axis1")], (k, 1), dtype=np.int64)
    irow = cx.emit("Unsqueeze", [idx, cx.ints([0], "axis0")], (1, k), dtype=np.int64)
    better = cx.emit("Greater", [row, col], (k, k), dtype=np.bool_)  # [a, b]: b ranks before a
    tie = cx.emit("And", [cx.emit("Equal", [row, col], (k, k), dtype=np.bool_),
                          cx.emit("Less", [irow, icol], (k, k), dtype=np.bool_)], (k, k), dtype=np.bool_)
    before = cx.emit("Cast", [cx.emit("Or", [better, tie], (k, k), dtype=np.bool_)], (k, k), to=FLOAT)
    rank = cx.emit("ReduceSum", [before, cx.ints([1], "axis1")], (k,), keepdims=0)
    _, order = _topk(cx, cx.emit("Neg", [rank], (k,)), k, f"{tag}_rank")  # ranks are distinct: no ties
    return (cx.emit("Gather", [vals, order], (k,), axis=0),
            cx.emit("Gather", [idx, order], (k,), axis=0, dtype=np.int64))


def _topk(cx: OpContext, x: Tensor, k: int, hint: str) -> tuple[Tensor, Tensor]:
    """(values, int64 indices) of the k largest, sorted; ties keep the lower index first."""
    values = cx.b.unique(f"{cx.node.name}__{hint}_values")
    indices = cx.b.unique(f"{cx.node.name}__{hint}_indices")
    cx.b.node("TopK", [x, cx.ints([k], "k")], [values, indices], name=f"{cx.node.name}/TopK", axis=0, largest=1,
              sorted=1)
    return Tensor(values, (k,)), Tensor(indices, (k,), np.dtype(np.int64))


def _pick(cx: OpContext, x: Tensor, index: int, axis: int, shape: tuple, dtype=np.float32) -> Tensor:
    """x's `index`-th slice along `axis`, that axis removed (Slice + Squeeze: the builder stores constant
    scalars with shape (1,), so a Gather with a 0-d index is not available)."""
    part = list(x.shape)
    part[axis] = 1
    sl = cx.emit("Slice", [x, cx.ints([index], "start"), cx.ints([index + 1], "end"), cx.ints([axis], "axis")],
                 tuple(part), dtype=dtype)
    return cx.emit("Squeeze", [sl, cx.ints([axis], "axis")], shape, dtype=dtype)


def _column(cx: OpContext, rows: Tensor, index: int, length: int) -> Tensor:
    return _pick(cx, rows, index, 1, (length,))


def _one_batch(cx: OpContext, rows: Tensor, *, n: int, width: int, k: int, cs: int, si: int, ii: int,
               background: float, valid_thresh: float, overlap: float, per_class: bool, center: bool,
               tag: str) -> Tensor:
    score = _column(cx, rows, si, n)
    valid = cx.emit("Greater", [score, cx.const(valid_thresh, "valid_thresh")], (n,), dtype=np.bool_)
    if ii >= 0:
        ids = _column(cx, rows, ii, n)
        background_row = cx.emit("Equal", [ids, cx.const(background, "background_id")], (n,), dtype=np.bool_)
        foreground = cx.emit("Not", [background_row], (n,), dtype=np.bool_)
        valid = cx.emit("And", [valid, foreground], (n,), dtype=np.bool_)
    masked = cx.emit("Where", [valid, score, cx.const(_NEG_INF, "neg_inf")], (n,))
    vals, idx = _candidates(cx, masked, n=n, k=k, tag=tag)
    cand = cx.emit("Gather", [rows, idx], (k, width), axis=0)
    # NMS visits boxes by score; ties would be broken by the runtime. Its scores are therefore the
    # candidates' ranks (k, k-1, ...: MXNet's order, all distinct), -inf where no valid row is.
    live = cx.emit("Greater", [vals, cx.const(F32_LOWEST, "lowest")], (k,), dtype=np.bool_)
    ranks = cx.const(np.arange(k, 0, -1, dtype=np.float32), "ranks")
    vals = cx.emit("Where", [live, ranks, cx.const(_NEG_INF, "neg_inf")], (k,))
    boxes = cx.emit("Slice", [cand, cx.ints([cs], "cs"), cx.ints([cs + 4], "ce"), cx.ints([1], "axis1")], (k, 4))
    if center:  # corners computed here: MNN ignores center_point_box (measured); ONNX Runtime converts alike
        xc, yc, w, h = (_column(cx, boxes, i, k) for i in range(4))
        two = cx.const(2.0, "two")
        hw, hh = cx.emit("Div", [w, two], (k,)), cx.emit("Div", [h, two], (k,))
        corners = [cx.emit("Sub", [xc, hw], (k,)), cx.emit("Sub", [yc, hh], (k,)),
                   cx.emit("Add", [xc, hw], (k,)), cx.emit("Add", [yc, hh], (k,))]
        corners = [cx.emit("Unsqueeze", [c, cx.ints([1], "axis1")], (k, 1)) for c in corners]
        boxes = cx.emit("Concat", corners, (k, 4), axis=1)
    boxes = cx.emit("Unsqueeze", [boxes, cx.ints([0], "axis0")], (1, k, 4))
    if per_class:
        ids = cx.emit("Cast", [_column(cx, cand, ii, k)], (k,), dtype=np.int32, to=INT32)  # MXNet: static_cast<int>
        col = cx.emit("Unsqueeze", [ids, cx.ints([1], "axis1")], (k, 1), dtype=np.int32)
        row = cx.emit("Unsqueeze", [ids, cx.ints([0], "axis0")], (1, k), dtype=np.int32)
        same = cx.emit("Equal", [col, row], (k, k), dtype=np.bool_)  # [j, i]: candidates j and i share a class
        earlier = cx.const(np.tril(np.ones((k, k), np.float32), -1), "earlier")  # i < j
        seen = cx.emit("Mul", [cx.emit("Cast", [same], (k, k), to=FLOAT), earlier], (k, k))
        seen = cx.emit("ReduceMax", [seen], (k, 1), axes=[1], keepdims=1)
        first = cx.emit("Less", [seen, cx.const(0.5, "half")], (k, 1), dtype=np.bool_)
        active = cx.emit("And", [same, first], (k, k), dtype=np.bool_)
        vals_row = cx.emit("Unsqueeze", [vals, cx.ints([0], "axis0")], (1, k))
        slots = cx.emit("Where", [active, vals_row, cx.const(_NEG_INF, "neg_inf")], (k, k))
        scores = cx.emit("Unsqueeze", [slots, cx.ints([0], "axis0")], (1, k, k))
    else:
        scores = cx.emit("Unsqueeze", [vals, cx.ints([0, 1], "axes01")], (1, 1, k))
    # Score threshold: the lowest float, so the -inf of invalid rows (and of other classes' slots) drops
    # out whatever comparison the runtime uses; valid_thresh was applied above with MXNet's '>'.
    selected = cx.emit("NonMaxSuppression",
                       [boxes, scores, cx.ints([k], "max_per_class"), cx.const([overlap], "iou"),
                        cx.const([F32_LOWEST], "score_floor")],
                       (-1, 3), dtype=np.int64)
    chosen = _pick(cx, selected, 2, 1, (-1,), np.int64)
    # A sentinel index k keeps the reduction below non-empty when nothing is selected.
    chosen = cx.emit("Concat", [chosen, cx.ints([k], "sentinel")], (-1,), axis=0, dtype=np.int64)
    chosen = cx.emit("Unsqueeze", [chosen, cx.ints([1], "axis1")], (-1, 1), dtype=np.int64)
    hits = cx.emit("Equal", [chosen, cx.const(np.arange(k, dtype=np.int64)[None, :], "positions", np.int64)],
                   (-1, k), dtype=np.bool_)
    count = cx.emit("ReduceSum", [cx.emit("Cast", [hits], (-1, k), to=FLOAT), cx.ints([0], "axis0")], (k,), keepdims=0)
    keep = cx.emit("Greater", [count, cx.const(0.5, "half")], (k,), dtype=np.bool_)
    key = cx.emit("Mul", [cx.emit("Cast", [keep], (k,), to=FLOAT), cx.const(float(k), "k_float")], (k,))
    key = cx.emit("Add", [key, cx.const(np.arange(k - 1, -1, -1, dtype=np.float32), "rank")], (k,))
    _, order = _topk(cx, key, k, f"{tag}_order")
    kept_rows = cx.emit("Gather", [cand, order], (k, width), axis=0)
    kept = cx.emit("Gather", [keep, order], (k,), axis=0, dtype=np.bool_)
    kept = cx.emit("Unsqueeze", [kept, cx.ints([1], "axis1")], (k, 1), dtype=np.bool_)
    return cx.emit("Where", [kept, kept_rows, cx.const(-1.0, "minus_one")], (k, width))


def _convert_format(cx: OpContext, out: Tensor, *, cs: int, width: int, rows: int, to_center: bool) -> Tensor:
    """corner <-> center on the coordinates, except rows whose first coordinate is negative (MXNet)."""
    cols = [_column(cx, out, cs + i, rows) for i in range(4)]
    two = cx.const(2.0, "two")
    if to_center:
        l, t, r, btm = cols
        new = [cx.emit("Div", [cx.emit("Add", [l, r], (rows,)), two], (rows,)),
               cx.emit("Div", [cx.emit("Add", [t, btm], (rows,)), two], (rows,)),
               cx.emit("Sub", [r, l], (rows,)), cx.emit("Sub", [btm, t], (rows,))]
    else:
        xc, yc, w, h = cols
        hw, hh = cx.emit("Div", [w, two], (rows,)), cx.emit("Div", [h, two], (rows,))
        new = [cx.emit("Sub", [xc, hw], (rows,)), cx.emit("Sub", [yc, hh], (rows,)),
               cx.emit("Add", [xc, hw], (rows,)), cx.emit("Add", [yc, hh], (rows,))]
    skip = cx.emit("Less", [cols[0], cx.const(0.0, "zero")], (rows,), dtype=np.bool_)
    new = [cx.emit("Where", [skip, old, c], (rows,)) for old, c in zip(cols, new)]
    new = [cx.emit("Unsqueeze", [c, cx.ints([1], "axis1")], (rows, 1)) for c in new]
    parts = []
    if cs > 0:
        parts.append(cx.emit("Slice", [out, cx.ints([0], "s0"), cx.ints([cs], "e0"), cx.ints([1], "axis1")], (rows, cs)))
    parts += new
    if cs + 4 < width:
        parts.append(cx.emit("Slice", [out, cx.ints([cs + 4], "s1"), cx.ints([width], "e1"), cx.ints([1], "axis1")],
                             (rows, width - cs - 4)))
    return cx.emit("Concat", parts, (rows, width), axis=1)
