"""TFLite -> TFLite: every DENSIFY op replaced by the dense constant it computes.

Why: MediaPipe ships pose_detection.tflite (and face_detection_full_range_sparse.tflite) with
sparse FP16 weights that 38 DENSIFY ops expand at run time; MNN's TFLite converter has no
DENSIFY (it logs `NOT_SUPPORTED_OP: [ DENSIFY ]`). A DENSIFY's input is a constant, so its
output is a constant too: decode it once here and store it as a plain buffer. The consumers
(DEQUANTIZE FP16 -> FP32, then the convolutions) are left as they are, so the rewritten model
computes bit for bit what the original computes; the pipeline checks that in LiteRT.

The decoder follows TFLite's sparsity format (schema.fbs `SparsityParameters`, and the
reference FormatConverter in tensorflow/lite/kernels/internal/utils/sparsity_format_converter):
the stored values are the leaves of a walk over `traversal_order` (the tensor's dims, then the
block dims of `block_map`), where a DENSE level visits all `dense_size` positions and a
SPARSE_CSR level visits `array_indices[array_segments[p]:array_segments[p + 1]]` of its parent
position p. It is vectorised level by level (each level expands its parents in order, which is
the depth-first order of the values).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from edgepose.errors import ConversionError

from . import tflite_model as tm

log = logging.getLogger(__name__)

DENSIFY = "DENSIFY"


def sparse_to_dense(values: np.ndarray, shape, sparsity) -> np.ndarray:
    """The dense array of a sparse TFLite constant (values in storage order, its SparsityParameters)."""
    S = tm.schema()
    shape = [int(d) for d in shape]
    rank = len(shape)
    order = [int(d) for d in sparsity.traversalOrder]
    block_map = [int(d) for d in (sparsity.blockMap if sparsity.blockMap is not None else ())]
    levels = list(sparsity.dimMetadata or ())
    if len(order) != rank + len(block_map) or len(levels) != len(order) or sorted(order) != list(range(len(order))):
        raise ConversionError(f"inconsistent sparsity parameters: traversal_order {order}, block_map {block_map}, "
                              f"{len(levels)} dim_metadata for a rank-{rank} tensor")
    pos = np.zeros(1, np.int64)  # each partial path's position in its level (the reference's prev_idx)
    coords: list[np.ndarray] = []  # per level, the index along the level's dimension
    for level in levels:
        if level.format == S.DimensionType.DENSE:
            n = int(level.denseSize)
            coords = [np.repeat(c, n) for c in coords]
            coords.append(np.tile(np.arange(n, dtype=np.int64), len(pos)))
            pos = (pos[:, None] * n + np.arange(n, dtype=np.int64)).ravel()
        elif level.format == S.DimensionType.SPARSE_CSR:
            segments = _index_vector(level.arraySegments)
            indices = _index_vector(level.arrayIndices)
            if pos.size and (pos.max() + 1 >= segments.size):
                raise ConversionError("sparse tensor: array_segments is shorter than its parent level")
            starts, counts = segments[pos], segments[pos + 1] - segments[pos]
            parent = np.repeat(np.arange(len(pos)), counts)
            first = np.cumsum(counts) - counts
            pos = starts[parent] + (np.arange(parent.size) - first[parent])  # positions in array_indices
            coords = [c[parent] for c in coords]
            coords.append(indices[pos].astype(np.int64))
        else:
            raise ConversionError(f"unknown sparse dimension format {level.format}")
    values = np.asarray(values).ravel()
    if pos.size != values.size:
        raise ConversionError(f"sparse tensor: the sparsity parameters address {pos.size} values, "
                              f"the buffer holds {values.size}")
    index = [np.zeros(pos.size, np.int64) for _ in range(rank)]
    for level, dim in enumerate(order[:rank]):
        index[dim] = coords[level]
    for level in range(rank, len(order)):  # block dims refine their tensor dim: outer * block + inner
        block = order[level] - rank
        block_level = order.index(rank + block)
        dim = block_map[block]
        index[dim] = index[dim] * int(levels[block_level].denseSize) + coords[level]
    dense = np.zeros(shape, values.dtype)
    dense[tuple(index)] = values
    return dense


def _index_vector(union) -> np.ndarray:
    """array_segments / array_indices: an Int32Vector, Uint16Vector or Uint8Vector table."""
    if union is None or getattr(union, "values", None) is None:
        raise ConversionError("sparse tensor: a SPARSE_CSR dimension has no array_segments / array_indices")
    return np.asarray(union.values, np.int64)


def constant_values(model, tensor) -> np.ndarray:
    """A constant tensor's stored values (flat, in storage order)."""
    buf = model.buffers[tensor.buffer]
    if buf.data is None or len(buf.data) == 0:
        raise ConversionError(f"tensor {_name(tensor)} has no constant data")
    raw = np.asarray(buf.data, np.uint8).tobytes()
    return np.frombuffer(raw, dtype=tm.tensor_dtype(tensor.type).newbyteorder("<")).copy()


