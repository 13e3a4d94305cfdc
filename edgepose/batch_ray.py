"""The cluster engine of `edgepose batch`: Ray Data, one pipeline per actor.

    edgepose batch photos/ clips/ -o out/ --ray                  # a local Ray (or the one RAY_ADDRESS names)
    edgepose batch /shared/photos -o /shared/out --ray=auto      # the cluster this node belongs to

How it runs (Ray 2.x):
- the driver (this process) expands the SOURCEs and skips the inputs OUT already holds, exactly as the
  local engine does;
- `ray.data.read_binary_files(paths, include_paths=True)` reads the files, one file per block, in Ray's
  read tasks (wherever the cluster schedules them, so the paths must be readable there: a shared
  file system, or one machine). Images are *not* read with `ray.data.read_images`: it decodes with PIL
  and ignores a JPEG's EXIF orientation, which cv2.imread applies (a phone photo tagged "rotate 90"
  comes out 810x1080 from cv2, 1080x810 from read_images: measured with Ray 2.60), and a corrupt file
  fails its read task (a RayTaskError) instead of becoming an error row. On the pinned photos, where
  no EXIF orientation is set, PIL and OpenCV decode to identical pixels. The workers decode the bytes
  with OpenCV, as the local engine does; a video's bytes are written to a temporary file in the
  worker and decoded there frame by frame;
- `map_batches(PoseActor, batch_size=1, num_cpus=1, compute=ActorPoolStrategy(size=N,
  max_tasks_in_flight_per_actor=1))`: an actor pool, each actor holding
  one single-thread pipeline (models shipped through the object store, so no node needs them on disk),
  each call one input, returning that input's rows as one Arrow IPC blob (an input's rows never split);
- the driver streams the results (`iter_batches`) into the same journal + Parquet parts as the local
  engine, so a run can be resumed by either engine and both give the same rows.

Worker death: Ray Data restarts a dead actor (max_restarts=-1) and the task is retried once
(max_task_retries=1); a task that fails again is dropped (DataContext.max_errored_blocks=-1) and the
driver writes an error row for every input that did not come back.
"""
from __future__ import annotations

import logging
import os
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Sequence

from .batch import (STATUS_ERROR, BatchConfig, BatchInput, _row, crash_hook, peak_rss_mb, process_input,
                    result_schema)
from .errors import BatchError

log = logging.getLogger(__name__)


def _import_ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise BatchError("--ray needs Ray Data, which is not installed: pip install 'edgepose[ray]'") from None
    return ray


class PoseActor:
    """One Ray actor: the pipeline, built once from the models' bytes; each call runs one input."""

    def __init__(self, config: dict[str, Any], models_ref: Any, items: dict[str, BatchInput],
                 annotate_dir: str | None) -> None:
        import cv2
        import ray

        cv2.setNumThreads(1)
        self.tmp = tempfile.mkdtemp(prefix="edgepose-ray-")
        models = ray.get(models_ref[0])
        local = {}
        for role, (name, data) in models.items():
            path = os.path.join(self.tmp, f"{role}-{name}")
            with open(path, "wb") as fh:
                fh.write(data)
            local[role] = path
        cfg = BatchConfig(**{**config, **local})
        self.runner = cfg.build()
        self.schema = result_schema(self.runner.spec.num_keypoints)
        self.items = items
        self.annotate_dir = annotate_dir

    def __call__(self, batch: dict[str, Any]):
        import pyarrow as pa

        out: dict[str, list] = {"source": [], "rows": [], "frames": [], "seconds": [], "pid": [], "peak_mb": []}
        for data, path in zip(batch["bytes"], batch["path"]):
            key = _key_of(str(path), self.items)
            item = self.items[key]
            crash_hook(key)
            t0 = time.perf_counter()
            data = bytes(data)
            if item.kind == "video":  # OpenCV decodes videos from files: a private copy, same name
                folder = tempfile.mkdtemp(dir=self.tmp)
                tmp = os.path.join(folder, os.path.basename(key))
                try:
                    with open(tmp, "wb") as fh:
                        fh.write(data)
                    rows, frames = process_input(self.runner, item, path=tmp, annotate_dir=self.annotate_dir)
                finally:
                    os.unlink(tmp)
                    os.rmdir(folder)
                for row in rows:  # messages name the input, as the local engine's do
                    if row["error"]:
                        row["error"] = row["error"].replace(tmp, key)
            else:
                rows, frames = process_input(self.runner, item, data=data, annotate_dir=self.annotate_dir)
            table = pa.Table.from_pylist(rows, schema=self.schema)
            sink = pa.BufferOutputStream()
            with pa.ipc.new_stream(sink, table.schema) as w:
                w.write_table(table)
            out["source"].append(key)
            out["rows"].append(sink.getvalue().to_pybytes())
            out["frames"].append(frames)
            out["seconds"].append(time.perf_counter() - t0)
            out["pid"].append(os.getpid())
            out["peak_mb"].append(peak_rss_mb())
        return pa.table({"source": pa.array(out["source"], pa.string()),
                         "rows": pa.array(out["rows"], pa.large_binary()),
                         "frames": pa.array(out["frames"], pa.int64()),
                         "seconds": pa.array(out["seconds"], pa.float64()),
                         "pid": pa.array(out["pid"], pa.int64()),
                         "peak_mb": pa.array(out["peak_mb"], pa.float64())})


def _key_of(path: str, items: dict[str, BatchInput]) -> str:
    """The input key of a path as Ray reports it (it may drop the leading slash or add a scheme)."""
    if path in items:
        return path
    for candidate in (path.split("://", 1)[-1], "/" + path.lstrip("/")):
        if candidate in items:
            return candidate
    raise BatchError(f"Ray returned a path edgepose did not ask for: {path}")


