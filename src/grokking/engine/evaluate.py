"""Metrics of a stack of models on the whole training and test sets, in eval mode (docs/paper.md §A7), or with
dropout on (``eval_dropout``: fresh masks as in training, BatchNorm still on its running statistics)."""

from __future__ import annotations

import torch

from . import losses
from .dropout import EvalDropout
from .precision import autocast


def _eval_chunk_size(K, N, budget_bytes=256 * 2**20):
    return max(64, int(budget_bytes // (4 * max(1, K) * max(N, 1) * 3)))


@torch.no_grad()
def evaluate(family, shape, params, buffers, x, y, loss, chunk=None, precision="fp32", dropout=None, split=""):
    """Per-model loss (K,) against y, and the predicted classes (K, B); y is (B,) or (K, B). Eval mode,
    or with dropout on: ``dropout`` (an :class:`EvalDropout`) masks each chunk of ``EvalDropout.ROWS``
    examples of ``split`` (``train`` or ``test``)."""
    K = next(iter(params.values())).shape[0]
    params = getattr(family, "for_inference", dict)(params)  # what every chunk's forward derives, made once
    chunk = EvalDropout.ROWS if dropout else chunk or _eval_chunk_size(K, getattr(shape, "width", 512))
    per_model, preds = [], []
    B = x.shape[-2]
    for s in range(0, B, chunk):
        sl = slice(s, min(B, s + chunk))
        masks = dropout.chunk(split, s) if dropout else None
        with autocast(precision, x.device):
            logits = family.forward(shape, params, buffers, x[..., sl, :], train=False, dropout=masks).float()
        per_model.append(losses.per_model(logits, y[..., sl].expand(K, -1), loss) * (sl.stop - sl.start))
        preds.append(logits.argmax(-1))
    return torch.stack(per_model).sum(0) / B, torch.cat(preds, dim=1)


@torch.no_grad()
def metrics_row(family, settings, params, buffers, data, dropout: EvalDropout | None = None) -> dict:
    """One logged point of every model: accuracies on the training set (against its labels), its
    corrupted and uncorrupted parts, the test set and the full table; losses; norms; mean IPR.
    ``dropout``: this step's masks when the stack is measured with dropout on."""
    p = {k: v.detach() for k, v in params.items()}
    shape, loss = settings.shape, settings.loss
    fp = settings.precision
    train_loss, train_pred = evaluate(
        family, shape, p, buffers, data.train_x, data.train_y, loss, precision=fp, dropout=dropout, split="train"
    )
    test_loss, test_pred = evaluate(
        family, shape, p, buffers, data.test_x, data.test_y, loss, precision=fp, dropout=dropout, split="test"
    )
    train_ok, test_ok, true_ok = train_pred == data.train_y, test_pred == data.test_y, train_pred == data.true_y
    ok = train_ok.double()
    cm = data.corrupt_mask.double()
    n_c = cm.sum(1)
    n_u = (1 - cm).sum(1)
    n_all = train_ok.shape[1] + test_ok.shape[1]
    row = {
        "train_acc": ok.mean(1),
        "test_acc": test_ok.double().mean(1),
        "corrupted_acc": (ok * cm).sum(1) / n_c,  # NaN when nothing is corrupted
        "uncorrupted_acc": (ok * (1 - cm)).sum(1) / n_u,
        "full_acc": (true_ok.double().sum(1) + test_ok.double().sum(1)) / n_all,
        "train_loss": train_loss,
        "test_loss": test_loss,
    }
    row.update(family.weight_norms(p))
    row["ipr_mean"] = family.neuron_ipr(p, settings.ipr_mode).mean(1)
    return row
