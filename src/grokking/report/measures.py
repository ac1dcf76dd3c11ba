"""The claims' measures: each a function of a :class:`~.results_view.Results` view ``r`` and keyword
arguments, registered under its name (:mod:`.measure_registry`, which also says how the names of the
arguments give a claim's inputs), that returns one number or a phase name."""

from __future__ import annotations

import math

import numpy as np

from ..phases import PHASE_CODES, PHASES
from ..stats import spearman
from .measure_registry import MEASURES, register

__all__ = ["MEASURES", "spearman"]


# --- runs ------------------------------------------------------------------------------------


@register
def summary(r, run, key):
    """A number of the run's summary."""
    return float(r.run(run).summary[key])


@register
def phase(r, run):
    return r.run(run).summary["phase"]


@register
def min_test_corrupted(r, run):
    return min(float(r.run(run).summary["test_acc"]), float(r.run(run).summary["corrupted_acc"]))


@register
def plateau_gap(r, run):
    """|final train accuracy - (1 - xi + xi/p)|: distance from the Full-Inversion plateau."""
    s, spec = r.run(run).summary, r.run(run).spec
    return abs(float(s["train_acc"]) - (1 - spec["corruption"] + spec["corruption"] / spec["p"]))


@register
def ipr_mean_at(r, run, index):
    return float(r.run(run).curves["ipr_mean"][index])


@register
def ipr_median_steps(r, runs):
    """Smallest step in median neuron IPR along the runs (positive: the IPR rises run after run)."""
    med = [float(np.median(r.run(x).checkpoint["neuron_ipr"].numpy())) for x in runs]
    return min(b - a for a, b in zip(med, med[1:], strict=False))


@register
def gamma_ipr(r, run):
    """Spearman correlation of the neurons' IPR and |gamma| of the 2-layer MLP's BatchNorm."""
    ck = r.run(run).checkpoint
    return spearman(ck["neuron_ipr"].numpy(), np.abs(ck["params"]["norm_weight"].numpy()))


@register
def norm_ratio(r, run):
    """Final / maximum Frobenius norm of W over training."""
    w = np.asarray(r.run(run).curves["norm_w"], dtype=float)
    return float(w[-1] / np.nanmax(w))


@register
def logit_order(r, run, examples, corrupted_wins):
    """Fraction of the first corrupted examples (corrupted label != true) whose corrupted-label logit
    is above (``corrupted_wins``) or below the true-label logit."""
    split, (labels, _) = r.data(run)
    idx = split.corrupted_examples(r.run(run).spec["corruption"], examples)
    if not len(idx):
        return math.nan
    z = r.run(run).logits(np.asarray(split.train_m)[idx], np.asarray(split.train_n)[idx])
    rows = np.arange(len(idx))
    wins = z[rows, labels[idx]] > z[rows, np.asarray(split.train_true)[idx]]
    return float(np.mean(wins if corrupted_wins else ~wins))


@register
def gamma_ipr_layer(r, run, component, layer, absolute=False):
    """Spearman correlation (``absolute``: its absolute value) of an IPR component and |gamma| of
    BatchNorm ``layer`` (-1 = the last one, right before the output layer) of a deep MLP."""
    rr = r.run(run)
    i = int(rr.spec["depth"]) - 1 if layer == -1 else int(layer)
    rho = spearman(rr.ipr(component), np.abs(rr.params[f"bn{i}_weight"].numpy()))
    return abs(rho) if absolute else rho


# --- pruning and the width sweep -------------------------------------------------------------


@register
def low_pruning_corrupted(r, pruning, test_floor):
    """Lowest corrupted-subset accuracy reached, pruning lowest-IPR first, while test >= test_floor.

    If test accuracy is below the floor at every point (the network never generalized, as on the smoke
    preset), no memorization is shown to go while generalization stays: the value is 1, the largest
    accuracy (the minimum over no points), and the claim fails with a value instead of no value."""
    d = r.pruning(pruning)
    ok = d["lowest_test_acc"] >= test_floor
    return float(np.min(d["lowest_corrupted_acc"][ok])) if ok.any() else 1.0


@register
def high_pruning_corrupted(r, pruning, test_ceiling):
    """Corrupted-subset accuracy when, pruning highest-IPR first, test accuracy first drops below a level."""
    d = r.pruning(pruning)
    below = np.flatnonzero(d["highest_test_acc"] < test_ceiling)
    return float(d["highest_corrupted_acc"][below[0]]) if below.size else math.nan


@register(width_sweep=True)
def width_slope(r):
    """Log-log slope of the mean required neurons against width (least squares; 1 = linear growth)."""
    d = r.width_sweep()
    ok = np.isfinite(d["required_mean"]) & (d["required_mean"] > 0)
    if ok.sum() < 2:
        return math.nan
    return float(np.polyfit(np.log(d["widths"][ok]), np.log(d["required_mean"][ok]), 1)[0])


@register(width_sweep=True)
def width_prunable_trend(r):
    """Spearman correlation of width and the mean prunable percentage."""
    d = r.width_sweep()
    ok = np.isfinite(d["prunable_pct_mean"])
    return spearman(d["widths"][ok], d["prunable_pct_mean"][ok]) if ok.sum() >= 2 else math.nan


@register(width_sweep=True)
def width_generalized(r):
    """Smallest fraction of seeds, over widths, whose unpruned network meets the retention criterion."""
    d = r.width_sweep()
    return float(np.min(d["seeds_generalized"] / d["seeds_total"]))


