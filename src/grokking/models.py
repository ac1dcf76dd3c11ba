"""The 2-layer MLP family of PAPER.md A3, held as K stacked models.

``f(m, n) = W . Norm(phi(dropout(U e_m + V e_n)))`` with U, V in R^{N x p}, W in R^{p x N}, no biases.
Parameters carry a leading model axis K so that K independent networks (grid cells, seeds) train as
one batched computation; K = 1 is a single run. The first layer is a gather (``W_in x`` with one-hot
x equals ``U[:, m] + V[:, n]``), which is mathematically identical to the paper's Linear layer and
skips its multiply-by-zero work.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

ACTIVATIONS = ("quadratic", "relu")
NORMS = ("none", "batchnorm", "layernorm")
BN_MOMENTUM = 0.1
NORM_EPS = 1e-5


def default_init_scale(width: int) -> float:
    """sigma = (16 N)^(-1/3) (the paper writes the variance as (16 N)^(-2/3))."""
    return float((16 * width) ** (-1.0 / 3.0))


@dataclass(frozen=True)
class MLPShape:
    p: int
    width: int
    activation: str = "quadratic"
    norm: str = "none"

    def __post_init__(self):
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation: {self.activation!r} is not one of {list(ACTIVATIONS)}")
        if self.norm not in NORMS:
            raise ValueError(f"norm: {self.norm!r} is not one of {list(NORMS)}")

    def to_dict(self):
        return asdict(self)


def init_weights(shape: MLPShape, seed: int, init_scale: float | None = None) -> dict:
    """Weights of ONE model from its own generator: W_in (N x 2p) first, then W (p x N)."""
    sigma = default_init_scale(shape.width) if init_scale is None else float(init_scale)
    gen = torch.Generator().manual_seed(int(seed))
    w_in = torch.empty(shape.width, 2 * shape.p).normal_(0.0, sigma, generator=gen)
    w_out = torch.empty(shape.p, shape.width).normal_(0.0, sigma, generator=gen)
    out = {"U": w_in[:, : shape.p].clone(), "V": w_in[:, shape.p:].clone(), "W": w_out}
    if shape.norm != "none":
        out["norm_weight"] = torch.ones(shape.width)
        out["norm_bias"] = torch.zeros(shape.width)
    return out


def init_buffers(shape: MLPShape) -> dict:
    if shape.norm != "batchnorm":
        return {}
    return {"running_mean": torch.zeros(shape.width), "running_var": torch.ones(shape.width)}


def stack(dicts: list[dict]) -> dict:
    return {k: torch.stack([d[k] for d in dicts]) for k in dicts[0]} if dicts else {}


def dropout_mask(gen: torch.Generator, shape, prob: float, device) -> torch.Tensor:
    """Inverted-dropout mask with keep probability 1 - prob, scaled by 1/(1 - prob)."""
    keep = 1.0 - float(prob)
    # A unit is kept where a uniform draw falls below keep: the same distribution as bernoulli_(keep),
    # about 5x cheaper on CPU (bernoulli_ with an explicit generator costs ~20 ns per element).
    return torch.empty(shape, device=device).uniform_(0.0, 1.0, generator=gen).lt_(keep).div_(keep)


def stacked_dropout_masks(gens: dict, probs, B: int, N: int, device, buf=None):
    """Masks (K, B, N) for K stacked models in one pass: model k draws from ``gens[k]`` exactly what
    ``dropout_mask(gens[k], (B, N), probs[k], device)`` draws, models without a generator get ones.

    ``buf`` holds the uniform draws between calls (pass back the returned one): rows of models
    without dropout stay zero, so that one ``where`` turns the whole stack into masks.
    """
    K = len(probs)
    if buf is None or buf.shape != (K, B, N):
        buf = torch.zeros(K, B, N, device=device)
    for k, gen in gens.items():
        buf[k].uniform_(0.0, 1.0, generator=gen)
    keep = torch.tensor([1.0 - float(q) for q in probs], dtype=buf.dtype, device=device).view(K, 1, 1)
    return torch.where(buf < keep, 1.0 / keep, 0.0), buf


def input_tables(params: dict):
    """U and V as (K*p, N) row tables, so that the first layer is one row gather per operand."""
    U, V = params["U"], params["V"]
    K, N, p = U.shape
    return U.transpose(1, 2).reshape(K * p, N), V.transpose(1, 2).reshape(K * p, N)


def hidden_preactivation(params: dict, m: torch.Tensor, n: torch.Tensor, tables=None) -> torch.Tensor:
    """``U e_m + V e_n`` for K models: m, n are (B,) shared or (K, B) per-model indices -> (K, B, N)."""
    K, N, p = params["U"].shape
    if m.dim() == 1:
        m = m.expand(K, -1)
        n = n.expand(K, -1)
    offset = (torch.arange(K, device=m.device) * p).unsqueeze(1)
    flat_u, flat_v = tables if tables is not None else input_tables(params)
    h = flat_u.index_select(0, (m + offset).reshape(-1)) + flat_v.index_select(0, (n + offset).reshape(-1))
    return h.view(K, -1, N)


def forward(shape: MLPShape, params: dict, buffers: dict, m: torch.Tensor, n: torch.Tensor, *,
            train: bool, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Logits (K, B, p). In train mode BatchNorm uses batch statistics and updates ``buffers``."""
    h = hidden_features(shape, params, buffers, m, n, train=train, mask=mask)
    return torch.bmm(h, params["W"].transpose(1, 2))


