"""What the training loop accumulates, and the whole state of a stack for checkpoints."""

from __future__ import annotations

import sys

import numpy as np
import torch


class TrainState:
    """What the training loop accumulates: the step reached, the curves logged so far, the step at which
    each model diverged (-1: never); with the weights, optimizer, generators and batch order it is
    the whole state of a stack (:meth:`snapshot`, :meth:`restore`)."""

    def __init__(self, K: int, record_neuron_ipr: bool):
        self.step, self.li, self.seconds, self.log_seconds = 0, 0, 0.0, 0.0
        self.curves: dict = {}
        self.neuron_ipr = [] if record_neuron_ipr else None
        self.diverged_at = np.full(K, -1, dtype=np.int64)

    def log(self, step: int, n_points: int, row: dict, desc: str):
        """Store one logged point (tensors (K,) or (K, N)). A model whose training loss or last batch
        loss is not finite has diverged: a line says so once, and its metrics are NaN from then on."""
        values = {k: v.double().cpu().numpy() for k, v in row.items()}
        bad = ~np.isfinite(values["train_loss"]) | ~np.isfinite(values["batch_loss"])
        for k in np.flatnonzero(bad & (self.diverged_at < 0)):
            self.diverged_at[k] = step
            print(f"{desc}: model {k} diverged (loss not finite) at or before step {step}", file=sys.stderr)
        gone = self.diverged_at >= 0
        for v in values.values():
            v[gone] = np.nan
        ipr = values.pop("neuron_ipr", None)
        if ipr is not None:
            self.neuron_ipr.append(ipr.astype(np.float32))
        for key, val in values.items():
            self.curves.setdefault(key, np.full((n_points, len(gone)), np.nan))[self.li] = val
        self.li += 1

    def snapshot(self, params, buffers, opt, dropout, order, seconds: float) -> dict:
        return {
            "step": self.step,
            "li": self.li,
            "seconds": self.seconds + seconds,
            "log_seconds": self.log_seconds,
            "curves": self.curves,
            "neuron_ipr": self.neuron_ipr,
            "diverged_at": self.diverged_at,
            "params": {k: v.detach() for k, v in params.items()},
            "buffers": buffers,
            "optimizer": opt.state_dict(),
            "dropout": dropout.state_dict(),
            "order": None if order is None else order.state_dict(),
        }

    @torch.no_grad()
    def restore(self, saved: dict, params, buffers, opt, dropout, order):
        self.step, self.li, self.seconds = saved["step"], saved["li"], saved["seconds"]
        self.log_seconds = saved.get("log_seconds", 0.0)
        self.curves, self.neuron_ipr, self.diverged_at = saved["curves"], saved["neuron_ipr"], saved["diverged_at"]
        for name, t in {**params, **buffers}.items():
            t.copy_(saved["params" if name in params else "buffers"][name])
        opt.load_state_dict(saved["optimizer"])
        dropout.load_state_dict(saved["dropout"])
        if order is not None:
            order.load_state_dict(saved["order"])
