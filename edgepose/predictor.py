"""Predictor: model metadata + a backend + crop/normalise + decoder, behind `predict`.

    from edgepose import Predictor
    result = Predictor("pose.mnn").predict(cv2.imread("person.jpg"), bboxes=[[x1, y1, x2, y2]])

The metadata comes from the model file (MNN bizCode / ONNX metadata_props), else from a
sidecar `<model>.json`, and fields passed here override both. Nothing about the model is
guessed: a missing field is an error that names it.
"""
from __future__ import annotations

import json
import logging
import threading
import time
import warnings
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from .backends import Backend, open_backend
from .errors import InputError, MetadataError, RandomWeightsWarning, ShapeError
from .heads import HEADS, POSE_HEADS
from .processing import transforms
from .processing.image import InputPacker, load_image
from .processing.roi import Roi, check_rois, roi_matrix
from .spec import REQUIRED_FIELDS, ModelSpec, PoseResult

log = logging.getLogger(__name__)


def sidecar_path(model_path: str | Path) -> Path:
    """Where metadata lives when it is not inside the model: `pose.mnn` -> `pose.mnn.json`."""
    p = Path(model_path)
    return p.with_name(p.name + ".json")


def spec_for_session(backend: Backend, spec: ModelSpec | Mapping[str, Any] | None = None,
                 **overrides: Any) -> ModelSpec:
    """Embedded metadata, else sidecar JSON, updated with `spec`/`overrides`; validated."""
    data: dict[str, Any] = {}
    source = "metadata"
    sidecar = sidecar_path(backend.path)
    if backend.metadata:
        data = ModelSpec.from_json(backend.metadata, source=f"metadata in {backend.path.name}").to_dict()
        source = f"metadata in {backend.path.name}"
    elif sidecar.is_file():
        data = ModelSpec.from_json(sidecar.read_text(), source=str(sidecar)).to_dict()
        source = str(sidecar)
    if spec is not None:
        given = spec.to_dict() if isinstance(spec, ModelSpec) else dict(spec)
        data.update(given)
    data.update({k: v for k, v in overrides.items() if v is not None})
    if not data or any(data.get(f) is None for f in REQUIRED_FIELDS):
        missing = [f for f in REQUIRED_FIELDS if data.get(f) is None]
        raise MetadataError(
            f"{backend.path.name} carries no edgepose metadata (nor a sidecar {sidecar.name}) and "
            f"these fields were not given: {', '.join(missing)}. Pass them, e.g. "
            f"Predictor(path, input_size=(256, 256), head='regression', num_keypoints=17, mean=..., std=...), "
            "or convert the model with `edgepose convert` to embed them")
    return ModelSpec.from_dict(data, source=source)


