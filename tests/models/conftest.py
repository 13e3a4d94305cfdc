"""Fixtures for the model-zoo tests: one built, exported and converted model per registry entry.

Everything is parametrised over `list_models()`, so a newly registered model is swept by
the same tests without editing them. Each model is built, exported and converted once per
test module (module-scoped fixtures).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from edgepose.models import create_model, get_entry, list_models  # noqa: E402

OPSET = 17


@dataclass
class Built:
    name: str
    entry: object
    model: object  # eval mode, re-parameterised

    def inputs(self, batch: int, seed: int) -> np.ndarray:
        w, h = self.entry.input_size
        return np.random.default_rng(seed).standard_normal((batch, 3, h, w)).astype(np.float32)

    def reference(self, x: np.ndarray) -> dict[str, np.ndarray]:
        with torch.no_grad():
            out = self.model(torch.from_numpy(x))
        return {k: v.numpy() for k, v in out.items()}


def export_onnx(model, path: Path, entry, *, dynamic_batch: bool = True) -> Path:
    """The legacy (TorchScript) exporter at opset 17, named as the registry says."""
    w, h = entry.input_size
    names = [entry.input_name, *entry.output_names]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation notice
        torch.onnx.export(model, (torch.zeros(1, 3, h, w),), str(path), dynamo=False, opset_version=OPSET,
                          input_names=[entry.input_name], output_names=list(entry.output_names),
                          dynamic_axes={n: {0: "batch"} for n in names} if dynamic_batch else None)
    return path


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """PyTorch on one thread while these tests run (restored after each module).

    Measured on the shared 2-core machine under load: a batch-2 ShuffleNetV2 forward takes
    25 ms of CPU with 1 thread and 0.4-2.4 s with 2 (OpenMP threads spinning for a core
    that other processes hold). The sweep's reference runs are small; one thread is fastest.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module", params=list_models())
def built(request) -> Built:
    name = request.param
    torch.manual_seed(0)
    return Built(name, get_entry(name), create_model(name, deploy=True))


@pytest.fixture(scope="module")
def onnx_path(built, tmp_path_factory) -> Path:
    return export_onnx(built.model, tmp_path_factory.mktemp("onnx") / f"{built.name}.onnx", built.entry)


def tolerance(ref: np.ndarray, atol: float) -> float:
    """atol for values of order 1 (coords, scores); scaled up for larger ones (heatmap logits)."""
    return atol * max(1.0, float(np.abs(ref).max()))


@pytest.fixture(scope="session")
def onnx_exporter():
    """export_onnx(model, path, entry, *, dynamic_batch=True) for tests outside the sweep."""
    return export_onnx


@pytest.fixture(scope="session")
def tol():
    return tolerance
