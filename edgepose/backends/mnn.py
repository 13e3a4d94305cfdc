"""MNN backend: one Module per model, single-thread by default.

Uses the Module API (`nn.load_module_from_file`): per-call cost measured equal to the
older Interpreter/Session API here (4.7 ms vs 4.7 ms on hand_landmark_lite, 1 thread), and it
handles dynamic batch and carries the embedded bizCode, where edgepose keeps its metadata.

A model file never reaches MNN unchecked (edgepose.mnn_file): its FlatBuffer is walked in
Python first (that is also where the bizCode, the input and the output names are read: MNN's
`get_info()` crashes on a non-UTF-8 bizCode and leaks ~0.9 MB per call, so it is never called),
and the first time a file's sha256 is seen it is loaded and run once in a child process, so a
file that would crash MNN is a ModelFileError instead of a dead interpreter.

One backend may be shared by threads: `run` holds a lock around MNN's forward pass.

Inputs go in through placeholder Vars the backend keeps, one per thread and input shape, never
through a new `F.const` per call: `input_buffer` hands out a numpy array over a placeholder's own
host memory, and an array from it passed back to `run` is not copied at all (the Predictor packs
its crops straight into it); any other feed is copied into the calling thread's placeholder.
Measured on deeppose FP16 (AMD EPYC Zen 4, 1 thread): `F.const` 35 us + a slower forward, the
copy 18 us, the handed-out buffer 0 us; the outputs are the same bits.
"""
from __future__ import annotations

import operator
import threading
import weakref
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from .. import mnn_file
from .._native import import_mnn, quiet_native_stdout
from ..errors import BackendError, ModelFileError, ShapeError
from .base import Backend, TensorInfo

# MNN reads these strings; anything else (e.g. "lowBF16", a typo) silently means "normal",
# so they are checked here. Measured on MNN 3.6.1.
PRECISIONS = {"normal": "normal", "high": "high", "low": "low",
              "low_bf16": "Low_BF16", "lowbf16": "Low_BF16", "bf16": "Low_BF16"}

# MNN's Interpreter::HintMode::WINOGRAD_MEMORY_LEVEL (pymnn takes the enum as an int). MNN's default,
# 3, lets 3x3 convolutions use its largest Winograd tiles: ~1e-3 relative error per conv, measured
# here (9e-4 on one 64-channel 3x3 conv; 2.0e-4 on GluonCV's mobile_pose_resnet18_v1b); 0 (no
# Winograd), 1 and 2 stay <= 1.2e-6. Level 1 costs nothing measurable on the zoo, BlazePose and the
# hand models, 5-15 % on the ResNet/DenseNet/Inception family, and is faster on GluonCV's mobile pose
# nets (benchmarks/README.md, "MNN Winograd level"); winograd_level=3 is the speed option.
# MNN shares one CPU runtime between runtime managers of the same configuration:
# a module picks its kernels at its first run (and on a resize) with the hint most recently set in
# the process, so backends with different levels in one process are not isolated from each other.
HINT_WINOGRAD_MEMORY_LEVEL = 3
WINOGRAD_LEVELS = (0, 1, 2, 3)
DEFAULT_WINOGRAD_LEVEL = 1


def _winograd_level(level: int) -> int:
    try:
        value = operator.index(level)  # ints and numpy integers; not floats, strings or bools
    except TypeError:
        value = None
    if isinstance(level, bool) or value not in WINOGRAD_LEVELS:
        raise BackendError(f"unknown MNN winograd_level {level!r}; use one of 0, 1, 2, 3 "
                           "(0: no Winograd, 1: the accurate default, 3: MNN's own default)")
    return value


# Input shapes whose placeholders one thread keeps (a batch of N boxes is one shape); the oldest
# goes first. An evicted placeholder lives on while an array over its memory does.
MAX_INPUT_SHAPES = 4


class _HostMemory:
    """The host memory of an MNN Var, as numpy sees it (np.asarray(this)): the array's base holds
    the Var, so the memory lives as long as any array over it."""

    def __init__(self, var, view: np.ndarray) -> None:
        self.var = var
        self.__array_interface__ = dict(view.__array_interface__)


