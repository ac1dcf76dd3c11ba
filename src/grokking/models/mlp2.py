"""The 2-layer MLP family of docs/paper.md §A3 (a)-(e), held as K stacked models.

``f(m, n) = W . Norm(phi(dropout(U e_m + V e_n)))`` with U, V in R^{N x p}, W in R^{p x N}, no biases,
phi = x^2 (the paper's default) or ReLU, Norm = none, BatchNorm1d or LayerNorm (PyTorch defaults)
after the activation, dropout on the pre-activation. Parameters carry a leading model axis K. The
first layer is a gather (``W_in x`` with one-hot x equals ``U[:, m] + V[:, n]``), mathematically
identical to the paper's Linear layer without its multiply-by-zero work. Its hand-written gradients
(the fast path for norm ``none``) are in :mod:`grokking.models.mlp2_grads`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from .. import metrics
from .mlp2_gather import hidden_preactivation, input_tables  # noqa: F401  (used by pruning, tests)
from .mlp2_gather import with_input_tables as for_inference  # noqa: F401  (the optional hook of models/base.py)
from .mlp2_grads import loss_and_grads  # noqa: F401  (part of the family interface)

ACTIVATIONS = ("quadratic", "relu")
NORMS = ("none", "batchnorm", "layernorm")
BN_MOMENTUM = 0.1
NORM_EPS = 1e-5
CPU_TABLE_BYTES = 2**21  # on CPU, sub-stacks whose first-layer tables (2p x K*N floats) fit in ~2 MiB of cache


def default_init_scale(width: int) -> float:
    """sigma = (16 N)^(-1/3) (the paper writes the variance as (16 N)^(-2/3))."""
    return float((16 * width) ** (-1.0 / 3.0))


@dataclass(frozen=True)
class MLPShape:
    p: int
    width: int
    activation: str = "quadratic"
    norm: str = "none"
    family = "mlp2"  # class attribute: the registry name (not a field)

    def __post_init__(self):
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation: {self.activation!r} is not one of {list(ACTIVATIONS)}")
        if self.norm not in NORMS:
            raise ValueError(f"norm: {self.norm!r} is not one of {list(NORMS)}")

    @classmethod
    def from_spec(cls, spec: dict) -> MLPShape:
        return cls(int(spec["p"]), int(spec["width"]), spec["activation"], spec["norm"])

    def to_dict(self):
        return dict(asdict(self), family=self.family)


Shape = MLPShape


def init(shape: MLPShape, seed: int, init_scale: float | None = None) -> tuple[dict, dict]:
    """(parameters, buffers) of ONE model from its own generator: W_in (N x 2p) first, then W (p x N)."""
    sigma = default_init_scale(shape.width) if init_scale is None else float(init_scale)
    gen = torch.Generator().manual_seed(int(seed))
    w_in = torch.empty(shape.width, 2 * shape.p).normal_(0.0, sigma, generator=gen)
    w_out = torch.empty(shape.p, shape.width).normal_(0.0, sigma, generator=gen)
    params = {"U": w_in[:, : shape.p].clone(), "V": w_in[:, shape.p :].clone(), "W": w_out}
    if shape.norm != "none":
        params["norm_weight"] = torch.ones(shape.width)
        params["norm_bias"] = torch.zeros(shape.width)
    buffers = {}
    if shape.norm == "batchnorm":
        buffers = {"running_mean": torch.zeros(shape.width), "running_var": torch.ones(shape.width)}
    return params, buffers


def hidden_features(
    shape: MLPShape, params: dict, buffers: dict, x: torch.Tensor, *, train: bool, dropout=None
) -> torch.Tensor:
    """What the output layer W reads, (K, B, N): the activations after dropout and normalization."""
    h = hidden_preactivation(params, x)
    mask = dropout.masks(h.shape[1], shape.width) if dropout is not None else None
    if mask is not None:
        h = h * mask
    h = h * h if shape.activation == "quadratic" else torch.relu(h)
    K, B, N = h.shape
    if shape.norm == "batchnorm":
        # PyTorch's own batch_norm on (B, K*N): exact BatchNorm1d semantics for every model at once.
        flat = h.transpose(0, 1).reshape(B, K * N)
        flat = F.batch_norm(
            flat,
            buffers["running_mean"].view(-1),
            buffers["running_var"].view(-1),
            params["norm_weight"].reshape(-1),
            params["norm_bias"].reshape(-1),
            training=train,
            momentum=BN_MOMENTUM,
            eps=NORM_EPS,
        )
        h = flat.view(B, K, N).transpose(0, 1)
    elif shape.norm == "layernorm":
        h = F.layer_norm(h, (N,), eps=NORM_EPS) * params["norm_weight"].unsqueeze(1) + params["norm_bias"].unsqueeze(1)
    return h


def forward(
    shape: MLPShape, params: dict, buffers: dict, x: torch.Tensor, *, train: bool, dropout=None
) -> torch.Tensor:
    """Logits (K, B, p). In train mode BatchNorm uses batch statistics and updates ``buffers``."""
    h = hidden_features(shape, params, buffers, x, train=train, dropout=dropout)
    return torch.bmm(h, params["W"].transpose(1, 2))


def weight_norms(params: dict) -> dict:
    """Frobenius norms (not squared) of U, V, W for each stacked model (Fig 8b)."""
    return {f"norm_{k.lower()}": params[k].flatten(1).norm(dim=1) for k in ("U", "V", "W")}


def ipr_components(params: dict, mode: str = "rfft") -> dict:
    """IPR of row k of U, row k of V and column k of W, each (K, N)."""
    return {
        "ipr_u": metrics.ipr(params["U"], mode),
        "ipr_v": metrics.ipr(params["V"], mode),
        "ipr_w": metrics.ipr(params["W"].transpose(-1, -2), mode),
    }


def neuron_ipr(params: dict, mode: str = "rfft") -> torch.Tensor:
    """Per-neuron IPR_k = mean of IPR(U_k), IPR(V_k), IPR(W_:,k) (docs/paper.md §A8); (K, N)."""
    c = ipr_components(params, mode)
    return (c["ipr_u"] + c["ipr_v"] + c["ipr_w"]) / 3.0


def manual_gradients(shape: MLPShape) -> bool:
    """The hand-written gradients cover the plain MLP; normalized models train with autograd."""
    return shape.norm == "none"


def cpu_sub_stack(shape: MLPShape) -> int:
    """Models per sub-stack on CPU. Larger stacks spill the first layer's tables and gradients out of
    the cache and get slower per model (benchmarks/README.md). Rounded down to a multiple of 4: the
    batched products split evenly over 1, 2 or 4 threads."""
    n = CPU_TABLE_BYTES // (2 * shape.p * shape.width * 4)
    return n - n % 4 if n >= 4 else max(1, n)
