"""What the results explorer shows (``figures/<preset>/explorer.html``), as plain arrays.

:func:`contents` names, from the config alone, the grids, named runs, pruned runs and width sweep that a
build of the preset makes, each with the figures that show it: the ``explorer`` rule's inputs (the
workflow imports this module, so it stays free of torch and plotly). :func:`read` loads them from a
preset's results into the payload that :mod:`grokking.report.explorer` draws the page from;
:mod:`grokking.report.explorer_size` makes payloads of the same shapes from the config alone.
"""

from __future__ import annotations

import json
import warnings

import numpy as np

from ..config import built_runs, enabled_figures, figure_grids, figure_runs

# A grid cell's coarse curves, and its final values, in the order the page stores them.
CURVES = ("train_acc", "test_acc", "corrupted_acc", "uncorrupted_acc", "train_loss", "test_loss", "ipr_mean")
FINALS = (
    "train_acc",
    "test_acc",
    "corrupted_acc",
    "uncorrupted_acc",
    "train_loss",
    "test_loss",
    "max_train_acc",
    "max_test_acc",
    "ipr_mean",
    "n_noise",
)
IPR_QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)  # of a cell's final per-neuron IPR (its first seed's model)
PRUNING_CURVES = CURVES[:6]


def figure_label(fig: str) -> str:
    """``fig03`` -> ``Fig 3``."""
    return f"Fig {int(fig[3:])}" if fig.startswith("fig") and fig[3:].isdigit() else fig


def contents(config: dict) -> dict:
    """What the preset's page shows, each item with the figures that show it (in the config's order): the
    grids of the enabled figures, the named runs that the build trains (those of enabled figures and those
    no figure uses), the runs of enabled pruning figures, and the width sweep when a figure shows it."""
    entries = config.get("figures", {})
    out = {"grids": {}, "runs": {}, "pruning": {}, "width_sweep": []}
    for fig in enabled_figures(config):
        label = figure_label(fig)
        for grid in figure_grids(config, fig).values():
            out["grids"].setdefault(grid, []).append(label)
        for run in figure_runs(config, fig).values():
            out["runs"].setdefault(run, []).append(label)
            if entries[fig].get("pruning"):
                out["pruning"].setdefault(run, []).append(label)
        if entries[fig].get("width_sweep"):
            out["width_sweep"].append(label)
    for run in built_runs(config):  # and the runs no figure uses
        out["runs"].setdefault(run, [])
    for key in ("grids", "runs", "pruning"):
        out[key] = {name: sorted(set(figs), key=_figure_order) for name, figs in out[key].items()}
    out["width_sweep"] = sorted(set(out["width_sweep"]), key=_figure_order)
    return out


def _figure_order(label: str):
    return (0, int(label[4:])) if label[4:].isdigit() else (1, label)


def input_files(what: dict, layout) -> list[str]:
    """The result files the page of ``what`` (:func:`contents`) reads."""
    files = [layout.grid(g) for g in what["grids"]]
    files += [layout.run_file(r, name) for r in what["runs"] for name in ("spec.json", "summary.json", "curves.npz")]
    files += [layout.pruning(r) for r in what["pruning"]]
    return files + ([layout.width_sweep()] if what["width_sweep"] else [])


# --- titles --------------------------------------------------------------------------------------
def _value(x) -> str:
    return f"{x:g}" if isinstance(x, int | float) else str(x)


def run_title(spec: dict) -> str:
    """The model and the settings of a named run in one line."""
    from .plotting import model_text

    parts = [model_text(spec), f"α = {_value(spec['train_fraction'])}", f"ξ = {_value(spec['corruption'])}"]
    parts += [f"weight decay {_value(spec['weight_decay'])}", f"lr {_value(spec['lr'])}"]
    if spec.get("dropout"):
        parts.append(f"dropout {_value(spec['dropout'])}")
    if spec.get("batch_size", "full") != "full":
        parts.append(f"batch {spec['batch_size']}")
    return ", ".join(parts + [f"{spec['steps']} steps, seed {spec.get('seed')}"])


def grid_title(spec: dict, panel_key: str) -> str:
    from .plotting import grid_text

    return grid_text({"spec": json.dumps(spec), "panel_key": panel_key})


def panel_names(panel_key: str, panels) -> list[str]:
    from .plotting import panel_name

    return [panel_name({"panel_key": panel_key, "panels": list(panels)}, i) for i in range(len(panels))]


def panel_label(panel_key: str) -> str:
    """What a grid's panels vary, in words (``weight decay``)."""
    from .plotting import PANEL_LABELS

    return PANEL_LABELS.get(panel_key, panel_key)


