"""The one checkpoint loader: a trained state dict into a model, strictly, explaining every key that does not fit.

Used by `create_model(pretrained_weights=...)` and by the converters (`--weights`), so a bad
file gives the same message on both paths. It lives in models/ because the converters may
import the models, never the reverse.

Checkpoints come as a bare state dict or wrapped ({'state_dict': ...}, {'model': ...}) and
with key prefixes from how they were trained (DataParallel's `module.`, torch.compile's
`_orig_mod.`, mmpose-style `backbone.`). The prefix handling tries a few rewrites and keeps
the one that matches the model best; whatever still does not match is listed, never skipped.
A checkpoint saved after `switch_to_deploy()` (folded shuffles, re-parameterised RepVGG
blocks) puts the model in its deploy form before loading.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping

from edgepose.errors import ModelFileError

from .backbones.shufflenetv2 import FOLDED_MARK

log = logging.getLogger(__name__)

WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "net", "module", "ema", "model_ema")
STRIP_PREFIXES = ("module.", "_orig_mod.", "model.", "backbone.", "net.")
# BatchNorm's step counter does not affect inference; old checkpoints lack it.
IGNORABLE_SUFFIXES = ("num_batches_tracked",)
# Keys only a model in deploy form has (ShuffleNetV2 folded shuffles, EfficientRep's fused convs).
DEPLOY_MARKS = (FOLDED_MARK, ".rbr_reparam.")


class CheckpointMismatchError(ModelFileError):
    """A checkpoint's keys or shapes do not match the model; lists what differs."""

    missing: list[str]
    unexpected: list[str]
    mismatched: list[str]

    def __init__(self, message: str, *, missing: list[str], unexpected: list[str],
                 mismatched: list[str]):
        super().__init__(message)
        self.missing, self.unexpected, self.mismatched = missing, unexpected, mismatched


def read_state_dict(path: str | Path) -> dict[str, Any]:
    """The tensor dict inside a checkpoint file (unwrapping the common wrappers)."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"checkpoint not found: {path}")
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - pickle/zip errors come in many types
        text = _load_failure(exc)
        if "Unsupported global" in str(exc):
            raise ModelFileError(
                f"{path.name} holds pickled Python objects besides tensors, which edgepose does not "
                f"unpickle ({text}); re-save just the weights: torch.save(ckpt['state_dict'], 'weights.pth')"
            ) from None
        raise ModelFileError(f"{path.name} is not a PyTorch checkpoint torch.load can read: {text}") from None
    return unwrap_state_dict(obj, source=path.name)


def _load_failure(exc: Exception) -> str:
    """torch.load's reason in one line: the unpickler's own words, not PyTorch's weights_only preamble
    (every failure under weights_only=True starts with it, a junk file included)."""
    text = str(exc)
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1]
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[0][:200] if lines else type(exc).__name__


def unwrap_state_dict(obj: Any, *, source: str = "checkpoint") -> dict[str, Any]:
    import torch

    for _ in range(3):  # {'state_dict': {...}} and the rarer double wrapping
        if isinstance(obj, Mapping) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            return dict(obj)
        if isinstance(obj, Mapping):
            inner = next((obj[k] for k in WRAPPER_KEYS if k in obj and isinstance(obj[k], Mapping)), None)
            if inner is None and hasattr(obj, "state_dict"):
                inner = obj.state_dict()
            if inner is None:
                break
            obj = inner
        elif hasattr(obj, "state_dict"):
            obj = obj.state_dict()
        else:
            break
    if isinstance(obj, Mapping):
        tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
        if tensors:
            return tensors
    keys = sorted(obj)[:8] if isinstance(obj, Mapping) else type(obj).__name__
    raise ModelFileError(
        f"{source} holds no state dict (found {keys}); expected a dict of tensors or one wrapped "
        f"under one of {', '.join(WRAPPER_KEYS)}")


def match_keys(state: Mapping[str, Any], model_keys: set[str]) -> tuple[dict[str, Any], str]:
    """Rename checkpoint keys to the model's by the prefix rewrite that matches the most keys."""
    candidates: list[tuple[str, dict[str, Any]]] = [("as is", dict(state))]
    current = dict(state)
    for _ in range(2):  # e.g. module.backbone.x -> x
        for prefix in STRIP_PREFIXES:
            if current and all(k.startswith(prefix) for k in current):
                current = {k[len(prefix):]: v for k, v in current.items()}
                candidates.append((f"stripped {prefix!r}", dict(current)))
                break
    for prefix in STRIP_PREFIXES:
        # strip only from the keys carrying the prefix (backbone.* + head.* checkpoints)
        partial = {(k[len(prefix):] if k.startswith(prefix) else k): v for k, v in state.items()}
        if len(partial) == len(state):
            candidates.append((f"stripped {prefix!r} where present", partial))
        # the model itself may carry a prefix the checkpoint lacks
        if model_keys and all(k.startswith(prefix) for k in model_keys):
            candidates.append((f"added {prefix!r}", {prefix + k: v for k, v in state.items()}))
    how, best = max(candidates, key=lambda c: len(model_keys & set(c[1])))
    return best, how


def _to_deploy_form_if_saved_so(model, state: Mapping[str, Any]) -> bool:
    """Fold/re-parameterise `model` first when the checkpoint was saved from a deployed model."""
    if not callable(getattr(model, "switch_to_deploy", None)):
        return False
    if not any(mark in k or k.endswith(mark) for k in state for mark in DEPLOY_MARKS):
        return False
    model.eval()
    model.switch_to_deploy()
    return True


def load_weights(model, path: str | Path, *, name: str | None = None) -> dict[str, Any]:
    """Load `path` into `model` strictly; returns {'renamed': how, 'ignored': [...], 'deploy_form': bool}.

    name   the model's name, for the error message.
    """
    import torch

    state = read_state_dict(path)
    deploy_form = _to_deploy_form_if_saved_so(model, state)
    target = model.state_dict()
    renamed, how = match_keys(state, set(target))
    missing = sorted(k for k in target if k not in renamed)
    unexpected = sorted(k for k in renamed if k not in target)
    ignored = [k for k in missing if k.endswith(IGNORABLE_SUFFIXES)]
    missing = [k for k in missing if k not in ignored]
    mismatched = sorted(
        f"{k}: checkpoint {tuple(renamed[k].shape)} vs model {tuple(target[k].shape)}"
        for k in target if k in renamed and tuple(renamed[k].shape) != tuple(target[k].shape))
    if missing or unexpected or mismatched:
        parts = []
        for label, items in (("missing from the checkpoint", missing), ("unexpected in the checkpoint", unexpected),
                             ("with a different shape", mismatched)):
            if items:
                shown = ", ".join(items[:10]) + (f", ... ({len(items) - 10} more)" if len(items) > 10 else "")
                parts.append(f"{len(items)} key(s) {label}: {shown}")
        which = f"the model {name!r}" if name else "the model"
        raise CheckpointMismatchError(
            f"{Path(path).name} does not fit {which} (keys {how}; {len(target)} in the model, "
            f"{len(state)} in the checkpoint): " + "; ".join(parts)
            + ". Check that the checkpoint belongs to this model and configuration (e.g. num_keypoints)",
            missing=missing, unexpected=unexpected, mismatched=mismatched)
    with torch.no_grad():
        for k in ignored:
            renamed[k] = target[k]
        model.load_state_dict(renamed, strict=True)
    if how != "as is":
        log.info("checkpoint keys %s to match the model", how)
    return {"renamed": how, "ignored": ignored, "deploy_form": deploy_form}
