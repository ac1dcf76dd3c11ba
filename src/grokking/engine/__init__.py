"""The training engine: one loop for K >= 1 stacked models of any registered family."""

from .loop import ModelSettings, StackSettings, TrainResult, derive_seed, log_schedule, resolve_device, train

__all__ = ["ModelSettings", "StackSettings", "TrainResult", "derive_seed", "log_schedule", "resolve_device", "train"]
