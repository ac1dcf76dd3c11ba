"""The vectorized pruning sweep against a direct loop: zero the first j neurons, run the model, measure.

The direct loop follows docs/paper.md §A9 literally (copy the weights, zero row k of U and V and column k of
W for each pruned neuron, evaluate in eval mode) with a plain one-hot forward pass, so it shares no
code with ``grokking.experiments.pruning`` beyond the dataset.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from grokking.data import Universe
from grokking.engine import ModelSettings, StackSettings, train
from grokking.experiments.pruning import prune_curves, pruning_order
from grokking.models.mlp2 import MLPShape

P = 13


@pytest.fixture(scope="module")
def split():
    return Universe.build("add", P).split(0.6)


def direct_forward(w: dict, shape: MLPShape, buffers: dict, m, n):
    x = torch.cat([F.one_hot(m, P), F.one_hot(n, P)], dim=1).double()
    h = x @ torch.cat([w["U"], w["V"]], dim=1).T
    a = h * h if shape.activation == "quadratic" else torch.relu(h)
    if shape.norm == "batchnorm":
        a = (a - buffers["running_mean"].double()) / torch.sqrt(buffers["running_var"].double() + 1e-5)
        a = a * w["norm_weight"] + w["norm_bias"]
    return a @ w["W"].T


def direct_curves(shape, params, buffers, order, split, y_train, n_noise, loss):
    m, n = torch.as_tensor(split.train_m), torch.as_tensor(split.train_n)
    tm, tn = torch.as_tensor(split.test_m), torch.as_tensor(split.test_n)
    y_train = torch.as_tensor(y_train)
    true_y = torch.as_tensor(split.train_true)
    test_y = torch.as_tensor(split.test_labels)
    out = {
        k: []
        for k in ("train_acc", "test_acc", "corrupted_acc", "uncorrupted_acc", "full_acc", "train_loss", "test_loss")
    }
    w = {k: v.double().clone() for k, v in params.items()}
    for j in range(shape.width):
        if j > 0:
            k = int(order[j - 1])
            w["U"][k] = 0
            w["V"][k] = 0
            w["W"][:, k] = 0
        tr = direct_forward(w, shape, buffers, m, n)
        te = direct_forward(w, shape, buffers, tm, tn)
        ptr, pte = tr.argmax(1), te.argmax(1)
        hit = (ptr == y_train).double()
        out["train_acc"].append(hit.mean().item())
        out["test_acc"].append((pte == test_y).double().mean().item())
        out["corrupted_acc"].append(hit[:n_noise].mean().item())
        out["uncorrupted_acc"].append(hit[n_noise:].mean().item())
        out["full_acc"].append(((ptr == true_y).sum() + (pte == test_y).sum()).item() / P**2)
        if loss == "mse":
            out["train_loss"].append(F.mse_loss(tr, F.one_hot(y_train, P).double()).item())
            out["test_loss"].append(F.mse_loss(te, F.one_hot(test_y, P).double()).item())
        else:
            out["train_loss"].append(F.cross_entropy(tr, y_train).item())
            out["test_loss"].append(F.cross_entropy(te, test_y).item())
    return {k: np.asarray(v) for k, v in out.items()}


CASES = [
    ("quadratic", "none", "mse"),
    ("relu", "none", "ce"),
    ("quadratic", "batchnorm", "mse"),
]


@pytest.mark.parametrize("activation,norm,loss", CASES)
@pytest.mark.parametrize("lowest_first", [True, False])
def test_pruning_sweep_matches_direct_loop(split, activation, norm, loss, lowest_first):
    shape = MLPShape(p=P, width=20, activation=activation, norm=norm)
    st = StackSettings(
        shape=shape, steps=150, loss=loss, batch_size=32 if norm == "batchnorm" else None, log_steps=(150,)
    )
    models = [
        ModelSettings(corruption=0.3, weight_decay=1.0, lr=0.01, seed=3),
        ModelSettings(corruption=0.1, weight_decay=0.0, lr=0.01, seed=4),
    ]
    res = train(split, st, models, device="cpu", progress=False)
    ipr = torch.rand(2, 20, generator=torch.Generator().manual_seed(0))
    ipr[:, 5] = ipr[:, 6]  # a tie: the stable sort keeps index order
    order = pruning_order(ipr, lowest_first)
    labels = np.stack([split.train_labels(ms.corruption)[0] for ms in models])
    got = prune_curves(shape, res.params, res.buffers, order, split, labels, res.n_noise, loss)
    assert got["train_acc"].shape == (2, 20)
    for k in range(2):
        params = {name: v[k] for name, v in res.params.items()}
        buffers = {name: v[k] for name, v in res.buffers.items()}
        want = direct_curves(shape, params, buffers, order[k], split, labels[k], int(res.n_noise[k]), loss)
        # Features are float32 in the engine and float64 here: losses agree to ~1e-8, accuracies exactly.
        for key, curve in want.items():
            np.testing.assert_allclose(got[key][k], curve, rtol=1e-5, atol=1e-7, err_msg=f"model {k} {key}")
        # The sweep is not trivial: pruning changes the accuracies along the way.
        assert np.ptp(want["train_acc"]) > 0.1


def test_pruning_order_is_stable_and_directional():
    ipr = torch.tensor([0.3, 0.1, 0.3, 0.9, 0.1])
    assert pruning_order(ipr, True).tolist() == [1, 4, 0, 2, 3]
    assert pruning_order(ipr, False).tolist() == [3, 0, 2, 1, 4]


def test_layernorm_cannot_be_pruned(split):
    shape = MLPShape(p=P, width=4, norm="layernorm")
    with pytest.raises(ValueError, match="LayerNorm couples"):
        prune_curves(
            shape, {"W": torch.zeros(1, P, 4)}, {}, torch.zeros(1, 4, dtype=torch.long), split, np.zeros((1, 10)), [0]
        )
