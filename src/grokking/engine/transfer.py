"""Host-to-device copies inside the training steps that the host does not wait for."""

from __future__ import annotations

import torch


def upload(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``t`` (a host tensor) on ``device``. On CUDA from pinned memory with ``non_blocking``: the copy is
    queued on the stream like a kernel and the host goes on (from pageable memory the host would wait
    for every kernel queued before it); PyTorch keeps the pinned block alive until the copy is done.
    On the CPU ``t`` itself."""
    if device.type == "cuda":
        t = t.pin_memory()
    return t.to(device, non_blocking=True)
