"""Grid cells: a chunk of cells trained as one stacked model, and chunks merged into per-grid arrays.

Where a grid cell is trained: :func:`train_chunk` (one Snakemake job, rule ``train_grid_chunk``); the
chunks themselves are planned from the config by :mod:`grokking.experiments.gridplan`.
"""

from __future__ import annotations

import csv
import io
import json
import warnings

import numpy as np

from .. import numerics, phases, results
from .gridplan import grid_cells, grid_seeds, grid_settings, kept
from .specs import model_settings, stack_settings
from .summary import final_keys, summarize


def train_chunk(chunk: dict, data_path, out_path, *, device="auto", progress=True, desc="chunk", checkpoint=None):
    """Train every cell of a chunk as one stacked model and write ``out_path`` (npz). The cells named in
    ``chunk["keep"]`` also store their final weights and every IPR component at init and at the end."""
    from ..engine import train
    from ..models import get_family

    stack = dict(chunk["stack"])
    split = results.load_split(data_path, stack)
    settings = stack_settings(stack)
    ids = [c[0] for c in chunk["cells"]]
    models = [model_settings(c[1]) for c in chunk["cells"]]
    res = train(split, settings, models, device=device, progress=progress, desc=desc, checkpoint=checkpoint)
    family = get_family(settings.shape)
    mode = settings.ipr_mode
    neuron = by_model_blocks(lambda p: family.neuron_ipr(p, mode), res.params).float().numpy()
    arrays = {
        "ids": np.asarray(ids),
        "steps": res.steps,
        "n_noise": res.n_noise,
        "diverged_at": res.diverged_at,
        "neuron_ipr": neuron,
        "seconds": np.asarray(res.seconds),
        "log_seconds": np.asarray(res.log_seconds),
        "device": np.asarray(res.device),
        "numerics": np.asarray(json.dumps(numerics.describe(res.device), sort_keys=True)),
        "stack": np.asarray(json.dumps(stack, sort_keys=True)),
        "cells": np.asarray(json.dumps(chunk["cells"], sort_keys=True)),
    }
    for key, curve in res.curves.items():
        arrays[f"curve_{key}"] = curve.astype(np.float32)
    keep_ids = set(chunk["keep"])
    keep = [k for k, cid in enumerate(ids) if cid in keep_ids]
    if keep:  # only the kept models: their weights, and their IPRs at init and at the end
        kept = {
            "": {k: v[keep] for k, v in res.params.items()},
            "_init": {k: v[keep] for k, v in res.init_params.items()},
        }
        iprs = {suffix: _ipr_all(family, params, mode) for suffix, params in kept.items()}
        for j, k in enumerate(keep):
            cid = ids[k]
            for name, t in {**res.params, **res.buffers}.items():
                arrays[f"weights/{cid}/{name}"] = t[k].numpy()
            for suffix, comps in iprs.items():
                for comp, v in comps.items():
                    arrays[f"ipr{suffix}/{cid}/{comp}"] = v[j]
    results.write_npz(out_path, **arrays)
    return res


IPR_BLOCK_BYTES = 64 * 2**20  # float64 bytes of the parameters of one block of models in by_model_blocks


