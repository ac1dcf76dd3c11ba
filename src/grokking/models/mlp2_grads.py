"""Hand-written loss and gradients of the plain 2-layer MLP (norm ``none``): the fast path of the
stacked grid training, the same mathematics as ``losses.per_model(mlp2.forward(...)).sum().backward()``
with fewer temporaries (tested against the nn.Module reference in tests/test_engine_equivalence.py).

Large stacks are processed in blocks of examples whose gradients are summed, so that the activations
stay in cache. When all K models see the same inputs (full batch, or a shared batch order) the hidden
layer is laid out example-major, (B, K*N), so that the first layer is one embedding-bag over K*N-float
rows and its gradient one sparse (one-hot) matrix product.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F

from ..losses import logit_grad_
from .mlp2_gather import hidden_preactivation, with_input_tables

BLOCK_ELEMENTS = 2**21  # rows per block so that a (K, rows, N) activation stays cache-sized (~8 MB)
# Block size of the shared-input path on CPU (one row is K*N floats): 4 MiB per activation buffer, the
# best measured with cache-sized sub-stacks (benchmarks/README.md). One value on every thread count, so
# that results do not depend on it.
SHARED_BLOCK_ELEMENTS = 2**20
SHARED_BLOCK_ELEMENTS_GPU = 2**28  # on a GPU, blocks only cut memory: 1 GiB per float32 activation buffer


def shared_block_rows(K: int, N: int, device) -> int:
    """Examples per block of the shared-input path on ``device``."""
    budget = SHARED_BLOCK_ELEMENTS_GPU if torch.device(device).type == "cuda" else SHARED_BLOCK_ELEMENTS
    return max(128, budget // (K * N))


@torch.no_grad()
def loss_and_grads(shape, params: dict, x, y, loss: str, dropout=None, need_loss=True):
    """Per-model training loss (K,) (None unless ``need_loss``) and the gradients of its sum.

    x: (B, 2) operands shared by all models, or (K, B, 2) per model; y: (K, B) labels.
    """
    if shape.norm != "none":
        raise ValueError("loss_and_grads handles norm 'none' only; use autograd for normalized models")
    U = params["U"]
    K, N, p = U.shape
    B = x.shape[-2]
    mask = dropout.masks(B, N) if dropout is not None else None
    if x.dim() == 2:
        return _shared_loss_and_grads(shape, params, x, y, loss, mask, need_loss)
    rows = max(256, BLOCK_ELEMENTS // (K * N))
    params = with_input_tables(params)
    if K == 1 or rows >= B:
        return _loss_and_grads_block(shape, params, x, y, loss, mask, need_loss, B)
    value, grads = None, None
    for s in range(0, B, rows):
        sl = slice(s, min(B, s + rows))
        v, g = _loss_and_grads_block(
            shape, params, x[:, sl], y[:, sl], loss, None if mask is None else mask[:, sl], need_loss, B
        )
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


def _scatter_rows(grad_h: torch.Tensor, idx: torch.Tensor, K: int, p: int) -> torch.Tensor:
    """Gradient of ``hidden_preactivation`` w.r.t. U (or V): rows of grad_h summed per input index."""
    N = grad_h.shape[-1]
    offset = (torch.arange(K, device=idx.device) * p).unsqueeze(1)
    flat = torch.zeros(K * p, N, dtype=grad_h.dtype, device=grad_h.device)
    flat.index_add_(0, (idx.expand(K, -1) + offset).reshape(-1), grad_h.reshape(-1, N))
    return flat.view(K, p, N).transpose(1, 2)


def _shared_loss_and_grads(shape, params, x, y, loss, mask, need_loss):
    """``loss_and_grads`` when every model sees the same operands x (B, 2): hidden layer laid out (B, K, N)."""
    U, V, W = params["U"], params["V"], params["W"]
    K, N, p = U.shape
    B = x.shape[0]
    KN = K * N
    table = torch.cat([U, V], dim=2).permute(2, 0, 1).contiguous().view(2 * p, KN)  # row j: input j of every model
    # Flat bags of two (the 1-D form is the fast kernel): operand m -> row m, operand n -> row p + n. The
    # offsets (0, p) are made on the device: ``torch.tensor([0, p], device=...)`` would be a copy from
    # the host in every step.
    pairs = (x + torch.arange(2, device=x.device) * p).reshape(-1)
    W2 = W * 2.0 if shape.activation == "quadratic" else W  # folds d(h^2)/dh = 2h into the back-product
    rows = shared_block_rows(K, N, U.device)
    g_w = torch.zeros_like(W)
    g_table = torch.zeros(2 * p, KN, dtype=U.dtype, device=U.device)
    value = torch.zeros(K, dtype=U.dtype, device=U.device) if need_loss else None
    for s in range(0, B, rows):
        e = min(B, s + rows)
        b = e - s
        offsets = torch.arange(0, 2 * b, 2, device=x.device)
        h = F.embedding_bag(pairs[2 * s : 2 * e], table, offsets, mode="sum")  # (b, K*N)
        hk = h.view(b, K, N).transpose(0, 1)  # (K, b, N) view
        if mask is not None:
            hk.mul_(mask[:, s:e])
        a = h * h if shape.activation == "quadratic" else torch.relu(h)
        ak = a.view(b, K, N).transpose(0, 1)
        out = torch.bmm(W, ak.transpose(1, 2))  # logits transposed, (K, p, b)
        v, g_out = logit_grad_(out, y[:, s:e].unsqueeze(1), loss, 1, B, need_loss)
        if need_loss:
            value.add_(v)
        g_w.baddbmm_(g_out, ak)
        g_a = a  # a is not needed any more: dL/da is written over it, in the same (b, K, N) layout
        torch.bmm(g_out.transpose(1, 2), W2, out=ak)
        if shape.activation == "quadratic":
            g_a.mul_(h)
        else:
            g_a = _relu_backward(g_a, h)
        if mask is not None:
            g_a.view(b, K, N).transpose(0, 1).mul_(mask[:, s:e])
        g_table.addmm_(_one_hot_pairs(x[s:e, 0], x[s:e, 1], p), g_a)
    g_uv = g_table.view(2 * p, K, N).permute(1, 2, 0)
    return value, {"U": g_uv[..., :p].contiguous(), "V": g_uv[..., p:].contiguous(), "W": g_w}


def _loss_and_grads_block(shape, params, x, y, loss, mask, need_loss, B):
    """Loss and gradients of the examples of one block (x: (K, b, 2)), normalized by the full batch size B."""
    U, W = params["U"], params["W"]
    K, N, p = U.shape
    h = hidden_preactivation(params, x)
    if mask is not None:
        h.mul_(mask)
    a = h * h if shape.activation == "quadratic" else torch.relu(h)
    out = torch.bmm(a, W.transpose(1, 2))  # (K, b, p)
    value, g_out = logit_grad_(out, y.unsqueeze(2), loss, 2, B, need_loss)
    g_w = torch.bmm(g_out.transpose(1, 2), a)  # (K, p, N)
    g_h = torch.bmm(g_out, W)  # dL/da, (K, b, N)
    if shape.activation == "quadratic":
        g_h.mul_(h).mul_(2.0)
    else:
        g_h = _relu_backward(g_h, h)
    if mask is not None:
        g_h.mul_(mask)
    return value, {"U": _scatter_rows(g_h, x[..., 0], K, p), "V": _scatter_rows(g_h, x[..., 1], K, p), "W": g_w}