class MNNBackend(Backend):
    name = "mnn"

    def __init__(self, path: str | Path, *, threads: int = 1, precision: str = "high",
                 winograd_level: int = DEFAULT_WINOGRAD_LEVEL) -> None:
        super().__init__(path, threads=threads)
        key = str(precision).lower()
        if key not in PRECISIONS:
            raise BackendError(
                f"unknown MNN precision {precision!r}; use one of normal, high, low, low_bf16")
        self.precision = PRECISIONS[key]
        self.winograd_level = _winograd_level(winograd_level)
        # Structure first (no MNN involved), then a child-process load + run the first time this
        # file's sha256 is seen (same precision and hints): a file that would hurt MNN raises here.
        self.file_info = mnn_file.open_mnn(self.path, precision=self.precision, threads=self.threads,
                                           hints=((HINT_WINOGRAD_MEMORY_LEVEL, self.winograd_level),))
        MNN = import_mnn()
        self._F = MNN.expr
        with quiet_native_stdout():
            self._runtime = MNN.nn.create_runtime_manager(
                ({"backend": "CPU", "numThread": self.threads, "precision": self.precision},))
            # Set before the module loads and first runs, which is when MNN picks the 3x3 kernels.
            self._runtime.set_hint(HINT_WINOGRAD_MEMORY_LEVEL, self.winograd_level)
        info = self.file_info
        try:
            module = MNN.nn.load_module_from_file(str(self.path), list(info.input_names), list(info.output_names),
                                                  runtime_manager=self._runtime)
            graph = MNN.expr.load_as_dict(str(self.path))
        except (SystemError, RuntimeError, ValueError, TypeError) as exc:
            raise ModelFileError(
                f"{self.path} is not a model MNN can load ({exc.__class__.__name__}); "
                "check that it is an .mnn file written by the MNN converter (edgepose convert)"
            ) from None
        if module is None:
            raise ModelFileError(f"{self.path} is not a model MNN can load (MNN returned no module)")
        try:
            unchanged = mnn_file.stat_key(self.path) == info.stat_key
        except OSError:
            unchanged = False
        if not unchanged:
            raise ModelFileError(f"{self.path} changed while it was being loaded; load it again once it is complete")
        self._module = module
        self._lock = threading.Lock()
        self._biz_code = info.metadata_text
        try:
            self._inputs = [self._describe(graph[n]) if n in graph else TensorInfo(n, ()) for n in info.input_names]
            self._outputs = [self._describe(graph[n]) if n in graph else TensorInfo(n, ()) for n in info.output_names]
        except (SystemError, RuntimeError, ValueError, TypeError) as exc:  # MNN cannot describe a tensor
            raise ModelFileError(f"{self.path} is not a model MNN can load ({exc})") from None
        self._formats = {t.name: (self._F.NHWC if t.layout == "NHWC" else self._F.NCHW) for t in self._inputs}
        self._input_info = {t.name: t for t in self._inputs}
        self._local = threading.local()  # this thread's placeholders: (name, shape) -> array over one
        self._bound: dict[int, weakref.ref] = {}  # address of a handed-out array -> its _HostMemory
        self.version = info.version

    def _describe(self, var) -> TensorInfo:
        fmt = str(var.data_format).rsplit(".", 1)[-1]
        layout = "NHWC" if fmt == "NHWC" else "NCHW"
        dtype = str(var.dtype).rsplit(".", 1)[-1]
        return TensorInfo(var.name, tuple(var.shape), {"float": "float32"}.get(dtype, dtype), layout)

    @property
    def metadata(self) -> str | None:
        if self._biz_code and self._biz_code.lstrip().startswith("{"):
            return self._biz_code
        return None

    def _check_shape(self, t: TensorInfo, shape: tuple[int, ...]) -> None:
        if len(shape) != len(t.shape) or (len(shape) == 4 and tuple(shape[1:]) != tuple(t.shape[1:])):
            raise ShapeError(
                f"input {t.name!r} of {self.path.name} expects shape (N, {', '.join(map(str, t.shape[1:]))}) "
                f"in {t.layout}, got {tuple(shape)}")

    def input_buffer(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """This thread's float32 array over the host memory of a placeholder for input `name` of
        `shape` (the model's layout): fill it and pass it to `run`, which then copies nothing."""
        if not isinstance(shape, tuple):
            shape = tuple(shape)
        slots = getattr(self._local, "slots", None)
        if slots is None:
            slots = self._local.slots = {}
        array = slots.get((name, shape))
        if array is not None:  # handed out before, so checked before
            return array
        t = self._input_info.get(name)
        if t is None:
            raise ShapeError(f"no input {name!r}; the model's inputs are {self.input_names}")
        shape = tuple(int(d) for d in shape)
        self._check_shape(t, shape)
        if len(slots) >= MAX_INPUT_SHAPES:
            old = slots.pop(next(iter(slots)))
            self._bound.pop(old.__array_interface__["data"][0], None)
        try:
            var = self._F.placeholder(list(shape), self._formats[name])
            var.write(np.zeros(shape, np.float32))
            view = var.read()
        except (SystemError, RuntimeError, ValueError, TypeError) as exc:
            raise BackendError(f"MNN could not make a {shape} input for {self.path.name}: {exc}") from None
        if view.dtype != np.float32 or tuple(view.shape) != shape or not view.flags.c_contiguous:
            raise BackendError(f"MNN gave a {view.dtype} {view.shape} buffer for a float32 {shape} input")
        memory = _HostMemory(var, view)
        array = np.asarray(memory)
        slots[(name, shape)] = array
        self._bound[array.__array_interface__["data"][0]] = weakref.ref(memory)
        return array

    def _placeholder_for(self, x: np.ndarray):
        """The placeholder whose host memory `x` is (all of it, as handed out), else None."""
        ref = self._bound.get(x.__array_interface__["data"][0])
        memory = ref() if ref is not None else None
        if memory is None or x.dtype != np.float32 or not x.flags.c_contiguous \
                or tuple(x.shape) != memory.__array_interface__["shape"]:
            return None
        return memory.var

    def run(self, feeds: Mapping[str, np.ndarray], outputs: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        F = self._F
        wanted = None if outputs is None else {t.name for t in self.wanted_outputs(outputs)}
        args = []
        for t in self._inputs:
            if t.name not in feeds:
                raise ShapeError(f"no feed for input {t.name!r}; the model's inputs are {self.input_names}")
            x = feeds[t.name]
            var = self._placeholder_for(x) if isinstance(x, np.ndarray) else None
            if var is None:  # not one of ours: into this thread's placeholder (one copy)
                x = np.ascontiguousarray(x, dtype=np.float32)
                self._check_shape(t, x.shape)
                buffer = self.input_buffer(t.name, x.shape)
                np.copyto(buffer, x)
                var = self._placeholder_for(buffer)
            args.append(var)
        with self._lock:  # one forward pass (and the lazy reads that finish it) at a time per module
            try:
                outs = self._module.forward(args)
                if not isinstance(outs, (list, tuple)):
                    outs = [outs]
                if len(outs) != len(self._outputs) or any(v is None for v in outs):
                    # MNN logs a failed execution ("code=2 in onForward") and returns no outputs
                    raise BackendError(
                        f"MNN failed to run {self.path.name}: it returned {len(outs)} of the model's "
                        f"{len(self._outputs)} outputs (see MNN's log); the file may be corrupt")
                result = {}
                for t, var in zip(self._outputs, outs):
                    if wanted is not None and t.name not in wanted:
                        continue  # computed by the forward pass, but not converted and copied
                    if var.data_format == F.NC4HW4:
                        var = F.convert(var, F.NCHW)
                    shape = tuple(var.shape)
                    if 0 in shape:  # MNN cannot read an empty tensor ("readMap meet a error")
                        result[t.name] = np.zeros(shape, np.float32)
                        continue
                    result[t.name] = np.array(var.read(), dtype=np.float32, copy=True)
            except (SystemError, RuntimeError, ValueError, TypeError) as exc:
                raise BackendError(f"MNN failed to run {self.path.name}: {exc}") from None
        return result