def by_model_blocks(fn, params: dict, block_bytes: int = IPR_BLOCK_BYTES):
    """``fn(params)`` of a stack (a tensor, or a dict of tensors, with the model axis first), computed on
    consecutive blocks of its models and concatenated: the same numbers, since each model's come from its
    own weights alone, but the float64 and complex temporaries of an IPR are those of a block, not of the
    whole stack (about 1 GiB at the paper's 76 models of width 5000, on the host even when training ran on
    a GPU)."""
    import torch

    K = next(iter(params.values())).shape[0]
    per_model = sum(v[0].numel() for v in params.values()) * 8
    block = max(1, block_bytes // max(1, per_model))
    if block >= K:
        return fn(params)
    outs = [fn({k: v[s : s + block] for k, v in params.items()}) for s in range(0, K, block)]
    if isinstance(outs[0], dict):
        return {k: torch.cat([o[k] for o in outs]) for k in outs[0]}
    return torch.cat(outs)


def _ipr_all(family, params, mode) -> dict:
    """``neuron_ipr`` and every IPR component of a stack, as float32 arrays (K, units)."""
    comps = {"neuron_ipr": family.neuron_ipr(params, mode), **family.ipr_components(params, mode)}
    return {k: v.detach().float().cpu().numpy() for k, v in comps.items()}


def _load_cells(paths) -> dict:
    """Cell id -> its curves (T,), neuron IPR, n_noise, logged steps and, for kept cells, the stored
    arrays (``weights/<param>``, ``ipr/<component>``, ``ipr_init/<component>``), from chunk files."""
    cells = {}
    for path in paths:
        z = results.load_chunk(path)
        profile = str(z["numerics"]) if "numerics" in z else "{}"
        curves = {k[len("curve_") :]: v for k, v in z.items() if k.startswith("curve_")}
        for j, cid in enumerate(str(i) for i in z["ids"]):
            cells[cid] = {
                "steps": z["steps"],
                "curves": {k: v[:, j] for k, v in curves.items()},
                "neuron_ipr": z["neuron_ipr"][j],
                "n_noise": int(z["n_noise"][j]),
                "diverged_at": int(z["diverged_at"][j]),
                "numerics": profile,
                "stored": {key.split("/", 1)[0] + "/" + key.split("/")[2]: z[key] for key in z if f"/{cid}/" in key},
            }
    return cells


def _seed_mean(curves: list) -> np.ndarray:
    """Mean over seeds; a metric that is NaN for every seed (e.g. corrupted_acc at xi = 0) stays NaN."""
    if len(curves) == 1:
        return curves[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(np.stack(curves), axis=0)


def _combine_seeds(per_seed: list[dict], xi, rules, how: str) -> dict:
    """The summary of one cell from its seeds' curves: ``mean`` classifies the seed-averaged curves,
    ``majority`` takes the most common per-seed phase (ties: the earliest seed's) with mean metrics."""
    keys = per_seed[0]["curves"]
    mean = {k: _seed_mean([d["curves"][k] for d in per_seed]) for k in keys}
    out = summarize(mean, xi, rules)
    if how == "majority" and len(per_seed) > 1:
        names = [summarize(d["curves"], xi, rules)["phase"] for d in per_seed]
        out["phase"] = max(names, key=lambda n: (names.count(n), -names.index(n)))
    return out


def _shared_spec(spec: dict, panel_key: str) -> dict:
    return {k: v for k, v in spec.items() if k not in (panel_key, "train_fraction", "corruption", "seed")}


def merge_grid(config: dict, grid: str, chunk_paths, out_npz, out_csv, out_weights=None):
    """Assemble a grid's cells into arrays indexed [panel, xi, alpha] (seeds combined, see
    ``seed_phase``) and [panel, seed, xi, alpha] (``*_seeds``), plus a tidy CSV with one row per model."""
    g = grid_settings(config, grid)
    cells = grid_cells(config, grid)
    seeds = grid_seeds(config, grid)
    data = _load_cells(chunk_paths)
    P, X, A, S = len(g["panels"]), len(g["corruptions"]), len(g["train_fractions"]), len(seeds)
    first = data[cells[0]["id"]]
    T, N = len(first["steps"]), first["neuron_ipr"].shape[0]
    curve_keys = list(first["curves"])
    summary_keys = final_keys(first["curves"]) + ["max_test_acc", "max_train_acc"]
    arr = {k: np.full((P, X, A), np.nan) for k in summary_keys}
    per_seed = {k: np.full((P, S, X, A), np.nan) for k in summary_keys}
    phase_names = np.empty((P, X, A), dtype=object)
    seed_phase_names = np.empty((P, S, X, A), dtype=object)
    curves = {k: np.full((P, X, A, T), np.nan, dtype=np.float32) for k in curve_keys}
    neuron = np.full((P, S, X, A, N), np.nan, dtype=np.float32)
    steps = np.full((P, A, T), -1, dtype=np.int64)  # minibatch panels have their own step counts
    n_noise = np.zeros((P, X, A), dtype=np.int64)
    diverged_at = np.full((P, S, X, A), -1, dtype=np.int64)
    weights, stored, stored_cells = {}, {}, []
    groups = {}
    for c in cells:
        d = data[c["id"]]
        if len(d["steps"]) != T:
            raise ValueError(
                f"grid {grid}: cells have different curve lengths ({len(d['steps'])} vs {T}); "
                f"set curve_points so that every panel logs the same number of points"
            )
        idx, sidx = (c["panel"], c["xi"], c["alpha"]), (c["panel"], c["seed"], c["xi"], c["alpha"])
        groups.setdefault(idx, []).append(d)
        s = summarize(d["curves"], c["spec"]["corruption"], config["phases"])
        for k in summary_keys:
            per_seed[k][sidx] = s[k]
        seed_phase_names[sidx] = s["phase"]
        neuron[sidx] = d["neuron_ipr"]
        steps[c["panel"], c["alpha"]] = d["steps"]
        n_noise[idx] = d["n_noise"]
        diverged_at[sidx] = d["diverged_at"]
        if c["seed"] == 0 and kept(config, grid, c):  # the first seed's model stands for the cell
            key = f"{c['panel']}_{c['xi']}_{c['alpha']}"
            stored_cells.append(
                {
                    "key": key,
                    "panel": c["panel"],
                    "train_fraction": g["train_fractions"][c["alpha"]],
                    "corruption": g["corruptions"][c["xi"]],
                    "spec": c["spec"],
                }
            )
            for name, w in d["stored"].items():
                kind, what = name.split("/")
                if kind == "weights":
                    weights[f"{key}/{what}"] = w
                else:
                    stored[f"{kind}/{key}/{what}"] = w
    how = g.get("seed_phase", "mean")
    for idx, ds in groups.items():
        s = _combine_seeds(ds, g["corruptions"][idx[1]], config["phases"], how)
        for k in summary_keys:
            arr[k][idx] = s[k]
        phase_names[idx] = s["phase"]
        for k in curve_keys:
            curves[k][idx] = _seed_mean([d["curves"][k] for d in ds])
    codes = np.vectorize(phases.PHASE_CODES.get)(phase_names).astype(np.int8)
    seed_codes = np.vectorize(phases.PHASE_CODES.get)(seed_phase_names).astype(np.int8)
    out = dict(
        arr,
        phase=codes,
        n_noise=n_noise,
        neuron_ipr=neuron[:, 0],
        steps=steps,
        panels=np.asarray(g["panels"], dtype=float),
        panel_key=np.asarray(g["panel_key"]),
        train_fractions=np.asarray(g["train_fractions"], dtype=float),
        corruptions=np.asarray(g["corruptions"], dtype=float),
        seeds=np.asarray([-1 if s is None else s for s in seeds]),
        seed_phase=np.asarray(how),
        phase_seeds=seed_codes,
        diverged_at_seeds=diverged_at,
        neuron_ipr_seeds=neuron,
        phase_names=np.asarray(phases.PHASES),
        grid=np.asarray(grid),
        settings=np.asarray(json.dumps(g, sort_keys=True, default=str)),
        # what every cell shares (the first panel's resolved spec without the grid's axes), for titles
        spec=np.asarray(json.dumps(_shared_spec(cells[0]["spec"], g["panel_key"]), sort_keys=True)),
        code_version=np.asarray(results.code_version()),
        # the numeric profiles its chunks were trained with (numerics.describe), one JSON object each
        numerics=np.asarray(json.dumps(sorted({data[c["id"]]["numerics"] for c in cells}))),
        kept_cells=np.asarray(json.dumps(stored_cells, sort_keys=True)),
        **stored,
        **{f"{k}_seeds": v for k, v in per_seed.items()},
        **{f"curve_{k}": v for k, v in curves.items()},
    )
    results.write_npz(out_npz, **out)
    if out_weights is not None:
        results.write_npz(out_weights, **weights)

    buf = io.StringIO()
    finals = final_keys(first["curves"])
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(
        ["grid", "panel_key", "panel", "train_fraction", "corruption", g["panel_key"], "seed"]
        + finals
        + ["max_test_acc", "max_train_acc", "n_noise", "phase", "cell_phase", "cell_id"]
    )
    for c in cells:
        idx, sidx = (c["panel"], c["xi"], c["alpha"]), (c["panel"], c["seed"], c["xi"], c["alpha"])
        spec = c["spec"]
        w.writerow(
            [grid, g["panel_key"], g["panels"][c["panel"]], spec["train_fraction"], spec["corruption"]]
            + [spec[g["panel_key"]], spec["seed"]]
            + [f"{per_seed[k][sidx]:.6g}" for k in finals]
            + [f"{per_seed['max_test_acc'][sidx]:.6g}", f"{per_seed['max_train_acc'][sidx]:.6g}", int(n_noise[idx])]
            + [phases.PHASES[seed_codes[sidx]], phases.PHASES[codes[idx]], c["id"]]
        )
    results.write_bytes(out_csv, buf.getvalue().encode())
    return out