def hidden_features(shape: MLPShape, params: dict, buffers: dict, m: torch.Tensor, n: torch.Tensor, *,
                    train: bool, mask: torch.Tensor | None = None) -> torch.Tensor:
    """What the output layer W reads, (K, B, N): the activations after dropout and normalization."""
    h = hidden_preactivation(params, m, n)
    if mask is not None:
        h = h * mask
    h = h * h if shape.activation == "quadratic" else torch.relu(h)
    K, B, N = h.shape
    if shape.norm == "batchnorm":
        # PyTorch's own batch_norm on (B, K*N): exact BatchNorm1d semantics for every model at once.
        flat = h.transpose(0, 1).reshape(B, K * N)
        flat = F.batch_norm(flat, buffers["running_mean"].view(-1), buffers["running_var"].view(-1),
                            params["norm_weight"].reshape(-1), params["norm_bias"].reshape(-1),
                            training=train, momentum=BN_MOMENTUM, eps=NORM_EPS)
        h = flat.view(B, K, N).transpose(0, 1)
    elif shape.norm == "layernorm":
        h = F.layer_norm(h, (N,), eps=NORM_EPS) * params["norm_weight"].unsqueeze(1) \
            + params["norm_bias"].unsqueeze(1)
    return h


def per_model_loss(logits: torch.Tensor, y: torch.Tensor, loss: str) -> torch.Tensor:
    """Mean loss of each model (K,): MSE over (B x p) entries against one-hot, or cross-entropy."""
    K, B, p = logits.shape
    if loss == "mse":
        target = F.one_hot(y, p).to(logits.dtype)
        return (logits - target).pow(2).mean(dim=(1, 2))
    if loss == "ce":
        return F.cross_entropy(logits.reshape(K * B, p), y.reshape(K * B), reduction="none").view(K, B).mean(1)
    raise ValueError(f"loss: {loss!r} is not one of ['mse', 'ce']")


def _scatter_rows(grad_h: torch.Tensor, idx: torch.Tensor, K: int, p: int) -> torch.Tensor:
    """Gradient of ``hidden_preactivation`` w.r.t. U (or V): rows of grad_h summed per input index."""
    N = grad_h.shape[-1]
    offset = (torch.arange(K, device=idx.device) * p).unsqueeze(1)
    flat = torch.zeros(K * p, N, dtype=grad_h.dtype, device=grad_h.device)
    flat.index_add_(0, (idx.expand(K, -1) + offset).reshape(-1), grad_h.reshape(-1, N))
    return flat.view(K, p, N).transpose(1, 2)


BLOCK_ELEMENTS = 2**21  # rows per block so that a (K, rows, N) activation stays cache-sized (~8 MB)
# Block size of the shared-input path on CPU (one row is K*N floats): 4 MiB per activation buffer. With the
# cache-sized sub-stacks of train.cpu_sub_stack this is 30-35 % faster per model-step than 2^23 at both the
# paper and the quick size on 1 thread, and within noise of the best (2^21) on 2 (benchmarks/README.md).
SHARED_BLOCK_ELEMENTS = 2**20
SHARED_BLOCK_ELEMENTS_GPU = 2**28  # on a GPU, blocks only cut memory: 1 GiB per float32 activation buffer


