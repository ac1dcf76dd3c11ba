"""Final metrics and phase of trained models: one function for single runs, grid cells and seeds.

``max_test_acc`` / ``max_train_acc`` are the maxima over the *logged* points (step 1 and every
steps/100 steps for runs, steps/curve_points for grid cells), i.e. docs/paper.md §A7's running maximum
sampled on the log schedule: a peak that rises above the Forgetting threshold and falls back between
two logged steps is not seen. Evaluating every step would cost more than training.
"""

from __future__ import annotations

import warnings

import numpy as np

from .. import phases

NOT_FINAL = ("batch_loss", "step", "neuron_ipr")


def final_keys(curves) -> list[str]:
    """The curve metrics that a summary reports at the last logged step, in the curves' order."""
    return [k for k in curves if k not in NOT_FINAL]


def summarize(curves: dict, corruption, rules: dict | None = None) -> dict:
    """Final metrics, maxima over training and the phase, from curves indexed (step, ...).

    Works on one model (curves of shape (T,), scalars out) and on many ((T, K), arrays (K,) out);
    ``corruption`` is xi, broadcast against the models. Phase rules: ``phases.rules(rules)``. A model
    that diverged (NaN final accuracies) has the phase Diverged.
    """
    rules = phases.rules(rules)
    out = {k: np.asarray(curves[k])[-1] for k in final_keys(curves)}
    with warnings.catch_warnings():  # a model that diverged at the first logged step has no maximum
        warnings.simplefilter("ignore", RuntimeWarning)
        out["max_test_acc"] = np.nanmax(np.asarray(curves["test_acc"]), axis=0)
        out["max_train_acc"] = np.nanmax(np.asarray(curves["train_acc"]), axis=0)
    out["phase"] = phases.classify(out["train_acc"], out["test_acc"], corruption, out["max_test_acc"], **rules)
    return out
