"""AdamW for stacked parameters, exactly ``torch.optim.AdamW`` (amsgrad off, not maximizing).

Decoupled decay first (``w *= 1 - lr * wd``, docs/paper.md §A5: wd 5 at lr 0.01 scales by 0.95 per step),
then the bias-corrected Adam update; learning rate and weight decay per model. Parameters named in
``no_decay`` are not decayed (the paper decays every parameter; an option for the Transformer).
"""

from __future__ import annotations

import math

import torch


def _as_per_model(values, K, device, view_dims):
    """A Python float when all models agree (exact scalar ops), else a broadcastable tensor."""
    vals = [float(v) for v in values]
    if all(v == vals[0] for v in vals):
        return vals[0]
    return torch.tensor(vals, device=device).view(K, *([1] * view_dims))


class AdamW:
    """``torch.optim.AdamW`` (amsgrad off, non-maximize) for stacked parameters, per-model lr and wd."""

    def __init__(self, params: dict, lr, weight_decay, betas, eps, no_decay=()):
        self.params = params
        K = next(iter(params.values())).shape[0]
        self.lr = [float(x) for x in lr]
        self.wd = [float(x) for x in weight_decay]
        self.betas, self.eps, self.t = betas, eps, 0
        self.state = {k: (torch.zeros_like(v), torch.zeros_like(v)) for k, v in params.items()}
        dev = next(iter(params.values())).device
        self._lr = {k: _as_per_model(self.lr, K, dev, v.dim() - 1) for k, v in params.items()}
        unknown = sorted(set(no_decay) - set(params))
        if unknown:
            raise ValueError(f"no_decay: {unknown} are not parameters of the model; its parameters: {sorted(params)}")
        self._decay = {
            k: _as_per_model([1 - a * b for a, b in zip(self.lr, self.wd, strict=True)], K, dev, v.dim() - 1)
            for k, v in params.items()
        }
        self._decay.update({k: 1.0 for k in no_decay})

    def state_dict(self) -> dict:
        """The step count and the moments themselves, not copies: a checkpoint streams them to its file at once
        (one tensor at a time, a device tensor copied to the host on its own), so no second set of moments is
        ever held on the host."""
        return {"t": self.t, "moments": {k: (m.detach(), v.detach()) for k, (m, v) in self.state.items()}}

    @torch.no_grad()
    def load_state_dict(self, state: dict):
        self.t = int(state["t"])
        for name, (m, v) in self.state.items():
            m.copy_(state["moments"][name][0])
            v.copy_(state["moments"][name][1])

    @torch.no_grad()
    def step(self):
        self.t += 1
        b1, b2 = self.betas
        bc1 = 1 - b1**self.t
        bc2_sqrt = math.sqrt(1 - b2**self.t)
        for name, p in self.params.items():
            g = p.grad
            m, v = self.state[name]
            p.mul_(self._decay[name])
            m.lerp_(g, 1 - b1)
            v.mul_(b2).addcmul_(g, g, value=1 - b2)
            denom = (v.sqrt() / bc2_sqrt).add_(self.eps)
            lr = self._lr[name]
            if isinstance(lr, float):
                p.addcdiv_(m, denom, value=-lr / bc1)
            else:
                p.sub_(m / denom * (lr / bc1))
