"""ReLU MLPs of any depth (docs/paper.md §A3 (f) and (h)), held as K stacked models.

``depth`` weight matrices, no biases: ``in -> N -> ... -> N -> classes``. Every hidden layer applies
phi (ReLU, or x^2), then dropout, then optionally ``BatchNorm1d(N)`` (PyTorch defaults: affine,
momentum 0.1, eps 1e-5, running statistics used in eval mode), so the last BatchNorm sits right
before the output layer. depth 3 with operand inputs is the paper's 3-layer MLP ``2p -> N -> N -> p``
(A3 (f), 395,500 parameters at p = 97, N = 500); depth 4 with dense inputs of length 784 and 10
classes is the MNIST MLP ``784 -> 500 -> 500 -> 500 -> 10`` (A3 (h)).

Inputs: by default the two operand tokens of the modular task, one-hot of length p each; the first
weight matrix (N, 2p) is held as its two halves ``U`` (first operand) and ``V`` (second operand) and
applied as a gather, ``U[:, m] + V[:, n]`` (as in :mod:`grokking.models.mlp2_gather`). With
``inputs = D`` the model reads dense float vectors of length D through ``W_in`` (N, D).

Parameters (names used by the notebooks): ``U``, ``V`` or ``W_in``; hidden-to-hidden ``W1`` ..
``W{depth-2}`` (N, N); output ``W_out`` (classes, N); with BatchNorm ``bn{i}_weight``, ``bn{i}_bias``
and buffers ``bn{i}_running_mean``, ``bn{i}_running_var`` for hidden layer i = 1 .. depth-1.

Decisions (the paper leaves them open):

* init ``standard``: each layer ``N(0, 2 / fan_in)`` (fan_in = 2p for the operand layer, D for dense
  inputs, N for the others); ``lazy`` (Fig 14b): ``N(0, 2 / N^(2/3))`` with N = width for EVERY
  layer, the first and the output layer included. An explicit ``init_scale`` is the sigma of every
  layer.
* dropout (``dropout_layers``): ``hidden`` (default) masks each hidden layer's activations, after phi
  and before BatchNorm (with ReLU this equals dropout on the pre-activation, since the masks are
  non-negative); ``first`` masks the first hidden layer only (where the 2-layer MLP has its dropout,
  docs/paper.md §A3 (b)); ``inputs`` also masks the dense input vector before the first layer (the placement
  of Srivastava et al. 2014, dense inputs only). The masks are drawn in forward order, the input's
  first, one per masked layer.
* IPR (A8 OPEN defaults): ``neuron_ipr`` is the input layer's, what the paper histograms ("neurons
  connected to the input layer"): per first-hidden-layer neuron the mean of the IPRs of its two
  length-p operand halves (row k of U and of V), or the IPR of row k of ``W_in`` for dense inputs.
  The output layer's IPR (column k of ``W_out``, over the classes) is in ``ipr_components``.

Gradients come from autograd (no hand-written fast path).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from .. import metrics
from .mlp2_gather import hidden_preactivation
from .mlp2_gather import with_input_tables as for_inference  # noqa: F401  (the optional hook of models/base.py)

ACTIVATIONS = ("relu", "quadratic")
NORMS = ("none", "batchnorm")
INITS = ("standard", "lazy")
DROPOUT_LAYERS = ("hidden", "first", "inputs")
BN_MOMENTUM = 0.1
NORM_EPS = 1e-5


@dataclass(frozen=True)
class DeepMLPShape:
    p: int  # modulus; also the number of classes when ``classes`` is None
    width: int  # N, every hidden layer
    depth: int = 3  # weight matrices (hidden layers = depth - 1)
    activation: str = "relu"
    norm: str = "none"
    init: str = "standard"
    inputs: int | None = None  # None = two operand tokens (one-hot, 2p); D = dense float vectors of length D
    classes: int | None = None  # None = p
    dropout_layers: str = "hidden"  # which activations dropout masks: see the module docstring
    family = "deep_mlp"  # class attribute: the registry name (not a field)

    def __post_init__(self):
        if self.p < 2:
            raise ValueError(f"p: {self.p} must be >= 2")
        if self.width < 1:
            raise ValueError(f"width: {self.width} must be >= 1")
        if self.depth < 2:
            raise ValueError(f"depth: {self.depth} must be >= 2 (the number of weight matrices)")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation: {self.activation!r} is not one of {list(ACTIVATIONS)}")
        if self.norm not in NORMS:
            raise ValueError(f"norm: {self.norm!r} is not one of {list(NORMS)}")
        if self.init not in INITS:
            raise ValueError(f"init: {self.init!r} is not one of {list(INITS)}")
        if self.dropout_layers not in DROPOUT_LAYERS:
            raise ValueError(f"dropout_layers: {self.dropout_layers!r} is not one of {list(DROPOUT_LAYERS)}")
        if self.dropout_layers == "inputs" and self.inputs is None:
            raise ValueError("dropout_layers: 'inputs' needs dense inputs (an image dataset), not operand tokens")
        for key, low in (("inputs", 1), ("classes", 2)):
            val = getattr(self, key)
            if val is not None and val < low:
                raise ValueError(f"{key}: {val!r} must be null or an integer >= {low}")

    @classmethod
    def from_spec(cls, spec: dict) -> DeepMLPShape:
        def opt_int(key):
            val = spec.get(key)
            return None if val is None else int(val)

        return cls(
            int(spec["p"]),
            int(spec["width"]),
            int(spec["depth"]),
            spec["activation"],
            spec["norm"],
            spec["init"],
            inputs=opt_int("inputs"),
            classes=opt_int("classes"),
            dropout_layers=spec["dropout_layers"],
        )

    def to_dict(self):
        return dict(asdict(self), family=self.family)

    @property
    def in_dim(self) -> int:
        """Length of the input vector: 2p (two one-hot operands) or ``inputs``."""
        return 2 * self.p if self.inputs is None else self.inputs

    @property
    def n_classes(self) -> int:
        return self.p if self.classes is None else self.classes


Shape = DeepMLPShape


def layer_sigmas(shape: DeepMLPShape, init_scale: float | None = None) -> list[float]:
    """The init sigma of each weight matrix, in order (first, W1 .., W_out)."""
    if init_scale is not None:
        return [float(init_scale)] * shape.depth
    N = shape.width
    if shape.init == "lazy":
        return [math.sqrt(2.0 / N ** (2.0 / 3.0))] * shape.depth
    fan_ins = [shape.in_dim] + [N] * (shape.depth - 1)
    return [math.sqrt(2.0 / f) for f in fan_ins]


def init(shape: DeepMLPShape, seed: int, init_scale: float | None = None) -> tuple[dict, dict]:
    """(parameters, buffers) of ONE model from its own generator: the first layer (N x in_dim, one
    matrix, for operands then split into U, V), then W1, .., W{depth-2}, then W_out."""
    sigmas = layer_sigmas(shape, init_scale)
    gen = torch.Generator().manual_seed(int(seed))
    N, p = shape.width, shape.p

    def draw(rows, cols, sigma):
        return torch.empty(rows, cols).normal_(0.0, sigma, generator=gen)

    first = draw(N, shape.in_dim, sigmas[0])
    if shape.inputs is None:
        params = {"U": first[:, :p].clone(), "V": first[:, p:].clone()}
    else:
        params = {"W_in": first}
    for i in range(1, shape.depth - 1):
        params[f"W{i}"] = draw(N, N, sigmas[i])
    params["W_out"] = draw(shape.n_classes, N, sigmas[-1])
    buffers = {}
    if shape.norm == "batchnorm":
        for i in range(1, shape.depth):
            params[f"bn{i}_weight"] = torch.ones(N)
            params[f"bn{i}_bias"] = torch.zeros(N)
            buffers[f"bn{i}_running_mean"] = torch.zeros(N)
            buffers[f"bn{i}_running_var"] = torch.ones(N)
    return params, buffers


def _first_layer(shape: DeepMLPShape, params: dict, x: torch.Tensor) -> torch.Tensor:
    """The first hidden pre-activation (K, B, N)."""
    if shape.inputs is None:
        return hidden_preactivation(params, x)
    w = params["W_in"].transpose(1, 2)  # (K, D, N)
    if x.dim() == 2:  # (B, D) shared by every model
        return torch.matmul(x.to(w.dtype), w)
    return torch.bmm(x.to(w.dtype), w)


def _batch_norm(params: dict, buffers: dict, i: int, h: torch.Tensor, train: bool) -> torch.Tensor:
    """BatchNorm1d of hidden layer i for all K models at once: PyTorch's batch_norm on a (B, K*N) view
    (exact BatchNorm1d semantics per model); in train mode the running statistics update in place."""
    K, B, N = h.shape
    flat = F.batch_norm(
        h.transpose(0, 1).reshape(B, K * N),
        buffers[f"bn{i}_running_mean"].view(-1),
        buffers[f"bn{i}_running_var"].view(-1),
        params[f"bn{i}_weight"].reshape(-1),
        params[f"bn{i}_bias"].reshape(-1),
        training=train,
        momentum=BN_MOMENTUM,
        eps=NORM_EPS,
    )
    return flat.view(B, K, N).transpose(0, 1)


def hidden_features(
    shape: DeepMLPShape, params: dict, buffers: dict, x: torch.Tensor, *, train: bool, dropout=None
) -> torch.Tensor:
    """What the output layer reads, (K, B, N): the last hidden layer after phi, dropout and BatchNorm."""
    if dropout is not None and shape.dropout_layers == "inputs":
        mask = dropout.masks(x.shape[-2], x.shape[-1])
        if mask is not None:
            x = x.to(mask.dtype) * mask  # (K, B, D): each model its own mask
    h = _first_layer(shape, params, x)
    K, B, N = h.shape
    for i in range(1, shape.depth):
        if i > 1:
            h = torch.bmm(h, params[f"W{i - 1}"].transpose(1, 2))
        h = h * h if shape.activation == "quadratic" else torch.relu(h)
        masked = shape.dropout_layers != "first" or i == 1
        mask = dropout.masks(B, N) if dropout is not None and masked else None
        if mask is not None:
            h = h * mask
        if shape.norm == "batchnorm":
            h = _batch_norm(params, buffers, i, h, train)
    return h


CPU_SUB_STACK = 4


def cpu_sub_stack(shape: DeepMLPShape) -> int:
    """Models per sub-stack on CPU: a larger stack gets slower per model (benchmarks/README.md), and 4
    keeps the batched products even over 1, 2 or 4 threads."""
    return CPU_SUB_STACK


def forward(
    shape: DeepMLPShape, params: dict, buffers: dict, x: torch.Tensor, *, train: bool, dropout=None
) -> torch.Tensor:
    """Logits (K, B, classes). x: operand indices (B, 2) / (K, B, 2), or dense inputs (B, D) / (K, B, D).
    In train mode BatchNorm uses batch statistics and updates ``buffers``; ``dropout`` (the engine's
    ``StackDropout``, in training or when measuring with dropout on) masks the layers
    ``shape.dropout_layers`` names."""
    h = hidden_features(shape, params, buffers, x, train=train, dropout=dropout)
    return torch.bmm(h, params["W_out"].transpose(1, 2))


def weight_names(params: dict) -> list[str]:
    """The weight matrices in layer order: U, V (or W_in), W1, .., W_out."""
    names = ["U", "V"] if "U" in params else ["W_in"]
    i = 1
    while f"W{i}" in params:
        names.append(f"W{i}")
        i += 1
    return names + ["W_out"]


def weight_norms(params: dict) -> dict:
    """Frobenius norms (not squared) of every weight matrix, ``norm_u``, .., ``norm_w_out``, each (K,)."""
    return {f"norm_{k.lower()}": params[k].flatten(1).norm(dim=1) for k in weight_names(params)}


def ipr_components(params: dict, mode: str = "rfft") -> dict:
    """``ipr_in`` (K, N): each first-layer neuron's incoming weights, the mean of IPR(U_k) and IPR(V_k)
    for operand inputs, IPR(W_in row k) for dense inputs; ``ipr_out`` (K, N): column k of W_out."""
    return {"ipr_in": _ipr_in(params, mode), "ipr_out": metrics.ipr(params["W_out"].transpose(-1, -2), mode)}


def neuron_ipr(params: dict, mode: str = "rfft") -> torch.Tensor:
    """Per-neuron IPR (K, N) of the neurons connected to the input layer (``ipr_in``), what the paper
    histograms for its 3-layer MLP (docs/paper.md §A8); the output layer's IPR is in ``ipr_components``."""
    return _ipr_in(params, mode)


def _ipr_in(params: dict, mode: str) -> torch.Tensor:
    if "U" in params:
        return (metrics.ipr(params["U"], mode) + metrics.ipr(params["V"], mode)) / 2.0
    return metrics.ipr(params["W_in"], mode)
