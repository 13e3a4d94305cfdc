"""MNN's converter keeps scratch weights in `./.__convert_external_data.bin`; concurrent
conversions of different models from one directory must not corrupt each other (each native
child runs in its own scratch directory). Without that, this test fails here: a conversion
logs "Can't open file:.__convert_external_data.bin" or, worse, succeeds with wrong weights."""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from edgepose.backends import open_backend
from edgepose.converters.mnn_native import convert_to_mnn

torch = pytest.importorskip("torch")


def test_concurrent_conversions_from_one_directory_stay_correct(tmp_path, monkeypatch):
    from edgepose.models import create_model

    x = np.random.default_rng(0).standard_normal((1, 3, 256, 256)).astype(np.float32)
    expected = {}
    for i, name in enumerate(["deeppose", "ipr", "simdr"] * 2):  # six models, all weights different
        torch.manual_seed(i)
        model = create_model(name, deploy=True)
        torch.onnx.export(model, torch.zeros(1, 3, 256, 256), str(tmp_path / f"m{i}.onnx"), input_names=["input"],
                          output_names=["coords", "scores"], opset_version=17, dynamo=False)
        with torch.no_grad():
            expected[i] = model(torch.from_numpy(x))["coords"].numpy()
    monkeypatch.chdir(tmp_path)  # every conversion starts from the same working directory
    with ThreadPoolExecutor(max_workers=3) as pool:
        list(pool.map(lambda i: convert_to_mnn(f"m{i}.onnx", f"m{i}.mnn", framework="ONNX"), expected))
    assert not os.path.exists(tmp_path / ".__convert_external_data.bin")
    for i, want in expected.items():
        got = open_backend(tmp_path / f"m{i}.mnn").run({"input": x})["coords"]
        np.testing.assert_allclose(got, want, atol=1e-3, err_msg=f"m{i}.mnn")
