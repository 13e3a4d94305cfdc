"""Measure how far each conversion stage moves the outputs, to set the parity tolerances on data.

    python -m edgepose.converters.measure_tolerances [-o DIR] [--models deeppose,heatmap,...]

Converts zoo models (random weights, BatchNorm statistics calibrated by the registry), the
pinned MediaPipe TFLite models and, when the MXNet test fixtures are built, GluonCV's trained
simple_pose_resnet18_v1b, with every check disabled, then prints, per stage and
precision, the worst max-rel error (max abs / output range), 1 - cosine and keypoint
displacement over random inputs and the four pinned photos. parity.TOLERANCES sits a safety
margin above the worst figures printed here. Also compares TFLite's own kernels (XNNPACK vs
built-in) as the noise floor two correct FP32 implementations already show.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from edgepose.presets import IMAGENET_MEAN, IMAGENET_STD

from .report import Tolerance

_OPEN = {"fp32": Tolerance(rtol=1e9, atol=1e9, min_cosine=-2.0, max_px=1e9),
         "fp16": Tolerance(rtol=1e9, atol=1e9, min_cosine=-2.0, max_px=1e9)}

DEFAULT_ZOO = ("deeppose", "heatmap", "ipr", "simdr", "simdr_320")
TFLITE = ("pose_landmark_full", "hand_landmark_full", "hand_landmark_lite")
PRESET_OF = {"pose_landmark_full": "blazepose_full", "hand_landmark_full": "hand_landmark_full",
             "hand_landmark_lite": "hand_landmark_lite"}


def measure(out_dir: Path, zoo: list[str], tflite: list[str]) -> list[dict]:
    import torch

    from edgepose import assets
    from edgepose import models as zoo_mod

    from .pipeline import convert

    photos = [assets.fetch_asset(n) for n in assets.PHOTO_PERSON_BOXES]
    rows = []
    jobs = [(name, "zoo") for name in zoo] + [(name, "tflite") for name in tflite]
    trained = _mxnet_simple_pose()
    if trained is not None:
        jobs.append((str(trained), "mxnet"))
    for name, kind in jobs:
        if kind == "mxnet":  # the one trained PyTorch-free FP32 pose model at hand (GluonCV weights)
            report = convert(name, params=name.replace("-symbol.json", "-0000.params"), output_dir=out_dir,
                             input_shape=(1, 3, 256, 192), fp16=True, strict=False, images=photos,
                             tolerances=_OPEN, meta=dict(head="heatmap", num_keypoints=17, input_size=(192, 256),
                                                         mean=IMAGENET_MEAN, std=IMAGENET_STD))
            name = "simple_pose_r18 (mx)"
        elif kind == "zoo":
            torch.manual_seed(0)
            module = zoo_mod.create_model(name)  # random init, BN statistics calibrated on noise
            report = convert(module, output_dir=out_dir, spec=zoo_mod.get_spec(name), name=name, fp16=True,
                             strict=False, images=photos, tolerances=_OPEN)
        else:
            report = convert(assets.fetch_asset(name), output_dir=out_dir, preset=PRESET_OF[name], fp16=True,
                             strict=False, images=photos, tolerances=_OPEN)
        for s in report.stages:
            for o in (s.parity.outputs if s.parity else []):
                rows.append({"model": name, "stage": s.name, "precision": s.precision, "output": o.name,
                             "max_rel": o.max_rel, "max_abs": o.max_abs, "one_minus_cos": 1.0 - o.cosine,
                             "px": o.keypoint_px})
    return rows


def _mxnet_simple_pose() -> Path | None:
    """GluonCV simple_pose_resnet18_v1b (trained) from the MXNet test fixtures, if they are built."""
    from edgepose import assets

    found = sorted(assets.cache_dir().glob("mxnet-fixtures/*/models/simple_pose_resnet18_v1b-symbol.json"))
    return found[-1] if found else None


def tflite_noise_floor(names: list[str]) -> list[dict]:
    """XNNPACK vs TFLite's built-in kernels: two correct FP32 runs of the same TFLite model."""
    import cv2

    from edgepose import assets
    from edgepose.backends.litert import KERNELS, LiteRTBackend

    rows = []
    for name in names:
        path = assets.fetch_asset(name)
        outs = {}
        for kernels in KERNELS:
            backend = LiteRTBackend(path, kernels=kernels)
            t = backend.inputs[0]
            h, w = int(t.shape[1]), int(t.shape[2])
            res = []
            for photo in assets.PHOTO_PERSON_BOXES:
                img = cv2.imread(str(assets.fetch_asset(photo)))
                x = (cv2.resize(img, (w, h))[..., ::-1].astype(np.float32) / 255.0)[None]
                res.append(backend.run({t.name: x}))
            outs[kernels] = res
        a, b = outs.values()
        for key in a[0]:
            scale = max(float(np.abs(r[key]).max()) for r in a)
            err = max(float(np.abs(x[key] - y[key]).max()) for x, y in zip(a, b))
            rows.append({"model": name, "output": key, "max_rel": err / scale if scale else 0.0})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-o", "--output-dir", help="where to keep the artifacts (default: a temp dir)")
    parser.add_argument("--models", default=",".join(DEFAULT_ZOO), help="zoo models to convert")
    parser.add_argument("--tflite", default=",".join(TFLITE), help="pinned TFLite assets to convert")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.output_dir or tmp)
        rows = measure(out, [m for m in args.models.split(",") if m], [t for t in args.tflite.split(",") if t])
    print(f"{'model':<20} {'stage':<17} {'prec':<5} {'output':<12} {'max rel':>9} {'1-cos':>9} {'px':>8}")
    for r in rows:
        px = f"{r['px']:.4f}" if r["px"] is not None else "-"
        print(f"{r['model']:<20} {r['stage']:<17} {r['precision']:<5} {r['output'][:12]:<12} "
              f"{r['max_rel']:>9.2e} {r['one_minus_cos']:>9.2e} {px:>8}")
    for prec in ("fp32", "fp16"):
        sel = [r for r in rows if r["precision"] == prec]
        if sel:
            pxs = [r["px"] for r in sel if r["px"] is not None]
            print(f"worst {prec}: max rel {max(r['max_rel'] for r in sel):.2e}, "
                  f"1-cos {max(r['one_minus_cos'] for r in sel):.2e}, px {max(pxs) if pxs else float('nan'):.4f}")
    floor = tflite_noise_floor([t for t in args.tflite.split(",") if t])
    print("TFLite XNNPACK vs built-in kernels (max rel): "
          + ", ".join(f"{r['model']}/{r['output']} {r['max_rel']:.2e}" for r in floor))
    return 0


if __name__ == "__main__":
    sys.exit(main())
