"""Issue 17, held-out sweep (torch side): architectures nobody here wrote, random weights and realistic
BatchNorm statistics, converted end to end (torch -> ONNX -> onnxsim -> MNN FP32 -> MNN FP16) with every
stage's tolerance enforced. The GluonCV side is tests/mxnet/test_mxnet_heldout_sweep.py.

Measured here (AMD EPYC, MNN 3.6.1, Winograd level 1; parity inputs standard normal, batch 2): max rel to
the stage before (ONNX: torch -> ONNX Runtime; MNN: against the simplified ONNX), FP16 cosine.

| model                    | converted | ONNX    | MNN FP32 | MNN FP16 (weights rounded) |
|--------------------------|-----------|---------|----------|----------------------------|
| efficientnet_b0_style    | yes       | 3.4e-6  | 3.6e-6   | 4.1e-3 / 0.999993          |
| mobilenet_v3_small_style | yes       | 2.5e-6  | 2.1e-6   | 4.2e-3 / 0.999990          |
| convnext_style           | yes       | 5.5e-7  | 9.2e-5   | 4.3e-4 / 0.9999999         |
| attention_style          | yes       | 1.1e-6  | 1.9e-4   | 1.3e-3 / 0.9999992         |

The GELU nets (convnext_style, attention_style) sit at ~2e-4 relative in MNN FP32: MNN's converter
fuses the erf-GELU subgraph into its own approximate GELU. Avoiding the fusion (its pattern only
matches scalar constants; shape-(1,) constants keep Div/Erf/Add/Mul apart) gives 1.1e-6 / 7.9e-7 but
costs 1.39x / 3.23x the time on these two nets (measured interleaved, one thread), so the fused GELU
stays: within the FP32 tolerance (1e-3), above the 1e-5 the conv nets reach.
"""
from __future__ import annotations

import pytest

pytest.importorskip("torch")  # build-time extra (torch): skip without it
from edgepose.converters import convert

from heldout_nets import HELDOUT, heldout

# Bounds per model: MNN FP32 max rel (the conv nets stay at Winograd level 1's ~1e-6; GELU nets carry
# MNN's fused approximate GELU) and MNN FP16 cosine.
FP32_MAX_REL = {"efficientnet_b0_style": 1e-5, "mobilenet_v3_small_style": 1e-5, "convnext_style": 1e-3,
                "attention_style": 1e-3}
FP16_MIN_COSINE = 0.9999


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(HELDOUT))
def test_heldout_torch_architecture_converts_within_tolerance(name, tmp_path):
    model, shape = heldout(name)
    report = convert(model, input_shape=shape, fp16=True, output_dir=tmp_path, name=name)  # strict
    stages = {s.name: s for s in report.stages}
    assert list(stages) == ["torch->onnx", "onnxsim", "onnx->mnn", "onnx->mnn-fp16"]
    assert all(s.status == "ok" and s.parity.passed for s in report.stages), report.to_json()
    fp32 = stages["onnx->mnn"].parity.worst
    fp16 = stages["onnx->mnn-fp16"].parity.worst
    assert fp32.max_rel <= FP32_MAX_REL[name], f"{name}: MNN FP32 max rel {fp32.max_rel:.2e}"
    assert fp16.cosine >= FP16_MIN_COSINE, f"{name}: MNN FP16 cosine {fp16.cosine:.6f}"
    assert stages["onnx->mnn-fp16"].details["rounded_values"] > 0  # FP16 weights were rounded first
