"""Weight norms and the inverse participation ratio (PAPER.md A7-A8)."""

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


def neuron_ipr(params: dict, mode: str = "rfft") -> torch.Tensor:
    """Per-neuron IPR_k = mean of IPR(U_k), IPR(V_k), IPR(W_:,k); params stacked (K, ...) -> (K, N)."""
    U, V, W = params["U"], params["V"], params["W"]
    return (ipr(U, mode) + ipr(V, mode) + ipr(W.transpose(-1, -2), mode)) / 3.0


def neuron_ipr_components(params: dict, mode: str = "rfft") -> dict:
    U, V, W = params["U"], params["V"], params["W"]
    return {"ipr_u": ipr(U, mode), "ipr_v": ipr(V, mode), "ipr_w": ipr(W.transpose(-1, -2), mode)}


def weight_norms(params: dict) -> dict:
    """Frobenius norms (not squared) of U, V, W for each stacked model."""
    return {f"norm_{k.lower()}": params[k].flatten(1).norm(dim=1) for k in ("U", "V", "W")}
