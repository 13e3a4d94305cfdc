"""What a conversion starts from: the source kinds, one entry each in `SOURCE_KINDS`.

torch    an nn.Module (API), a TorchScript file (.pt/.pth/.ts/.torchscript), or a model-zoo
         registry name (optionally with a trained checkpoint)
onnx     an .onnx file (metadata already embedded in it is picked up)
tflite   a .tflite file
mnn      an .mnn file (its embedded card is picked up): an FP16 copy and INT8 need no other format
mxnet    an MXNet `<name>-symbol.json` with its `.params`; handed to converters.mxnet

Why a table: a kind differs in how its file is recognised and loaded, which stages it plans, which
runtime runs it as the first parity reference, and what provenance it adds. Those four live in its
`SourceKind` entry, so adding a kind (a detector format, a video model) is one entry here; the
pipeline and the runtimes never branch on the kind.
"""
from __future__ import annotations

import json
import logging
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from edgepose.errors import ConversionError, MetadataError, ModelFileError
from edgepose.heads import HEADS
from edgepose.spec import ModelSpec

from . import plan as plans
from .metadata import sha256_of
from .options import ConvertOptions
from .runtimes import named_outputs, open_runner

log = logging.getLogger(__name__)

TORCHSCRIPT_SUFFIXES = (".pt", ".pth", ".ts", ".torchscript", ".jit")


@dataclass
class Source:
    """A recognised conversion source."""

    kind: str  # a key of SOURCE_KINDS
    label: str  # how the report names it
    stem: str  # artifact file-name stem
    path: Path | None = None
    module: Any = None
    spec: ModelSpec | None = None  # metadata the source brings (registry entry, embedded card)
    params: Path | None = None
    weights: Path | None = None
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def input_files(self) -> list[Path]:
        """Files the conversion must never overwrite."""
        return [p for p in (self.path, self.params, self.weights) if p]

    @property
    def target(self) -> Any:
        """What the source's runtime loads: the module (torch), else the file."""
        return self.module if self.module is not None else self.path


def _is_module(obj: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.nn.Module)


def resolve_source(source: Any, *, weights: str | Path | None = None, params: str | Path | None = None,
                   name: str | None = None) -> Source:
    """Recognise `source` (its kind from SOURCE_KINDS) and load what the pipeline needs from it."""
    if _is_module(source):
        return _module_source(source, weights, name)
    if not isinstance(source, (str, Path)):
        raise ModelFileError(f"cannot convert a {type(source).__name__}; expected {supported()}")
    text = str(source)
    path = Path(text)
    if path.is_dir():
        raise ModelFileError(f"{path} is a directory; pass a model file ({supported()})")
    if path.is_file():
        kind = kind_of_file(path)
        if weights is not None and not kind.takes_weights:
            raise ConversionError(f"--weights applies to model-zoo names only, not to {path.name}")
        return kind.resolve(path, weights=weights, params=params, name=name)
    if "/" in text or "\\" in text or "." in path.name:
        raise ModelFileError(f"model file not found: {path} (check the path)")
    return _registry_source(text, weights, name)


def kind_of_file(path: Path) -> "SourceKind":
    lower = path.name.lower()
    for kind in SOURCE_KINDS.values():
        if lower.endswith(kind.suffixes):
            return kind
    raise ModelFileError(f"{path.name}: unsupported model file type {path.suffix!r}; supported: {supported()}")


def supported() -> str:
    """The sources `convert` takes, for error messages."""
    return ", ".join(k.describe for k in SOURCE_KINDS.values()) + ", an nn.Module (Python API) or a model-zoo name"


def _module_source(module: Any, weights, name: str | None) -> Source:
    prov: dict[str, Any] = {}
    if weights is not None:
        from .checkpoint import load_weights

        prov = _weights_provenance(weights, load_weights(module, weights))
    stem = name or type(module).__name__.lower()
    return Source("torch", f"nn.Module {type(module).__name__}", stem, module=module,
                  weights=Path(weights) if weights is not None else None,
                  provenance={"source": type(module).__name__, **prov})


def _file_provenance(path: Path) -> dict[str, Any]:
    return {"source": path.name, "source_sha256": sha256_of(path)}


def _weights_provenance(weights: str | Path, info: dict[str, Any]) -> dict[str, Any]:
    wp = Path(weights)
    prov = {"weights": wp.name, "weights_sha256": sha256_of(wp)}
    if info.get("renamed") and info["renamed"] != "as is":
        prov["weights_keys"] = info["renamed"]
    return prov


