"""The results explorer's size, from a preset's config alone: the page of random values in the shapes of
the preset's results, checked against the paper preset's budget by tests/test_explorer.py.

Kept apart from :mod:`grokking.report.explorer` (which the ``explorer`` job runs) because it reads the grid
plan: editing that should not rebuild a page.
"""

from __future__ import annotations

import json

import numpy as np

from ..phases import PHASES
from ..runspec import cell_spec, grid_settings, resolve_run
from .explorer_data import (
    CURVES,
    FINALS,
    IPR_QUANTILES,
    PRUNING_CURVES,
    claim_inputs,
    contents,
    grid_title,
    panel_label,
    panel_names,
    run_title,
)

# The paper preset's page may be at most this large (bytes).
SIZE_BUDGET = 24 * 2**20
LONGEST_PHASE = max(PHASES, key=len)
LONGEST_NUMBER = -1.2345678e-05


def size_estimate(config: dict) -> int:
    """The size in bytes of a preset's page from its config alone: the page of :func:`synthetic` results
    (random values in the results' shapes, which compress less than real ones, every text in its longest
    form), so at least that of the real page."""
    from .explorer import page

    return len(page(synthetic(config)).encode())


def synthetic(config: dict, seed: int = 0) -> dict:
    """A page's worth of random values in the shapes that the preset's results will have: grids of its
    panels x xi x alpha with ``curve_points + 1`` points per curve, runs logged at their schedule, pruning of
    every neuron, every (width, seed) of the sweep, and every claim of the claims file. Random float32
    values hardly compress, and every text takes its longest form (the longest phase name, numbers that
    print as ``-1.235e-05``), so a page of them is at least as large as one of real results."""
    from ..experiments.gridplan import kept
    from .claims import CLAIMS

    rng = np.random.default_rng(seed)
    what = contents(config)
    grids = []
    for name, figs in what["grids"].items():
        s = grid_settings(config, name)
        P, X, A = len(s["panels"]), len(s["corruptions"]), len(s["train_fractions"])
        T, Q = int(s["curve_points"]) + 1, len(IPR_QUANTILES)
        spec = cell_spec(config, name, s["panels"][0], s["train_fractions"][0], s["corruptions"][0])
        stored = [(x, a) for x in range(X) for a in range(A) if kept(config, name, {"xi": x, "alpha": a})]
        cells = {f"{p}_{x}_{a}": {"init": rng.random(64), "final": rng.random(64)} for p in range(P) for x, a in stored}
        grids.append(
            {
                "name": name,
                "figures": figs,
                "title": grid_title({k: v for k, v in spec.items() if k != s["panel_key"]}, s["panel_key"]),
                "panel_key": s["panel_key"],
                "panel_label": panel_label(s["panel_key"]),
                "panels": [float(v) for v in s["panels"]],
                "panel_names": panel_names(s["panel_key"], s["panels"]),
                "alphas": [float(v) for v in s["train_fractions"]],
                "xis": [float(v) for v in s["corruptions"]],
                "seeds": len(s.get("seeds") or [None]),
                "metrics": list(CURVES),
                "phase": np.full((P, X, A), PHASES.index(LONGEST_PHASE), np.int32),
                "diverged": np.zeros((P, X, A), np.int32),
                "finals": rng.random((P, X, A, len(FINALS)), dtype=np.float32),
                "curves": rng.random((P, X, A, len(CURVES), T), dtype=np.float32),
                "steps": rng.integers(1, 2**20, (P, A, T)).astype(np.int32),
                "ipr": rng.random((P, X, A, Q), dtype=np.float32),
                "kept": cells,
                "code_version": "0123456789ab-dirty",
            }
        )
    runs = []
    for name, figs in what["runs"].items():
        spec = resolve_run(config, name)
        every = spec["log_every"] or max(1, spec["steps"] // 100)  # the engine's log schedule, counted
        T = len({1, spec["steps"], *range(every, spec["steps"] + 1, every)})
        runs.append(
            {
                "name": name,
                "figures": figs,
                "title": run_title(spec),
                "phase": LONGEST_PHASE,
                "finals": {k: 1.0 if k.endswith("_acc") else LONGEST_NUMBER for k in FINALS},
                "ipr_quantiles": {str(q): LONGEST_NUMBER for q in IPR_QUANTILES},
                "steps": rng.integers(1, 2**20, T).astype(np.int32),
                "curves": {k: rng.random(T, dtype=np.float32) for k in CURVES},
            }
        )
    pruning = []
    for name, figs in what["pruning"].items():
        spec = resolve_run(config, name)
        N = int(spec["width"])
        entry = {"name": name, "figures": figs, "title": run_title(spec), "pruned": np.arange(N, dtype=np.int32)}
        for order in ("lowest", "highest"):
            entry[order] = {k: rng.random(N, dtype=np.float32) for k in PRUNING_CURVES}
        pruning.append(entry)
    width = None
    if what["width_sweep"]:
        ws = config["width_sweep"]
        W, S = len(ws["widths"]), int(ws["seeds"])
        width = {k: rng.random(W) for k in ("required_mean", "required_se", "prunable_pct_mean", "prunable_pct_se")}
        width.update({k: rng.random(W * S) for k in ("row_required", "row_prunable", "row_final_test_acc")})
        width.update(widths=np.asarray(ws["widths"]), seeds_total=np.full(W, S), seeds_generalized=np.full(W, S))
        width.update(row_width=np.repeat(ws["widths"], S), row_seed=np.tile(np.arange(1, S + 1), W))
        retention = {"generalized": 0.0, "relative": False, "rule": "prefix", **ws.get("retention", {})}
        width.update(retention=np.asarray(json.dumps(retention, sort_keys=True)), figures=what["width_sweep"])
    claims = [
        {
            "id": c.id,
            "figure": c.figure,
            "claim": c.claim,
            "metric": c.metric,
            "op": c.op,
            "threshold": c.threshold,
            "value": LONGEST_PHASE if isinstance(c.threshold, str) else LONGEST_NUMBER,
            "margin": LONGEST_NUMBER,
            "noise": LONGEST_NUMBER,
            "verdict": "UNRESOLVED",
            "inputs": claim_inputs(c),
        }
        for c in CLAIMS
    ]
    meta = {"preset": config.get("preset", ""), "note": "", "code_version": "0123456789ab-dirty"}
    return {"meta": meta, "grids": grids, "runs": runs, "pruning": pruning, "width_sweep": width, "claims": claims}
