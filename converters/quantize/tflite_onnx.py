"""TFLite -> ONNX, so ONNX Runtime can quantise TFLite models (MediaPipe BlazePose, hands).

MNN cannot export ONNX (its converter writes MNN only), and tf2onnx needs TensorFlow, so this
uses `tflite2onnx` (pure Python, reads the flatbuffer with the `tflite` package). It turns
the NHWC graph into an NCHW one: the ONNX model's input is NCHW and its spec says so.
One fix is applied: tflite2onnx rewrites a PAD's paddings tensor in place, so a paddings
constant shared by several PAD ops (BlazePose) was rewritten twice and crashed.
The result is checked against the TFLite model run by LiteRT on a real crop and a noise input.
"""
from __future__ import annotations

import contextlib
import io
import logging
from pathlib import Path

import numpy as np

from edgepose.errors import ConversionError, ParityError
from edgepose.spec import ModelSpec

from ..metadata import embed_in_onnx
from ..stages import atomic_path

log = logging.getLogger(__name__)

MAX_REL_ERROR = 1e-3  # of each output's range; measured <= 5e-4 on the MediaPipe models


def _patch_padding() -> None:
    from tflite2onnx.op import padding

    if getattr(padding.Padding.transform, "_edgepose_patched", False):
        return
    original = padding.Padding.transform

    def transform(self):
        if len(self.inputs[1].shape) == 1:  # a shared paddings constant another PAD already rewrote
            return None
        return original(self)

    transform._edgepose_patched = True  # type: ignore[attr-defined]
    padding.Padding.transform = transform


def tflite_to_onnx(src: Path, dst: Path, spec: ModelSpec | None, *, probe: np.ndarray | None = None) -> dict:
    """Convert `src` to `dst` (NCHW input), embed `spec` with layout NCHW, check against LiteRT."""
    try:
        import tflite2onnx
    except ImportError:
        raise ConversionError(
            "INT8 with ONNX Runtime of a TFLite model needs an ONNX copy, made with tflite2onnx: "
            "pip install tflite2onnx==0.4.1 tflite==2.18.0 (or use --engine mnn)") from None
    import onnx

    _patch_padding()
    with atomic_path(dst) as part:
        part.unlink()
        chatter = io.StringIO()
        tool_log = logging.getLogger("tflite2onnx")
        level = tool_log.level
        tool_log.setLevel(logging.ERROR)  # it warns once per float16 weight
        try:
            with contextlib.redirect_stdout(chatter), contextlib.redirect_stderr(chatter):
                tflite2onnx.convert(str(src), str(part))
        except Exception as exc:  # noqa: BLE001 - tflite2onnx asserts on unsupported ops
            raise ConversionError(f"tflite2onnx could not convert {src.name}: {type(exc).__name__}: {exc}") from None
        finally:
            tool_log.setLevel(level)
        model = onnx.load(str(part))
        if spec is not None:
            embed_in_onnx(model, onnx_spec(spec, src))
        onnx.save(model, str(part))
        worst = check_against_tflite(src, part, probe)
    return {"tool": "tflite2onnx", "max_rel_error": worst}


def onnx_spec(spec: ModelSpec, src: Path) -> ModelSpec:
    """The card of the ONNX copy: NCHW, with the TFLite file it came from."""
    from ..metadata import sha256_of, tool_versions

    return spec.replace(layout="NCHW").with_provenance(
        stage="tflite->onnx", precision="fp32", parent=src.name, parent_sha256=sha256_of(src),
        tools=tool_versions("onnx", "tflite2onnx"))


def reusable(onnx_path: Path, src: Path) -> bool:
    """True if `onnx_path` is this module's ONNX copy of exactly `src` (same sha256)."""
    import onnx

    from ..metadata import sha256_of, spec_from_onnx

    try:
        spec = spec_from_onnx(onnx.load(str(onnx_path), load_external_data=False))
    except Exception:  # noqa: BLE001 - unreadable or foreign file: not reusable
        return False
    return bool(spec and spec.provenance.get("stage") == "tflite->onnx"
                and spec.provenance.get("parent_sha256") == sha256_of(src))


def check_against_tflite(tflite: Path, onnx_path: Path, probe: np.ndarray | None) -> float:
    """Largest error relative to each output's range, over a probe (NHWC) and a noise input."""
    import onnxruntime as ort

    from edgepose.backends import open_backend

    lite = open_backend(tflite, "litert", threads=1)
    detail = lite.inputs[0]
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    inputs = [np.random.RandomState(0).rand(*detail.shape).astype(np.float32)]
    if probe is not None:
        inputs.append(np.ascontiguousarray(probe[:1], np.float32))
    worst = 0.0
    for x in inputs:
        ref = lite.run({detail.name: x})
        got = dict(zip([o.name for o in session.get_outputs()], session.run(None, {name: x.transpose(0, 3, 1, 2)})))
        for key, r in ref.items():
            if key not in got:
                raise ConversionError(f"tflite2onnx lost output {key!r} of {tflite.name}")
            g = got[key]
            if g.ndim == 4:
                g = g.transpose(0, 2, 3, 1)
            g = g.reshape(r.shape)
            scale = max(float(np.abs(r).max()), 1e-6)
            worst = max(worst, float(np.abs(g - r).max()) / scale)
    if worst > MAX_REL_ERROR:
        raise ParityError(f"the ONNX copy of {tflite.name} differs from the TFLite model by {worst:.2e} "
                          f"of an output's range (limit {MAX_REL_ERROR:.0e}); ONNX Runtime INT8 is not possible")
    return worst
