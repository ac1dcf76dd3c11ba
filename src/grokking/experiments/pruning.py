"""IPR-ordered pruning curves (docs/paper.md §A9), every pruned count in one pass.

Pruning neuron k zeroes row k of U and V and column k of W, so the logits lose exactly the term
``W[:, k] * z_k(x)``, where z is what W reads (the activation after normalization, in eval mode).
With the neurons in pruning order pi, the logits after pruning the first j neurons are the suffix sum
``sum_{i >= j} W[:, pi_i] z_{pi_i}(x)``: a cumulative sum over the neurons in reverse pruning order (the
last one pruned first) gives the logits of every pruned count j = 0 .. N-1 at once, in float64, each one
a plain sum of the neurons still in place. LayerNorm couples the neurons (pruning one changes the others'
normalized activations), so it is not supported.

The sweep touches models x examples x N x p logits, several times each: on the CPU it runs over tiles of
a few examples and neurons that stay in the cache (the carry of the cumulative sum passes from one tile of
neurons to the next), on a GPU over large tiles. Predictions are the first class holding the maximum, as
``argmax`` gives them, taken from ``max`` (a third of ``argmax``'s time on a CPU).
"""

from __future__ import annotations

import json

import numpy as np
import torch
import torch.nn.functional as F

from .. import numerics
from ..data import Split
from ..engine import losses
from ..models import shape_from_dict
from ..models.mlp2 import MLPShape, for_inference, hidden_features

CURVE_KEYS = ("train_acc", "test_acc", "corrupted_acc", "uncorrupted_acc", "full_acc", "train_loss", "test_loss")


def pruning_order(neuron_ipr: torch.Tensor, lowest_first: bool = True) -> torch.Tensor:
    """Neuron indices in pruning order along the last axis; ties keep index order (stable sort)."""
    return torch.sort(neuron_ipr, dim=-1, descending=not lowest_first, stable=True).indices


FEATURE_BYTES = 16 * 2**20  # float64 hidden features of the examples computed at once
TILE_BYTES = {"cpu": 4 * 2**20, "other": 256 * 2**20}  # float64 logits of one tile: cache-sized on a CPU


