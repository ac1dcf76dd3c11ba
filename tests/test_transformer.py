"""The Transformer family (docs/paper.md §A3 (g)) trained by the engine, against a plain ``nn.Module`` reference.

The reference below is written from the specification, not from ``grokking.models.transformer``:
token and position embeddings, per block ``nn.Linear`` q/k/v/o and a 4d ReLU MLP without biases, no
LayerNorm, attention logits / d_head over both positions, dropout on each branch before the residual
add, readout at the last position through ``nn.Linear(d, p)`` (or the token embedding when tied)
times 1/d. It computes every position of every block (the engine skips the unread position of the
last block) and is trained with ``torch.optim.AdamW`` on all parameters, one model at a time.

Shared with the engine is only the specification of the randomness: the init draws (one generator
seeded with the model seed; embeddings N(0, 1), Linear weights N(0, 1/fan_in), in the order embed,
pos, then q, k, v, o, mlp_in, mlp_out per block, then head) and the dropout masks (a per-model
generator seeded with ``derive_seed(seed, "dropout")``, one (B, 2 d) uniform draw per branch, the
attention branch before the MLP branch, block by block).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn as nn

from grokking.data import Universe
from grokking.engine import ModelSettings, StackSettings, derive_seed, train
from grokking.engine.dropout import dropout_mask
from grokking.models import transformer
from grokking.models.transformer import TransformerShape

P, D, STEPS = 11, 16, 30
LOG_STEPS = (1, 10, 20, 30)


class Reference(nn.Module):
    def __init__(self, p, d, heads, layers, tied, seed):
        super().__init__()
        self.d, self.heads, self.layers, self.tied = d, heads, layers, tied
        gen = torch.Generator().manual_seed(seed)

        def draw(rows, cols, std):
            return nn.Parameter(torch.empty(rows, cols).normal_(0.0, std, generator=gen))

        self.embed = draw(p, d, 1.0)
        self.pos = draw(2, d, 1.0)
        self.blocks = nn.ModuleList()
        for _ in range(layers):
            block = nn.Module()
            for name, (o, i) in {
                "q": (d, d),
                "k": (d, d),
                "v": (d, d),
                "o": (d, d),
                "mlp_in": (4 * d, d),
                "mlp_out": (d, 4 * d),
            }.items():
                lin = nn.Linear(i, o, bias=False)
                lin.weight = draw(o, i, 1 / math.sqrt(i))
                setattr(block, name, lin)
            self.blocks.append(block)
        if not tied:
            self.head = nn.Linear(d, p, bias=False)
            self.head.weight = draw(p, d, 1 / math.sqrt(d))
        self.masks = None  # callable (B, 2, d) -> mask, set per step when training with dropout

    def branch(self, x):
        return x if self.masks is None else x * self.masks(x.shape)

    def forward(self, m, n):
        h = self.embed[torch.stack([m, n], 1)] + self.pos  # (B, 2, d)
        B, S, d = h.shape
        H, dh = self.heads, d // self.heads
        for blk in self.blocks:
            q = blk.q(h).view(B, S, H, dh).transpose(1, 2)
            k = blk.k(h).view(B, S, H, dh).transpose(1, 2)
            v = blk.v(h).view(B, S, H, dh).transpose(1, 2)
            att = torch.softmax(q @ k.transpose(-1, -2) / dh, dim=-1)
            out = (att @ v).transpose(1, 2).reshape(B, S, d)
            h = h + self.branch(blk.o(out))
            h = h + self.branch(blk.mlp_out(torch.relu(blk.mlp_in(h))))
        last = h[:, -1]
        logits = last @ self.embed.T if self.tied else self.head(last)
        return logits / self.d


def ref_state(ref: Reference) -> dict:
    out = {"embed": ref.embed, "pos": ref.pos}
    for i, blk in enumerate(ref.blocks):
        for name in ("q", "k", "v", "o", "mlp_in", "mlp_out"):
            out[f"l{i}_{name}"] = getattr(blk, name).weight
    if not ref.tied:
        out["head"] = ref.head.weight
    return {k: v.detach().clone() for k, v in out.items()}


EVAL_ROWS = 256


def measure(ref: Reference, ms: ModelSettings, m, n, name: str, step: int, eval_dropout: bool):
    """Logits without dropout, or with dropout on: chunks of 256 examples, each masked from a fresh
    generator seeded with ``derive_seed(seed, f"eval_dropout/{name}/{step}/{start}")``."""
    if not (eval_dropout and ms.dropout > 0):
        return ref(m, n)
    out = []
    for s in range(0, len(m), EVAL_ROWS):
        gen = torch.Generator().manual_seed(derive_seed(ms.seed, f"eval_dropout/{name}/{step}/{s}"))
        ref.masks = lambda shp, gen=gen: dropout_mask(gen, (shp[0], shp[1] * shp[2]), ms.dropout, "cpu").view(shp)
        out.append(ref(m[s : s + EVAL_ROWS], n[s : s + EVAL_ROWS]))
    ref.masks = None
    return torch.cat(out)


def train_reference(shape, ms: ModelSettings, split, steps, loss, log_steps, eval_dropout=False):
    ref = Reference(shape.p, shape.d_model, shape.heads, shape.layers, shape.tie_embeddings, ms.seed)
    opt = torch.optim.AdamW(ref.parameters(), lr=ms.lr, betas=(0.9, 0.98), eps=1e-8, weight_decay=ms.weight_decay)
    labels, _ = split.train_labels(ms.corruption)
    tm, tn = torch.as_tensor(split.train_m), torch.as_tensor(split.train_n)
    y = torch.as_tensor(labels)
    gen = torch.Generator().manual_seed(derive_seed(ms.seed, "dropout")) if ms.dropout > 0 else None
    accs = []
    for step in range(1, steps + 1):
        ref.train()
        if gen is not None:
            ref.masks = lambda s: dropout_mask(gen, (s[0], s[1] * s[2]), ms.dropout, "cpu").view(s)
        out = ref(tm, tn)
        if loss == "mse":
            value = ((out - nn.functional.one_hot(y, shape.p).float()) ** 2).mean()
        else:
            value = nn.functional.cross_entropy(out, y)
        opt.zero_grad()
        value.backward()
        opt.step()
        ref.masks = None
        if step in log_steps:
            with torch.no_grad():
                tr = (measure(ref, ms, tm, tn, "train", step, eval_dropout).argmax(-1) == y).double().mean().item()
                te_out = measure(
                    ref, ms, torch.as_tensor(split.test_m), torch.as_tensor(split.test_n), "test", step, eval_dropout
                )
                te = (te_out.argmax(-1) == torch.as_tensor(split.test_labels)).double().mean().item()
            accs.append((tr, te))
    return ref_state(ref), np.asarray(accs)


@pytest.fixture(scope="module")
def split():
    return Universe.build("add", P).split(0.6)


CASES = {
    "1 layer": (TransformerShape(P, D, 4, 1), "mse", [ModelSettings(corruption=0.2, weight_decay=1.0, lr=3e-3)]),
    "2 layers tied": (
        TransformerShape(P, D, 2, 2, True),
        "mse",
        [ModelSettings(corruption=0.1, weight_decay=0.5, lr=3e-3, seed=4)],
    ),
    "dropout": (TransformerShape(P, D, 4, 2), "mse", [ModelSettings(corruption=0.2, dropout=0.3, lr=3e-3, seed=2)]),
    "cross-entropy": (TransformerShape(P, D, 4, 1), "ce", [ModelSettings(corruption=0.3, lr=3e-3, seed=3)]),
    "stack of 3": (
        TransformerShape(P, D, 4, 1),
        "mse",
        [
            ModelSettings(corruption=0.0, weight_decay=0.0, lr=3e-3, seed=1),
            ModelSettings(corruption=0.3, weight_decay=2.0, lr=1e-3, seed=7),
            ModelSettings(corruption=0.1, weight_decay=5.0, dropout=0.2, lr=3e-3, seed=9),
        ],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_engine_matches_nn_module_reference(case, split):
    shape, loss, models = CASES[case]
    settings = StackSettings(shape=shape, loss=loss, steps=STEPS, log_steps=LOG_STEPS)
    res = train(split, settings, models, device="cpu", progress=False)
    for k, ms in enumerate(models):
        ref, accs = train_reference(shape, ms, split, STEPS, loss, LOG_STEPS)
        assert set(ref) == set(res.params)
        for name, w in ref.items():
            np.testing.assert_allclose(res.params[name][k].numpy(), w.numpy(), rtol=1e-4, atol=1e-5, err_msg=name)
        np.testing.assert_array_equal(res.curves["train_acc"][:, k], accs[:, 0])
        np.testing.assert_array_equal(res.curves["test_acc"][:, k], accs[:, 1])
        moved = max(float((res.params[n][k] - res.init_params[n][k]).abs().max()) for n in ref)
        assert moved > 1e-2  # the comparison is not between two untrained models


def test_measured_with_dropout_on_matches_the_reference(split):
    """``eval_dropout``: the accuracies read with fresh dropout masks, per chunk of examples; a model
    without dropout reads as in eval mode, and the training is the same as without it."""
    shape = TransformerShape(P, D, 4, 2)
    models = [
        ModelSettings(corruption=0.2, dropout=0.3, lr=3e-3, seed=2),
        ModelSettings(corruption=0.1, weight_decay=1.0, lr=3e-3, seed=5),
    ]
    settings = StackSettings(shape=shape, steps=STEPS, log_steps=LOG_STEPS, eval_dropout=True)
    res = train(split, settings, models, device="cpu", progress=False)
    plain = train(split, replace(settings, eval_dropout=False), models, device="cpu", progress=False)
    for name, w in plain.params.items():
        assert torch.equal(res.params[name], w), name
    for k, ms in enumerate(models):
        _, accs = train_reference(shape, ms, split, STEPS, "mse", LOG_STEPS, eval_dropout=True)
        np.testing.assert_array_equal(res.curves["train_acc"][:, k], accs[:, 0])
        np.testing.assert_array_equal(res.curves["test_acc"][:, k], accs[:, 1])
    np.testing.assert_array_equal(res.curves["train_acc"][:, 1], plain.curves["train_acc"][:, 1])
    assert not np.array_equal(res.curves["train_loss"][:, 0], plain.curves["train_loss"][:, 0])


def test_initial_weights_are_the_specified_draw():
    shape = TransformerShape(P, D, 4, 2)
    params, buffers = transformer.init(shape, 5)
    ref = ref_state(Reference(P, D, 4, 2, False, 5))
    assert buffers == {} and list(params) == list(ref)
    for name in ref:
        assert torch.equal(params[name], ref[name]), name


def test_a_model_alone_equals_the_model_inside_a_stack(split):
    shape = TransformerShape(P, D, 4, 1)
    settings = StackSettings(shape=shape, steps=20, log_steps=(20,))
    models = [ModelSettings(corruption=0.1 * i, weight_decay=float(i), dropout=0.1, lr=3e-3, seed=i) for i in range(4)]
    stack = train(split, settings, models, device="cpu", progress=False)
    alone = train(split, settings, models[2:3], device="cpu", progress=False)
    for name, w in alone.params.items():
        np.testing.assert_allclose(stack.params[name][2].numpy(), w[0].numpy(), rtol=1e-5, atol=1e-6, err_msg=name)


def test_parameter_count_is_the_papers():
    """docs/paper.md §A3 (g): 209,024 non-embedding parameters (incl. the head) + 12,416 token + 256 position."""
    params, _ = transformer.init(TransformerShape(97, 128, 4, 1), 1)
    sizes = {k: v.numel() for k, v in params.items()}
    assert sizes.pop("embed") == 12_416 and sizes.pop("pos") == 256
    assert sum(sizes.values()) == 209_024
    tied, _ = transformer.init(TransformerShape(97, 128, 4, 1, True), 1)
    assert "head" not in tied


def test_output_scale_and_readout_position():
    """Logits are read at the last position and scaled by 1/d: doubling the head doubles the logits,
    and changing the first operand's token changes the output only through attention."""
    shape = TransformerShape(P, D, 4, 1)
    params, _ = transformer.init(shape, 3)
    stacked = {k: v.unsqueeze(0) for k, v in params.items()}
    x = torch.tensor([[1, 2], [3, 4]])
    base = transformer.forward(shape, stacked, {}, x, train=False)
    doubled = dict(stacked, head=2 * stacked["head"])
    torch.testing.assert_close(transformer.forward(shape, doubled, {}, x, train=False), 2 * base)
    ref = Reference(P, D, 4, 1, False, 3)
    torch.testing.assert_close(base[0], ref(x[:, 0], x[:, 1]).detach(), rtol=1e-5, atol=1e-6)


