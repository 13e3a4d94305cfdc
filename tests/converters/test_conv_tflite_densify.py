"""Sparse TFLite weights (DENSIFY) folded into constants: the decoder and the rewritten file, checked in LiteRT.

The references are LiteRT's own DENSIFY kernel (its output tensors, kept with
experimental_preserve_all_tensors) and the original model's outputs; nothing is mocked.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from edgepose import assets
pytest.importorskip("ai_edge_litert")  # build-time extra (demo/convert): skip without it
from edgepose.converters import tflite_densify as td
from edgepose.converters import tflite_model as tm

S = tm.schema()


def _interpreter(path, *, preserve=False):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    # Without the default XNNPACK delegate: XNNPACK takes DENSIFY's consumers and never fills the
    # DENSIFY output tensors the decoder is compared with.
    kwargs = dict(experimental_preserve_all_tensors=True,
                  experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES) if preserve else {}
    interp = Interpreter(model_path=str(path), num_threads=1, **kwargs)
    interp.allocate_tensors()
    return interp


def _run(path, x):
    interp = _interpreter(path)
    interp.set_tensor(interp.get_input_details()[0]["index"], x)
    interp.invoke()
    return {d["name"]: interp.get_tensor(d["index"]).copy() for d in interp.get_output_details()}


def _densify_ops(model):
    names = [tm.opcode_name(oc) for oc in model.operatorCodes]
    sub = model.subgraphs[0]
    return [op for op in sub.operators if names[op.opcodeIndex] == td.DENSIFY]


@pytest.fixture(scope="module")
def sparse_models(mediapipe_model):
    return {"pose_detection": assets.fetch_asset("pose_detection"),
            "face_detection_full_range_sparse": mediapipe_model("face_detection_full_range_sparse")}


@pytest.mark.parametrize("name,count", [("pose_detection", 38), ("face_detection_full_range_sparse", 46)])
def test_decoder_equals_litert_densify_kernel_bit_for_bit(sparse_models, name, count):
    path = sparse_models[name]
    model = tm.load_model(path)
    ops = _densify_ops(model)
    assert len(ops) == count
    interp = _interpreter(path, preserve=True)
    inp = interp.get_input_details()[0]
    interp.set_tensor(inp["index"], np.zeros(inp["shape"], np.float32))
    interp.invoke()
    sub = model.subgraphs[0]
    for op in ops:
        src = sub.tensors[op.inputs[0]]
        ref = interp.get_tensor(int(op.outputs[0]))  # tensor indices are the file's
        got = td.sparse_to_dense(td.constant_values(model, src), src.shape, src.sparsity)
        assert got.dtype == ref.dtype == np.float16 and got.shape == ref.shape
        assert np.array_equal(got.view(np.uint16), ref.view(np.uint16)), td._name(src)
        assert got.size > td.constant_values(model, src).size  # really stored sparse


@pytest.fixture(scope="module")
def dense_pose(tmp_path_factory, sparse_models):
    src = sparse_models["pose_detection"]
    dst = tmp_path_factory.mktemp("dense") / "pose_detection.dense.tflite"
    details = td.densify_tflite(src, dst)
    return src, dst, details


def test_densified_file_has_no_sparse_parts_and_keeps_the_rest(dense_pose):
    src, dst, details = dense_pose
    assert assets.sha256_of(src) == assets.ASSETS["pose_detection"].sha256  # the input is untouched
    assert details["densify_ops_removed"] == 38 and details["buffers_removed"] == 76
    before, after = tm.operator_counts(src), tm.operator_counts(dst)
    assert before.pop(td.DENSIFY) == 38 and after == before  # every other op as it was
    orig, new = tm.load_model(src), tm.load_model(dst)
    assert [tm.opcode_name(oc) for oc in new.operatorCodes] == [
        tm.opcode_name(oc) for oc in orig.operatorCodes if tm.opcode_name(oc) != td.DENSIFY]
    assert all(t.sparsity is None for t in new.subgraphs[0].tensors)
    assert len(new.subgraphs[0].tensors) == len(orig.subgraphs[0].tensors) - 38
    assert len(new.buffers) == len(orig.buffers) - 38  # 76 sparse/empty ones out, 38 dense ones in
    assert [(m.name, bytes(new.buffers[m.buffer].data)) for m in new.metadata] == [
        (m.name, bytes(orig.buffers[m.buffer].data)) for m in orig.metadata]  # MediaPipe's metadata kept
    raw = dst.read_bytes()
    root = S.Model.GetRootAs(raw, 0)
    for i in range(root.BuffersLength()):
        buf = root.Buffers(i)
        if buf.DataLength():
            assert buf._tab.Vector(buf._tab.Offset(4)) % tm.BUFFER_ALIGNMENT == 0


def test_densified_file_equals_the_original_in_litert(dense_pose, photos):
    import cv2

    src, dst, _ = dense_pose
    rng = np.random.default_rng(3)
    photo = cv2.cvtColor(cv2.resize(cv2.imread(str(photos["zidane"])), (224, 224)), cv2.COLOR_BGR2RGB)
    inputs = [rng.uniform(-1, 1, (1, 224, 224, 3)).astype(np.float32),
              (photo[None].astype(np.float32) / 127.5 - 1.0).astype(np.float32)]
    for x in inputs:
        ref, got = _run(src, x), _run(dst, x)
        assert set(ref) == set(got) == {"Identity", "Identity_1"}
        assert ref["Identity"].shape == (1, 2254, 12) and ref["Identity_1"].shape == (1, 2254, 1)
        for name in ref:
            np.testing.assert_array_equal(got[name], ref[name])  # bit-exact: the same kernels, same weights


# --- the sparsity format on small tensors: block maps, other traversal orders, every index width ----
def _encode(dense, order, block_map, block_sizes, formats):
    """A TFLite SparsityParameters encoding of `dense` (zeros dropped where a level is SPARSE_CSR)."""
    rank = dense.ndim
    blocked = list(dense.shape)
    for b, d in enumerate(block_map):
        blocked[d] //= block_sizes[b]
    sizes = [blocked[o] if o < rank else block_sizes[o - rank] for o in order]

    def level_coords(idx):
        per_dim = {d: (idx[d] // block_sizes[b], idx[d] % block_sizes[b]) for b, d in enumerate(block_map)}
        return tuple(per_dim[o][0] if o < rank and o in per_dim else idx[o] if o < rank
                     else per_dim[block_map[o - rank]][1] for o in order)

    where = {level_coords(i): dense[i] for i in itertools.product(*map(range, dense.shape))}
    live = {k[:n] for k, v in where.items() if v != 0 for n in range(len(order) + 1)}
    values, segments, indices = [], [[0] for _ in order], [[] for _ in order]

    def walk(path):
        level = len(path)
        if level == len(order):
            values.append(where[tuple(path)])
            return
        for i in range(sizes[level]):
            if formats[level] == "dense":
                walk(path + [i])
            elif tuple(path + [i]) in live:
                indices[level].append(i)
                walk(path + [i])
        if formats[level] == "csr":
            segments[level].append(len(indices[level]))

    walk([])
    return np.array(values, dense.dtype), sizes, segments, indices


def _sparse_constant_model(dense, order, block_map, block_sizes, formats, index_type):
    """x + DENSIFY(sparse constant): with x = 0 the output is LiteRT's densified constant."""
    values, sizes, segments, indices = _encode(dense, order, block_map, block_sizes, formats)
    vec_cls, np_type, union = {"int32": (S.Int32VectorT, np.int32, S.SparseIndexVector.Int32Vector),
                               "uint16": (S.Uint16VectorT, np.uint16, S.SparseIndexVector.Uint16Vector),
                               "uint8": (S.Uint8VectorT, np.uint8, S.SparseIndexVector.Uint8Vector)}[index_type]
    sparsity = S.SparsityParametersT()
    sparsity.traversalOrder, sparsity.blockMap = list(order), list(block_map) or None
    sparsity.dimMetadata = []
    for level, fmt in enumerate(formats):
        dm = S.DimensionMetadataT()
        if fmt == "dense":
            dm.format, dm.denseSize = S.DimensionType.DENSE, sizes[level]
        else:
            dm.format = S.DimensionType.SPARSE_CSR
            seg, idx = vec_cls(), vec_cls()
            seg.values, idx.values = np.array(segments[level], np_type), np.array(indices[level], np_type)
            dm.arraySegmentsType = dm.arrayIndicesType = union
            dm.arraySegments, dm.arrayIndices = seg, idx
        sparsity.dimMetadata.append(dm)

    model = S.ModelT()
    model.version = 3
    for code in (S.BuiltinOperator.DENSIFY, S.BuiltinOperator.ADD):
        oc = S.OperatorCodeT()
        oc.builtinCode, oc.deprecatedBuiltinCode, oc.version = code, code, 1
        model.operatorCodes = [*(model.operatorCodes or []), oc]
    model.buffers = [S.BufferT(), S.BufferT(), S.BufferT(data=np.frombuffer(values.tobytes(), np.uint8)),
                     S.BufferT(), S.BufferT()]
    tensors = []
    for name, buf, sp in (("x", 1, None), ("sparse", 2, sparsity), ("dense", 3, None), ("y", 4, None)):
        t = S.TensorT()
        t.name, t.shape, t.type, t.buffer, t.sparsity = name, np.array(dense.shape, np.int32), 0, buf, sp
        tensors.append(t)
    sub = S.SubGraphT()
    sub.tensors, sub.inputs, sub.outputs = tensors, [0], [3]
    densify, add = S.OperatorT(), S.OperatorT()
    densify.opcodeIndex, densify.inputs, densify.outputs = 0, [1], [2]
    add.opcodeIndex, add.inputs, add.outputs = 1, [0, 2], [3]
    add.builtinOptionsType, add.builtinOptions = S.BuiltinOptions.AddOptions, S.AddOptionsT()
    sub.operators = [densify, add]
    model.subgraphs = [sub]
    return tm.model_bytes(model), values.size


