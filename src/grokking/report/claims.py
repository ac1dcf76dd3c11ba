"""The claims report: the paper's claims turned into measurable checks on the regenerated results.

Each ``Claim`` names the figure it supports, says in words what the paper claims and what is measured,
and compares one measured number (or phase name) with a threshold. ``evaluate`` runs every claim
whose inputs exist in a ``Results`` view of ``results/<preset>/`` and returns one row per claim:
value, threshold, pass or fail. A claim whose input is missing fails with the reason, so a report
never passes by leaving something out. Thresholds can be overridden per claim id
(config ``claims.thresholds``).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import results
from ..layout import Layout
from . import verdicts

OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt, "==": operator.eq}


@dataclass(frozen=True)
class Claim:
    id: str
    figure: str
    claim: str  # what the paper says
    metric: str  # what is measured, in words
    op: str
    threshold: float | str
    measure: Callable  # Results -> float | str
    runs: tuple = ()  # inputs it reads, so that the workflow can list them
    grids: tuple = ()
    pruning: tuple = ()
    width_sweep: bool = False
    step: float | None = None  # smallest change of the value (1: a count of grid cells), for fragility
    unit: str = "grid cell"  # what one step is (verdicts.SETTLE)


class Results:
    """Read-only view of one preset's results directory (``results/<preset>``), through its layout.
    ``replicate`` (a robustness-study replicate's name suffix, e.g. ``~rep1``) reads that replicate's
    runs, grids, pruning sweeps and width sweep under the names the claims use."""

    def __init__(self, root, replicate: str = ""):
        self.root = Path(root)
        self.layout = Layout.of_results(root)
        self.replicate = replicate
        self._cache = {}

    def _get(self, key, load):
        if key not in self._cache:
            self._cache[key] = load()
        return self._cache[key]

    def run(self, name):
        return self._get(("run", name), lambda: results.load_run(self.layout.run_dir(name + self.replicate)))

    def grid(self, name) -> dict:
        return self._get(("grid", name), lambda: results.load_grid(self.layout.grid(name + self.replicate)))

    def model(self, ref):
        """A run (``ref`` is its name) or a grid's stored cell (``ref`` is ``(grid, panel index)``)."""
        if isinstance(ref, str):
            return self.run(ref)
        grid, panel = ref
        return results.grid_cell(self.grid(grid), panel)

    def pruning(self, name) -> dict:
        return self._get(("pruning", name), lambda: results.load_pruning(self.layout.pruning(name + self.replicate)))

    def width_sweep(self) -> dict:
        path = self.layout.width_sweep(".npz", self.replicate)
        return self._get(("width_sweep",), lambda: results.load_width_sweep(path))

    def data(self, name):
        """The dataset split and training labels a run was trained on."""
        spec = self.run(name).spec
        path = self.layout.dataset_of(spec)
        split = self._get(("split", path, spec["train_fraction"]), lambda: results.load_split(path, spec))
        return split, split.train_labels(spec["corruption"])


# --- measurements ------------------------------------------------------------------------------


def _summary(run, key):
    return lambda r: float(r.run(run).summary[key])


def _phase(run):
    return lambda r: r.run(run).summary["phase"]


def _min_test_corrupted(run):
    return lambda r: min(float(r.run(run).summary["test_acc"]), float(r.run(run).summary["corrupted_acc"]))


def _plateau_gap(run):
    """|final train accuracy - (1 - xi + xi/p)|: distance from the Full-Inversion plateau."""

    def f(r):
        s, spec = r.run(run).summary, r.run(run).spec
        return abs(float(s["train_acc"]) - (1 - spec["corruption"] + spec["corruption"] / spec["p"]))

    return f


def _ipr_mean_at(run, index):
    return lambda r: float(r.run(run).curves["ipr_mean"][index])


def _median_ipr(run):
    return lambda r: float(np.median(r.run(run).checkpoint["neuron_ipr"].numpy()))


def _ipr_median_steps(*runs):
    """Smallest step in median neuron IPR along the runs (positive: the IPR rises run after run)."""

    def f(r):
        med = [float(np.median(r.run(x).checkpoint["neuron_ipr"].numpy())) for x in runs]
        return min(b - a for a, b in zip(med, med[1:], strict=False))

    return f


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


def _gamma_ipr(run):
    def f(r):
        ck = r.run(run).checkpoint
        return spearman(ck["neuron_ipr"].numpy(), np.abs(ck["params"]["norm_weight"].numpy()))

    return f


def _norm_ratio(run):
    """Final / maximum Frobenius norm of W over training."""

    def f(r):
        w = np.asarray(r.run(run).curves["norm_w"], dtype=float)
        return float(w[-1] / np.nanmax(w))

    return f


def _low_pruning_corrupted(run, test_floor):
    """Lowest corrupted-subset accuracy reached, pruning lowest-IPR first, while test >= test_floor.

    If test accuracy is below the floor at every point (the network never generalized, as on the smoke
    preset), no memorization is shown to go while generalization stays: the value is 1, the largest
    accuracy (the minimum over no points), and the claim fails with a value instead of no value."""

    def f(r):
        d = r.pruning(run)
        ok = d["lowest_test_acc"] >= test_floor
        return float(np.min(d["lowest_corrupted_acc"][ok])) if ok.any() else 1.0

    return f


def _high_pruning_corrupted(run, test_ceiling):
    """Corrupted-subset accuracy when, pruning highest-IPR first, test accuracy first drops below a level."""

    def f(r):
        d = r.pruning(run)
        below = np.flatnonzero(d["highest_test_acc"] < test_ceiling)
        return float(d["highest_corrupted_acc"][below[0]]) if below.size else math.nan

    return f


def _logit_order(run, examples, corrupted_wins):
    """Fraction of the first corrupted examples (corrupted label != true) whose corrupted-label logit
    is above (``corrupted_wins``) or below the true-label logit."""

    def f(r):
        split, (labels, _) = r.data(run)
        idx = split.corrupted_examples(r.run(run).spec["corruption"], examples)
        if not len(idx):
            return math.nan
        z = r.run(run).logits(np.asarray(split.train_m)[idx], np.asarray(split.train_n)[idx])
        rows = np.arange(len(idx))
        wins = z[rows, labels[idx]] > z[rows, np.asarray(split.train_true)[idx]]
        return float(np.mean(wins if corrupted_wins else ~wins))

    return f


def _width_slope(r):
    """Log-log slope of the mean required neurons against width (least squares; 1 = linear growth)."""
    d = r.width_sweep()
    ok = np.isfinite(d["required_mean"]) & (d["required_mean"] > 0)
    if ok.sum() < 2:
        return math.nan
    return float(np.polyfit(np.log(d["widths"][ok]), np.log(d["required_mean"][ok]), 1)[0])


def _width_prunable_trend(r):
    """Spearman correlation of width and the mean prunable percentage."""
    d = r.width_sweep()
    ok = np.isfinite(d["prunable_pct_mean"])
    return spearman(d["widths"][ok], d["prunable_pct_mean"][ok]) if ok.sum() >= 2 else math.nan


def _width_generalized(r):
    """Smallest fraction of seeds, over widths, whose unpruned network meets the retention criterion."""
    d = r.width_sweep()
    return float(np.min(d["seeds_generalized"] / d["seeds_total"]))


def _grid_phases(*grids):
    def f(r):
        from ..phases import PHASES

        codes = np.concatenate([np.ravel(r.grid(g)["phase"]) for g in grids])
        return float(len({PHASES[int(c)] for c in codes}))

    return f


def _panel_phase_count(grid, panel_value, phase):
    def f(r):
        from ..phases import PHASE_CODES

        g = r.grid(grid)
        i = int(np.flatnonzero(np.isclose(np.asarray(g["panels"], dtype=float), float(panel_value)))[0])
        return float(np.sum(g["phase"][i] == PHASE_CODES[phase]))

    return f


def _panel_phase_gain(grid, low, high, phase):
    """Cells of ``phase`` in panel ``high`` minus those in panel ``low``."""
    return lambda r: _panel_phase_count(grid, high, phase)(r) - _panel_phase_count(grid, low, phase)(r)


def _outer_panel_gain(grid, phase):
    """Cells of ``phase`` in the grid's last panel minus its first (the panels in config order)."""

    def f(r):
        from ..phases import PHASE_CODES

        g = r.grid(grid)
        return float(np.sum(g["phase"][-1] == PHASE_CODES[phase]) - np.sum(g["phase"][0] == PHASE_CODES[phase]))

    return f


def _corner_phase(grid, panel_value):
    """Phase of the cell with the smallest alpha and the largest xi in one panel."""

    def f(r):
        from ..phases import PHASES

        g = r.grid(grid)
        i = int(np.flatnonzero(np.isclose(np.asarray(g["panels"], dtype=float), float(panel_value)))[0])
        return PHASES[int(g["phase"][i, -1, 0])]

    return f


def _median_ipr_of(model, component, init=False):
    """Median IPR of a run's or stored grid cell's ``component`` (``model``: see ``Results.model``)."""
    return lambda r: float(np.median(r.model(model).ipr(component, init=init)))


def _median_ipr_rise(run, component):
    """Median IPR of ``component`` at the end minus at initialization."""
    return lambda r: _median_ipr_of(run, component)(r) - _median_ipr_of(run, component, init=True)(r)


def _median_ipr_ratio(run, component, reference, ref_component="neuron_ipr"):
    """Median IPR of one run's ``component`` over the median of another run's ``ref_component``."""
    return lambda r: _median_ipr_of(run, component)(r) / _median_ipr_of(reference, ref_component)(r)


def _median_ipr_gaps(pairs, component):
    """Smallest median-IPR difference (second minus first) over (first, second) run pairs."""

    def f(r):
        return min(_median_ipr_of(b, component)(r) - _median_ipr_of(a, component)(r) for a, b in pairs)

    return f


def _gamma_ipr_layer(run, component, layer):
    """Spearman correlation of an IPR component and |gamma| of BatchNorm ``layer`` (-1 = the last one,
    right before the output layer) of a deep MLP."""

    def f(r):
        rr = r.run(run)
        i = int(rr.spec["depth"]) - 1 if layer == -1 else int(layer)
        return spearman(rr.ipr(component), np.abs(rr.params[f"bn{i}_weight"].numpy()))

    return f


def _grid_spec(r, grid) -> dict:
    import json

    return json.loads(r.grid(grid)["spec"])


def _best_panel_phase_gain(grid, phase):
    """Most cells of ``phase`` in any panel after the first, minus those in the first panel."""

    def f(r):
        from ..phases import PHASE_CODES

        counts = np.sum(r.grid(grid)["phase"] == PHASE_CODES[phase], axis=(1, 2))
        return float(counts[1:].max() - counts[0])

    return f


def _inversion_gain(grid):
    """Most Partial- or Full-Inversion cells of any panel after the first, minus those of the first."""

    def f(r):
        from ..phases import PHASE_CODES

        codes = [PHASE_CODES["Partial Inversion"], PHASE_CODES["Full Inversion"]]
        counts = np.sum(np.isin(r.grid(grid)["phase"], codes), axis=(1, 2))
        return float(counts[1:].max() - counts[0])

    return f


def _test_gain_beyond_noise(grid, z=2.0):
    """Largest test-accuracy gain of a panel after the first over the first panel at the same (alpha, xi),
    minus ``z`` standard errors of the difference of two accuracies on the grid's test set (binomial)."""

    def f(r):
        from ..data import IMAGE_SETS

        spec = _grid_spec(r, grid)
        n_test = IMAGE_SETS[spec["dataset"]].test_count(spec["train_pool"])
        acc = np.asarray(r.grid(grid)["test_acc"], dtype=float)  # [panel, xi, alpha]
        base, other = acc[:1], acc[1:]
        se = np.sqrt((base * (1 - base) + other * (1 - other)) / n_test)
        return float(np.nanmax(other - base - z * se))

    return f


def _outer_panel_accuracy_change(grid):
    """The larger of the mean changes of train and of test accuracy from the first panel to the last,
    over the cells (alpha, xi) of the grid: negative when the last panel lowers both on average."""

    def f(r):
        g = r.grid(grid)
        changes = [
            np.nanmean(np.asarray(g[k], dtype=float)[-1] - np.asarray(g[k], dtype=float)[0])
            for k in ("train_acc", "test_acc")
        ]
        return float(max(changes))

    return f


def _abs(measure):
    return lambda r: abs(measure(r))


def _outer_panel_moves(grid, before, after):
    """Cells whose phase is one of ``before`` in the grid's first panel and ``after`` in its last."""

    def f(r):
        from ..phases import PHASE_CODES

        g = r.grid(grid)
        was = np.isin(g["phase"][0], [PHASE_CODES[b] for b in before])
        return float(np.sum(was & (g["phase"][-1] == PHASE_CODES[after])))

    return f


def _panel_phase_excess(grid, baseline, others, phase):
    """Fewest cells of ``phase`` over the ``others`` panels minus the count in the ``baseline`` panel."""
    return lambda r: (
        min(_panel_phase_count(grid, v, phase)(r) for v in others) - _panel_phase_count(grid, baseline, phase)(r)
    )


# --- the claims -------------------------------------------------------------------------------

LOGIT_EXAMPLES = 4  # Fig 23: the first corrupted examples whose logits the claims read

# The stored models of the transformer_wd grid's example cell (keep_weights) at its low and high weight decay.
T_LOW, T_HIGH = ("transformer_wd", 0), ("transformer_wd", -1)

CLAIMS = (
    Claim(
        "coexistence",
        "Fig 1a",
        "Without regularization the network memorizes the corrupted labels and still generalizes (Coexistence)",
        "R1 (wd 0): min(test accuracy, corrupted-subset accuracy)",
        ">=",
        0.9,
        _min_test_corrupted("r1_wd0"),
        runs=("r1_wd0",),
    ),
    Claim(
        "partial_inversion",
        "Fig 1b",
        "Weight decay 5 forgets part of the corrupted labels while generalizing (Partial Inversion)",
        "R2 (wd 5): phase",
        "==",
        "Partial Inversion",
        _phase("r2_wd5"),
        runs=("r2_wd5",),
    ),
    Claim(
        "full_inversion_forgets",
        "Fig 1c",
        "Weight decay 15 ignores the corrupted labels (Full Inversion)",
        "R3 (wd 15): corrupted-subset accuracy",
        "<=",
        0.1,
        _summary("r3_wd15", "corrupted_acc"),
        runs=("r3_wd15",),
    ),
    Claim(
        "full_inversion_generalizes",
        "Fig 1c",
        "... and still generalizes",
        "R3 (wd 15): test accuracy",
        ">=",
        0.9,
        _summary("r3_wd15", "test_acc"),
        runs=("r3_wd15",),
    ),
    Claim(
        "two_stage_memorize",
        "Fig 1c",
        "Two-stage dynamics: training accuracy first reaches about 100 %",
        "R3 (wd 15): maximum training accuracy during training",
        ">=",
        0.95,
        _summary("r3_wd15", "max_train_acc"),
        runs=("r3_wd15",),
    ),
    Claim(
        "two_stage_plateau",
        "Fig 1c",
        "... then falls to the plateau 100(1 - xi + xi/p) %",
        "R3 (wd 15): |final train accuracy - (1 - xi + xi/p)|",
        "<=",
        0.03,
        _plateau_gap("r3_wd15"),
        runs=("r3_wd15",),
    ),
    Claim(
        "ipr_starts_low",
        "Fig 2",
        "At initialization the neurons are not periodic (IPR about 2/49)",
        "R4 (clean, wd 5): mean IPR after the first step",
        "<=",
        0.1,
        _ipr_mean_at("r4_clean", 0),
        runs=("r4_clean",),
    ),
    Claim(
        "ipr_rises_with_grokking",
        "Fig 2",
        "Generalization comes with periodic (high-IPR) neurons",
        "R4 (clean, wd 5): final mean IPR",
        ">=",
        0.5,
        _ipr_mean_at("r4_clean", -1),
        runs=("r4_clean",),
    ),
    Claim(
        "ipr_rises_with_wd",
        "Fig 4a",
        "More weight decay moves neurons from the low-IPR (memorizing) to the high-IPR (generalizing) mode",
        "smallest rise of the median neuron IPR from wd 0 to 5 to 15 (R1-R3)",
        ">",
        0.0,
        _ipr_median_steps("r1_wd0", "r2_wd5", "r3_wd15"),
        runs=("r1_wd0", "r2_wd5", "r3_wd15"),
    ),
    Claim(
        "ipr_rises_with_dropout",
        "Fig 4b",
        "So does dropout",
        "smallest rise of the median neuron IPR from dropout 0 to 0.3 to 0.6 (R1, R6, R7)",
        ">",
        0.0,
        _ipr_median_steps("r1_wd0", "r6_dp03", "r7_dp06"),
        runs=("r1_wd0", "r6_dp03", "r7_dp06"),
    ),
    Claim(
        "batchnorm_gamma_ipr",
        "Fig 5c",
        "BatchNorm down-weights the memorizing (low-IPR) neurons: |gamma_k| grows with IPR_k",
        "R9 (BatchNorm): Spearman correlation of |gamma_k| and IPR_k",
        ">",
        0.3,
        _gamma_ipr("r9_bn_a065"),
        runs=("r9_bn_a065",),
    ),
    Claim(
        "prune_low_ipr",
        "Fig 6",
        "Pruning low-IPR neurons removes memorization while generalization stays",
        "R1: lowest corrupted-subset accuracy, lowest-IPR first, while test accuracy >= 0.9 (1 if it never is)",
        "<=",
        0.2,
        _low_pruning_corrupted("r1_wd0", 0.9),
        runs=("r1_wd0",),
        pruning=("r1_wd0",),
    ),
    Claim(
        "prune_high_ipr",
        "Fig 6",
        "Pruning high-IPR neurons destroys generalization while memorization survives",
        "R1: corrupted-subset accuracy when test accuracy first drops below 0.5, highest-IPR first",
        ">=",
        0.8,
        _high_pruning_corrupted("r1_wd0", 0.5),
        runs=("r1_wd0",),
        pruning=("r1_wd0",),
    ),
    Claim(
        "forgetting",
        "Fig 8",
        "Weight decay 20: the network generalizes, then forgets everything",
        "R5 (wd 20): phase",
        "==",
        "Forgetting",
        _phase("r5_wd20"),
        runs=("r5_wd20",),
    ),
    Claim(
        "forgetting_norms",
        "Fig 8b",
        "... as the weight norms decay to zero",
        "R5 (wd 20): final / maximum Frobenius norm of W",
        "<=",
        0.1,
        _norm_ratio("r5_wd20"),
        runs=("r5_wd20",),
    ),
    Claim(
        "dropout_inverts",
        "Fig 19",
        "Dropout 0.6 ignores the corrupted labels and generalizes",
        "R7 (dropout 0.6): phase",
        "==",
        "Full Inversion",
        _phase("r7_dp06"),
        runs=("r7_dp06",),
    ),
    Claim(
        "dropout_confusion",
        "Fig 19",
        "Dropout 0.9 prevents learning (Confusion)",
        "R8 (dropout 0.9): phase",
        "==",
        "Confusion",
        _phase("r8_dp09"),
        runs=("r8_dp09",),
    ),
    Claim(
        "logits_coexistence",
        "Fig 23",
        "Coexistence: the corrupted label's logit is above the true one",
        "R1: fraction of the first 4 corrupted examples with corrupted logit > true logit",
        ">=",
        0.75,
        _logit_order("r1_wd0", LOGIT_EXAMPLES, True),
        runs=("r1_wd0",),
        step=1 / LOGIT_EXAMPLES,
        unit="example",
    ),
    Claim(
        "logits_full_inversion",
        "Fig 23",
        "Full Inversion: the corrupted label's logit is suppressed",
        "R3: fraction of the first 4 corrupted examples with corrupted logit < true logit",
        ">=",
        1.0,
        _logit_order("r3_wd15", LOGIT_EXAMPLES, False),
        runs=("r3_wd15",),
        step=1 / LOGIT_EXAMPLES,
        unit="example",
    ),
    Claim(
        "width_generalizes",
        "Fig 32",
        "The width-sweep networks (alpha 0.5, xi 0.35, wd 1) generalize",
        "smallest fraction of seeds, over widths, meeting the retention criterion before pruning",
        ">=",
        0.75,
        _width_generalized,
        width_sweep=True,
    ),
    Claim(
        "width_required_sublinear",
        "Fig 32a",
        "The neurons required to keep generalizing grow sub-linearly with width",
        "log-log slope of mean required neurons against width",
        "<",
        0.9,
        _width_slope,
        width_sweep=True,
    ),
    Claim(
        "width_prunable_grows",
        "Fig 32b",
        "So the prunable percentage of low-IPR neurons grows with width",
        "Spearman correlation of width and mean prunable percentage",
        ">=",
        0.6,
        _width_prunable_trend,
        width_sweep=True,
    ),
    Claim(
        "all_phases",
        "Fig 3",
        "Regularization produces six phases",
        "distinct phases in the weight-decay and dropout grids",
        "==",
        6.0,
        _grid_phases("wd", "dropout"),
        grids=("wd", "dropout"),
    ),
    Claim(
        "memorization_corner",
        "Fig 3a",
        "Little data and much corruption give Memorization",
        "wd 0 panel: phase at the smallest alpha and largest xi",
        "==",
        "Memorization",
        _corner_phase("wd", 0),
        grids=("wd",),
    ),
    Claim(
        "wd_opens_inversion",
        "Fig 3a",
        "Weight decay opens a Full-Inversion region",
        "Full-Inversion cells at wd 15 minus at wd 0",
        ">",
        0.0,
        _panel_phase_gain("wd", 0, 15, "Full Inversion"),
        grids=("wd",),
        step=1,
    ),
    Claim(
        "wd20_forgetting",
        "Fig 3a",
        "Weight decay 20 gives Forgetting",
        "Forgetting cells in the wd 20 panel",
        ">",
        0.0,
        _panel_phase_count("wd", 20, "Forgetting"),
        grids=("wd",),
        step=1,
    ),
    Claim(
        "dropout_09_confusion",
        "Fig 3b",
        "Dropout 0.9 gives Confusion",
        "Confusion cells in the dropout 0.9 panel",
        ">",
        0.0,
        _panel_phase_count("dropout", 0.9, "Confusion"),
        grids=("dropout",),
        step=1,
    ),
    # --- other architectures (Figs 7, 12-15) -----------------------------------------------------
    Claim(
        "transformer_wd_inverts",
        "Fig 7a",
        "Raising the Transformer's weight decay turns Coexistence / Memorization cells into Full Inversion",
        "cells Coexistence or Memorization at the low and Full Inversion at the high weight decay",
        ">",
        0.0,
        _outer_panel_moves("transformer_wd", ("Coexistence", "Memorization"), "Full Inversion"),
        grids=("transformer_wd",),
        step=1,
    ),
    Claim(
        "transformer_ipr_far_below_mlp",
        "Fig 7a",
        "Transformer embedding IPRs stay far below the 2-layer MLP's",
        "median embedding IPR of the high-wd Transformer / median neuron IPR of R3 (MLP, Full Inversion)",
        "<=",
        0.5,
        _median_ipr_ratio(T_HIGH, "ipr_embed", "r3_wd15"),
        runs=("r3_wd15",),
        grids=("transformer_wd",),
    ),
    Claim(
        "transformer_ipr_rises_from_init",
        "Fig 7a",
        "... but rise from initialization in the Full-Inversion example",
        "high-wd Transformer: median embedding IPR, final minus initial",
        ">",
        0.0,
        _median_ipr_rise(T_HIGH, "ipr_embed"),
        grids=("transformer_wd",),
    ),
    Claim(
        "transformer_ipr_rises_with_wd",
        "Fig 7a",
        "... and with weight decay",
        "median embedding IPR, high minus low weight-decay Transformer",
        ">",
        0.0,
        _median_ipr_gaps([(T_LOW, T_HIGH)], "ipr_embed"),
        grids=("transformer_wd",),
    ),
    Claim(
        "mlp3_wd_inverts",
        "Fig 7b",
        "Larger weight decay is essential for Full Inversion in the 3-layer MLP",
        "Full-Inversion cells of the 3-layer MLP, high minus low weight-decay panel",
        ">",
        0.0,
        _outer_panel_gain("mlp3_wd", "Full Inversion"),
        grids=("mlp3_wd",),
        step=1,
    ),
    Claim(
        "heads_raise_ipr",
        "Fig 12",
        "More heads favour higher embedding IPR",
        "smallest median embedding IPR gap, 8 minus 4 heads, over 1, 2, 4 layers and 4 tied layers",
        ">",
        0.0,
        _median_ipr_gaps(
            [
                ("t_h4_l1", "t_h8_l1"),
                ("t_h4_l2", "t_h8_l2"),
                ("t_h4_l4", "t_h8_l4"),
                ("t_h4_l4_tied", "t_h8_l4_tied"),
            ],
            "ipr_embed",
        ),
        runs=("t_h4_l1", "t_h8_l1", "t_h4_l2", "t_h8_l2", "t_h4_l4", "t_h8_l4", "t_h4_l4_tied", "t_h8_l4_tied"),
    ),
    Claim(
        "tying_lowers_ipr",
        "Fig 12",
        "Weight tying lowers the embedding IPR",
        "smallest median embedding IPR gap, 4 layers minus 4 tied layers, at 4 and 8 heads",
        ">",
        0.0,
        _median_ipr_gaps([("t_h4_l4_tied", "t_h4_l4"), ("t_h8_l4_tied", "t_h8_l4")], "ipr_embed"),
        runs=("t_h4_l4", "t_h4_l4_tied", "t_h8_l4", "t_h8_l4_tied"),
    ),
    Claim(
        "transformer_dropout_confusion",
        "Fig 13",
        "Transformer dropout above 0.1 grows Confusion",
        "fewest Confusion cells at dropout 0.3 and 0.5 minus those at dropout 0.1",
        ">",
        0.0,
        _panel_phase_excess("transformer_dropout", 0.1, (0.3, 0.5), "Confusion"),
        grids=("transformer_dropout",),
        step=1,
    ),
    Claim(
        "lazy_output_ipr",
        "Fig 14",
        "The lazier 3-layer MLP has higher output-layer IPR than the standard one",
        "median output-column IPR at the high weight decay (both invert), lazy minus standard init",
        ">",
        0.0,
        _median_ipr_gaps([(("mlp3_wd", -1), ("mlp3_lazy_wd", -1))], "ipr_out"),
        grids=("mlp3_wd", "mlp3_lazy_wd"),
    ),
    Claim(
        "images_wd_full_inversion",
        "Fig 16a",
        "On MNIST with corrupted labels, weight decay gives Full Inversion",
        "{dataset}: most Full-Inversion cells of a weight-decay panel minus those at weight decay 0",
        ">",
        0.0,
        _best_panel_phase_gain("images_wd", "Full Inversion"),
        grids=("images_wd",),
        step=1,
    ),
    Claim(
        "images_large_wd_confusion",
        "Fig 16a",
        "... and very large weight decay gives Confusion",
        "{dataset}: Confusion cells at the largest weight decay minus those at weight decay 0",
        ">",
        0.0,
        _outer_panel_gain("images_wd", "Confusion"),
        grids=("images_wd",),
        step=1,
    ),
    Claim(
        "images_dropout_no_inversion",
        "Fig 16b",
        "Dropout is ineffective against the corrupted labels: it gives no inversion",
        "{dataset}, {measured}: most Partial- or Full-Inversion cells of a dropout panel minus those at dropout 0",
        "<=",
        0.0,
        _inversion_gain("images_dropout"),
        grids=("images_dropout",),
        step=1,
    ),
    Claim(
        "images_dropout_no_gain",
        "Fig 16b",
        "Dropout does not help against the corrupted labels",
        "{dataset}, {measured}: largest test-accuracy gain of a dropout panel over dropout 0 at the same "
        "(alpha, xi), minus 2 standard errors of the difference on the test set",
        "<=",
        0.0,
        _test_gain_beyond_noise("images_dropout"),
        grids=("images_dropout",),
    ),
    Claim(
        "images_large_dropout_hurts",
        "Fig 16b",
        "... and large dropout hurts both train and test accuracy",
        "{dataset}, {measured}: the larger of the mean changes of train and of test accuracy from dropout 0 to "
        "the largest dropout, over the cells (alpha, xi)",
        "<",
        0.0,
        _outer_panel_accuracy_change("images_dropout"),
        grids=("images_dropout",),
    ),
    Claim(
        "mlp3_bn_gamma_output",
        "Fig 15",
        "With BatchNorm, output-layer column IPR correlates with |gamma| of the BatchNorm before it",
        "Spearman correlation of output-column IPR and |gamma| of the last BatchNorm",
        ">",
        0.3,
        _gamma_ipr_layer("m_bn", "ipr_out", -1),
        runs=("m_bn",),
    ),
    Claim(
        "mlp3_bn_gamma_input",
        "Fig 15",
        "... and the input side does not",
        "|Spearman correlation| of input-layer IPR and |gamma| of the first BatchNorm",
        "<",
        0.3,
        _abs(_gamma_ipr_layer("m_bn", "ipr_in", 1)),
        runs=("m_bn",),
    ),
)


def evaluate(
    results: Results,
    claims=CLAIMS,
    thresholds: dict | None = None,
    known_failures: dict | None = None,
    robustness: dict | None = None,
) -> list[dict]:
    """One row per claim: id, figure, claim, metric, value, op, threshold, passed (and error if any;
    ``known_failure``: the preset's stated reason when the claim is listed as failing there), with its
    margin and verdict (:mod:`.verdicts`). ``robustness`` (the study's ``claims``: id -> values and
    outcomes per seed) adds the noise, the seed count and UNRESOLVED verdicts."""
    rows = []
    for c in claims:
        row = measure(results, c, (thresholds or {}).get(c.id, c.threshold))
        study = (robustness or {}).get(c.id) or {}
        row = verdicts.with_noise(row, study.get("values"), study.get("holds"))
        row["fragile"] = verdicts.fragility(row, c.step, c.unit)
        if c.id in (known_failures or {}):
            row["known_failure"] = known_failures[c.id]
        diverged = _diverged_models(results, c)
        if diverged:
            row["diverged"] = diverged
        rows.append(row)
    return rows


def measure(results: Results, c: Claim, threshold=None) -> dict:
    """A claim's value on ``results`` against its threshold: id, figure, claim, metric, value, op,
    threshold, passed (and error when it cannot be measured)."""
    threshold = c.threshold if threshold is None else threshold
    row = {
        "id": c.id,
        "figure": c.figure,
        "claim": c.claim,
        "metric": _metric_text(results, c),
        "op": c.op,
        "threshold": threshold,
        "value": None,
        "passed": False,
    }
    try:
        value = c.measure(results)
    except (FileNotFoundError, KeyError, IndexError) as err:
        row["error"] = f"{type(err).__name__}: {err}"
    else:
        row["value"] = value
        if isinstance(value, float) and math.isnan(value):
            row["error"] = "not measurable (no qualifying point)"
        else:
            row["passed"] = bool(OPS[c.op](value, threshold))
    return row


def _diverged_models(results: Results, c: Claim) -> str:
    """Which models behind a claim diverged: they are in no phase, so phase counts leave them out."""
    notes = []
    for name in c.grids:
        try:
            at = results.grid(name).get("diverged_at_seeds")
        except (FileNotFoundError, KeyError):
            continue
        if at is not None and (at >= 0).any():
            notes.append(f"grid {name}: {int((at >= 0).sum())} of {at.size} models")
    for name in c.runs:
        try:
            step = results.run(name).summary.get("diverged_at")
        except FileNotFoundError:
            continue
        if step is not None:
            notes.append(f"run {name} at step {step}")
    return "; ".join(notes)


def _metric_text(results: Results, c: Claim) -> str:
    """The claim's metric, naming the dataset its first grid was trained on where it says ``{dataset}``
    and how that grid measured accuracy (in eval mode or with dropout on) where it says ``{measured}``."""
    if "{dataset}" not in c.metric and "{measured}" not in c.metric:
        return c.metric
    from ..data import dataset_title

    try:
        spec = _grid_spec(results, c.grids[0])
        words = {
            "dataset": dataset_title(spec),
            "measured": "accuracy with dropout on" if spec.get("eval_dropout") else "accuracy in eval mode",
        }
    except (FileNotFoundError, KeyError):
        words = {"dataset": "(dataset unknown: grid missing)", "measured": "(grid missing)"}
    text = c.metric
    for key, word in words.items():
        text = text.replace("{" + key + "}", word)
    return text


def unexpected_failures(rows: list[dict]) -> list[str]:
    """Ids of the claims whose verdict is FAIL and that the preset does not list as known failures."""
    return [r["id"] for r in rows if r["verdict"] == verdicts.FAIL and "known_failure" not in r]


def _fmt(x):
    if x is None:
        return "–"
    return f"{x:.3g}" if isinstance(x, float) else str(x)


def _cell(text) -> str:
    return str(text).replace("|", "\\|")


def _result_text(r: dict) -> str:
    """A row's verdict (PASS, FAIL with the error, UNRESOLVED), the preset's known-failure reason, the
    diverged models."""
    result = r["verdict"] + (f" ({r['error']})" if r.get("error") else "")
    if "known_failure" in r:
        result += f" (known {'failure' if not r['passed'] else 'failure, passes here'}: {r['known_failure']})"
    if r.get("diverged"):
        result += f" (diverged, in no phase: {r['diverged']})"
    return result


def _summary_line(rows: list[dict], skipped=()) -> str:
    n = verdicts.counts(rows)
    line = f"{n[verdicts.PASS]} of {len(rows)} claims pass, {n[verdicts.FAIL]} fail"
    line += f", {n[verdicts.UNRESOLVED]} unresolved (margin within the seed-to-seed noise)."
    n_known = sum(r["verdict"] != verdicts.PASS and "known_failure" in r for r in rows)
    if n_known:
        line += f" {n_known} of those that do not pass are known in this preset (the reason is in the row)."
    if not any(r.get("seeds") for r in rows):
        line += (
            " Noise not measured: the robustness study (`snakemake robustness`, README) retrains the claims' "
            "runs and grids with other seeds and gives each claim its noise and seed count."
        )
    if skipped:
        line += f" Not built in this preset: {', '.join(skipped)}."
    return line


def _seeds_text(r: dict) -> str:
    return f"{r['holds']} of {r['seeds']}" if r.get("seeds") else "–"


def _cells(r: dict) -> tuple:
    """(figure, claim, measured, value, test, margin, noise, holds for, result) of a row."""
    return (
        r["figure"],
        r["claim"],
        r["metric"],
        _fmt(r["value"]),
        f"{r['op']} {_fmt(r['threshold'])}",
        "–" if r.get("margin") is None else f"{r['margin']:+.3g}",
        _fmt(r.get("noise")),
        _seeds_text(r),
        _result_text(r),
    )


HEADERS = ("figure", "claim", "measured", "value", "test", "margin", "noise", "holds for (seeds)", "result")


def _fragile_lines(rows: list[dict]) -> list[str]:
    return [f"- `{r['id']}` ({r['figure']}): {r['fragile']}." for r in rows if r.get("fragile")]


def to_markdown(rows: list[dict], preset: str = "") -> str:
    lines = [
        f"# Claims report{f' ({preset} preset)' if preset else ''}",
        "",
        _summary_line(rows),
        "",
        "| " + " | ".join(HEADERS) + " |",
        "|" + "---|" * len(HEADERS),
    ]
    for r in rows:
        cells = list(_cells(r))
        if r["verdict"] != verdicts.PASS:
            cells[-1] = f"**{r['verdict']}**" + cells[-1][len(r["verdict"]) :]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    fragile = _fragile_lines(rows)
    if fragile:
        lines += ["", "## Fragile claims", "", *fragile]
    return "\n".join(lines) + "\n"


HTML_STYLE = """
body { font-family: system-ui, sans-serif; font-size: 14px; margin: 1em; color: #222; }
table { border-collapse: collapse; width: 100%; }
th, td { border: 1px solid #ccc; padding: 4px 6px; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
code { font-size: 12px; }
tr.pass td.result { color: #176317; font-weight: bold; }
tr.fail td.result { color: #a31515; font-weight: bold; }
tr.known td.result, tr.unresolved td.result { color: #8a5a00; }
"""


def to_html(rows: list[dict], preset: str = "", skipped=()) -> str:
    """The claims report as one self-contained page (inline style, no external file) for
    ``snakemake --report``: one table row per claim, with its id."""
    from html import escape

    title = f"Claims report ({preset} preset)" if preset else "Claims report"
    out = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        f'<head><meta charset="utf-8"><title>{escape(title)}</title><style>{HTML_STYLE}</style></head>',
        "<body>",
        f"<h1>{escape(title)}</h1>",
        f"<p>{escape(_summary_line(rows, skipped))}</p>",
        '<table id="claims">',
        "<thead><tr>" + "".join(f"<th>{h}</th>" for h in ("id", *HEADERS)) + "</tr></thead>",
        "<tbody>",
    ]
    for r in rows:
        css = {verdicts.PASS: "pass", verdicts.UNRESOLVED: "unresolved"}.get(r["verdict"], "fail")
        css = "known" if css != "pass" and "known_failure" in r else css
        kinds = ("", "", "", *[' class="num"'] * 5, ' class="result"')
        cells = [f"<td><code>{escape(r['id'])}</code></td>"]
        cells += [f"<td{k}>{escape(str(c))}</td>" for k, c in zip(kinds, _cells(r), strict=True)]
        out.append(f'<tr class="{css}" id="claim-{escape(r["id"])}">' + "".join(cells) + "</tr>")
    out += ["</tbody>", "</table>"]
    fragile = [r for r in rows if r.get("fragile")]
    if fragile:
        out += ['<h2 id="fragile">Fragile claims</h2>', "<ul>"]
        out += [
            f"<li><code>{escape(r['id'])}</code> ({escape(r['figure'])}): {escape(r['fragile'])}.</li>" for r in fragile
        ]
        out += ["</ul>"]
    out += ["</body>", "</html>", ""]
    return "\n".join(out)
