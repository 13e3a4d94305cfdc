"""Build-time converters: PyTorch / MXNet / TFLite / ONNX to simplified ONNX and MNN, with parity checks."""
