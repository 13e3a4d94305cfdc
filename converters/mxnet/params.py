"""Read MXNet `.params` files (the NDArray list format) with numpy alone.

Why not `mxnet.nd.load`: MXNet pins numpy < 2 and no longer installs on current Pythons, and
edgepose must convert old checkpoints without it. The layout below follows MXNet's
`NDArray::Save/Load` (src/ndarray/ndarray.cc), little-endian throughout:

    file   := u64 0x112 (list magic), u64 reserved, u64 count, array*count,
              u64 count, (u64 length, utf-8 bytes)*count             -- names, may be empty
    array  := u32 magic, then by magic:
      0xF993FAC9 (V2) / 0xF993FACA (V3, numpy shape semantics):
              i32 storage type (0 dense; 1 row_sparse, 2 csr are refused), shape, [body]
      0xF993FAC8 (V1): shape, [body]
      anything else (legacy): the magic is ndim, then ndim x u32 dims, [body]
    shape  := i32 ndim, ndim x i64 dims     (V1 and later)
    body   := i32 dev_type, i32 dev_id, i32 type flag, raw data (C order)

An array with no shape (ndim 0 before V3, ndim -1 in V3) is "none" and has no body; in V3,
ndim 0 is a scalar.
"""
from __future__ import annotations

import logging
import math
import struct
from pathlib import Path

import numpy as np

from .errors import MXNetFileError

log = logging.getLogger(__name__)

LIST_MAGIC = 0x112
V1_MAGIC = 0xF993FAC8
V2_MAGIC = 0xF993FAC9
V3_MAGIC = 0xF993FACA

# mshadow type flags -> numpy dtypes (bfloat16, flag 12, is widened to float32 on read).
TYPE_FLAGS: dict[int, np.dtype] = {
    0: np.dtype("<f4"), 1: np.dtype("<f8"), 2: np.dtype("<f2"), 3: np.dtype("u1"),
    4: np.dtype("<i4"), 5: np.dtype("i1"), 6: np.dtype("<i8"), 7: np.dtype("?"),
    8: np.dtype("<i2"), 9: np.dtype("<u2"), 10: np.dtype("<u4"), 11: np.dtype("<u8"),
}
BFLOAT16 = 12
STORAGE_TYPES = {0: "default", 1: "row_sparse", 2: "csr"}
DEVICE_TYPES = {1: "cpu", 2: "gpu", 3: "cpu_pinned", 5: "cpu_shared"}
_MAX_NDIM = 32  # MXNet allows far fewer; a larger count means the bytes are not a shape


class _Reader:
    """Sequential little-endian reads over a bytes buffer; every short read is an error."""

    def __init__(self, data: bytes, path: Path):
        self.data = data
        self.pos = 0
        self.path = path

    def take(self, n: int, what: str) -> memoryview:
        if n < 0 or self.pos + n > len(self.data):
            raise MXNetFileError(
                f"{self.path} is truncated: needed {n} bytes for {what} at offset {self.pos}, "
                f"but the file has {len(self.data)} bytes. Re-export or re-download the checkpoint")
        view = memoryview(self.data)[self.pos:self.pos + n]
        self.pos += n
        return view

    def unpack(self, fmt: str, what: str):
        size = struct.calcsize(fmt)
        return struct.unpack(fmt, self.take(size, what))


def load_ndarrays(path: str | Path) -> tuple[list[str], list[np.ndarray]]:
    """Names (possibly empty, as MXNet allows) and arrays of an NDArray list file, in file order."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise MXNetFileError(f"params file not found: {path}") from None
    except OSError as exc:
        raise MXNetFileError(f"cannot read params file {path}: {exc}") from None
    r = _Reader(data, path)
    if len(data) < 16:
        raise MXNetFileError(f"{path} is not an MXNet params file: only {len(data)} bytes")
    magic, _reserved = r.unpack("<QQ", "the header")
    if magic != LIST_MAGIC:
        raise MXNetFileError(
            f"{path} is not an MXNet params file: header magic {magic:#x}, expected {LIST_MAGIC:#x}. "
            "Pass the `name-0000.params` file written by MXNet's export()/save_checkpoint()")
    (count,) = r.unpack("<Q", "the array count")
    _check_count(count, r, "arrays")
    arrays = [_read_array(r, i) for i in range(count)]
    (n_names,) = r.unpack("<Q", "the name count")
    _check_count(n_names, r, "names")
    names = []
    for i in range(n_names):
        (length,) = r.unpack("<Q", f"the length of name {i}")
        raw = bytes(r.take(length, f"name {i}"))
        try:
            names.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise MXNetFileError(f"{path}: name {i} is not UTF-8 ({raw[:40]!r}); the file is corrupt") from None
    if names and len(names) != len(arrays):
        raise MXNetFileError(f"{path} holds {len(arrays)} arrays but {len(names)} names; the file is corrupt")
    if r.pos != len(data):
        log.warning("%s has %d trailing bytes after the name list", path, len(data) - r.pos)
    return names, arrays


def read_params(path: str | Path) -> dict[str, np.ndarray]:
    """{name: array} of a named params file, keys as stored (`arg:conv0_weight`, `aux:bn0_running_mean`).

    Use `split_params` to strip the `arg:`/`aux:` prefixes.
    """
    names, arrays = load_ndarrays(path)
    if arrays and not names:
        raise MXNetFileError(
            f"{path} holds {len(arrays)} unnamed arrays (saved from a list); a checkpoint needs names. "
            "Use load_ndarrays() to read it anyway")
    out: dict[str, np.ndarray] = {}
    for name, arr in zip(names, arrays):
        if name in out:
            raise MXNetFileError(f"{path} names {name!r} twice; the file is corrupt")
        out[name] = arr
    return out


def split_params(params: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(arg_params, aux_params) with prefixes stripped; unprefixed names (Gluon's save) count as args."""
    args: dict[str, np.ndarray] = {}
    aux: dict[str, np.ndarray] = {}
    for key, value in params.items():
        kind, sep, name = key.partition(":")
        if sep and kind == "aux":
            aux[name] = value
        elif sep and kind == "arg":
            args[name] = value
        else:
            args[key] = value
    return args, aux