def _tile(K, N, p, device) -> tuple[int, int]:
    """(examples, neurons) of one tile of (K, examples, p, neurons) float64 logits."""
    elements = TILE_BYTES["cpu" if torch.device(device).type == "cpu" else "other"] // 8
    neurons = max(1, min(N, elements // (K * p)))
    return max(1, elements // (K * p * neurons)), neurons


@torch.no_grad()
def _sweep(shape, params, buffers, order, x, labels, groups, n_groups, loss, feature_bytes=FEATURE_BYTES):
    """Per group and pruned count: correct predictions against each label set, and the summed loss
    against the first. labels: list of (K, B); groups: (K, B) ints in [0, n_groups). Returns
    ([(K, G, N)] correct counts, (K, G, N) loss sums), float64."""
    W = params["W"]
    K, p, N = W.shape
    dev = W.device
    last_first = order.to(dev).flip(-1)  # column i: the neuron pruned (N - 1 - i)-th
    params = for_inference(params)  # the first layer's tables, made once for every block of examples
    rows, neurons = _tile(K, N, p, dev)
    spans = [(a, min(N, a + neurons)) for a in range(0, N, neurons)]
    w = torch.gather(W, 2, last_first.unsqueeze(1).expand(K, p, N)).double()
    w_tiles = [w[:, None, :, a:e].contiguous() for a, e in spans]  # (K, 1, p, n) each
    del w
    correct = [torch.zeros(K, n_groups, N, dtype=torch.float64, device=dev) for _ in labels]
    loss_sum = torch.zeros(K, n_groups, N, dtype=torch.float64, device=dev)
    B = x.shape[0]
    block = min(B, max(rows, feature_bytes // (8 * K * N)))
    # Buffers allocated once and reused: a fresh allocation of this size costs its page faults every time.
    hits_buf = torch.empty(len(labels), K, block, N, dtype=torch.bool, device=dev)
    per_buf = torch.empty(K, block, N, dtype=torch.float64, device=dev)
    tile_buf, scratch_buf = torch.empty(2, K, rows, p, neurons, dtype=torch.float64, device=dev)
    for s0 in range(0, B, block):
        z_block = hidden_features(shape, params, buffers, x[s0 : s0 + block], train=False)  # (K, R, N)
        R = z_block.shape[1]
        z_block = torch.gather(z_block, 2, last_first.unsqueeze(1).expand(-1, R, -1)).double()
        hits, per = hits_buf[:, :, :R], per_buf[:, :R]
        ys = [y[:, s0 : s0 + R, None] for y in labels]  # (K, R, 1)
        for r0 in range(0, R, rows):
            z = z_block[:, r0 : r0 + rows, None]  # (K, b, 1, N)
            b = z.shape[1]
            tile, scratch = tile_buf[:, :b], scratch_buf[:, :b]
            carry = None  # the sums of the previous tile's last column
            for (a, e), w_tile in zip(spans, w_tiles, strict=True):
                logits = torch.mul(z[..., a:e], w_tile, out=tile[..., : e - a])  # the terms, last pruned first
                if carry is not None:
                    logits[..., 0] += carry
                logits.cumsum_(-1)  # column i: the logits after pruning the first N - 1 - i neurons
                carry = logits[..., -1].clone()
                pred = logits.max(2).indices  # (K, b, n): the first class at the maximum, as argmax
                for i, y in enumerate(ys):
                    torch.eq(pred, y[:, r0 : r0 + b], out=hits[i, :, r0 : r0 + b, a:e])
                y0 = ys[0][:, r0 : r0 + b].expand(-1, -1, e - a)
                per[:, r0 : r0 + b, a:e] = losses.per_example(logits, y0, loss, dim=2, scratch=scratch[..., : e - a])
        onehot_groups = F.one_hot(groups[:, s0 : s0 + R], n_groups).double().transpose(1, 2)  # (K, G, R)
        for acc, hit in zip(correct, hits, strict=True):
            acc.baddbmm_(onehot_groups, hit.double())
        loss_sum.baddbmm_(onehot_groups, per)
    return [c.flip(-1) for c in correct], loss_sum.flip(-1)


@torch.no_grad()
def prune_curves(
    shape: MLPShape,
    params: dict,
    buffers: dict,
    order: torch.Tensor,
    split: Split,
    train_labels,
    n_noise,
    loss: str = "mse",
) -> dict:
    """Accuracies and losses after pruning the first j neurons of ``order``, for j = 0 .. N-1.

    params/buffers are stacked (K models), order is (K, N), train_labels (K, n_train) are the labels
    each model was trained on (corrupted ones first, ``n_noise[k]`` of them). Returns arrays (K, N) for
    ``CURVE_KEYS`` plus ``pruned`` (N,): train/test accuracy and loss; corrupted-subset accuracy
    (training positions [0, n_noise) against the corrupted labels), uncorrupted-subset accuracy
    (positions [n_noise, n_train)) and full-table accuracy (all p^2 pairs against the true labels).
    """
    if shape.norm == "layernorm":
        raise ValueError("pruning: LayerNorm couples the neurons; only norm 'none' or 'batchnorm' can be pruned")
    W = params["W"]
    K, p, N = W.shape
    dev = W.device

    def t(a):
        return torch.as_tensor(np.asarray(a), dtype=torch.long, device=dev)

    m, n = t(split.train_m), t(split.train_n)
    y = t(train_labels).reshape(K, -1)
    true_y = t(split.train_true).expand(K, -1)
    n_noise_t = t(n_noise).reshape(K, 1)
    corrupted = (torch.arange(m.shape[0], device=dev).unsqueeze(0) < n_noise_t).long()  # 1 = corrupted
    groups = 1 - corrupted  # group 0: corrupted positions, group 1: the rest
    (train_hits, true_hits), train_loss = _sweep(
        shape, params, buffers, order, torch.stack([m, n], 1), [y, true_y], groups, 2, loss
    )
    tm, tn = t(split.test_m), t(split.test_n)
    test_y = t(split.test_labels).expand(K, -1)
    zeros = torch.zeros_like(test_y)
    (test_hits,), test_loss = _sweep(shape, params, buffers, order, torch.stack([tm, tn], 1), [test_y], zeros, 1, loss)

    n_train, n_test = m.shape[0], tm.shape[0]
    n_cor = n_noise_t.double()
    with np.errstate(invalid="ignore", divide="ignore"):
        out = {
            "train_acc": train_hits.sum(1) / n_train,
            "test_acc": test_hits[:, 0] / n_test,
            "corrupted_acc": torch.where(n_cor > 0, train_hits[:, 0] / n_cor.clamp(min=1), torch.nan),
            "uncorrupted_acc": train_hits[:, 1] / (n_train - n_cor),
            "full_acc": (true_hits.sum(1) + test_hits[:, 0]) / (n_train + n_test),
            "train_loss": train_loss.sum(1) / n_train,
            "test_loss": test_loss[:, 0] / n_test,
        }
    result = {k: v.cpu().numpy() for k, v in out.items()}
    result["pruned"] = np.arange(N)
    return result


DIRECTIONS = {"lowest": True, "highest": False}


def prune_saved_run(run_dir, data_path, out_path, *, device="cpu") -> dict:
    """Both pruning sweeps (lowest-IPR first, highest-IPR first) of a finished run, saved as one npz.

    Arrays: ``<direction>_<metric>`` (N,) for ``CURVE_KEYS``, ``<direction>_order`` (N,), ``pruned``,
    ``fraction`` (pruned / N), ``neuron_ipr`` (N,) and the scalars ``corruption``, ``n_noise``.
    """
    from ..engine import resolve_device
    from ..results import load_run, load_split, write_npz

    device = resolve_device(device)
    run = load_run(run_dir)
    spec = run.spec
    split = load_split(data_path, spec)
    ckpt = run.checkpoint
    shape = shape_from_dict(ckpt["shape"])
    params = {k: v.unsqueeze(0).to(device) for k, v in ckpt["params"].items()}
    buffers = {k: v.unsqueeze(0).to(device) for k, v in ckpt["buffers"].items()}
    labels, n_noise = split.train_labels(spec["corruption"])
    ipr = ckpt["neuron_ipr"].unsqueeze(0)
    out = {"neuron_ipr": ipr[0].numpy(), "corruption": np.float64(spec["corruption"]), "n_noise": np.int64(n_noise)}
    for direction, lowest in DIRECTIONS.items():
        order = pruning_order(ipr, lowest)
        curves = prune_curves(shape, params, buffers, order, split, labels[None], [n_noise], spec["loss"])
        out.update({f"{direction}_{k}": curves[k][0] for k in CURVE_KEYS})
        out[f"{direction}_order"] = order[0].numpy()
        out["pruned"] = curves["pruned"]
    out["fraction"] = out["pruned"] / shape.width
    out["numerics"] = np.asarray(json.dumps(numerics.describe(str(device)), sort_keys=True))
    write_npz(out_path, **out)
    return out
