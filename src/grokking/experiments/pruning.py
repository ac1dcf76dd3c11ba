"""IPR-ordered pruning curves (docs/paper.md §A9), every pruned count in one pass.

Pruning neuron k zeroes row k of U and V and column k of W, so the logits lose exactly the term
``W[:, k] * z_k(x)``, where z is what W reads (the activation after normalization, in eval mode).
With the neurons in pruning order pi, the logits after pruning the first j neurons are the suffix sum
``sum_{i >= j} W[:, pi_i] z_{pi_i}(x)``. A reverse cumulative sum over the ordered neurons therefore gives
the logits of every pruned count j = 0 .. N-1 at once, for blocks of examples, in float64. LayerNorm
couples the neurons (pruning one changes the others' normalized activations), so it is not supported.
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
from ..models.mlp2 import MLPShape, hidden_features

CURVE_KEYS = ("train_acc", "test_acc", "corrupted_acc", "uncorrupted_acc", "full_acc", "train_loss", "test_loss")


def pruning_order(neuron_ipr: torch.Tensor, lowest_first: bool = True) -> torch.Tensor:
    """Neuron indices in pruning order along the last axis; ties keep index order (stable sort)."""
    return torch.sort(neuron_ipr, dim=-1, descending=not lowest_first, stable=True).indices


def _block_rows(K, N, p, budget_bytes):
    return max(1, int(budget_bytes // (8 * max(1, K) * N * p * 2)))


@torch.no_grad()
def _sweep(shape, params, buffers, order, x, labels, groups, n_groups, loss, budget_bytes):
    """Per group and pruned count: correct predictions against each label set, and the summed loss
    against the first. labels: list of (K, B); groups: (K, B) ints in [0, n_groups). Returns
    ([(K, G, N)] correct counts, (K, G, N) loss sums), float64."""
    W = params["W"]
    K, p, N = W.shape
    order = order.to(W.device)
    w_ordered = torch.gather(W, 2, order.unsqueeze(1).expand(K, p, N)).double()  # (K, p, N)
    correct = [torch.zeros(K, n_groups, N, dtype=torch.float64, device=W.device) for _ in labels]
    loss_sum = torch.zeros(K, n_groups, N, dtype=torch.float64, device=W.device)
    B = x.shape[0]
    rows = _block_rows(K, N, p, budget_bytes)
    for s in range(0, B, rows):
        sl = slice(s, min(B, s + rows))
        z = hidden_features(shape, params, buffers, x[sl], train=False)  # (K, b, N)
        z = torch.gather(z, 2, order.unsqueeze(1).expand(-1, z.shape[1], -1)).double()
        contrib = z.unsqueeze(3) * w_ordered.transpose(1, 2).unsqueeze(1)  # (K, b, N, p): i-th pruned neuron
        logits = contrib.cumsum(2)
        total = logits[:, :, -1:].clone()
        logits.neg_().add_(total).add_(contrib)  # suffix sums: logits after pruning the first j neurons
        del contrib
        pred = logits.argmax(-1)  # (K, b, N)
        onehot_groups = F.one_hot(groups[:, sl], n_groups).double()  # (K, b, G)
        for acc, y in zip(correct, labels, strict=True):
            hit = (pred == y[:, sl].unsqueeze(2)).double()
            acc.add_(torch.einsum("kbg,kbn->kgn", onehot_groups, hit))
        per = losses.per_example(logits, labels[0][:, sl].unsqueeze(2).expand(-1, -1, N), loss)  # (K, b, N)
        loss_sum.add_(torch.einsum("kbg,kbn->kgn", onehot_groups, per))
    return correct, loss_sum


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
    budget_bytes: int = 256 * 2**20,
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
        shape, params, buffers, order, torch.stack([m, n], 1), [y, true_y], groups, 2, loss, budget_bytes
    )
    tm, tn = t(split.test_m), t(split.test_n)
    test_y = t(split.test_labels).expand(K, -1)
    zeros = torch.zeros_like(test_y)
    (test_hits,), test_loss = _sweep(
        shape, params, buffers, order, torch.stack([tm, tn], 1), [test_y], zeros, 1, loss, budget_bytes
    )

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
