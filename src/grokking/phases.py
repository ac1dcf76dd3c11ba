"""The phase classifier: docs/paper.md §A10 (Table 2) as an ordered decision list, plus Forgetting vs Confusion.

Accuracies are fractions in [0, 1]. First match wins; comparisons are inclusive:

1. test >= 0.9 and train >= 0.9                 -> Coexistence
2. test >= 0.9 and train >= (1.05 - xi)         -> Partial Inversion
3. test >= 0.9                                  -> Full Inversion
4. train >= 0.9                                 -> Memorization
5. max test accuracy during training >= 0.9     -> Forgetting (it generalized, then collapsed)
6. otherwise                                    -> Confusion

A model whose loss stopped being finite (the engine records the step; its metrics are NaN from there)
is not classified: its phase is Diverged.
"""

from __future__ import annotations

import numpy as np

PHASES = ("Coexistence", "Partial Inversion", "Full Inversion", "Memorization", "Forgetting", "Confusion", "Diverged")
PAPER_PHASES = PHASES[:-1]  # the six of the paper's Table 2; Diverged marks a failed run, not a phase
PHASE_CODES = {name: i for i, name in enumerate(PHASES)}
# One colour per phase, used by every figure.
PHASE_COLORS = {
    "Coexistence": "#2ca02c",
    "Partial Inversion": "#1f77b4",
    "Full Inversion": "#9467bd",
    "Memorization": "#d62728",
    "Forgetting": "#ff7f0e",
    "Confusion": "#7f7f7f",
    "Diverged": "#000000",
}
DEFAULTS = {"accuracy_threshold": 0.9, "inversion_slack": 1.05, "forgetting_threshold": 0.9}


def rules(overrides: dict | None = None) -> dict:
    """The phase rules in use: ``DEFAULTS`` overlaid by the config's ``phases`` keys."""
    return dict(DEFAULTS, **(overrides or {}))


def classify(
    train_acc,
    test_acc,
    corruption,
    max_test_acc=None,
    *,
    accuracy_threshold=0.9,
    inversion_slack=1.05,
    forgetting_threshold=0.9,
):
    """Phase name(s) for final accuracies; works on scalars and on numpy arrays (broadcast).

    ``max_test_acc`` (running maximum over training) separates Forgetting from Confusion; without it
    the fifth row is reported as Confusion only if the final test accuracy never reached the
    threshold, which is all the final step can tell. NaN accuracies (a diverged model) give Diverged.
    """
    train = np.asarray(train_acc, dtype=float)
    test = np.asarray(test_acc, dtype=float)
    xi = np.asarray(corruption, dtype=float)
    best = test if max_test_acc is None else np.asarray(max_test_acc, dtype=float)
    # Inclusive comparisons, robust to binary rounding of the thresholds (1.05 - 0.35 = 0.7000000000000001).
    tol = 1e-9
    gen = test >= accuracy_threshold - tol
    conds = [
        gen & (train >= accuracy_threshold - tol),
        gen & (train >= inversion_slack - xi - tol),
        gen,
        train >= accuracy_threshold - tol,
        best >= forgetting_threshold - tol,
    ]
    codes = np.select([np.isnan(train) | np.isnan(test), *conds], [6, 0, 1, 2, 3, 4], default=5)
    if np.ndim(codes) == 0:
        return PHASES[int(codes)]
    return np.asarray(PHASES, dtype=object)[codes]