def _onnx_source(path: Path, *, name: str | None, **_: Any) -> Source:
    from .metadata import spec_from_onnx
    from .stages import load_onnx

    model = load_onnx(path)
    spec = spec_from_onnx(model, source=f"metadata embedded in {path.name}")
    spec, prov = _embedded_card(spec, path)
    return Source("onnx", path.name, name or path.stem, path=path, spec=spec, provenance=prov)


def _embedded_card(spec: ModelSpec | None, path: Path) -> tuple[ModelSpec | None, dict[str, Any]]:
    """The card embedded in a re-converted artifact, without its provenance, and the file's provenance
    with the card's original origin kept (origin_source, origin_weights, ...)."""
    prov = _file_provenance(path)
    if spec is not None:
        for key in ("source", "source_sha256", "weights", "weights_sha256"):
            if key in spec.provenance:
                prov.setdefault(f"origin_{key}", spec.provenance[key])
        spec = spec.replace(provenance={})
    return spec, prov


def _torchscript_source(path: Path, *, weights, name: str | None, **_: Any) -> Source:
    import torch

    if weights is not None:
        raise ConversionError("--weights applies to model-zoo names; a TorchScript file carries its own weights")
    try:
        with warnings.catch_warnings():  # torch 2.13 deprecates TorchScript; loading still works
            warnings.filterwarnings("ignore", message=".*torch.jit.load.*deprecated", category=DeprecationWarning)
            module = torch.jit.load(str(path), map_location="cpu")
    except Exception as exc:  # noqa: BLE001 - torch raises RuntimeError/ValueError here
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise ModelFileError(
            f"{path.name} is not a TorchScript model ({first}). A state dict / checkpoint is converted "
            f"with its model-zoo name: edgepose convert <name> --weights {path.name}") from None
    return Source("torch", path.name, name or path.stem, path=path, module=module,
                  provenance=_file_provenance(path))


def _mxnet_source(path: Path, *, params, name: str | None, **_: Any) -> Source:
    if params is None:
        raise ConversionError(f"{path.name} looks like an MXNet symbol file; pass its weights with --params x-0000.params")
    params = Path(params)
    if not params.is_file():
        raise ModelFileError(f"MXNet params file not found: {params}")
    base = path.name[: -len("-symbol.json")] if path.name.endswith("-symbol.json") else path.stem
    stem = name or base
    prov = {**_file_provenance(path), "params": params.name, "params_sha256": sha256_of(params)}
    return Source("mxnet", path.name, stem, path=path, params=params, provenance=prov)


def _registry_source(model_name: str, weights, name: str | None) -> Source:
    try:
        from edgepose import models as zoo
        create_model, get_spec = zoo.create_model, zoo.get_spec
    except (ImportError, AttributeError) as exc:
        raise ModelFileError(
            f"{model_name!r} is not a file, and the model zoo (edgepose.models) is not available to look it "
            f"up ({exc}); pass a model file ({supported()})") from None
    try:
        spec = get_spec(model_name)
        module = create_model(model_name)
    except KeyError:
        raise MetadataError(f"unknown model {model_name!r}; see `edgepose.models.list_models()`") from None
    except ValueError as exc:  # e.g. a name that is not even a valid identifier
        raise MetadataError(f"cannot build model {model_name!r}: {exc}") from None
    prov: dict[str, Any] = {"source": f"edgepose.models:{model_name}"}
    if weights is not None:
        from .checkpoint import load_weights

        info = load_weights(module, weights)
        prov.update(_weights_provenance(weights, info))
    else:
        log.warning("converting %s with random initial weights (no --weights given)", model_name)
        prov["weights"] = "random-init"
    module.eval()
    if callable(getattr(module, "switch_to_deploy", None)):
        module.switch_to_deploy()  # fold re-parameterisable blocks after the weights are in
    return Source("torch", f"edgepose.models:{model_name}", name or model_name, module=module, spec=spec,
                  weights=Path(weights) if weights is not None else None, provenance=prov)


def _tflite_source(path: Path, *, name: str | None, **_: Any) -> Source:
    return Source("tflite", path.name, name or path.stem, path=path, provenance=_file_provenance(path))


def _mnn_source(path: Path, *, name: str | None, **_: Any) -> Source:
    """An .mnn file and the card in its bizCode (a re-converted artifact keeps its origin)."""
    from edgepose.mnn_file import read_mnn_file

    info, _data = read_mnn_file(path)  # ModelFileError on a file that is not a whole MNN model
    spec = None
    try:
        data = json.loads(info.metadata_text) if info.metadata_text else None
    except ValueError:
        data = None
    if isinstance(data, dict) and "edgepose_spec" in data:
        spec = ModelSpec.from_dict(data, source=f"metadata embedded in {path.name}")
    spec, prov = _embedded_card(spec, path)
    return Source("mnn", path.name, name or path.stem, path=path, spec=spec, provenance=prov)


