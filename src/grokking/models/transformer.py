"""The encoder-only Transformer family of docs/paper.md §A3 (g), held as K stacked models.

The input is the two operand tokens (m, n) with learned token and position embeddings, both N(0, 1);
each block adds bidirectional multi-head attention and a ReLU MLP (hidden 4 d) to the residual
stream, with no LayerNorm and no biases. Attention logits are divided by d_head (not sqrt(d_head)),
the output head (its own matrix, or the token embedding when tied) is read at the last position and
its logits are multiplied by 1/d. Linear weights are Kaiming-normal (fan_in, linear gain), i.e.
N(0, 1/fan_in). Dropout (docs/paper.md §A12, Fig 13) acts on each attention and MLP output before the
residual add. Parameters carry a leading model axis K; all K models run as batched einsums.

The last block is evaluated only at the readout position (the other position's output of the last
block is never read); dropout masks are still drawn for both positions, so the random stream is
that of the full computation. The first block's input is an embedding lookup, so its q, k and v
are looked up too, in per-token tables (embedding and position rows times the weight, p + 2 rows
instead of one per example and position).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

from .. import metrics

SEQ = 2  # the two operand tokens; no "=" token


@dataclass(frozen=True)
class TransformerShape:
    p: int
    d_model: int = 128
    heads: int = 4
    layers: int = 1
    tie_embeddings: bool = False
    family = "transformer"  # class attribute: the registry name (not a field)

    def __post_init__(self):
        for key in ("p", "d_model", "heads", "layers"):
            if int(getattr(self, key)) < 1:
                raise ValueError(f"{key}: {getattr(self, key)!r} must be a positive integer")
        if self.d_model % self.heads:
            raise ValueError(f"heads: {self.heads} must divide d_model ({self.d_model})")

    @property
    def d_head(self) -> int:
        return self.d_model // self.heads

    @classmethod
    def from_spec(cls, spec: dict) -> TransformerShape:
        return cls(
            int(spec["p"]), int(spec["d_model"]), int(spec["heads"]), int(spec["layers"]), bool(spec["tie_embeddings"])
        )

    def to_dict(self):
        return dict(asdict(self), family=self.family)


Shape = TransformerShape


def block_names(i: int) -> tuple[str, ...]:
    """Parameter names of block ``i`` in init order: attention q, k, v, output; MLP in, out."""
    return tuple(f"l{i}_{n}" for n in ("q", "k", "v", "o", "mlp_in", "mlp_out"))


def param_shapes(shape: TransformerShape) -> dict:
    """Name -> shape of ONE model's parameters, in init order (Linear weights are (out, in))."""
    d, p = shape.d_model, shape.p
    out = {"embed": (p, d), "pos": (SEQ, d)}
    for i in range(shape.layers):
        q, k, v, o, mi, mo = block_names(i)
        out.update({q: (d, d), k: (d, d), v: (d, d), o: (d, d), mi: (4 * d, d), mo: (d, 4 * d)})
    if not shape.tie_embeddings:
        out["head"] = (p, d)
    return out


def init(shape: TransformerShape, seed: int, init_scale: float | None = None) -> tuple[dict, dict]:
    """(parameters, buffers) of ONE model from its own generator, drawn in :func:`param_shapes` order:
    embeddings N(0, 1), Linear weights N(0, 1/fan_in). ``init_scale`` (if given) multiplies every draw."""
    gen = torch.Generator().manual_seed(int(seed))
    mult = 1.0 if init_scale is None else float(init_scale)
    params = {}
    for name, (rows, cols) in param_shapes(shape).items():
        std = 1.0 if name in ("embed", "pos") else 1.0 / math.sqrt(cols)
        params[name] = torch.empty(rows, cols).normal_(0.0, std * mult, generator=gen)
    return params, {}


