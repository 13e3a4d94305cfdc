"""The model card on its way through the converters: where it comes from, what is added, where it goes.

Sources, in order of precedence: an explicit ModelSpec (API) or card file (--meta), a preset
for a known external model, the registry entry of a zoo model, and metadata already embedded
in an ONNX source. CLI flags override single fields on top. Every artifact gets its own copy
with provenance: the original source and its sha256, the stage, the precision, tool versions.
"""
from __future__ import annotations

import importlib.metadata
import json
from pathlib import Path
from typing import Any, Mapping

from edgepose.files import sha256_file as sha256_of  # noqa: F401 - re-exported for the converters
from edgepose.errors import MetadataError
from edgepose.spec import HEAD_TYPES, REQUIRED_FIELDS, ModelSpec

METADATA_KEY = "edgepose"  # ONNX metadata_props key; ONNX Runtime shows it in custom_metadata_map

# Distribution names of the tools whose versions go into provenance.
_TOOLS = {"torch": "torch", "onnx": "onnx", "onnxsim": "onnxsim", "MNN": "MNN",
          "onnxruntime": "onnxruntime", "ai-edge-litert": "ai-edge-litert"}


def tool_versions(*names: str) -> dict[str, str]:
    """Installed versions of the named tools (without importing them)."""
    out = {}
    for name in names or tuple(_TOOLS):
        try:
            out[name] = importlib.metadata.version(_TOOLS.get(name, name))
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def load_card(path: str | Path) -> ModelSpec:
    """A ModelSpec from a JSON model card file (the format ModelSpec.to_json writes)."""
    path = Path(path)
    if not path.is_file():
        raise MetadataError(f"model card not found: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MetadataError(f"cannot read model card {path}: {exc}") from None
    return ModelSpec.from_json(text, source=str(path))


def spec_for_conversion(*, spec: ModelSpec | Mapping[str, Any] | str | Path | None = None,
                 preset: str | None = None, fallback: ModelSpec | None = None,
                 overrides: Mapping[str, Any] | None = None) -> ModelSpec | None:
    """The one spec a conversion uses: explicit > preset > fallback (registry/embedded), then overrides.

    `spec` may be a ModelSpec, a dict, or a path to a card JSON. Overrides alone may build a
    spec from scratch if they hold the required fields; otherwise the error names the missing ones.
    """
    if spec is not None and preset is not None:
        raise MetadataError("pass either a model card (spec/--meta) or a preset, not both")
    base: ModelSpec | None
    if isinstance(spec, ModelSpec):
        base = spec
    elif isinstance(spec, Mapping):
        base = ModelSpec.from_dict(spec, source="spec")
    elif isinstance(spec, (str, Path)):
        base = load_card(spec)
    elif spec is None:
        if preset is not None:
            from edgepose.presets import get_preset

            base = get_preset(preset)
        else:
            base = fallback
    else:
        raise MetadataError(f"spec must be a ModelSpec, a dict or a card path, got {type(spec).__name__}")
    changes = {k: v for k, v in (overrides or {}).items() if v is not None}
    if not changes:
        return base
    if base is None:
        missing = [f for f in REQUIRED_FIELDS if f not in changes]
        if missing:
            flags = ", ".join("--" + f.replace("_", "-") for f in missing)
            raise MetadataError(
                f"the model has no metadata and the flags given do not make a complete card: "
                f"missing {flags} (head is one of {', '.join(HEAD_TYPES)}); or pass --meta card.json / --preset")
        try:
            return ModelSpec(**changes)
        except TypeError as exc:
            raise MetadataError(f"invalid metadata flags: {exc}") from None
    try:
        return base.replace(**changes)
    except TypeError as exc:
        raise MetadataError(f"invalid metadata override: {exc}") from None


def artifact_spec(spec: ModelSpec | None, **provenance: Any) -> ModelSpec | None:
    """The spec stored in one artifact: the conversion's spec plus that artifact's provenance."""
    if spec is None:
        return None
    clean = {k: v for k, v in provenance.items() if v is not None}
    return spec.with_provenance(**clean)


# --- ONNX ------------------------------------------------------------------------------
def embed_in_onnx(model, spec: ModelSpec | None) -> None:
    """Write spec.to_json() into the ModelProto's metadata_props (replacing an older entry)."""
    if spec is None:
        return
    keep = [p for p in model.metadata_props if p.key != METADATA_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(keep)
    entry = model.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, spec.to_json()


def spec_from_onnx(model, *, source: str = "ONNX metadata") -> ModelSpec | None:
    """The spec embedded in a ModelProto, None if it carries none."""
    for prop in model.metadata_props:
        if prop.key == METADATA_KEY:
            return ModelSpec.from_json(prop.value, source=source)
    return None


def spec_json(spec: ModelSpec | None) -> str | None:
    return spec.to_json() if spec is not None else None


def parse_spec_text(text: str | None, *, source: str) -> dict[str, Any] | None:
    """Embedded metadata as a dict for display; a non-edgepose string is returned as {'raw': text}."""
    if not text:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return {"raw": text}
    if isinstance(data, dict) and "edgepose_spec" in data:
        ModelSpec.from_dict(data, source=source)  # validate; raises MetadataError on a bad card
    return data if isinstance(data, dict) else {"raw": text}
