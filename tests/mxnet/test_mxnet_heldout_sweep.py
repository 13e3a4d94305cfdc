"""Issue 17, held-out sweep (GluonCV side): exports of real MXNet 1.9.1 (random weights, non-trivial
BatchNorm statistics, edgepose.converters.mxnet.fixtures) converted end to end by `edgepose convert`'s pipeline:
MXNet -> ONNX (checked against MXNet itself in test_mxnet_models.py) -> onnxsim -> MNN FP32 -> MNN FP16,
every stage's tolerance enforced.

Measured here (AMD EPYC, MNN 3.6.1, Winograd level 1): ONNX = ONNX Runtime against MXNet on the fixture
input; MNN FP32 / FP16 = against the simplified ONNX on the pipeline's parity inputs (max rel, FP16 cosine).

| model                         | converted | ONNX vs MXNet | MNN FP32 | MNN FP16 (weights rounded) |
|-------------------------------|-----------|---------------|----------|----------------------------|
| se_resnet18_v1                | yes       | 2.9e-7        | 4.2e-7   | 1.9e-4 / 0.99999998        |
| resnest14                     | yes       | 3.2e-7        | 3.9e-7   | 2.1e-4 / 0.99999997        |
| densenet121                   | yes       | 2.9e-7        | 3.2e-7   | 2.7e-4 / 0.99999997        |
| inceptionv3                   | yes       | 3.9e-7        | 4.5e-7   | 2.6e-4 / 0.99999997        |
| mobile_pose_resnet18_v1b      | yes       | 5.7e-7        | 3.8e-7   | 2.4e-4 / 0.99999998        |
| mobile_pose_mobilenetv3_large | yes       | 4.4e-7        | 4.0e-7   | 2.8e-4 / 0.99999998        |
| yolo3_mobilenet1.0_coco       | yes       | network 2.0e-7; NMS exact on MXNet's NMS input (ONNX Runtime and MNN alike) | see DISCONTINUOUS | |
"""
from __future__ import annotations

import pytest

from edgepose.converters import convert

# The held-out GluonCV architectures: squeeze-excitation, split attention, dense and inception blocks,
# GluonCV's mobile pose nets, and the YOLOv3 detector (its NMS subgraph included).
HELD_OUT = ["se_resnet18_v1", "resnest14", "densenet121", "inceptionv3", "mobile_pose_resnet18_v1b",
            "mobile_pose_mobilenetv3_large", "yolo3_mobilenet1.0_coco"]
FP32_MAX_REL = 1e-5


# A detector's outputs after NMS are discontinuous in the network's outputs: with random weights
# YOLOv3's 851,760 candidate scores sit within 1e-4 of each other (235 exact ties in the top 400), so
# the 1e-6 by which MNN's convolutions differ from ONNX Runtime's reorders them and the kept boxes
# differ. The pipeline reports that (strict=False here); what stands in for it is checked exactly in
# test_mxnet_models.py: the network up to the NMS input against MXNet (<= 1e-5, ONNX Runtime and MNN)
# and the NMS subgraph fed MXNet's own NMS input (identical output, ONNX Runtime and MNN).
DISCONTINUOUS = {"yolo3_mobilenet1.0_coco"}


@pytest.mark.slow
@pytest.mark.parametrize("name", HELD_OUT)
def test_heldout_gluoncv_model_converts_within_tolerance(name, mx_case, tmp_path):
    case = mx_case("models", name)
    report = convert(case.symbol, params=case.params, input_shape=case.input_shapes["data"], fp16=True,
                     output_dir=tmp_path, name=name, strict=name not in DISCONTINUOUS)
    if name in DISCONTINUOUS:
        assert all(s.artifact is not None and s.artifact.is_file() for s in report.stages)
        return
    stages = {s.name: s for s in report.stages}
    assert list(stages) == ["mxnet->onnx", "onnxsim", "onnx->mnn", "onnx->mnn-fp16"]
    checked = [s for s in report.stages if s.name != "mxnet->onnx"]
    assert all(s.status == "ok" and s.parity.passed for s in checked), report.to_json()
    fp32 = stages["onnx->mnn"].parity.worst
    assert fp32.max_rel <= FP32_MAX_REL, f"{name}: MNN FP32 max rel {fp32.max_rel:.2e}"