CASES = {  # dense shape, traversal order, block map, block sizes, level formats, index width
    "csr rows": ((5, 7), (0, 1), (), (), ("dense", "csr"), "uint8"),
    "csc (columns first)": ((5, 7), (1, 0), (), (), ("dense", "csr"), "uint16"),
    "2x2 blocks": ((4, 6), (0, 1, 2, 3), (0, 1), (2, 2), ("dense", "csr", "dense", "dense"), "int32"),
    "1x4 blocks, 3-d": ((2, 3, 8), (0, 1, 2, 3), (2,), (4,), ("dense", "dense", "csr", "dense"), "uint8"),
    "two sparse levels": ((3, 4, 5), (0, 1, 2), (), (), ("dense", "csr", "csr"), "int32"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_sparsity_formats_decode_as_litert_does(tmp_path, case):
    shape, order, block_map, block_sizes, formats, index_type = CASES[case]
    rng = np.random.default_rng(len(case))
    dense = rng.standard_normal(shape).astype(np.float32)
    blocked = [s // block_sizes[block_map.index(d)] if d in block_map else s for d, s in enumerate(shape)]
    zero = rng.random(blocked) < 0.5  # whole blocks (single values without a block map) set to zero
    for b, d in enumerate(block_map):
        zero = np.repeat(zero, block_sizes[b], axis=d)
    dense[zero] = 0.0
    src = tmp_path / "sparse.tflite"
    data, stored = _sparse_constant_model(dense, order, block_map, block_sizes, formats, index_type)
    src.write_bytes(data)
    assert stored < dense.size  # zeros really were dropped
    litert = _run(src, np.zeros(shape, np.float32))["y"]
    np.testing.assert_array_equal(litert, dense)  # LiteRT reads the encoding as the dense tensor

    model = tm.load_model(src)
    t = model.subgraphs[0].tensors[1]
    np.testing.assert_array_equal(td.sparse_to_dense(td.constant_values(model, t), t.shape, t.sparsity), dense)

    dst = tmp_path / "dense.tflite"
    details = td.densify_tflite(src, dst)
    assert details["densify_ops_removed"] == 1 and tm.operator_counts(dst) == {"ADD": 1}
    x = rng.standard_normal(shape).astype(np.float32)
    np.testing.assert_array_equal(_run(dst, x)["y"], _run(src, x)["y"])
