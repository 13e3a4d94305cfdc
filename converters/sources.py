"""What a conversion starts from, recognised once: a file, a module, or a registry name.

torch    an nn.Module (API), a TorchScript file (.pt/.pth/.ts/.torchscript), or a model-zoo
         registry name (optionally with a trained checkpoint)
onnx     an .onnx file (metadata already embedded in it is picked up)
tflite   a .tflite file
mxnet    an MXNet `<name>-symbol.json` with its `.params`; handed to converters.mxnet
"""
from __future__ import annotations

import logging
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgepose.errors import ConversionError, MetadataError, ModelFileError
from edgepose.spec import ModelSpec

from .metadata import sha256_of

log = logging.getLogger(__name__)

TORCHSCRIPT_SUFFIXES = (".pt", ".pth", ".ts", ".torchscript", ".jit")
SUPPORTED = ".onnx, .tflite, TorchScript (.pt/.pth/.ts/.torchscript), MXNet <name>-symbol.json, " \
            "an nn.Module (Python API) or a model-zoo name"


@dataclass
class Source:
    """A recognised conversion source."""

    kind: str  # torch | onnx | tflite | mxnet
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


def _is_module(obj: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.nn.Module)


def resolve_source(source: Any, *, weights: str | Path | None = None, params: str | Path | None = None,
                   name: str | None = None) -> Source:
    """Recognise `source` and load what the pipeline needs from it."""
    if _is_module(source):
        prov: dict[str, Any] = {}
        if weights is not None:
            from .checkpoint import load_weights

            prov = _weights_provenance(weights, load_weights(source, weights))
        stem = name or type(source).__name__.lower()
        return Source("torch", f"nn.Module {type(source).__name__}", stem, module=source,
                      weights=Path(weights) if weights is not None else None,
                      provenance={"source": type(source).__name__, **prov})
    if not isinstance(source, (str, Path)):
        raise ModelFileError(f"cannot convert a {type(source).__name__}; expected {SUPPORTED}")
    text = str(source)
    path = Path(text)
    lower = path.name.lower()
    if path.is_dir():
        raise ModelFileError(f"{path} is a directory; pass a model file ({SUPPORTED})")
    if path.is_file():
        if weights is not None and not lower.endswith(TORCHSCRIPT_SUFFIXES):
            raise ConversionError(f"--weights applies to model-zoo names only, not to {path.name}")
        if lower.endswith(".onnx"):
            return _onnx_source(path, name)
        if lower.endswith(".tflite"):
            return Source("tflite", path.name, name or path.stem, path=path, provenance=_file_provenance(path))
        if lower.endswith(".json"):
            return _mxnet_source(path, params, name)
        if lower.endswith(TORCHSCRIPT_SUFFIXES):
            return _torchscript_source(path, weights, name)
        raise ModelFileError(f"{path.name}: unsupported model file type {path.suffix!r}; supported: {SUPPORTED}")
    if "/" in text or "\\" in text or "." in path.name:
        raise ModelFileError(f"model file not found: {path} (check the path)")
    return _registry_source(text, weights, name)


def _file_provenance(path: Path) -> dict[str, Any]:
    return {"source": path.name, "source_sha256": sha256_of(path)}


def _weights_provenance(weights: str | Path, info: dict[str, Any]) -> dict[str, Any]:
    wp = Path(weights)
    prov = {"weights": wp.name, "weights_sha256": sha256_of(wp)}
    if info.get("renamed") and info["renamed"] != "as is":
        prov["weights_keys"] = info["renamed"]
    return prov


def _onnx_source(path: Path, name: str | None) -> Source:
    from .metadata import spec_from_onnx
    from .stages import load_onnx

    model = load_onnx(path)
    spec = spec_from_onnx(model, source=f"metadata embedded in {path.name}")
    prov = _file_provenance(path)
    if spec is not None:  # keep the original origin of a re-converted artifact
        prior = dict(spec.provenance)
        for key in ("source", "source_sha256", "weights", "weights_sha256"):
            if key in prior:
                prov.setdefault(f"origin_{key}", prior[key])
        spec = spec.replace(provenance={})
    stem = name or path.stem
    return Source("onnx", path.name, stem, path=path, spec=spec, provenance=prov)


def _torchscript_source(path: Path, weights, name: str | None) -> Source:
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


def _mxnet_source(path: Path, params, name: str | None) -> Source:
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
            f"up ({exc}); pass a model file ({SUPPORTED})") from None
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
