"""The inverse participation ratio (docs/paper.md §A8). Which weights it is read from is the model
family's business (e.g. ``models.mlp2.neuron_ipr``)."""

from __future__ import annotations

import torch

IPR_MODES = ("rfft", "fft")


def ipr(x: torch.Tensor, mode: str = "rfft", r: int = 2) -> torch.Tensor:
    """IPR of vectors along the last axis: sum |x~_j|^(2r) / (sum |x~_j|^2)^r, x~ = DFT(x).

    ``rfft`` (default, the paper's plots): one-sided spectrum incl. DC, range [1/(p//2+1), 1].
    ``fft``: two-sided spectrum, range [1/p, 1]. Scale-free, so the FFT normalisation is irrelevant.
    A zero vector has no spectrum; its IPR is NaN.
    """
    if mode == "rfft":
        spec = torch.fft.rfft(x.double(), dim=-1).abs()
    elif mode == "fft":
        spec = torch.fft.fft(x.double(), dim=-1).abs()
    else:
        raise ValueError(f"ipr mode: {mode!r} is not one of {list(IPR_MODES)}")
    power = spec.pow(2)
    return (power.pow(r).sum(-1) / power.sum(-1).pow(r)).to(x.dtype)
