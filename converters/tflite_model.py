"""Read and write .tflite flatbuffers, and list the operators a model uses.

Why this module: the TFLite rewrites (converters.tflite_densify) and the operator check before
MNN (converters.tflite_ops) need the model as editable objects and its operator names. The
flatbuffer schema comes from ai_edge_litert (`schema_py_generated`, generated with the object
API: ModelT, .Pack), the same package the parity checks run TFLite with, so the schema always
matches the runtime; the `tflite` package has no object API and cannot write models.

A model is written with every constant buffer 16-byte aligned, as the schema asks
(`data:[ubyte] (force_align: 16)`); the generated Python code ignores force_align.
"""
from __future__ import annotations

import functools
from pathlib import Path
import numpy as np

from edgepose.errors import ConversionError, ModelFileError

FILE_IDENTIFIER = b"TFL3"
BUFFER_ALIGNMENT = 16

# TensorType -> numpy dtype for the constant types a rewrite may have to decode.
_NUMPY_TYPES = {"FLOAT32": np.float32, "FLOAT16": np.float16, "FLOAT64": np.float64, "INT8": np.int8,
                "UINT8": np.uint8, "INT16": np.int16, "UINT16": np.uint16, "INT32": np.int32,
                "UINT32": np.uint32, "INT64": np.int64, "UINT64": np.uint64, "BOOL": np.bool_}


def schema():
    """The TFLite flatbuffer schema module (ai_edge_litert.schema_py_generated)."""
    try:
        from ai_edge_litert import schema_py_generated
    except ImportError as exc:
        raise ConversionError("reading TFLite models needs the ai-edge-litert package: "
                              "pip install 'edgepose[convert]'") from exc
    return schema_py_generated


@functools.lru_cache(maxsize=None)
def _enum_names(enum_cls) -> dict[int, str]:
    return {v: k for k, v in vars(enum_cls).items() if not k.startswith("_") and isinstance(v, int)}


def builtin_name(code: int) -> str:
    """BuiltinOperator name of a code, e.g. 124 -> "DENSIFY"."""
    return _enum_names(schema().BuiltinOperator).get(code, f"BUILTIN_{code}")


def tensor_dtype(tensor_type: int) -> np.dtype:
    name = _enum_names(schema().TensorType).get(tensor_type, str(tensor_type))
    if name not in _NUMPY_TYPES:
        raise ConversionError(f"TFLite tensor type {name} is not supported by this rewrite")
    return np.dtype(_NUMPY_TYPES[name])


def read_bytes(path: str | Path) -> bytes:
    """The file's bytes, checked to be a TFLite flatbuffer (identifier TFL3)."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"TFLite model not found: {path}")
    data = path.read_bytes()
    if len(data) < 8 or data[4:8] != FILE_IDENTIFIER:
        raise ModelFileError(f"{path.name} is not a TFLite model (no {FILE_IDENTIFIER.decode()} flatbuffer "
                             "identifier); check that the file is complete and really .tflite")
    return data


def load_model(path: str | Path):
    """The model as a mutable object tree (schema ModelT)."""
    data = read_bytes(path)
    try:
        model = schema().ModelT.InitFromPackedBuf(bytearray(data), 0)
    except Exception as exc:  # noqa: BLE001 - a damaged flatbuffer raises struct/index/unicode errors
        raise ModelFileError(f"{Path(path).name} is not a readable TFLite model "
                             f"({type(exc).__name__}: {str(exc)[:160]}); check that the file is complete "
                             "(not truncated)") from None
    if any(int(b.offset or 0) > 1 for b in model.buffers or ()):
        raise ConversionError(f"{Path(path).name} keeps its weights outside the flatbuffer (a >2 GB model); "
                              "rewriting such files is not supported")
    return model


def model_bytes(model) -> bytes:
    """Serialise a ModelT, with 16-byte aligned constant buffers (the model is left as it was)."""
    import flatbuffers

    buffers = model.buffers
    aligned = _aligned_buffer_type()
    model.buffers = [aligned.of(b) for b in buffers or ()]
    try:
        builder = flatbuffers.Builder(1 << 20)
        builder.Finish(model.Pack(builder), file_identifier=FILE_IDENTIFIER)
    finally:
        model.buffers = buffers
    return bytes(builder.Output())


@functools.lru_cache(maxsize=None)
def _aligned_buffer_type():
    S = schema()

    class AlignedBuffer(S.BufferT):
        """A BufferT that packs its data on a 16-byte boundary (the generated code aligns to 1)."""

        @classmethod
        def of(cls, buf):
            out = cls()
            out.data, out.offset, out.size = buf.data, buf.offset, buf.size
            return out

        def Pack(self, builder):  # noqa: N802 - the generated API's name
            data = None
            if self.data is not None:
                raw = np.asarray(self.data, dtype=np.uint8).tobytes()
                builder.StartVector(1, len(raw), BUFFER_ALIGNMENT)
                builder.head = builder.head - len(raw)
                builder.Bytes[builder.head:builder.head + len(raw)] = raw
                data = builder.EndVector()
            S.BufferStart(builder)
            if data is not None:
                S.BufferAddData(builder, data)
            S.BufferAddOffset(builder, self.offset)
            S.BufferAddSize(builder, self.size)
            return S.BufferEnd(builder)

    return AlignedBuffer


def opcode_name(opcode) -> str:
    """An OperatorCodeT's name: the builtin name, or the custom op's own name."""
    custom = opcode.customCode
    return _op_name(opcode.builtinCode, opcode.deprecatedBuiltinCode,
                    custom.decode() if isinstance(custom, bytes) else custom)


def _op_name(builtin: int | None, deprecated: int | None, custom: str | None) -> str:
    # builtin_code superseded deprecated_builtin_code (an int8) at 127; TFLite reads the larger.
    code = max(int(builtin or 0), int(deprecated or 0))
    if code == schema().BuiltinOperator.CUSTOM:
        return custom or "CUSTOM"
    return builtin_name(code)


def graph_operators(path: str | Path) -> list[tuple[str, bool]]:
    """(name, is_custom) of every operator of every subgraph, in graph order; weights are not unpacked."""
    S = schema()
    data = read_bytes(path)
    try:
        model = S.Model.GetRootAs(data, 0)
        codes = []
        for i in range(model.OperatorCodesLength()):
            oc = model.OperatorCodes(i)
            custom = oc.CustomCode()
            name = _op_name(oc.BuiltinCode(), oc.DeprecatedBuiltinCode(), custom.decode() if custom else None)
            codes.append((name, max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode()) == S.BuiltinOperator.CUSTOM))
        return [codes[model.Subgraphs(s).Operators(j).OpcodeIndex()]
                for s in range(model.SubgraphsLength()) for j in range(model.Subgraphs(s).OperatorsLength())]
    except Exception as exc:  # noqa: BLE001 - a damaged flatbuffer raises struct/index/unicode errors
        raise ModelFileError(f"{Path(path).name} is not a readable TFLite model "
                             f"({type(exc).__name__}: {str(exc)[:160]}); check that the file is complete "
                             "(not truncated)") from None


def operator_counts(path: str | Path) -> dict[str, int]:
    """{operator name: uses} over all subgraphs, in order of first use; custom ops by their own name."""
    counts: dict[str, int] = {}
    for name, _ in graph_operators(path):
        counts[name] = counts.get(name, 0) + 1
    return counts