# --- the torch reference: a module is probed for its outputs' names ---------------------------------
def _torch_reference(src: Source, spec: ModelSpec | None, opts: ConvertOptions):
    shape = _torch_input_shape(opts.input_shape, spec)
    input_name = spec.input_name if spec and spec.input_name else "input"
    names = _output_names(_probe_outputs(src.module, shape), spec)
    parity_shape = (2 if opts.dynamic_batch else shape[0], *shape[1:])
    return open_runner("torch", src.module, input_shapes={input_name: parity_shape}, output_names=names)


def _torch_input_shape(input_shape: tuple[int, ...] | None, spec: ModelSpec | None) -> tuple[int, ...]:
    if input_shape is None:
        if spec is None:
            raise ConversionError("a PyTorch model needs an input shape: input_shape=(1, 3, H, W) / --input-shape 1,3,H,W")
        return spec.input_shape()
    if len(input_shape) < 2 or any(d <= 0 for d in input_shape):
        raise ConversionError(f"input shape must be positive integers like 1,3,256,192, got {input_shape}")
    return input_shape


def _probe_outputs(module, shape: Sequence[int]) -> list[str | None]:
    """The names (dict keys, else None) of the module's outputs on a zero input."""
    import torch

    try:
        with torch.no_grad():
            out = module.eval()(torch.zeros(tuple(shape)))
    except Exception as exc:  # noqa: BLE001 - a user module can raise anything
        first = str(exc).strip().splitlines()[0][:240] if str(exc).strip() else type(exc).__name__
        raise ConversionError(f"the model failed on an input of shape {tuple(shape)}: {first}") from exc
    return [name for name, _ in named_outputs(out)]


def _output_names(probed: Sequence[str | None], spec: ModelSpec | None) -> list[str]:
    """ONNX output names: the module's dict keys, else the spec's tensor names (in the order the
    module returns them) if they fit, else the head's role name / output_<i>."""
    n = len(probed)
    if all(probed) and len(set(probed)) == n:
        return [str(p) for p in probed]
    if spec is not None and spec.outputs and len(spec.outputs) == n:
        return list(spec.outputs.values())
    if spec is not None and n == 1:
        return [HEADS[spec.head].primary_role]
    return ["output"] if n == 1 else [f"output_{i}" for i in range(n)]


# --- the table ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SourceKind:
    """What differs between source kinds.

    suffixes    lower-case file-name endings this kind reads.
    describe    how error messages list it among the supported sources.
    resolve     resolve(path, weights=, params=, name=) -> Source: load the file and its card.
    plan        plan(source, options) -> [Stage]: the stages from it to MNN (see converters.plan).
    runtime     the runtime that runs the source as the first parity reference (runtimes.RUNNERS
                key); None: no reference here (MXNet lives in another environment).
    reference   reference(source, spec, options) -> runner, when opening the file is not enough.
    provenance  provenance(options) -> extra fields every artifact's card records.
    takes_weights  whether a --weights checkpoint may come with a file of this kind.
    """

    suffixes: tuple[str, ...]
    describe: str
    resolve: Callable[..., Source]
    plan: Callable[[Source, ConvertOptions], list]
    runtime: str | None
    reference: Callable[[Source, ModelSpec | None, ConvertOptions], Any] | None = None
    provenance: Callable[[ConvertOptions], Mapping[str, Any]] = lambda opts: {}
    takes_weights: bool = False

    def open_reference(self, src: Source, spec: ModelSpec | None, opts: ConvertOptions):
        """The source's runner (the first parity reference), or None if it cannot run here."""
        if self.reference is not None:
            return self.reference(src, spec, opts)
        if self.runtime is None:
            return None
        return open_runner(self.runtime, src.path, threads=opts.threads)


SOURCE_KINDS: dict[str, SourceKind] = {
    "onnx": SourceKind((".onnx",), ".onnx", _onnx_source, plans.plan_onnx, "onnx"),
    "tflite": SourceKind((".tflite",), ".tflite", _tflite_source, plans.plan_tflite, "tflite"),
    "mnn": SourceKind((".mnn",), ".mnn", _mnn_source, plans.plan_mnn, "mnn"),
    "torch": SourceKind(TORCHSCRIPT_SUFFIXES, "TorchScript (.pt/.pth/.ts/.torchscript)", _torchscript_source,
                        plans.plan_torch, "torch", reference=_torch_reference,
                        provenance=lambda opts: {"opset": opts.opset}, takes_weights=True),
    "mxnet": SourceKind((".json",), "MXNet <name>-symbol.json", _mxnet_source, plans.plan_mxnet, None),
}