def _check_count(count: int, r: _Reader, what: str) -> None:
    # Each entry needs at least 4 bytes, so a count beyond that is garbage, not a huge file.
    if count > (len(r.data) - r.pos) // 4 + 1:
        raise MXNetFileError(
            f"{r.path} claims {count} {what} at offset {r.pos - 8}, more than its size allows; "
            "the file is truncated or not an MXNet params file")


def _read_shape(r: _Reader, index: int, *, np_semantics: bool) -> tuple[int, ...] | None:
    (ndim,) = r.unpack("<i", f"the ndim of array {index}")
    if np_semantics and ndim == -1:
        return None
    if ndim < 0 or ndim > _MAX_NDIM:
        raise MXNetFileError(f"{r.path}: array {index} has ndim {ndim}; the file is corrupt")
    if ndim == 0 and not np_semantics:
        return None
    dims = r.unpack(f"<{ndim}q", f"the shape of array {index}")
    if any(d < 0 for d in dims):
        raise MXNetFileError(f"{r.path}: array {index} has an unknown/negative shape {dims}; the file is corrupt")
    return tuple(int(d) for d in dims)


def _read_array(r: _Reader, index: int) -> np.ndarray:
    (magic,) = r.unpack("<I", f"the magic of array {index}")
    if magic in (V2_MAGIC, V3_MAGIC):
        (stype,) = r.unpack("<i", f"the storage type of array {index}")
        if stype != 0:
            kind = STORAGE_TYPES.get(stype, f"unknown ({stype})")
            raise MXNetFileError(
                f"{r.path}: array {index} uses {kind} storage; only dense arrays are supported. "
                "Convert it to dense in MXNet (arr.tostype('default')) and save again")
        shape = _read_shape(r, index, np_semantics=(magic == V3_MAGIC))
    elif magic == V1_MAGIC:
        shape = _read_shape(r, index, np_semantics=False)
    else:
        ndim = magic  # legacy: no magic, the first word is ndim and dims are u32
        if ndim > _MAX_NDIM:
            raise MXNetFileError(
                f"{r.path}: array {index} starts with {magic:#x}, which is neither an NDArray magic nor a "
                "plausible legacy ndim; the file is corrupt or not an MXNet params file")
        dims = r.unpack(f"<{ndim}I", f"the legacy shape of array {index}")
        shape = tuple(int(d) for d in dims) if ndim else None
    if shape is None:
        return np.zeros((0,), np.float32)  # MXNet's "none" array: nothing follows
    dev_type, _dev_id, flag = r.unpack("<iii", f"the context and type of array {index}")
    if dev_type not in DEVICE_TYPES:
        raise MXNetFileError(f"{r.path}: array {index} has device type {dev_type}; the file is corrupt")
    count = math.prod(shape)  # Python ints: np.prod in int64 wrapped around on hostile shapes
    if count > len(r.data):  # at least one byte per element: beyond that the shape is garbage
        raise MXNetFileError(f"{r.path}: array {index} claims shape {shape} ({count} elements), more than the "
                             f"file's {len(r.data)} bytes can hold; the file is corrupt")
    if flag == BFLOAT16:
        raw = np.frombuffer(r.take(2 * count, f"the data of array {index}"), "<u2")
        return (raw.astype(np.uint32) << 16).view(np.float32).reshape(shape)
    dtype = TYPE_FLAGS.get(flag)
    if dtype is None:
        raise MXNetFileError(f"{r.path}: array {index} has unknown type flag {flag}; the file is corrupt")
    buf = r.take(dtype.itemsize * count, f"the data of array {index} ({shape}, {dtype})")
    return np.frombuffer(buf, dtype).reshape(shape).astype(dtype.newbyteorder("="), copy=True)
