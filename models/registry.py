"""The model registry: `@register_model` next to each model's builder (timm style), and lookups.

An entry holds everything needed to build, export and convert a model without further
configuration: input size, head type, ONNX input/output names and the `ModelSpec` metadata.
Published figures a model is compared with live with the benchmark tables
(edgepose.benchmarks.table_a), not here.
"""
from __future__ import annotations

import difflib
import fnmatch
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from edgepose.errors import MetadataError
from edgepose.spec import HEAD_TYPES, ModelSpec

from .checkpoint import load_weights
from .layers import calibrate_batchnorm
from .keypoints import IMAGENET_MEAN, IMAGENET_STD, MPII_FLIP_PAIRS, MPII_KEYPOINTS, MPII_SKELETON

INPUT_NAME = "input"

_REGISTRY: dict[str, "ModelEntry"] = {}


@dataclass(frozen=True)
class ModelEntry:
    """One registered model: how to build it and what it looks like from outside.

    input_size     (width, height) of the network input.
    head           ModelSpec head type ("regression", "integral", "simdr", "heatmap").
    output_names   ONNX output names, in the order the model returns them; each is also its role.
    """

    name: str
    builder: Callable[..., Any] = field(repr=False)
    input_size: tuple[int, int]
    head: str
    output_names: tuple[str, ...]
    summary: str = ""
    input_name: str = INPUT_NAME

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
                   output_names: tuple[str, ...], summary: str = "") -> Callable:
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
            summary=summary)
        return builder

    return decorate


def list_models(pattern: str | None = None) -> list[str]:
    """Registered names in registration order, optionally filtered by a glob."""
    names = list(_REGISTRY)
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

    pretrained_weights  a PyTorch checkpoint, loaded strictly by edgepose.models.checkpoint (the
                        loader the converters use too): wrapped or prefixed state dicts, and
                        one saved after `switch_to_deploy()`, load as well.
    deploy              put the model in eval mode and fold re-parameterisable blocks, ready
                        for export. Without it the model is in training mode, as nn.Modules are.
    options             head/backbone options of that builder (see its docstring).
    """
    entry = get_entry(name)
    if not isinstance(num_keypoints, int) or num_keypoints <= 0:
        raise ValueError(f"num_keypoints must be a positive integer, got {num_keypoints!r}")
    model = entry.builder(num_keypoints=num_keypoints, input_size=entry.input_size, **options)
    if pretrained_weights is not None:
        load_weights(model, Path(pretrained_weights), name=name)
    else:
        w, h = entry.input_size
        calibrate_batchnorm(model, (2, 3, h, w))
    if deploy:
        model.eval()
        model.switch_to_deploy()
    return model