# --- models: runs or grid cells --------------------------------------------------------------


def _median_ipr(r, model, component, init=False):
    """Median IPR of a run's or stored grid cell's ``component`` (``model``: see ``Results.model``)."""
    return float(np.median(r.model(model).ipr(component, init=init)))


@register
def median_ipr_rise(r, model, component):
    """Median IPR of ``component`` at the end minus at initialization."""
    return _median_ipr(r, model, component) - _median_ipr(r, model, component, init=True)


@register
def median_ipr_ratio(r, model, component, reference, reference_component="neuron_ipr"):
    """Median IPR of one model's ``component`` over the median of another's ``reference_component``."""
    return _median_ipr(r, model, component) / _median_ipr(r, reference, reference_component)


@register
def median_ipr_gaps(r, pairs, component):
    """Smallest median-IPR difference (second minus first) over (first, second) model pairs."""
    return min(_median_ipr(r, b, component) - _median_ipr(r, a, component) for a, b in pairs)


# --- grids -----------------------------------------------------------------------------------


def _panel(g: dict, value) -> int:
    """The index of the grid's panel whose value is ``value``."""
    return int(np.flatnonzero(np.isclose(np.asarray(g["panels"], dtype=float), float(value)))[0])


@register
def grid_phases(r, grids):
    """Distinct phases over the grids' cells."""
    codes = np.concatenate([np.ravel(r.grid(g)["phase"]) for g in grids])
    return float(len({PHASES[int(c)] for c in codes}))


@register
def panel_phase_count(r, grid, panel, phase):
    """Cells of ``phase`` in the panel whose value is ``panel``."""
    g = r.grid(grid)
    return float(np.sum(g["phase"][_panel(g, panel)] == PHASE_CODES[phase]))


@register
def panel_phase_gain(r, grid, low, high, phase):
    """Cells of ``phase`` in panel ``high`` minus those in panel ``low``."""
    return panel_phase_count(r, grid, high, phase) - panel_phase_count(r, grid, low, phase)


@register
def panel_phase_excess(r, grid, baseline, others, phase):
    """Fewest cells of ``phase`` over the ``others`` panels minus the count in the ``baseline`` panel."""
    return min(panel_phase_count(r, grid, v, phase) for v in others) - panel_phase_count(r, grid, baseline, phase)


@register
def outer_panel_gain(r, grid, phase):
    """Cells of ``phase`` in the grid's last panel minus its first (the panels in config order)."""
    g = r.grid(grid)
    return float(np.sum(g["phase"][-1] == PHASE_CODES[phase]) - np.sum(g["phase"][0] == PHASE_CODES[phase]))


@register
def outer_panel_moves(r, grid, before, after):
    """Cells whose phase is one of ``before`` in the grid's first panel and ``after`` in its last."""
    g = r.grid(grid)
    was = np.isin(g["phase"][0], [PHASE_CODES[b] for b in before])
    return float(np.sum(was & (g["phase"][-1] == PHASE_CODES[after])))


@register
def corner_phase(r, grid, panel):
    """Phase of the cell with the smallest alpha and the largest xi in the panel whose value is ``panel``."""
    g = r.grid(grid)
    return PHASES[int(g["phase"][_panel(g, panel), -1, 0])]


@register
def best_panel_phase_gain(r, grid, phase):
    """Most cells of ``phase`` in any panel after the first, minus those in the first panel."""
    counts = np.sum(r.grid(grid)["phase"] == PHASE_CODES[phase], axis=(1, 2))
    return float(counts[1:].max() - counts[0])


@register
def inversion_gain(r, grid):
    """Most Partial- or Full-Inversion cells of any panel after the first, minus those of the first."""
    codes = [PHASE_CODES["Partial Inversion"], PHASE_CODES["Full Inversion"]]
    counts = np.sum(np.isin(r.grid(grid)["phase"], codes), axis=(1, 2))
    return float(counts[1:].max() - counts[0])


def grid_spec(r, grid) -> dict:
    """The training settings a grid was made with."""
    import json

    return json.loads(r.grid(grid)["spec"])


@register
def test_gain_beyond_noise(r, grid, z=2.0):
    """Largest test-accuracy gain of a panel after the first over the first panel at the same (alpha, xi),
    minus ``z`` standard errors of the difference of two accuracies on the grid's test set (binomial)."""
    from ..data import IMAGE_SETS

    spec = grid_spec(r, grid)
    n_test = IMAGE_SETS[spec["dataset"]].test_count(spec["train_pool"])
    acc = np.asarray(r.grid(grid)["test_acc"], dtype=float)  # [panel, xi, alpha]
    base, other = acc[:1], acc[1:]
    se = np.sqrt((base * (1 - base) + other * (1 - other)) / n_test)
    return float(np.nanmax(other - base - z * se))


@register
def outer_panel_accuracy_change(r, grid):
    """The larger of the mean changes of train and of test accuracy from the first panel to the last,
    over the cells (alpha, xi) of the grid: negative when the last panel lowers both on average."""
    g = r.grid(grid)
    changes = [
        np.nanmean(np.asarray(g[k], dtype=float)[-1] - np.asarray(g[k], dtype=float)[0])
        for k in ("train_acc", "test_acc")
    ]
    return float(max(changes))
