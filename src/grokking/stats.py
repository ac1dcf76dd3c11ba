"""Statistics shared by the claims, the studies and the figures (numpy only: the DAG imports the claims)."""

from __future__ import annotations

import math

import numpy as np


def _ranks(x):
    """Ranks with ties averaged (so that a constant series has no spurious order)."""
    x = np.asarray(x, dtype=float)
    ranks = np.empty(len(x))
    ranks[np.argsort(x, kind="stable")] = np.arange(len(x))
    for v in np.unique(x):
        ranks[x == v] = ranks[x == v].mean()
    return ranks


def spearman(x, y):
    """Spearman rank correlation; NaN when either series is constant."""
    rx, ry = _ranks(x), _ranks(y)
    if np.ptp(rx) == 0 or np.ptp(ry) == 0:
        return math.nan
    return float(np.corrcoef(rx, ry)[0, 1])
