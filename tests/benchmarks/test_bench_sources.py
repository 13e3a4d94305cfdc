"""Where benchmarked models and their published figures come from: table A's rows (owned by
benchmarks/table_a.py, not the model zoo), groups, the one conversion path and its failures."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

import edgepose.benchmarks as bench
from edgepose.benchmarks.models_source import expand_names, resolve
from edgepose.benchmarks.source import SourceUnavailableError
from edgepose.benchmarks.table_a import PUBLISHED
from edgepose.errors import EdgePoseError

# The "median" column of seed_figures.md table A, per registry model: the five timings must give it.
TABLE_A_MEDIANS = {"deeppose": 6.74, "heatmap": 34.76, "deeppose_x2": 16.41, "ipr": 6.39, "dsnt_deconv": 11.05,
                   "simdr": 11.92, "simdr_norm": 11.80, "simdr_320_1024d": 17.69, "simdr_320": 12.33,
                   "efficientrep_n_320": 14.68, "tokenpose_direct": 10.82, "tokenpose_deconv4": 17.98,
                   "tokenpose_deconv3": 16.96}


def test_table_a_rows_in_table_order_with_five_timings_and_the_published_median():
    assert list(PUBLISHED) == list(TABLE_A_MEDIANS)
    for name, row in PUBLISHED.items():
        assert len(row.ms) == 5 and row.median_ms == TABLE_A_MEDIANS[name], name
    assert PUBLISHED["simdr_320"].table_id == "simdr_320 (final)"
    assert len({r.table_id for r in PUBLISHED.values()}) == len(PUBLISHED)


def test_table_a_models_are_registry_models_and_the_groups_expand_from_it():
    pytest.importorskip("torch")
    from edgepose.models import list_models

    assert set(PUBLISHED) <= set(list_models())
    assert expand_names(["table-a"]) == list(PUBLISHED) == expand_names(None)
    rest = [n for n in list_models() if n not in PUBLISHED]
    assert rest == ["heatmap_128"] and expand_names(["all"]) == [*PUBLISHED, *rest]


def test_sources_import_one_way():
    """models_source -> mxnet_source -> source, never back (ModelSource lives in source.py)."""
    root = Path(bench.__file__).parent
    for module in ("mxnet_source", "source", "table_a", "table_b", "table_c"):
        tree = ast.parse((root / f"{module}.py").read_text())
        imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert not any(m.endswith("models_source") for m in imported), module


@pytest.fixture
def unexportable_model():
    """A registered model whose graph uses an FFT, which the ONNX exporter cannot write; unregistered after."""
    torch = pytest.importorskip("torch")
    from torch import nn

    from edgepose.models import register_model, registry

    class Unexportable(nn.Module):
        def __init__(self, k: int) -> None:
            super().__init__()
            self.k, self.fc = k, nn.Linear(3, 3 * k)

        def forward(self, x):
            f = torch.fft.rfft(x, dim=-1).abs().mean(dim=(2, 3))
            y = torch.sigmoid(self.fc(f)).view(-1, self.k, 3)
            return {"coords": y[..., :2], "scores": y[..., 2]}

    name = "bench_test_unexportable"
    register_model(name, input_size=64, head="regression", output_names=("coords", "scores"))(
        lambda *, num_keypoints, input_size: Unexportable(num_keypoints))
    try:
        yield name
    finally:
        registry._REGISTRY.pop(name, None)


def test_a_failed_conversion_is_a_typed_error_with_the_reason(unexportable_model, tmp_path):
    """No fallback exporter: convert()'s own error, wrapped so the harness skips the model and says why."""
    with pytest.raises(SourceUnavailableError, match=r"conversion failed \(ConversionError: .*fft") as info:
        resolve(unexportable_model, cache=tmp_path, weights=("fp32",))
    assert isinstance(info.value, EdgePoseError) and isinstance(info.value.__cause__, EdgePoseError)
    assert not list(tmp_path.rglob("*.mnn"))
