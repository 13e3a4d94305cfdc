"""Peak resident memory of one model variant, measured in a fresh child process.

Why a child: the peak RSS is a process-wide high-water mark, so a process that has loaded
other models (or torch) cannot say what one model costs. The child imports the runtime,
notes its high-water mark (the baseline), loads the model, runs it a few times and reports both.

Which counter: Linux carries the parent's peak into a forked-then-exec'd child's
`getrusage(RUSAGE_SELF).ru_maxrss` (the kernel keeps the pre-exec high-water mark), so a child
of a 500 MB benchmark process reports >= 500 MB. The child therefore reads `VmHWM` from
/proc/self/status (the high-water mark of its own address space) and uses ru_maxrss only
where /proc is missing.
"""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from .variants import Variant

log = logging.getLogger(__name__)

_CHILD = r"""
import json, resource, sys, os
args = json.loads(sys.argv[1])
def hwm_kb():
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
import numpy as np
rt = {"tflite": "litert"}.get(args["runtime"], args["runtime"])
from edgepose.backends import open_backend
if rt == "mnn":
    from edgepose._native import import_mnn
    import_mnn()
elif rt == "litert":
    import ai_edge_litert.interpreter
else:
    import onnxruntime
base = hwm_kb()
opts = {"precision": args["precision"]} if args.get("precision") else {}
b = open_backend(args["path"], rt, threads=1, **opts)
t = b.inputs[0]
shape = tuple(v if isinstance(v, int) and v > 0 else 1 for v in t.shape)
x = np.random.default_rng(0).random(shape, dtype=np.float32)
def run():
    b.run({t.name: x})
loaded = hwm_kb()
for _ in range(args["calls"]):
    run()
peak = hwm_kb()
maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
sys.stdout.write("EDGEPOSE_RSS " + json.dumps({"baseline_kb": base, "loaded_kb": loaded, "peak_kb": peak,
                                               "ru_maxrss_kb": maxrss}) + "\n")
"""


@dataclass(frozen=True)
class PeakRSS:
    """High-water marks in MB: after importing the runtime, after loading, after running."""

    baseline_mb: float
    loaded_mb: float
    peak_mb: float

    @property
    def model_mb(self) -> float:
        """What loading and running the model added over the bare runtime."""
        return self.peak_mb - self.baseline_mb

    def to_dict(self) -> dict:
        return {**asdict(self), "model_mb": self.model_mb}


def parse_child_output(text: str) -> PeakRSS:
    """Read the child's EDGEPOSE_RSS line (VmHWM and Linux ru_maxrss are in KiB)."""
    for line in text.splitlines():
        if line.startswith("EDGEPOSE_RSS "):
            data = json.loads(line.split(" ", 1)[1])
            return PeakRSS(data["baseline_kb"] / 1024, data["loaded_kb"] / 1024, data["peak_kb"] / 1024)
    raise RuntimeError(f"the memory probe printed no result: {text.strip()[-300:]!r}")


def peak_rss(path: Path, variant: Variant, *, calls: int = 10, timeout: float = 300.0) -> PeakRSS:
    """Peak RSS of `variant` running `path`, in a fresh interpreter."""
    args = {"path": str(path), "runtime": variant.runtime, "precision": variant.session_precision, "calls": calls}
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(args)], capture_output=True, text=True,
                          timeout=timeout, env=env, stdin=subprocess.DEVNULL, errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"memory probe of {Path(path).name} ({variant.name}) failed with exit "
                           f"{proc.returncode}: {(proc.stderr or proc.stdout).strip()[-300:]}")
    return parse_child_output(proc.stdout)