def run_ray(items: Sequence[BatchInput], config: BatchConfig,
            on_result: Callable[[BatchInput, list[dict], int, dict], None], *, address: str | None = None,
            workers: int | None = None, annotate_dir: str | None = None,
            progress_note: Callable[[str], None] | None = None,
            init_options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run `items` through Ray Data; `on_result` is called in this process once per input."""
    ray = _import_ray()
    import pyarrow as pa

    t0 = time.perf_counter()
    started_here = False
    if not ray.is_initialized():
        options = {"log_to_driver": False, **(init_options or {})}
        try:
            if address or os.environ.get("RAY_ADDRESS"):  # joining a cluster: its own settings stand
                ray.init(address=address, **options)
            else:  # a local Ray for this run only ("local": not a cluster some `ray start` left recorded)
                ray.init(address="local", include_dashboard=False, **options)
        except Exception as exc:  # noqa: BLE001 - say what failed, in one line
            hint = ""
            if address and "RAY_AUTH_MODE" not in os.environ:
                hint = ("; a cluster started with `ray start` (Ray >= 2.59) wants token authentication: set "
                        "RAY_AUTH_MODE=token here, with the cluster's token in ~/.ray/auth_token or RAY_AUTH_TOKEN")
            raise BatchError(f"cannot start or reach Ray{f' at {address}' if address else ''}: {exc}{hint}") from None
        started_here = True
    init_s = time.perf_counter() - t0
    try:
        readable = [i for i in items if i.kind != "error"]
        for item in items:  # SOURCEs that named nothing: rows straight away, no task needed
            if item.kind == "error":
                on_result(item, process_input(None, item)[0], 0, {"seconds": 0.0})  # type: ignore[arg-type]
        cpus = int(ray.cluster_resources().get("CPU", 1))
        n = max(1, min(workers or cpus, len(readable) or 1))
        info = {"deaths": [], "peak_mb": {}, "startup_s": init_s, "workers": n, "ray_init_s": init_s}
        if not readable:
            return info
        models = {role: (Path(path).name, Path(path).read_bytes())
                  for role, path in (("model", config.model), ("detector", config.detector)) if path}
        models_ref = [ray.put(models)]  # in a list: Ray passes it on unresolved, the actor gets it once
        by_key = {i.key: i for i in readable}
        ctx = ray.data.DataContext.get_current()
        ctx.max_errored_blocks = -1  # an input whose task fails twice is dropped here, reported below
        ctx.enable_progress_bars = False
        # Reading is I/O: its tasks take no CPU slot, or N actors at num_cpus=1 on N CPUs would leave
        # the reads unscheduled forever (seen on a 2-CPU node: the run waited without end). With no CPU
        # slot Ray would start a worker process per read task at once (56 for 60 files, a minute before
        # the first result), so at most N reads run at a time. One file per block: an actor call is one
        # input, so a crash costs (and retries) that input alone.
        ds = ray.data.read_binary_files([i.key for i in readable], include_paths=True,
                                        override_num_blocks=len(readable), num_cpus=0, concurrency=n)
        plain = {k: v for k, v in vars(config).items() if k not in ("model", "detector")}
        # One task in flight per actor: when an actor dies, only the input it was running is retried
        # (with 2 in flight, a crash also used up the retry of an innocent input queued behind it).
        # max_restarts / max_task_retries go through **ray_remote_args (deprecated in Ray 2.60, to be
        # removed in 2.64, hence the pin in pyproject): Ray Data's own default retries a task for ever,
        # so a deterministic native crash would never end the run.
        pool = ray.data.ActorPoolStrategy(size=n, max_tasks_in_flight_per_actor=1)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*ray_remote_args.*deprecated")
            ds = ds.map_batches(PoseActor, batch_size=1, compute=pool, num_cpus=1, batch_format="numpy",
                                fn_constructor_kwargs={"config": plain, "models_ref": models_ref, "items": by_key,
                                                       "annotate_dir": annotate_dir},
                                max_restarts=-1, max_task_retries=1)
        seen: set[str] = set()
        first = None
        for batch in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
            cols = [batch[c].to_pylist() for c in ("source", "rows", "frames", "seconds", "pid", "peak_mb")]
            for key, blob, frames, seconds, pid, peak in zip(*cols):
                if key in seen:
                    continue  # a retried task whose first attempt also came back
                seen.add(key)
                if first is None:
                    first = time.perf_counter() - t0
                table = pa.ipc.open_stream(pa.py_buffer(blob)).read_all()
                rows = table.to_pylist()
                name = f"pid {int(pid)}"
                info["peak_mb"][name] = max(info["peak_mb"].get(name, 0.0), float(peak))
                on_result(by_key[key], rows, int(frames), {"seconds": float(seconds), "worker_pid": int(pid)})
        for key, item in by_key.items():
            if key in seen:
                continue
            how = ("its Ray task failed twice (the actor died: a native crash or out of memory, or the file "
                   "could not be read; the Ray logs under /tmp/ray/session_latest/logs say which)")
            info["deaths"].append({"source": key, "how": how, "attempt": 2})
            msg = f"{key}: {how}; recorded as an error row"
            log.warning(msg)
            if progress_note:
                progress_note(msg)
            on_result(item, [_row(key, None, None, status=STATUS_ERROR, error=f"WorkerDied: {how}")], 0,
                      {"seconds": 0.0, "died": True})
        info["first_result_s"] = first
        return info
    finally:
        if started_here:
            ray.shutdown()