def _linear(h: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """h (K, B, ..., in) times w (K, out, in)^T, per model."""
    K = h.shape[0]
    return torch.bmm(h.reshape(K, -1, h.shape[-1]), w.transpose(1, 2)).view(*h.shape[:-1], w.shape[1])


def _lookup(token_rows: torch.Tensor, pos_rows: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """token_rows[x] + pos_rows: (K, B, S, n) from per-model tables (K, p, n), (K, S, n) and operands
    x (B, S) or (K, B, S)."""
    if x.dim() == 2:
        rows = token_rows[:, x]
    else:
        rows = token_rows[torch.arange(token_rows.shape[0], device=x.device).view(-1, 1, 1), x]
    return rows + pos_rows.unsqueeze(1)


def _tokens(params: dict, x: torch.Tensor) -> torch.Tensor:
    """Token + position embeddings (K, B, SEQ, d) of operands x (B, 2) or (K, B, 2)."""
    return _lookup(params["embed"], params["pos"], x)


def _project(params: dict, h: torch.Tensor, x: torch.Tensor | None, name: str, last_only: bool) -> torch.Tensor:
    """``h`` (at the last position only if ``last_only``) times weight ``name``; with operands ``x``
    (h is then the token embeddings) through the per-token table of the embeddings instead."""
    if x is None:
        return _linear(h[:, :, -1:] if last_only else h, params[name])
    w = params[name].transpose(1, 2)
    if last_only:
        x = x[..., -1:]
    return _lookup(torch.bmm(params["embed"], w), torch.bmm(params["pos"][:, -x.shape[-1] :], w), x)


def _attention(shape: TransformerShape, params: dict, i: int, h: torch.Tensor, x, last_only: bool) -> torch.Tensor:
    """Attention output of block i (before the residual add): (K, B, SEQ or 1, d). ``x``: the operands
    when ``h`` is their embedding (block 0), else None."""
    q_name, k_name, v_name, o_name = block_names(i)[:4]
    K, B, S, d = h.shape
    H, dh = shape.heads, shape.d_head
    q = _project(params, h, x, q_name, last_only).view(K, B, -1, H, dh)
    k = _project(params, h, x, k_name, False).view(K, B, S, H, dh)
    v = _project(params, h, x, v_name, False).view(K, B, S, H, dh)
    # Scores (K, B, Sq, S, H) and the weighted values as broadcast products: with two positions this
    # is several times faster than batched matmuls of 2 x 2 score blocks.
    scores = (q.unsqueeze(3) * k.unsqueeze(2)).sum(-1) / dh  # muP: 1/d_head, not 1/sqrt(d_head)
    out = (scores.softmax(3).unsqueeze(-1) * v.unsqueeze(2)).sum(3).reshape(K, B, -1, d)
    return _linear(out, params[o_name])


def _mlp(params: dict, i: int, h: torch.Tensor) -> torch.Tensor:
    mlp_in, mlp_out = block_names(i)[4:]
    return _linear(torch.relu(_linear(h, params[mlp_in])), params[mlp_out])


def _drop(branch: torch.Tensor, dropout, last_only: bool) -> torch.Tensor:
    """Inverted dropout on a residual branch; masks cover both positions (see the module docstring)."""
    if dropout is None:
        return branch
    K, B, _, d = branch.shape
    mask = dropout.masks(B, SEQ * d)
    if mask is None:
        return branch
    mask = mask.view(K, B, SEQ, d)
    return branch * (mask[:, :, -1:] if last_only else mask)


CPU_SUB_STACK = 4


def cpu_sub_stack(shape: TransformerShape) -> int:
    """Models per sub-stack on CPU: a larger stack gets slower per model (benchmarks/README.md), and 4
    keeps the batched products even over 1, 2 or 4 threads."""
    return CPU_SUB_STACK


def forward(shape: TransformerShape, params: dict, buffers: dict, x: torch.Tensor, *, train: bool, dropout=None):
    """Logits (K, B, p) read at the last position, scaled by 1/d_model; ``dropout`` masks the blocks'
    branches whenever given (``train`` changes nothing: the Transformer has no normalization layer)."""
    h = _tokens(params, x)
    for i in range(shape.layers):
        last = i == shape.layers - 1
        a = _drop(_attention(shape, params, i, h, x if i == 0 else None, last), dropout, last)
        h = (h[:, :, -1:] if last else h) + a
        h = h + _drop(_mlp(params, i, h), dropout, last)
    head = params["embed"] if shape.tie_embeddings else params["head"]
    return _linear(h[:, :, -1], head) / shape.d_model


def weight_norms(params: dict) -> dict:
    """Frobenius norms (K,) of the embeddings, all attention weights, all MLP weights and the head."""

    def norm(names):
        return torch.sqrt(sum(params[n].flatten(1).pow(2).sum(1) for n in names))

    attn = [n for n in params if n.split("_", 1)[-1] in ("q", "k", "v", "o")]
    mlp = [n for n in params if "_mlp_" in n]
    out = {"norm_embed": norm(["embed"]), "norm_pos": norm(["pos"]), "norm_attn": norm(attn), "norm_mlp": norm(mlp)}
    if "head" in params:
        out["norm_head"] = norm(["head"])
    return out


def ipr_components(params: dict, mode: str = "rfft") -> dict:
    """``ipr_embed``: each embedding dimension as a length-p vector over tokens (docs/paper.md §A8), (K, d);
    ``ipr_head``: each dimension's outgoing weights over the p classes (the token embedding when tied)."""
    head = params.get("head", params["embed"])
    return {
        "ipr_embed": metrics.ipr(params["embed"].transpose(-1, -2), mode),
        "ipr_head": metrics.ipr(head.transpose(-1, -2), mode),
    }


def neuron_ipr(params: dict, mode: str = "rfft") -> torch.Tensor:
    """The IPR the paper histograms for Transformers: the embedding dimensions, (K, d)."""
    return metrics.ipr(params["embed"].transpose(-1, -2), mode)
