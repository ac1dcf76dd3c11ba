"""The training engine: one loop for K >= 1 stacked models of any registered family."""

from .checkpoint import Checkpoint, fingerprint
from .loop import ModelSettings, StackSettings, TrainResult, derive_seed, log_schedule, resolve_device, train

__all__ = [
    "Checkpoint",
    "ModelSettings",
    "StackSettings",
    "TrainResult",
    "derive_seed",
    "fingerprint",
    "log_schedule",
    "resolve_device",
    "train",
]
