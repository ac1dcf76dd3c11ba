"""The training losses, in one place (docs/paper.md §A4): MSE against one-hot targets, or cross-entropy.

``mse``: mean over (examples x classes) of ``(f_c(x) - 1[c = y])^2``; ``ce``: mean over examples of
``-log softmax(f(x))_y``. Three views of the same definition: per example (any leading axes, used by
pruning), per model (the engine and its autograd path) and, for hand-written gradients, the gradient
with respect to the logits, computed in place.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

LOSSES = ("mse", "ce")


def _unknown(loss):
    return ValueError(f"loss: {loss!r} is not one of {list(LOSSES)}")


def per_example(logits: torch.Tensor, y: torch.Tensor, loss: str, dim: int = -1, scratch=None) -> torch.Tensor:
    """Loss of each example: logits with the classes along ``dim``, labels of the same shape less that axis.
    ``scratch``, a tensor like ``logits``, holds the element-wise temporary instead of a new allocation."""
    picked = logits.gather(dim, y.unsqueeze(dim)).squeeze(dim)
    if loss == "mse":
        squares = torch.mul(logits, logits, out=scratch) if scratch is not None else logits.pow(2)
        return (squares.sum(dim) - 2 * picked + 1) / logits.shape[dim]
    if loss == "ce":
        top = logits.amax(dim, keepdim=True)
        shifted = torch.sub(logits, top, out=scratch) if scratch is not None else logits - top
        return shifted.exp_().sum(dim).log_() + top.squeeze(dim) - picked
    raise _unknown(loss)


def per_model(logits: torch.Tensor, y: torch.Tensor, loss: str) -> torch.Tensor:
    """Mean loss of each model (K,): logits (K, B, C), labels (K, B)."""
    K, B, C = logits.shape
    if loss == "mse":
        return (logits - F.one_hot(y, C).to(logits.dtype)).pow(2).mean(dim=(1, 2))
    if loss == "ce":
        return F.cross_entropy(logits.reshape(K * B, C), y.reshape(K * B), reduction="none").view(K, B).mean(1)
    raise _unknown(loss)


def logit_grad_(logits: torch.Tensor, target: torch.Tensor, loss: str, dim: int, batch: int, need_loss: bool):
    """Turn ``logits`` (K, ., .) in place into the gradient of the batch-mean loss w.r.t. the logits.

    ``dim`` is the class axis, ``target`` holds the labels with a size-1 axis at ``dim``, ``batch`` is
    the number of examples the mean runs over (a block of examples may be part of a larger batch).
    Returns (this block's share of the per-model loss (K,) or None, the gradient, which is ``logits``).
    """
    minus_one = torch.full(target.shape, -1.0, dtype=logits.dtype, device=logits.device)
    if loss == "mse":
        C = logits.shape[dim]
        logits.scatter_add_(dim, target, minus_one)  # the residual f - onehot(y)
        value = logits.pow(2).sum(dim=(1, 2)).mul_(1.0 / (batch * C)) if need_loss else None
        return value, logits.mul_(2.0 / (batch * C))
    if loss == "ce":
        logp = torch.log_softmax(logits, dim=dim)
        value = logp.gather(dim, target).sum(dim=(1, 2)).mul_(-1.0 / batch) if need_loss else None
        grad = logp.exp_()
        grad.scatter_add_(dim, target, minus_one)
        return value, grad.mul_(1.0 / batch)
    raise _unknown(loss)
