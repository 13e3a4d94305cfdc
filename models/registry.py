"""The model registry: `@register_model` next to each model's builder (timm style), and lookups.

An entry holds everything needed to build, export, convert and benchmark a model without
further configuration: input size, head type, ONNX input/output names, the `ModelSpec`
metadata, and the published latency of the matching row of table A (shared/seed_figures.md).
"""
from __future__ import annotations

import difflib
import fnmatch
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from edgepose.errors import MetadataError, ModelFileError
from edgepose.spec import HEAD_TYPES, ModelSpec

from .backbones.shufflenetv2 import FOLDED_MARK
from .layers import calibrate_batchnorm
from .keypoints import IMAGENET_MEAN, IMAGENET_STD, MPII_FLIP_PAIRS, MPII_KEYPOINTS, MPII_SKELETON

log = logging.getLogger(__name__)

INPUT_NAME = "input"
# Where the published figures come from (seed_figures.md, table A).
PUBLISHED_SETUP = ("MNN, FP16-converted model, 1 thread, Intel i5-12600KF; "
                   "5 repeats of 100 predict calls on one image, ms per call")

# Row order of table A: list_models() lists its models in this order, then the others.
TABLE_A_ROWS = ("deeppose", "heatmap", "deeppose_x2", "ipr", "dsnt_deconv", "simdr", "simdr_norm",
                "simdr_320_1024d", "simdr_320 (final)", "efficientrep_n_320", "tokenpose_direct",
                "tokenpose_deconv4", "tokenpose_deconv3")

_REGISTRY: dict[str, "ModelEntry"] = {}


@dataclass(frozen=True)
class ModelEntry:
    """One registered model: how to build it and what it looks like from outside.

    input_size     (width, height) of the network input.
    head           ModelSpec head type ("regression", "integral", "simdr", "heatmap").
    output_names   ONNX output names, in the order the model returns them; each is also its role.
    table_id       the row of table A this model reproduces (None if it is not from the table).
    published_ms   that row's five published timings (PUBLISHED_SETUP), or None.
    """

    name: str
    builder: Callable[..., Any] = field(repr=False)
    input_size: tuple[int, int]
    head: str
    output_names: tuple[str, ...]
    summary: str = ""
    table_id: str | None = None
    published_ms: tuple[float, ...] | None = None
    input_name: str = INPUT_NAME

    @property
    def published_median_ms(self) -> float | None:
        if not self.published_ms:
            return None
        vals = sorted(self.published_ms)
        mid = len(vals) // 2
        return vals[mid] if len(vals) % 2 else (vals[mid - 1] + vals[mid]) / 2

    @property
    def outputs(self) -> dict[str, str]:
        """role -> ONNX output name (the same strings here)."""
        return {n: n for n in self.output_names}

    def spec(self, *, num_keypoints: int = 16) -> ModelSpec:
        """The ModelSpec the converters embed in this model's artifacts.

        With the 16 MPII keypoints it names them and carries the MPII skeleton and flip
        pairs; any other count has no known names, so those three are left empty.
        """
        mpii = num_keypoints == len(MPII_KEYPOINTS)
        return ModelSpec(
            name=self.name,
            input_size=self.input_size,
            head=self.head,
            num_keypoints=num_keypoints,
            layout="NCHW",
            color="RGB",
            mean=IMAGENET_MEAN,
            std=IMAGENET_STD,
            input_name=self.input_name,
            outputs=self.outputs,
            keypoint_names=MPII_KEYPOINTS if mpii else (),
            skeleton=MPII_SKELETON if mpii else (),
            flip_pairs=MPII_FLIP_PAIRS if mpii else (),
        )