class ModelSession:
    """A model file opened with its backend and its metadata, inputs and outputs matched.

    The part every runtime model shares: `Predictor` (keypoints per crop) and `Detector`
    (people in a frame) add their pre- and post-processing on top. `kind` is the head kind
    (edgepose.heads) a subclass accepts; a file of the other kind is refused by name.

    Safe to share between threads: the crop and input buffers a call reuses are per thread
    (with MNN the input buffer is the backend's own input memory for this thread, so the packed
    crops are not copied again), and the model itself runs one call at a time (a lock around the backend's run), so
    concurrent calls give exactly what the same calls give one after another.
    """

    kind = "pose"

    def __init__(self, model: str | Path, *, backend: str | None = None, threads: int = 1,
                 spec: ModelSpec | Mapping[str, Any] | None = None, precision: str | None = None,
                 alternatives: Sequence[str | Path] = (), **fields: Any) -> None:
        options = {"precision": precision} if precision is not None else {}
        self.backend_choice = None
        if backend is not None and str(backend).lower() == "auto":
            # The fastest engine for this model here, among this file, its siblings and `alternatives`;
            # the metadata still comes from `model` itself.
            from .backends.auto import choose

            self.backend_choice = choose(model, threads=threads, alternatives=alternatives)
            primary = open_backend(model, None, threads=threads, **options)
            self.spec = spec_for_session(primary, spec, **fields)
            chosen = self.backend_choice
            self.backend = primary if Path(chosen.path) == Path(model) and chosen.backend == primary.name else \
                open_backend(chosen.path, chosen.backend, threads=threads, **(options if chosen.backend == "mnn" else {}))
        else:
            self.backend = open_backend(model, backend, threads=threads, **options)
            self.spec = spec_for_session(self.backend, spec, **fields)
        head = HEADS[self.spec.head]
        if head.kind != self.kind:
            raise MetadataError(
                f"{Path(model).name} is a {head.kind} model (head {self.spec.head!r}), but a {self.kind} model "
                f"was expected (heads {', '.join(n for n, h in HEADS.items() if h.kind == self.kind)}); "
                + ("open it with edgepose.Detector, or pass it as the detector of edgepose.Pipeline"
                   if head.kind == "detector" else "open it with edgepose.Predictor, or pass it as the "
                   "keypoint model of edgepose.Pipeline"))
        self._input = self._match_input()
        self._roles = self._match_outputs()
        # The model outputs the head reads: the only ones run_tensor asks the backend for.
        self.head_outputs: list[str] = sorted(set(self._roles.values()))
        self._local = threading.local()  # per-thread reused buffers (crops, packed input)
        # Input tensors the backend hands out (edgepose.backends.base.Backend.input_buffer) hold one
        # float32 batch in the model's layout; any other input dtype is packed here and converted.
        info = next(t for t in self.backend.inputs if t.name == self._input)
        self._bind_input = info.dtype in ("float32", None)
        self._run_lock = threading.Lock()
        if self.spec.provenance.get("weights") == "random-init":
            warnings.warn(f"{Path(model).name} was exported with random initial weights (provenance "
                          "weights=random-init): its outputs are not keypoints. Convert the model with "
                          "trained weights (edgepose convert NAME --weights best.pth)", RandomWeightsWarning,
                          stacklevel=3)

    @property
    def _packer(self) -> InputPacker:
        """This thread's input packer (it reuses its output buffers from call to call)."""
        packer = getattr(self._local, "packer", None)
        if packer is None:
            packer = self._local.packer = InputPacker(self.spec)
        return packer

    def _crop_pack(self, img: np.ndarray, matrices: np.ndarray) -> np.ndarray:
        """Each (N, 2, 3) matrix's crop of `img` warped and packed into the input tensor: the backend's
        own input memory where it has some (MNN), so `run` copies nothing; else this thread's packer buffer."""
        packer = self._packer
        tensor = self.backend.input_buffer(self._input, packer.output_shape(len(matrices))) if self._bind_input else None
        if tensor is None:
            tensor = packer.buffer(len(matrices))
        packer.crop_pack(img, matrices, tensor, border=self.spec.border)
        return tensor

    # --- set-up checks -----------------------------------------------------------
    def _match_input(self) -> str:
        inputs = self.backend.inputs
        if self.spec.input_name:
            names = [t.name for t in inputs]
            if self.spec.input_name not in names:
                raise MetadataError(f"metadata names input {self.spec.input_name!r} but the model's inputs are {names}")
            info = next(t for t in inputs if t.name == self.spec.input_name)
        elif len(inputs) == 1:
            info = inputs[0]
        else:
            raise MetadataError(f"the model has inputs {[t.name for t in inputs]}: set input_name to the image input")
        shape = info.shape
        w, h = self.spec.input_size
        if len(shape) != 4:
            raise ShapeError(f"image input {info.name!r} has shape {shape}; edgepose expects a 4-D image tensor")
        if info.layout and info.layout != self.spec.layout:
            raise ShapeError(
                f"input {info.name!r} is {info.layout} in the model but the metadata says layout={self.spec.layout!r}; "
                f"pass layout={info.layout!r}")
        expected = self.spec.input_shape()[1:]
        fixed = [(got, want) for got, want in zip(shape[1:], expected) if isinstance(got, int)]
        if any(got != want for got, want in fixed):
            raise ShapeError(
                f"model input {info.name!r} has shape {tuple(shape)} but the metadata asks for "
                f"input_size=(width={w}, height={h}) in {self.spec.layout}, i.e. (N, {', '.join(map(str, expected))}); "
                "pass the model's own size (input_size=(width, height)) and layout")
        return info.name

    def _match_outputs(self) -> dict[str, str]:
        names = self.backend.output_names
        head = HEADS[self.spec.head]
        if not self.spec.outputs:
            if len(names) == 1:
                return {head.primary_role: names[0]}
            raise MetadataError(
                f"the model has outputs {names}; set outputs={{role: name}} to say which holds what "
                f"(roles for a {self.spec.head} head: {sorted(head.all_roles)})")
        missing = [n for n in self.spec.outputs.values() if n not in names]
        if missing:
            raise MetadataError(f"metadata names output(s) {missing} that the model lacks; its outputs are {names}")
        return dict(self.spec.outputs)

    def run_tensor(self, tensor: np.ndarray) -> dict[str, np.ndarray]:
        """Run the raw model on a prepared input tensor; outputs keyed by role."""
        with self._run_lock:  # only the outputs a role reads are converted and copied
            outputs = self.backend.run({self._input: tensor}, self.head_outputs)
        n = tensor.shape[0]
        for role, name in self._roles.items():  # every decoder reads outputs batch-first
            out = outputs.get(name)
            if out is None or out.ndim == 0 or out.shape[0] != n:
                raise ShapeError(
                    f"{self.backend.path.name}: output {name!r} ({role}) has shape "
                    f"{None if out is None else tuple(out.shape)} for a batch of {n}; every output must start "
                    "with the batch dimension (is the file corrupt, or the metadata's outputs wrong?)")
        return {role: outputs[name] for role, name in self._roles.items()}

    def describe(self) -> dict[str, Any]:
        info = {**self.backend.describe(), "spec": json.loads(self.spec.to_json())}
        if self.backend_choice is not None:
            info["backend_choice"] = self.backend_choice.to_dict()
        return info

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.backend.path)!r}, backend={self.backend.name!r}, head={self.spec.head!r})"


