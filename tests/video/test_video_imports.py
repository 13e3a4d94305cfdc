"""The video modules keep the runtime's promise: numpy + cv2 only on import, and tracking a clip
loads no build-time package (torch, onnx, onnxsim, converters, models) nor tqdm unless asked."""
from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("torch", "onnx", "onnxsim", "onnxruntime", "tensorflow", "edgepose.converters", "edgepose.models",
         "edgepose.benchmarks")


def loaded_after(code: str) -> list[str]:
    probe = f"{code}\nimport sys, json\nprint('MODS' + json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    return json.loads(out.split("MODS", 1)[1])


def heavy(mods: list[str]) -> list[str]:
    return [m for m in mods if m in HEAVY or m.split(".")[0] in HEAVY[:5]]


def test_importing_the_video_modules_loads_numpy_and_cv2_only():
    mods = loaded_after("import edgepose, edgepose.tracking, edgepose.sources, edgepose.smoothing, "
                        "edgepose.video, edgepose.clips")
    assert not heavy(mods)
    assert "MNN" not in mods and "tqdm" not in mods


def test_tracking_a_clip_loads_no_build_time_package(pipeline):  # the fixture converts the models once
    mods = loaded_after(
        "from edgepose.demo import default_pipeline\n"
        "frames = list(default_pipeline().track('clip:bus:static', detect_every=None))\n"
        "assert len(frames) == 45 and frames[-1].ids")
    assert not heavy(mods)
