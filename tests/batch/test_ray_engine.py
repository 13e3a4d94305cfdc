"""The Ray engine on a real local Ray cluster that this module starts and stops itself.

`ray.init(address="local", num_cpus=2, include_dashboard=False)` on this machine (loopback only): ~10 s to start, then
~20-30 s per run of the dataset (two actors each loading the pipeline, then the inputs). The whole
module takes about 1.5 minutes on 2 shared cores, so it runs in the default suite; it is skipped when
the `ray` extra is not installed (pip install -e '.[ray]').
"""
from __future__ import annotations

import os

import pytest

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")
pytest.importorskip("pyarrow")

from edgepose.batch import CRASH_HOOK_ENV, read_results, run_batch, table_digest  # noqa: E402


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory):
    """A local Ray with 2 CPUs. The crash hook is set in its workers' environment (runtime_env): it fires
    only on inputs named crashme* / crashonce*, which the equality test's dataset does not hold."""
    flag = tmp_path_factory.mktemp("ray-flag") / "crashed-once"
    hook = f"crashme:segv;crashonce:once-segv:{flag}"
    if ray.is_initialized():
        ray.shutdown()
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {CRASH_HOOK_ENV: hook}})
    yield flag
    ray.shutdown()


def test_ray_engine_equals_the_local_engine_row_for_row(ray_cluster, dataset, local_run, tmp_path, pipeline_config):
    summary = run_batch([dataset], tmp_path / "out", config=pipeline_config, ray=True, workers=2)
    assert summary.engine == "ray" and summary.workers == 2
    assert summary.done == 8 and summary.errors == 2 and summary.frames == 11 and not summary.worker_deaths
    table = read_results(tmp_path / "out")
    local = local_run[1]
    assert table.num_rows == local.num_rows
    assert table_digest(table) == table_digest(local)  # same Parquet contents: every column, every row
    errors = {os.path.basename(r["source"]): r["error"] for r in table.to_pylist() if r["status"] == "error"}
    assert errors["broken.jpg"].startswith("ImageError") and errors["truncated.mp4"].startswith("VideoError")
    assert str(dataset / "clips" / "truncated.mp4") in errors["truncated.mp4"]  # the input, not a temp copy
    assert len(summary.peak_mb) == 2 and all(50 < mb < 4000 for mb in summary.peak_mb.values())


def test_ray_actor_deaths_retry_once_then_error_row(ray_cluster, small_folder, tmp_path, pipeline_config):
    """A real SIGSEGV in an actor: Ray restarts it and retries the task once; an input that crashes
    twice is an error row; one that crashes once comes back with its rows; the rest is untouched."""
    folder = small_folder({"crashme.png": "astronaut", "crashonce.png": "astronaut", "other.jpg": "grace_hopper"})
    summary = run_batch([folder], tmp_path / "out", config=pipeline_config, ray=True, workers=2)
    rows = {}
    for r in read_results(tmp_path / "out").to_pylist():
        rows.setdefault(os.path.basename(r["source"]), []).append(r)
    assert ray_cluster.exists()  # crashonce did crash once
    assert [r["status"] for r in rows["crashme.png"]] == ["error"]
    assert rows["crashme.png"][0]["error"].startswith("WorkerDied: its Ray task failed twice")
    assert [r["status"] for r in rows["crashonce.png"]] == ["ok"]
    assert [r["status"] for r in rows["other.jpg"]] == ["ok"]
    assert [d["source"].rsplit("/", 1)[1] for d in summary.worker_deaths] == ["crashme.png"]
