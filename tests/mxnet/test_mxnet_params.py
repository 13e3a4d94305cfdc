"""The numpy reader of MXNet's NDArray files agrees with MXNet and fails clearly on bad files.

Reference files come from the fixture venv: written by MXNet 1.9.1 (V2 with every dtype, V3 under
numpy shape semantics, an unnamed list, row_sparse) or written byte by byte in the pre-V1 and V1
layouts and *loaded by MXNet itself*; the .npz beside each holds what MXNet read.
"""
from __future__ import annotations

import struct

import numpy as np
import pytest

from edgepose.converters.mxnet import MXNetFileError, load_ndarrays, read_params, split_params
from edgepose.errors import ModelFileError


def test_reads_like_mxnet(params_case, mx_root, mx_manifest):
    names, arrays = load_ndarrays(mx_root / "params" / f"{params_case}.params")
    ref = np.load(mx_root / "params" / f"{params_case}.npz")
    expected_names = mx_manifest["params"][params_case]["names"]
    if params_case == "unnamed":
        assert names == []
        names = [str(i) for i in range(len(arrays))]
    assert names == expected_names
    for name, arr in zip(names, arrays):
        want = ref[name]
        assert arr.dtype == want.dtype, name
        assert arr.shape == want.shape, name
        np.testing.assert_array_equal(arr, want, err_msg=name)


def test_every_dtype_is_covered(mx_manifest):
    dtypes = set(mx_manifest["params"]["dtypes_v2"]["dtypes"].values())
    assert {"float32", "float16", "float64", "uint8", "int32", "int8", "int64", "bool"} <= dtypes


def test_split_params_strips_prefixes(mx_root):
    args, aux = split_params(read_params(mx_root / "params" / "dtypes_v2.params"))
    assert set(args) == {"f32", "f16", "f64", "bool", "zero_size"}
    assert set(aux) == {"u8", "i32", "i8", "i64"}


def test_model_params_are_named_with_prefixes(mx_root):
    params = read_params(mx_root / "models" / "mobilenetv3_small-0000.params")
    assert params and all(k.startswith(("arg:", "aux:")) for k in params)
    assert any(k.endswith("running_var") and k.startswith("aux:") for k in params)


def test_sparse_storage_is_refused(mx_root):
    with pytest.raises(MXNetFileError, match="row_sparse"):
        read_params(mx_root / "params" / "sparse.params")


def test_unnamed_file_is_not_a_checkpoint(mx_root):
    with pytest.raises(MXNetFileError, match="unnamed"):
        read_params(mx_root / "params" / "unnamed.params")


@pytest.mark.parametrize("cut", [0, 10, 20, 28, 40, 200, -40, -3])
def test_truncated_file_is_reported(mx_root, tmp_path, cut):
    data = (mx_root / "params" / "dtypes_v2.params").read_bytes()
    bad = tmp_path / "cut.params"
    bad.write_bytes(data[:cut] if cut >= 0 else data[:len(data) + cut])
    with pytest.raises(MXNetFileError) as info:
        load_ndarrays(bad)
    assert "truncated" in str(info.value) or "not an MXNet params file" in str(info.value)
    assert isinstance(info.value, ModelFileError)


def test_truncated_model_params(mx_root, tmp_path):
    data = (mx_root / "models" / "mobilenetv3_small-0000.params").read_bytes()
    bad = tmp_path / "half.params"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(MXNetFileError, match="truncated"):
        read_params(bad)


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04not a params file at all....",
                                     b'{"nodes": [], "heads": []}' * 2, struct.pack("<QQ", 0x113, 0)])
def test_not_a_params_file(tmp_path, content):
    bad = tmp_path / "x.params"
    bad.write_bytes(content)
    with pytest.raises(MXNetFileError, match="not an MXNet params file"):
        load_ndarrays(bad)


def test_symbol_json_passed_as_params(mx_root):
    with pytest.raises(MXNetFileError, match="not an MXNet params file"):
        read_params(mx_root / "ops" / "conv_basic-symbol.json")


def test_missing_file(tmp_path):
    with pytest.raises(MXNetFileError, match="not found"):
        read_params(tmp_path / "nope.params")


# ---- hand-made files for what MXNet 1.9.1 cannot write ------------------------------------------------

def _file(arrays: list[bytes], names: list[str]) -> bytes:
    out = struct.pack("<QQQ", 0x112, 0, len(arrays)) + b"".join(arrays) + struct.pack("<Q", len(names))
    return out + b"".join(struct.pack("<Q", len(n.encode())) + n.encode() for n in names)


def _v2(shape, flag: int, payload: bytes, *, stype: int = 0) -> bytes:
    return (struct.pack("<Ii", 0xF993FAC9, stype) + struct.pack("<i", len(shape))
            + struct.pack(f"<{len(shape)}q", *shape)
            + struct.pack("<iii", 1, 0, flag) + payload)


def test_bfloat16_is_widened_to_float32(tmp_path):
    values = np.array([1.0, -2.5, 3.140625, 0.0], np.float32)
    bf16 = (values.view(np.uint32) >> 16).astype("<u2").tobytes()
    path = tmp_path / "bf16.params"
    path.write_bytes(_file([_v2((4,), 12, bf16)], ["arg:x"]))
    out = read_params(path)["arg:x"]
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, values)


def test_unknown_type_flag_and_csr_storage(tmp_path):
    path = tmp_path / "flag.params"
    path.write_bytes(_file([_v2((2,), 99, b"\0" * 8)], ["arg:x"]))
    with pytest.raises(MXNetFileError, match="type flag 99"):
        read_params(path)
    path.write_bytes(_file([_v2((2,), 0, b"\0" * 8, stype=2)], ["arg:x"]))
    with pytest.raises(MXNetFileError, match="csr"):
        read_params(path)


def test_absurd_counts_are_corruption_not_allocation(tmp_path):
    path = tmp_path / "count.params"
    path.write_bytes(struct.pack("<QQQ", 0x112, 0, 2 ** 60) + b"\0" * 64)
    with pytest.raises(MXNetFileError, match="more than its size allows"):
        load_ndarrays(path)


def test_names_and_arrays_must_pair(tmp_path):
    path = tmp_path / "pair.params"
    one = _v2((1,), 0, struct.pack("<f", 1.0))
    path.write_bytes(_file([one, one], ["arg:a"]))
    with pytest.raises(MXNetFileError, match="2 arrays but 1 names"):
        load_ndarrays(path)