def densify_model(model) -> dict[str, Any]:
    """Rewrite a ModelT in place: each DENSIFY output becomes a constant, the op and its sparse input go.

    Returns what was done (counts and the densified tensors' names) for the conversion report.
    """
    S = tm.schema()
    names = [tm.opcode_name(oc) for oc in model.operatorCodes or ()]
    densified: list[str] = []
    retired_buffers: set[int] = set()
    dense_values = 0
    for sub_index, sub in enumerate(model.subgraphs or ()):
        kept, dropped_tensors = [], set()
        for op in sub.operators or []:
            if names[op.opcodeIndex] != DENSIFY:
                kept.append(op)
                continue
            src, dst = sub.tensors[op.inputs[0]], sub.tensors[op.outputs[0]]
            if src.sparsity is None:
                raise ConversionError(f"DENSIFY input {_name(src)} carries no sparsity parameters")
            dense = sparse_to_dense(constant_values(model, src), src.shape, src.sparsity)
            want = tuple(int(d) for d in dst.shape)
            if dense.shape != want or tm.tensor_dtype(dst.type) != dense.dtype:
                raise ConversionError(f"DENSIFY {_name(dst)}: decoded {dense.dtype}{dense.shape}, "
                                      f"the graph says {tm.tensor_dtype(dst.type)}{want}")
            retired_buffers.add(dst.buffer)
            little_endian = dense.astype(dense.dtype.newbyteorder("<"), copy=False)  # TFLite's byte order
            model.buffers.append(S.BufferT(data=np.frombuffer(little_endian.tobytes(), np.uint8)))
            dst.buffer = len(model.buffers) - 1
            dense_values += dense.size
            densified.append(_name(dst))
            dropped_tensors.add(op.inputs[0])
        sub.operators = kept
        still_used = _used_tensors(model, sub_index)
        orphans = {t for t in dropped_tensors if t not in still_used}
        retired_buffers.update(sub.tensors[t].buffer for t in orphans)
        _remove_tensors(model, sub_index, orphans)
    _remove_opcodes(model, {i for i, n in enumerate(names) if n == DENSIFY})
    removed = _remove_buffers(model, retired_buffers - {0})
    return {"densify_ops_removed": len(densified), "dense_values": dense_values, "buffers_removed": removed,
            "densified_tensors": densified}


def has_densify(path: str | Path) -> bool:
    """Whether any subgraph of the .tflite file has a DENSIFY op (read from the operator codes only)."""
    return any(name == DENSIFY and not custom for name, custom in tm.graph_operators(path))


