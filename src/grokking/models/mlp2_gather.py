"""The first layer of the 2-layer MLP as a gather: with one-hot inputs, ``W_in x = U[:, m] + V[:, n]``.

Mathematically identical to the paper's Linear layer on concatenated one-hots, without its
multiply-by-zero work. Shared by the model's forward pass and its hand-written gradients.
"""

from __future__ import annotations

import torch

TABLES = "input_tables"  # params key of the tables in a dict from with_input_tables


def input_tables(params: dict):
    """U and V as (K*p, N) row tables, so that the first layer is one row gather per operand."""
    U, V = params["U"], params["V"]
    K, N, p = U.shape
    return U.transpose(1, 2).reshape(K * p, N), V.transpose(1, 2).reshape(K * p, N)


def with_input_tables(params: dict) -> dict:
    """``params`` plus their tables, made once for many passes with the same weights (a training step's
    blocks of examples, a log step's evaluation in chunks, a pruning sweep in blocks): each pass would
    otherwise copy U and V again."""
    return {**params, TABLES: input_tables(params)} if "U" in params else params


def hidden_preactivation(params: dict, x: torch.Tensor) -> torch.Tensor:
    """``U e_m + V e_n`` for K models: x is (B, 2) shared or (K, B, 2) per-model operands -> (K, B, N). The
    tables of :func:`with_input_tables` where ``params`` hold them, else made here."""
    K, N, p = params["U"].shape
    m, n = x[..., 0], x[..., 1]
    if m.dim() == 1:
        m = m.expand(K, -1)
        n = n.expand(K, -1)
    offset = (torch.arange(K, device=m.device) * p).unsqueeze(1)
    flat_u, flat_v = params[TABLES] if TABLES in params else input_tables(params)
    h = flat_u.index_select(0, (m + offset).reshape(-1)) + flat_v.index_select(0, (n + offset).reshape(-1))
    return h.view(K, -1, N)