def shared_block_rows(K: int, N: int, device) -> int:
    """Examples per block of the shared-input path on ``device``."""
    budget = SHARED_BLOCK_ELEMENTS_GPU if torch.device(device).type == "cuda" else SHARED_BLOCK_ELEMENTS
    return max(128, budget // (K * N))


@torch.no_grad()
def loss_and_grads(shape: MLPShape, params: dict, m, n, y, loss: str, mask=None, need_loss=True):
    """Per-model training loss (K,) and the gradients of its sum, computed by hand.

    For the plain MLP (no normalization) this replaces autograd: the same mathematics with fewer
    temporaries, which is what the stacked grid training spends its time on. Equivalent to
    ``per_model_loss(forward(...)).sum().backward()`` (tested against the nn.Module reference).
    Large stacks are processed in blocks of examples whose gradients are summed, so that the
    activations stay in cache. When all K models see the same inputs (full batch, or a shared batch
    order), the hidden layer is laid out example-major, (B, K*N), so that the first layer is one
    embedding-bag over K*N-float rows and its gradient one sparse (one-hot) matrix product.
    """
    if shape.norm != "none":
        raise ValueError("loss_and_grads handles norm 'none' only; use autograd for normalized models")
    if m.dim() == 1:
        return _shared_loss_and_grads(shape, params, m, n, y, loss, mask, need_loss)
    U, W = params["U"], params["W"]
    K, N, p = U.shape
    B = m.shape[-1]
    rows = max(256, BLOCK_ELEMENTS // (K * N))
    tables = input_tables(params)
    if K == 1 or rows >= B:
        return _loss_and_grads_block(shape, params, tables, m, n, y, loss, mask, need_loss, B)
    value, grads = None, None
    for s in range(0, B, rows):
        sl = slice(s, min(B, s + rows))
        v, g = _loss_and_grads_block(shape, params, tables, m[..., sl], n[..., sl], y[..., sl], loss,
                                     None if mask is None else mask[:, sl], need_loss, B)
        if grads is None:
            value, grads = v, g
        else:
            for k in grads:
                grads[k].add_(g[k])
            if need_loss:
                value.add_(v)
    return value, grads


def _relu_backward(grad: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """``grad * (h > 0)`` in one fused pass (the kernel of autograd's own ReLU backward); about 10x
    faster on CPU than multiplying by the boolean mask, which is materialized and type-promoted."""
    return torch.ops.aten.threshold_backward(grad, h, 0.0)


def _one_hot_pairs(m, n, p):
    """Sparse (2p, B) CSR matrix with ones at (m_i, i) and (p + n_i, i): the transposed first layer."""
    B = m.shape[0]
    cols = torch.arange(B, device=m.device).repeat(2)
    rows = torch.cat([m, n + p])
    order = torch.argsort(rows * B + cols)
    rows, cols = rows[order], cols[order]
    # Row pointers by binary search in the sorted rows: no device-to-host sync (bincount would need one).
    crow = torch.searchsorted(rows, torch.arange(2 * p + 1, device=m.device))
    ones = torch.ones(2 * B, device=m.device)
    with warnings.catch_warnings():  # "sparse CSR support is in beta": we use only its stable matmul
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(crow, cols, ones, (2 * p, B))


def _shared_loss_and_grads(shape, params, m, n, y, loss, mask, need_loss):
    """``loss_and_grads`` when every model sees the same (m, n): hidden layer laid out (B, K, N)."""
    U, V, W = params["U"], params["V"], params["W"]
    K, N, p = U.shape
    B = m.shape[0]
    KN = K * N
    table = torch.cat([U, V], dim=2).permute(2, 0, 1).contiguous().view(2 * p, KN)  # row j: input j of every model
    pairs = torch.stack([m, n + p], dim=1).reshape(-1)  # flat bags of two (the 1-D form is the fast kernel)
    W2 = W * 2.0 if shape.activation == "quadratic" else W  # folds d(h^2)/dh = 2h into the back-product
    rows = shared_block_rows(K, N, U.device)
    yk = y.expand(K, -1) if y.dim() == 1 else y
    g_w = torch.zeros_like(W)
    g_table = torch.zeros(2 * p, KN, dtype=U.dtype, device=U.device)
    value = torch.zeros(K, dtype=U.dtype, device=U.device) if need_loss else None
    for s in range(0, B, rows):
        e = min(B, s + rows)
        b = e - s
        offsets = torch.arange(0, 2 * b, 2, device=m.device)
        h = F.embedding_bag(pairs[2 * s:2 * e], table, offsets, mode="sum")  # (b, K*N)
        hk = h.view(b, K, N).transpose(0, 1)  # (K, b, N) view
        if mask is not None:
            hk.mul_(mask[:, s:e])
        a = h * h if shape.activation == "quadratic" else torch.relu(h)
        ak = a.view(b, K, N).transpose(0, 1)
        out = torch.bmm(W, ak.transpose(1, 2))  # logits transposed, (K, p, b)
        target = yk[:, s:e].unsqueeze(1)
        minus_one = torch.full(target.shape, -1.0, dtype=out.dtype, device=out.device)
        if loss == "mse":
            out.scatter_add_(1, target, minus_one)  # residual
            if need_loss:
                value.add_(out.pow(2).sum(dim=(1, 2)), alpha=1.0 / (B * p))
            g_out = out.mul_(2.0 / (B * p))
        elif loss == "ce":
            logp = torch.log_softmax(out, dim=1)
            if need_loss:
                value.sub_(logp.gather(1, target).sum(dim=(1, 2)), alpha=1.0 / B)
            g_out = logp.exp_()
            g_out.scatter_add_(1, target, minus_one)
            g_out.mul_(1.0 / B)
        else:
            raise ValueError(f"loss: {loss!r} is not one of ['mse', 'ce']")
        g_w.baddbmm_(g_out, ak)
        g_a = a  # a is not needed any more: dL/da is written over it, in the same (b, K, N) layout
        torch.bmm(g_out.transpose(1, 2), W2, out=ak)
        if shape.activation == "quadratic":
            g_a.mul_(h)
        else:
            g_a = _relu_backward(g_a, h)
        if mask is not None:
            g_a.view(b, K, N).transpose(0, 1).mul_(mask[:, s:e])
        g_table.addmm_(_one_hot_pairs(m[s:e], n[s:e], p), g_a)
    g_uv = g_table.view(2 * p, K, N).permute(1, 2, 0)
    return value, {"U": g_uv[..., :p].contiguous(), "V": g_uv[..., p:].contiguous(), "W": g_w}


def _loss_and_grads_block(shape, params, tables, m, n, y, loss, mask, need_loss, B):
    """Loss and gradients of the examples of one block, normalized by the full batch size B."""
    U, W = params["U"], params["W"]
    K, N, p = U.shape
    h = hidden_preactivation(params, m, n, tables)
    if mask is not None:
        h.mul_(mask)
    a = h * h if shape.activation == "quadratic" else torch.relu(h)
    out = torch.bmm(a, W.transpose(1, 2))  # (K, b, p)
    yk = y.expand(K, -1) if y.dim() == 1 else y
    minus_one = torch.full_like(yk, -1, dtype=out.dtype).unsqueeze(2)
    if loss == "mse":
        out.scatter_add_(2, yk.unsqueeze(2), minus_one)  # residual
        value = out.pow(2).sum(dim=(1, 2)) / (B * p) if need_loss else None
        g_out = out.mul_(2.0 / (B * p))
    elif loss == "ce":
        logp = torch.log_softmax(out, dim=2)
        value = -logp.gather(2, yk.unsqueeze(2)).squeeze(2).sum(1) / B if need_loss else None
        g_out = logp.exp_()
        g_out.scatter_add_(2, yk.unsqueeze(2), minus_one)
        g_out.mul_(1.0 / B)
    else:
        raise ValueError(f"loss: {loss!r} is not one of ['mse', 'ce']")
    g_w = torch.bmm(g_out.transpose(1, 2), a)  # (K, p, N)
    g_h = torch.bmm(g_out, W)  # dL/da, (K, b, N)
    if shape.activation == "quadratic":
        g_h.mul_(h).mul_(2.0)
    else:
        g_h = _relu_backward(g_h, h)
    if mask is not None:
        g_h.mul_(mask)
    mm = m if m.dim() > 1 else m.unsqueeze(0)
    nn_ = n if n.dim() > 1 else n.unsqueeze(0)
    return value, {"U": _scatter_rows(g_h, mm, K, p), "V": _scatter_rows(g_h, nn_, K, p), "W": g_w}