def register_model(name: str | None = None, *, input_size: int | tuple[int, int], head: str,
                   output_names: tuple[str, ...], summary: str = "", table_id: str | None = None,
                   published_ms: tuple[float, ...] | None = None) -> Callable:
    """Decorator: register `builder(*, num_keypoints, input_size, **options) -> PoseModel`."""
    if head not in HEAD_TYPES:
        raise ValueError(f"head {head!r} is not one of {HEAD_TYPES}")
    size = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)

    def decorate(builder: Callable) -> Callable:
        key = name or builder.__name__
        if key in _REGISTRY:
            raise ValueError(f"model {key!r} is registered twice ({_REGISTRY[key].builder.__module__} "
                             f"and {builder.__module__})")
        _REGISTRY[key] = ModelEntry(
            name=key, builder=builder, input_size=size, head=head, output_names=tuple(output_names),
            summary=summary, table_id=table_id,
            published_ms=tuple(published_ms) if published_ms else None)
        return builder

    return decorate


def list_models(pattern: str | None = None, *, published_only: bool = False) -> list[str]:
    """Registered names (table-A rows in table order, then the rest in registration order),
    optionally filtered by a glob and to the models with published figures."""
    def rank(item: tuple[int, "ModelEntry"]) -> tuple[int, int]:
        i, e = item
        return (TABLE_A_ROWS.index(e.table_id), 0) if e.table_id in TABLE_A_ROWS else (len(TABLE_A_ROWS), i)

    ordered = [e for _, e in sorted(enumerate(_REGISTRY.values()), key=rank)]
    names = [e.name for e in ordered if not published_only or e.published_ms]
    return [n for n in names if fnmatch.fnmatchcase(n, pattern)] if pattern else names


def get_entry(name: str) -> ModelEntry:
    """The registry entry of `name`; MetadataError (listing valid names) if there is none."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        close = difflib.get_close_matches(str(name), list(_REGISTRY), n=3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise MetadataError(
            f"unknown model {name!r}.{hint} Registered models: {', '.join(_REGISTRY)} "
            "(see edgepose.models.list_models())") from None


def get_spec(name: str, *, num_keypoints: int = 16) -> ModelSpec:
    """The ModelSpec of a registered model (see ModelEntry.spec)."""
    return get_entry(name).spec(num_keypoints=num_keypoints)


def create_model(name: str, *, num_keypoints: int = 16, pretrained_weights: str | Path | None = None,
                 deploy: bool = False, **options: Any):
    """Build a registered model (random init unless `pretrained_weights` is given).

    A random-init model gets its BN statistics from one pass of noise (layers.calibrate_batchnorm)
    so that, untrained, its outputs still depend on its input.

    pretrained_weights  a PyTorch state dict file (optionally under a "state_dict" key),
                        loaded strictly; one saved after `switch_to_deploy()` loads too.
    deploy              put the model in eval mode and fold re-parameterisable blocks, ready
                        for export. Without it the model is in training mode, as nn.Modules are.
    options             head/backbone options of that builder (see its docstring).
    """
    entry = get_entry(name)
    if not isinstance(num_keypoints, int) or num_keypoints <= 0:
        raise ValueError(f"num_keypoints must be a positive integer, got {num_keypoints!r}")
    model = entry.builder(num_keypoints=num_keypoints, input_size=entry.input_size, **options)
    if pretrained_weights is not None:
        _load_weights(model, Path(pretrained_weights), name)
    else:
        w, h = entry.input_size
        calibrate_batchnorm(model, (2, 3, h, w))
    if deploy:
        model.eval()
        model.switch_to_deploy()
    return model


def _load_weights(model, path: Path, name: str) -> None:
    import torch

    if not path.is_file():
        raise ModelFileError(f"weights file not found: {path} (pretrained_weights of {name!r})")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file
        raise ModelFileError(f"{path} is not a PyTorch state dict torch.load can read ({exc})") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ModelFileError(f"{path} holds a {type(state).__name__}, not a state dict")
    if any(".rbr_reparam." in k or k.endswith(FOLDED_MARK) for k in state):
        model.eval()
        model.switch_to_deploy()  # the weights were saved from a re-parameterised / folded model
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        detail = " ".join(str(exc).split())
        raise ModelFileError(
            f"{path} does not fit model {name!r} (check num_keypoints and the model name): "
            f"{detail[:600]}{' ...' if len(detail) > 600 else ''}") from None
    log.info("loaded weights for %s from %s", name, path)