def densify_tflite(src: str | Path, dst: str | Path) -> dict[str, Any]:
    """Write `dst`: `src` with its DENSIFY ops folded into dense constants (atomically; src untouched)."""
    from .stages import atomic_path

    src, dst = Path(src), Path(dst)
    if dst.resolve() == src.resolve():
        raise ConversionError(f"refusing to overwrite the input {src} with its densified copy")
    model = tm.load_model(src)
    details = densify_model(model)
    data = tm.model_bytes(model)
    with atomic_path(dst) as tmp:
        tmp.write_bytes(data)
    log.info("%s: %d DENSIFY ops folded into constants -> %s", src.name, details["densify_ops_removed"], dst.name)
    return {"format": "tflite", **details}


# --- index bookkeeping ------------------------------------------------------------------------------
def _ints(seq) -> list[int]:
    """An index vector of the object API (None, a list or a numpy array) as a list of ints."""
    return [] if seq is None else [int(i) for i in seq]


def _name(tensor) -> str:
    name = tensor.name
    return name.decode(errors="replace") if isinstance(name, bytes) else str(name)


def _signature_maps(model, sub_index: int):
    for sig in model.signatureDefs or ():
        if sig.subgraphIndex == sub_index:
            yield from (*(sig.inputs or ()), *(sig.outputs or ()))


def _used_tensors(model, sub_index: int) -> set[int]:
    sub = model.subgraphs[sub_index]
    used = set(_ints(sub.inputs)) | set(_ints(sub.outputs))
    for op in sub.operators or []:
        used.update(_ints(op.inputs), _ints(op.outputs), _ints(op.intermediates))
    used.update(m.tensorIndex for m in _signature_maps(model, sub_index))
    used.discard(-1)  # an omitted optional input
    return used


def _remove_tensors(model, sub_index: int, drop: set[int]) -> None:
    if not drop:
        return
    sub = model.subgraphs[sub_index]
    remap, kept = {-1: -1}, []
    for i, tensor in enumerate(sub.tensors):
        if i not in drop:
            remap[i] = len(kept)
            kept.append(tensor)
    sub.tensors = kept

    def fix(seq):
        return None if seq is None else [remap[int(i)] for i in seq]

    sub.inputs, sub.outputs = fix(sub.inputs), fix(sub.outputs)
    for op in sub.operators or []:
        op.inputs, op.outputs, op.intermediates = fix(op.inputs), fix(op.outputs), fix(op.intermediates)
    for m in _signature_maps(model, sub_index):
        m.tensorIndex = remap[m.tensorIndex]


def _remove_opcodes(model, candidates: set[int]) -> None:
    """Drop the candidate operator codes no operator uses any more (other codes stay as they were)."""
    used = {op.opcodeIndex for sub in model.subgraphs or () for op in sub.operators or ()}
    keep = [i for i in range(len(model.operatorCodes or ())) if i in used or i not in candidates]
    remap = {old: new for new, old in enumerate(keep)}
    model.operatorCodes = [model.operatorCodes[i] for i in keep]
    for sub in model.subgraphs or ():
        for op in sub.operators or []:
            op.opcodeIndex = remap[op.opcodeIndex]


def _remove_buffers(model, candidates: set[int]) -> int:
    """Drop candidate buffers no tensor or metadata entry still refers to; returns how many went."""
    referenced = {t.buffer for sub in model.subgraphs or () for t in sub.tensors or ()}
    referenced.update(m.buffer for m in model.metadata or ())
    referenced.update(_ints(model.metadataBuffer))
    drop = {b for b in candidates if b not in referenced}
    if not drop:
        return 0
    remap, kept = {}, []
    for i, buf in enumerate(model.buffers):
        if i not in drop:
            remap[i] = len(kept)
            kept.append(buf)
    model.buffers = kept
    for sub in model.subgraphs or ():
        for t in sub.tensors or ():
            t.buffer = remap[t.buffer]
    for m in model.metadata or ():
        m.buffer = remap[m.buffer]
    if model.metadataBuffer is not None:
        model.metadataBuffer = [remap[int(b)] for b in model.metadataBuffer]
    return len(drop)
