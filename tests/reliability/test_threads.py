"""Threads: a shared Predictor / Detector gives exactly the serial results; concurrent creation and
the native-stdout redirect are race-free; creating and dropping models does not grow memory.

A Predictor (and a Detector) may be shared: the crop and input buffers are per thread and the
model runs one call at a time. Before this, 4 threads sharing one Predictor got wrong keypoints
on 16-21 % of calls (up to 514 px off), 4 threads creating their first Predictors at once got a
half-initialised MNN module, and fd 1 was left on /dev/null in ~1 of 50 rounds.
"""
from __future__ import annotations

import threading

import numpy as np
import pytest
from reliability_helpers import last_json, run_python

from edgepose import Detector, Predictor

THREADS = 4
CALLS = 150


def _inputs(photos):
    import cv2

    bus = cv2.imread(str(photos["bus"]))
    astro = cv2.imread(str(photos["astronaut"]))
    return [
        (astro, [[95, 10, 470, 512]]),
        (bus, [[50, 230, 260, 900]]),
        (bus, [[50, 230, 260, 900], [660, 200, 810, 880]]),  # two crops: the batched path
        (astro, None),  # the whole image
        (np.ascontiguousarray(bus[::2, ::2]), [[20, 100, 140, 450]]),
    ]


def _hammer(fn, n_inputs: int):
    """THREADS threads x CALLS calls of fn(i % n_inputs); returns (index, result) per call and errors."""
    results: list[list[tuple[int, object]]] = [[] for _ in range(THREADS)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(THREADS)

    def work(t: int) -> None:
        barrier.wait()
        for c in range(CALLS):
            i = (c * 7 + t * 3) % n_inputs  # threads on different inputs at the same moment
            try:
                results[t].append((i, fn(i)))
            except BaseException as exc:  # noqa: BLE001 - collected and reported below
                errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return [r for rs in results for r in rs], errors


def test_shared_predictor_gives_the_serial_results(blazepose_mnn, photos):
    predictor = Predictor(blazepose_mnn["fp16"])
    inputs = _inputs(photos)
    serial = [predictor.predict(img, boxes) for img, boxes in inputs]
    calls, errors = _hammer(lambda i: predictor.predict(*inputs[i]), len(inputs))
    assert not errors, errors[:3]
    assert len(calls) == THREADS * CALLS
    wrong = [i for i, r in calls if not (np.array_equal(r.keypoints, serial[i].keypoints)
                                         and np.array_equal(r.scores, serial[i].scores))]
    assert not wrong, f"{len(wrong)} of {len(calls)} concurrent calls differ from the serial result"


def test_shared_detector_gives_the_serial_results(photos):
    from edgepose.demo import detector_model

    detector = Detector(detector_model())
    images = [img for img, _ in _inputs(photos)]
    serial = [detector.detect(img) for img in images]
    calls, errors = _hammer(lambda i: detector.detect(images[i]), len(images))
    assert not errors, errors[:3]
    wrong = [i for i, d in calls if not (np.array_equal(d.boxes, serial[i].boxes)
                                         and np.array_equal(d.keypoints, serial[i].keypoints))]
    assert not wrong, f"{len(wrong)} of {len(calls)} concurrent detections differ from the serial result"


def test_first_predictors_created_from_four_threads_at_once(blazepose_mnn):
    """Six fresh processes, each creating its first 4 Predictors from 4 threads behind a barrier."""
    Predictor(blazepose_mnn["fp16"])  # the verdict is cached: the children only race on the import
    code = f"""
        import json, threading
        from edgepose import Predictor
        errors, barrier = [], threading.Barrier(4)
        def make():
            barrier.wait()
            try:
                Predictor({str(blazepose_mnn["fp16"])!r})
            except BaseException as exc:
                errors.append(f"{{type(exc).__name__}}: {{exc}}")
        ts = [threading.Thread(target=make) for _ in range(4)]
        [t.start() for t in ts]; [t.join() for t in ts]
        print("MARKER-AFTER")
        print(json.dumps({{"errors": errors}}))
    """
    for _ in range(6):
        proc = run_python(code)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert last_json(proc.stdout)["errors"] == []
        # fd 1 is back on the pipe, and MNN's banner never reached it
        assert "MARKER-AFTER" in proc.stdout
        assert "The device supports" not in proc.stdout and "MNN use" not in proc.stdout


def test_native_stdout_redirect_survives_racing_threads():
    """8 threads x 50 rounds entering the redirect at once; fd 1 is the pipe again after every round."""
    code = """
        import os, random, threading, json
        from edgepose._native import quiet_native_stdout
        original = os.fstat(1)
        left_on_devnull = 0
        for round_ in range(50):
            barrier = threading.Barrier(8)
            def work():
                barrier.wait()
                with quiet_native_stdout():
                    os.write(1, b"HIDDEN\\n")
                    threading.Event().wait(random.random() * 0.002)
            ts = [threading.Thread(target=work) for _ in range(8)]
            [t.start() for t in ts]; [t.join() for t in ts]
            now = os.fstat(1)
            left_on_devnull += (now.st_ino, now.st_dev) != (original.st_ino, original.st_dev)
        print(json.dumps({"left_on_devnull": left_on_devnull}))
    """
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert last_json(proc.stdout) == {"left_on_devnull": 0}
    assert "HIDDEN" not in proc.stdout


@pytest.mark.parametrize("cycles", [200])
def test_create_destroy_memory_is_bounded(blazepose_mnn, cycles):
    """200 Predictor create/destroy cycles in a fresh process: RSS grows < 0.05 MB per cycle after
    warm-up (it was ~0.65 MB per cycle, MNN's get_info())."""
    Predictor(blazepose_mnn["fp16"])  # cache the verdict
    code = f"""
        import gc, json
        import numpy as np
        from edgepose import Predictor
        def rss():
            return int(open("/proc/self/statm").read().split()[1]) * 4096 / 1e6
        image = np.full((240, 320, 3), 127, np.uint8)
        def cycle():
            p = Predictor({str(blazepose_mnn["fp16"])!r})
            p.predict(image, [[40, 20, 200, 220]])
            del p
        for _ in range(20):
            cycle()
        gc.collect(); start = rss()
        for _ in range({cycles} - 20):
            cycle()
        gc.collect()
        print(json.dumps({{"per_cycle_mb": (rss() - start) / ({cycles} - 20), "rss_mb": rss()}}))
    """
    proc = run_python(code, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    figures = last_json(proc.stdout)
    assert figures["per_cycle_mb"] < 0.05, figures