# --- reading a preset's results ---------------------------------------------------------------------
def read(layout, what: dict, claims: dict) -> dict:
    """Everything the page shows, from the results under ``layout`` (``what``: :func:`contents`; ``claims``:
    the preset's ``claims.json``)."""
    from ..results import load_grid, load_pruning, load_run, load_width_sweep
    from .claims import CLAIMS

    grids = [_grid(load_grid(layout.grid(g)), figs) for g, figs in what["grids"].items()]
    runs = []
    for name, figs in what["runs"].items():
        run = load_run(layout.run_dir(name))
        s = run.summary
        curves = {k: np.asarray(run.curves[k], dtype=np.float32) for k in CURVES if k in run.curves}
        runs.append(
            {
                "name": name,
                "figures": figs,
                "title": run_title(run.spec),
                "phase": s["phase"],
                "finals": {k: s.get(k) for k in FINALS},
                "ipr_quantiles": s.get("ipr_quantiles") or {},
                "steps": np.asarray(run.curves["step"], dtype=np.int32),
                "curves": curves,
            }
        )
    pruning = []
    for name, figs in what["pruning"].items():
        z = load_pruning(layout.pruning(name))
        spec = load_run(layout.run_dir(name)).spec
        entry = {"name": name, "figures": figs, "title": run_title(spec), "pruned": np.asarray(z["pruned"], np.int32)}
        for order in ("lowest", "highest"):
            entry[order] = {k: np.asarray(z[f"{order}_{k}"], np.float32) for k in PRUNING_CURVES}
        pruning.append(entry)
    width = None
    if what["width_sweep"]:
        width = {k: np.asarray(v) for k, v in load_width_sweep(layout.width_sweep()).items() if k in WIDTH_KEYS}
        width["figures"] = what["width_sweep"]
    by_id = {c.id: c for c in CLAIMS}
    rows = [dict(r, inputs=claim_inputs(by_id[r["id"]]) if r["id"] in by_id else {}) for r in claims["claims"]]
    meta = {"preset": claims.get("preset", ""), "note": claims.get("note") or "", "code_version": _code_version(grids)}
    return {"meta": meta, "grids": grids, "runs": runs, "pruning": pruning, "width_sweep": width, "claims": rows}


WIDTH_KEYS = (
    "widths",
    "required_mean",
    "required_se",
    "prunable_pct_mean",
    "prunable_pct_se",
    "seeds_total",
    "seeds_generalized",
    "row_width",
    "row_seed",
    "row_required",
    "row_prunable",
    "row_final_test_acc",
    "retention",
)


def _code_version(grids) -> str:
    return grids[0]["code_version"] if grids else ""


def _grid(g: dict, figures: list) -> dict:
    """One merged grid as the page stores it: phases, final values, curves [panel, xi, alpha, curve, step],
    IPR quantiles, and the stored cells' per-neuron IPR at init and at the end."""
    P, X, A = np.shape(g["phase"])
    metrics = [k for k in CURVES if f"curve_{k}" in g]
    finals = np.stack([np.asarray(g[k], dtype=np.float32) for k in FINALS], axis=-1)
    curves = np.stack([g[f"curve_{k}"].astype(np.float32) for k in metrics], axis=3)
    with warnings.catch_warnings():  # a diverged cell's IPRs are all NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        ipr = np.moveaxis(np.nanquantile(g["neuron_ipr"], IPR_QUANTILES, axis=-1), 0, -1).astype(np.float32)
    kept = {}
    for cell in json.loads(g.get("kept_cells", "[]")):
        key = cell["key"]
        if f"ipr/{key}/neuron_ipr" in g and f"ipr_init/{key}/neuron_ipr" in g:
            kept[key] = {"init": g[f"ipr_init/{key}/neuron_ipr"], "final": g[f"ipr/{key}/neuron_ipr"]}
    spec = json.loads(g["spec"])
    return {
        "name": str(g["grid"]),
        "figures": figures,
        "title": grid_title(spec, g["panel_key"]),
        "panel_key": str(g["panel_key"]),
        "panel_label": panel_label(str(g["panel_key"])),
        "panels": np.asarray(g["panels"], dtype=float).tolist(),
        "panel_names": panel_names(g["panel_key"], g["panels"]),
        "alphas": np.asarray(g["train_fractions"], dtype=float).tolist(),
        "xis": np.asarray(g["corruptions"], dtype=float).tolist(),
        "seeds": int(np.size(g["seeds"])),
        "metrics": metrics,
        "phase": np.asarray(g["phase"], dtype=np.int32),
        "diverged": np.sum(np.asarray(g["diverged_at_seeds"]) >= 0, axis=1).astype(np.int32),
        "finals": finals.reshape(P, X, A, len(FINALS)),
        "curves": curves,
        "steps": np.asarray(g["steps"], dtype=np.int32),
        "ipr": ipr,
        "kept": kept,
        "code_version": str(g.get("code_version", "")),
    }


def claim_inputs(claim) -> dict:
    """The results a claim reads, for its links: grids with the panel its arguments name (a panel value, or
    a stored model's panel index), runs, pruned runs, the width sweep."""
    from .measure_registry import Cell

    def cells(value):
        if isinstance(value, Cell):
            yield value
        elif isinstance(value, tuple | list):
            for v in value:
                yield from cells(v)

    args = dict(claim.args)
    panels = {}
    for key in ("panel", "high", "baseline"):
        if "grid" in args and isinstance(args.get(key), int | float) and not isinstance(args[key], bool):
            panels.setdefault(args["grid"], ("value", args[key]))
    for cell in cells(list(args.values())):
        panels.setdefault(cell.grid, ("index", cell.panel_index))
    return {
        "grids": [[g, *panels.get(g, ("index", 0))] for g in claim.grids],
        "runs": list(claim.runs),
        "pruning": list(claim.pruning),
        "width_sweep": bool(claim.width_sweep),
    }
