"""The cells every figure notebook shares: load the figure's inputs and print one line per input.

A figure notebook (``workflow/notebooks/*.ipynb``) gets paths from its papermill parameters, loads
them with one of these functions and plots; the one-line summaries end up in the executed notebook
(``results/<preset>/notebooks/``) and the job's log, so a figure can be checked against its numbers
without opening the results::

    from grokking.report import notebook as shared
    R = shared.load_runs(runs)          # {panel: Run}, one summary line per panel
    G = shared.load_grids(grids)        # {row: grid}, one line per grid with its phase counts

Nothing here plots (that is :mod:`grokking.report.plotting`) or computes metrics.
"""

from __future__ import annotations

import json

import numpy as np

from .. import results
from ..experiments.widths import describe_retention, full_retention

__all__ = [
    "load_runs",
    "run_line",
    "setting_text",
    "load_grids",
    "grid_line",
    "phase_counts",
    "load_pruning",
    "load_width_sweep",
    "width_retention",
    "describe_retention",
    "width_lines",
]


# --- single runs ---------------------------------------------------------------------------------
def run_line(panel, run) -> str:
    """One line per run: its name, final accuracies and phase."""
    s = run.summary
    return (
        f"({panel}) {run.spec['name']:<12} train {s['train_acc']:.3f}  test {s['test_acc']:.3f}  "
        f"corrupted {s['corrupted_acc']:.3f}  max test {s['max_test_acc']:.3f}  -> {s['phase']}"
    )


def load_runs(runs: dict, *, echo: bool = True) -> dict:
    """``{panel: run directory}`` -> ``{panel: Run}``, printing :func:`run_line` for each panel."""
    loaded = {panel: results.load_run(path) for panel, path in runs.items()}
    if echo:
        for panel, run in loaded.items():
            print(run_line(panel, run))
    return loaded


def setting_text(template: str, run) -> str:
    """A panel's setting text: ``template`` formatted with the run's resolved spec, e.g.
    ``"weight decay {weight_decay:g}"`` -> ``"weight decay 5"``."""
    return template.format(**run.spec)


# --- phase-diagram grids -------------------------------------------------------------------------
def phase_counts(grid: dict) -> np.ndarray:
    """Number of cells of the grid (all panels) in each phase, indexed like ``grid['phase_names']``."""
    return np.bincount(np.asarray(grid["phase"]).ravel(), minlength=len(grid["phase_names"]))


def grid_line(row, grid: dict) -> str:
    """One line per grid: its name, size and the cells in each phase that occurs."""
    counts = phase_counts(grid)
    return (
        f"({row}) grid {grid['grid']}: {grid['phase'].shape[0]} panels x {len(grid['corruptions'])} xi x "
        f"{len(grid['train_fractions'])} alpha; "
        + ", ".join(f"{n} {c}" for n, c in zip(grid["phase_names"], counts, strict=True) if c)
    )


def load_grids(grids: dict, *, echo: bool = True) -> dict:
    """``{row: merged grid .npz}`` -> ``{row: grid dict}``, printing :func:`grid_line` for each."""
    loaded = {row: results.load_grid(path) for row, path in grids.items()}
    if echo:
        for row, grid in loaded.items():
            print(grid_line(row, grid))
    return loaded


# --- analyses ------------------------------------------------------------------------------------
def load_pruning(pruning: dict) -> dict:
    """``{panel: pruning sweep .npz}`` -> ``{panel: dict of arrays}`` (both IPR orders)."""
    return {panel: results.load_pruning(path) for panel, path in pruning.items()}


def width_retention(sweep: dict) -> dict:
    """The retention criterion the width sweep was summarized with, defaults filled in."""
    return full_retention(json.loads(str(sweep["retention"])))


def width_lines(sweep: dict) -> list[str]:
    """The retention criterion, then one line per width: seeds that generalize, required and prunable."""
    lines = [f"retention: {describe_retention(width_retention(sweep))}"]
    for i, w in enumerate(sweep["widths"]):
        lines.append(
            f"width {w:>6}: {sweep['seeds_generalized'][i]}/{sweep['seeds_total'][i]} seeds generalize; "
            f"required {sweep['required_mean'][i]:8.1f} +- {sweep['required_se'][i]:6.1f}; "
            f"prunable {sweep['prunable_pct_mean'][i]:5.1f} %"
        )
    return lines


def load_width_sweep(path, *, echo: bool = True) -> dict:
    """The Fig 32 summary (``analysis/width_sweep.npz``), printing :func:`width_lines`."""
    sweep = results.load_width_sweep(path)
    if echo:
        print("\n".join(width_lines(sweep)))
    return sweep
