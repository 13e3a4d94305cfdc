"""Open one model variant as two zero-argument callables: the raw session run and `predict`.

Both run on the same loaded session (the Predictor's backend), single thread, so the only
difference between them is edgepose's own pre- and post-processing. The TFLite reference
runtime (ai_edge_litert) has no Predictor: only its raw run is timed.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from edgepose.errors import MetadataError

from .models_source import ModelSource
from .variants import Variant

log = logging.getLogger(__name__)


@dataclass
class Session:
    source: ModelSource
    variant: Variant
    path: Path
    raw: Callable[[], Any]
    predict: Callable[[], Any] | None
    input_shape: tuple[int, ...]
    predictor: Any = None

    @property
    def key(self) -> str:
        return f"{self.source.name}|{self.variant.name}"


def _static_shape(shape) -> tuple[int, ...]:
    return tuple(d if isinstance(d, int) and d > 0 else 1 for d in shape)


def open_session(source: ModelSource, variant: Variant, *, image: np.ndarray | None = None,
                 bboxes: Any = None, feed: np.ndarray | None = None, threads: int = 1) -> Session:
    """Load `source` as `variant`; `feed` (a prepared input tensor) is reused when its shape fits."""
    path = source.path_for(variant)
    from edgepose.backends import open_backend
    from edgepose.predictor import Predictor

    options = {"precision": variant.session_precision} if variant.runtime == "mnn" else {}
    predictor = None
    engine = variant.backend
    if source.raw_only or source.spec is None and path.suffix.lower() == ".tflite":
        backend = open_backend(path, engine, threads=threads, **options)
    else:
        try:
            predictor = Predictor(path, backend=engine, threads=threads, spec=_spec_for(source, path), **options)
            backend = predictor.backend
        except MetadataError as exc:
            log.warning("%s: no metadata (%s); timing the raw session only", path.name, exc)
            backend = open_backend(path, engine, threads=threads, **options)
    name = (predictor.spec.input_name if predictor is not None and predictor.spec.input_name
            else backend.input_names[0])
    info = next(t for t in backend.inputs if t.name == name)
    shape = _static_shape(info.shape)
    if predictor is not None and image is not None:
        tensor = predictor.prepare(image, bboxes)[0]
    elif feed is not None and tuple(feed.shape) == shape:
        tensor = feed
    else:
        tensor = np.random.default_rng(0).random(shape, dtype=np.float32)
    feeds = {name: np.ascontiguousarray(tensor, np.float32)}
    run = backend.run
    # With a Predictor, the raw run returns what predict's own run does (the outputs its head reads),
    # so predict / raw is the cost of everything around the same model run.
    outputs = predictor.head_outputs if predictor is not None else None

    def raw() -> Any:
        return run(feeds, outputs)

    predict = None
    if predictor is not None and image is not None:
        pred = predictor.predict

        def predict() -> Any:
            return pred(image, bboxes)

    return Session(source, variant, path, raw, predict, tuple(feeds[name].shape), predictor)


def _spec_for(source: ModelSource, path: Path):
    """The source's card, except for an ONNX file converted from an NHWC TFLite model (ORT INT8's
    tflite2onnx step): that file is NCHW and carries its own card, which the Predictor reads."""
    spec = source.spec
    if spec is None or path.suffix.lower() != ".onnx" or spec.layout == "NCHW":
        return spec
    from edgepose.backends import open_backend
    from edgepose.spec import ModelSpec

    meta = open_backend(path, "onnxruntime", threads=1).metadata
    return ModelSpec.from_json(meta, source=str(path)) if meta else spec.replace(layout="NCHW")


