"""The arithmetic precision of a stack's forward and backward passes (config key ``precision``).

* ``fp32``: float32 throughout, matrix products in full IEEE float32 (the default, and the reference).
* ``tf32``: float32 tensors, but CUDA matrix products on TF32 tensor cores (10-bit mantissa inputs,
  float32 accumulation). CPUs have no TF32: there ``tf32`` computes exactly what ``fp32`` does.
* ``bf16``: mixed precision through ``torch.autocast`` with bfloat16, on CPU and CUDA: the forward
  pass (training and evaluation) runs its matrix products in bfloat16; weights, gradients, AdamW's
  moments, the loss reduction and every metric (accuracies, norms, IPR) stay float32.

The CUDA matrix-product setting holds only inside :func:`computing` (the training loop) and autocast
only inside :func:`autocast` (each forward pass); both are restored on leaving, so a job that trains
stacks of different precisions one after another leaves no global state behind.
"""

from __future__ import annotations

import contextlib

import torch

PRECISIONS = ("fp32", "tf32", "bf16")


def check(mode: str) -> str:
    if mode not in PRECISIONS:
        raise ValueError(f"precision: {mode!r} is not one of {', '.join(PRECISIONS)}")
    return mode


@contextlib.contextmanager
def computing(mode: str, device: torch.device):
    """Matrix products in ``mode`` on ``device`` inside the block (:mod:`grokking.engine.precision`)."""
    check(mode)
    if device.type != "cuda":
        yield
        return
    matmul = torch.backends.cuda.matmul
    before = matmul.fp32_precision
    matmul.fp32_precision = "tf32" if mode == "tf32" else "ieee"
    try:
        yield
    finally:
        matmul.fp32_precision = before


def autocast(mode: str, device: torch.device):
    """The autocast region of a forward (and backward) pass: bfloat16 under ``bf16``, else a no-op (no
    autocast context at all: ``torch.autocast`` refuses device types it has no autocast for, such as the
    ``meta`` device that stands for a GPU in tests/test_device_guard.py)."""
    if mode != "bf16":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)