def test_embedding_ipr_reads_dimensions_over_tokens():
    shape = TransformerShape(P, 8, 4, 1)
    params, _ = transformer.init(shape, 1)
    tokens = torch.arange(P, dtype=torch.float32)
    params["embed"][:, 3] = torch.cos(2 * math.pi * 2 * tokens / P)
    ipr = transformer.neuron_ipr({k: v.unsqueeze(0) for k, v in params.items()})[0]
    assert ipr.shape == (8,) and float(ipr[3]) == pytest.approx(1.0, abs=1e-6)
    assert float(ipr[[0, 1, 2, 4, 5, 6, 7]].max()) < 0.6
    comps = transformer.ipr_components({k: v.unsqueeze(0) for k, v in params.items()})
    torch.testing.assert_close(comps["ipr_embed"][0], ipr)


def test_bad_shapes_name_the_key():
    with pytest.raises(ValueError, match="heads: 3 must divide d_model"):
        TransformerShape(P, 16, 3, 1)
    with pytest.raises(ValueError, match="layers"):
        TransformerShape(P, 16, 4, 0)


def test_no_decay_keeps_named_parameters_from_decaying(split):
    """``no_decay`` (an OPEN option, docs/paper.md §A5 decays every parameter) exempts parameters by name."""
    shape = TransformerShape(P, D, 4, 1)
    ms = [ModelSettings(corruption=0.2, weight_decay=50.0, lr=1e-3)]
    decayed = train(split, StackSettings(shape=shape, steps=20, log_steps=(20,)), ms, device="cpu", progress=False)
    kept = train(
        split,
        StackSettings(shape=shape, steps=20, log_steps=(20,), no_decay=("embed", "pos")),
        ms,
        device="cpu",
        progress=False,
    )
    norm0 = float(decayed.init_params["embed"].norm())
    assert float(decayed.params["embed"].norm()) < 0.5 * norm0 < float(kept.params["embed"].norm())
    with pytest.raises(ValueError, match=r"no_decay: \['emb'\] are not parameters"):
        train(
            split,
            StackSettings(shape=shape, steps=2, log_steps=(2,), no_decay=("emb",)),
            ms,
            device="cpu",
            progress=False,
        )
