"""PyTorch definitions of the lightweight pose models edgepose benchmarks, and their registry.

    from edgepose.models import list_models, create_model, get_spec, get_entry
    model = create_model("simdr_320", deploy=True)      # eval mode, re-parameterised
    spec = get_spec("simdr_320")                         # ModelSpec for the converters
    out = model(x)                                       # {"coords": (N,K,2) in [0,1], "scores": (N,K)}

Coordinates are normalised to the network input, x then y: pixel_x = x_norm * input_width
(see edgepose.models.ops for the cell-centre convention). Heatmap models return
{"heatmaps": (N,K,H,W)} instead. Needs torch (the `torch` extra); the runtime never imports this.
"""
from .pose import PoseModel
from .registry import ModelEntry, create_model, get_entry, get_spec, list_models, register_model
from . import heads  # noqa: E402,F401  (registers the models)

__all__ = ["ModelEntry", "PoseModel", "create_model", "get_entry", "get_spec",
           "list_models", "register_model"]