class Predictor(ModelSession):
    """Single-model keypoint predictor. Reuses its session and input buffers across calls.

    model      path to a .mnn or .onnx file.
    backend    "mnn" | "onnxruntime" (default: from the file suffix).
    threads    intra-op threads (1 = the edge default; timing figures assume it).
    spec       a ModelSpec (or dict) for a model without embedded metadata.
    **fields   individual ModelSpec fields overriding the embedded ones (e.g. bbox_padding=1.0).
    """

    kind = "pose"

    def __init__(self, model: str | Path, **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        self._batchable: bool | None = self._batch_capability()
        self._decoder = HEADS[self.spec.head].resolve_decoder()  # the head's decoder, looked up once

    def _batch_capability(self) -> bool | None:
        dim = next(t for t in self.backend.inputs if t.name == self._input).shape[0]
        if not isinstance(dim, int):
            return True  # a symbolic batch dimension
        return None if self.backend.name == "mnn" else dim != 1  # MNN reports 1 even when dynamic: probe once

    # --- inference ---------------------------------------------------------------
    def prepare(self, image: Any, bboxes: Any = None, *, rois: Sequence[Roi] | None = None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Crops -> (input tensor, 2x3 crop matrices (N, 2, 3), boxes (N, 4)).

        No box and no ROI: the whole image stretched onto the input. Boxes: padded, aspect-fixed,
        axis-aligned crops. ROIs (edgepose.processing.roi.Roi, rotated): their corners onto the
        input's corners, as MediaPipe crops a detected person.
        """
        img = load_image(image)
        size = self.spec.input_size
        if rois is not None:
            if bboxes is not None:
                raise InputError("pass either bboxes or rois, not both")
            rois = check_rois(rois, img.shape)
            matrices = [roi_matrix(r, size) for r in rois]
            boxes = np.stack([r.bbox() for r in rois]).astype(np.float32)
        elif bboxes is None:
            h, w = img.shape[:2]
            boxes = np.array([[0, 0, w, h]], np.float32)
            matrices = [transforms.whole_image_matrix(img.shape, size)]
        else:
            boxes = transforms.validate_bboxes(bboxes, img.shape)
            matrices = transforms.box_matrices(boxes, padding=self.spec.bbox_padding, output_size=size)
        if not isinstance(matrices, np.ndarray):
            matrices = np.stack(matrices)
        return self._crop_pack(img, matrices), matrices, boxes

    def predict(self, image: Any, bboxes: Any = None, *, rois: Sequence[Roi] | None = None) -> PoseResult:
        """Keypoints for the whole image (no bboxes/rois), each (x1, y1, x2, y2) box, or each rotated ROI."""
        tensor, matrices, boxes = self.prepare(image, bboxes, rois=rois)
        outputs = self._run_batch(tensor)
        xy, scores, extras = self._decoder(self.spec, outputs)
        keypoints = transforms.to_image(xy, matrices)
        if "auxiliary" in extras:  # decoder points in input pixels too
            extras["auxiliary"] = transforms.to_image(extras["auxiliary"], matrices)
        return PoseResult(keypoints=keypoints, scores=scores, bboxes=boxes,
                          keypoint_names=self.spec.keypoint_names, skeleton=self.spec.skeleton, extras=extras)

    def _run_batch(self, tensor: np.ndarray) -> dict[str, np.ndarray]:
        n = tensor.shape[0]
        if n == 1 or self._batchable is False:
            if n == 1:
                return self.run_tensor(tensor)
            parts = [self.run_tensor(tensor[i:i + 1]) for i in range(n)]
            return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        if self._batchable is None:  # first batched call on MNN: check the graph really batches
            try:
                out = self.run_tensor(tensor)
                self._batchable = all(v.shape[0] == n for v in out.values())
            except Exception as exc:  # noqa: BLE001 - a graph with a baked batch of 1 fails here
                log.info("%s does not run batched (%s); running boxes one by one", self.backend.path.name, exc)
                self._batchable = False
            if self._batchable:
                return out
            return self._run_batch(tensor)
        return self.run_tensor(tensor)

    # --- conveniences ------------------------------------------------------------
    def time(self, image: Any, bboxes: Any = None, *, repeats: int = 20, warmup: int = 3) -> dict[str, float]:
        """Median / min / max milliseconds of `predict` on this image (single process, this thread)."""
        if not isinstance(repeats, int) or isinstance(repeats, bool) or repeats < 1:
            raise InputError(f"repeats must be a positive integer, got {repeats!r}")
        if not isinstance(warmup, int) or isinstance(warmup, bool) or warmup < 0:
            raise InputError(f"warmup must be a non-negative integer, got {warmup!r}")
        for _ in range(warmup):
            self.predict(image, bboxes)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            self.predict(image, bboxes)
            times.append((time.perf_counter() - t0) * 1e3)
        return {"median_ms": float(np.median(times)), "min_ms": float(np.min(times)), "max_ms": float(np.max(times))}
