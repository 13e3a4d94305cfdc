"""`--weights`: the model zoo's checkpoint loader (edgepose.models.checkpoint), so both paths behave alike.

Converters may import the models, never the reverse, so the one loader lives there.
"""
from __future__ import annotations

from edgepose.models.checkpoint import (CheckpointMismatchError, load_weights, match_keys, read_state_dict,
                                        unwrap_state_dict)

__all__ = ["CheckpointMismatchError", "load_weights", "match_keys", "read_state_dict", "unwrap_state_dict"]
