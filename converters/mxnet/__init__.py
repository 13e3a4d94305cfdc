"""MXNet / GluonCV checkpoints (`name-symbol.json` + `name-0000.params`) to ONNX, without MXNet.

    from edgepose.converters.mxnet import mxnet_to_onnx
    mxnet_to_onnx("model-symbol.json", "model-0000.params", "model.onnx", input_shape=(1, 3, 224, 224))
"""
from .errors import MissingParameterError, MXNetFileError, MXNetShapeError, MXNetSymbolError
from .params import load_ndarrays, read_params, split_params
from .symbol import SymbolGraph, read_symbol
from .translate import mxnet_to_onnx, mxnet_to_onnx_model, supported_operators

__all__ = ["mxnet_to_onnx", "mxnet_to_onnx_model", "read_params", "read_symbol", "load_ndarrays",
           "split_params", "supported_operators", "SymbolGraph", "MXNetFileError", "MXNetSymbolError",
           "MissingParameterError", "MXNetShapeError"]
