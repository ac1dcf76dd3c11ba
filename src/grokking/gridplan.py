"""Phase-diagram grids planned from the config alone (no torch: the DAG stays fast).

A grid is a set of panels (one regularization value each) over an alpha x xi grid. Every cell is a
fully resolved run spec; identical cells of different grids (e.g. weight decay 0 == dropout 0) are
trained once. Cells that share everything but their per-model settings (corruption, weight decay,
dropout, lr, seed) and their alpha form one stack; stacks are cut into chunks of at most
``chunk_size`` cells, and each chunk is one training job.
"""

from __future__ import annotations

import hashlib
import json
import math

from .config import RUN_KEYS
from .tasks import train_size

PER_MODEL_KEYS = ("corruption", "weight_decay", "dropout", "lr", "seed")
STACK_KEYS = tuple(k for k in RUN_KEYS if k not in PER_MODEL_KEYS)


def _hash(obj, n=10) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:n]


def grid_settings(config: dict, grid: str) -> dict:
    """grid_defaults overlaid by the grid's own keys; ``settings`` merge key by key (grid wins)."""
    defaults, own = config["grid_defaults"], config["grids"][grid]
    g = dict(defaults)
    g.update(own)
    g["settings"] = {**(defaults.get("settings") or {}), **(own.get("settings") or {})}
    return g


def cell_spec(config: dict, grid: str, panel_value, alpha, xi) -> dict:
    """The resolved run spec of one cell (same keys as a named run's spec)."""
    g = grid_settings(config, grid)
    spec = dict(config["run_defaults"])
    spec.update(g.get("settings") or {})
    spec.update({g["panel_key"]: panel_value, "train_fraction": alpha, "corruption": xi})
    spec["record_neuron_ipr"] = False
    rule = g.get("minibatch_rule")
    if rule and spec["batch_size"] != "full":
        # PAPER.md A5: steps x (ref/bs), lr x sqrt(bs/ref), relative to the reference batch size.
        ref, bs = int(rule["reference_batch"]), int(spec["batch_size"])
        spec["steps"] = int(round(spec["steps"] * ref / bs))
        spec["lr"] = float(spec["lr"] * math.sqrt(bs / ref))
    spec["log_every"] = max(1, spec["steps"] // int(g["curve_points"]))
    spec["pair_seed"] = config["data"]["pair_seed"]
    spec["label_seed"] = config["data"]["label_seed"]
    spec["ipr_mode"] = config["ipr"]["mode"]
    return normalize(spec)


FLOAT_KEYS = ("train_fraction", "corruption", "dropout", "lr", "eps", "weight_decay")
INT_KEYS = ("p", "width", "steps", "seed", "log_every")


def normalize(spec: dict) -> dict:
    """Numbers in one canonical type per key, so that equal cells hash equally (0 == 0.0)."""
    out = dict(spec)
    for k in FLOAT_KEYS:
        out[k] = float(out[k])
    for k in INT_KEYS:
        if out.get(k) is not None:
            out[k] = int(out[k])
    if out["batch_size"] != "full":
        out["batch_size"] = int(out["batch_size"])
    if out.get("init_scale") is not None:
        out["init_scale"] = float(out["init_scale"])
    out["betas"] = [float(b) for b in out["betas"]]
    return out


def cell_id(spec: dict) -> str:
    return "c" + _hash({k: spec[k] for k in sorted(spec)}, 12)


def grid_cells(config: dict, grid: str) -> list[dict]:
    """Every cell of a grid with its position: panel index, xi index, alpha index."""
    g = grid_settings(config, grid)
    out = []
    for ip, pv in enumerate(g["panels"]):
        for ix, xi in enumerate(g["corruptions"]):
            for ia, alpha in enumerate(g["train_fractions"]):
                spec = cell_spec(config, grid, pv, alpha, xi)
                out.append({"panel": ip, "xi": ix, "alpha": ia, "id": cell_id(spec), "spec": spec})
    return out


def plan(config: dict) -> dict:
    """chunk name -> {"stack": shared settings, "cells": [(id, per-model settings)], "data": (op, p)}."""
    unique = {}
    chunk_size = {}
    for grid in config.get("grids", {}):
        size = int(grid_settings(config, grid)["chunk_size"])
        for cell in grid_cells(config, grid):
            unique.setdefault(cell["id"], cell["spec"])
            chunk_size[cell["id"]] = min(chunk_size.get(cell["id"], size), size)
    stacks = {}
    for cid, spec in unique.items():
        key = json.dumps({k: spec[k] for k in STACK_KEYS + ("pair_seed", "label_seed", "ipr_mode")}, sort_keys=True)
        stacks.setdefault(key, []).append(cid)
    chunks = {}
    for key, ids in stacks.items():
        stack = json.loads(key)
        # `unique` keeps first-appearance order (grid, panel, xi), so a grid's alpha column fills whole
        # chunks before the cells that only another grid needs.
        size = min(chunk_size[c] for c in ids)
        prefix = f"a{round(stack['train_fraction'] * 1000):04d}_{_hash(stack, 8)}"
        for i in range(0, len(ids), size):
            part = ids[i:i + size]
            name = f"{prefix}_{_hash(part, 6)}"
            chunks[name] = {"stack": stack,
                            "cells": [[c, {k: unique[c][k] for k in PER_MODEL_KEYS}] for c in part]}
    return chunks


def work_estimate(spec: dict, models: int = 1) -> float:
    """Rough cost of training ``models`` networks of ``spec``: the output layer's three products,
    3 B N p multiply-adds per model-step, in units of 10^9. Used as the Snakemake job priority, so that
    the longest jobs start first and a 2-core build does not end on one long job running alone."""
    b = train_size(spec["p"], spec["train_fraction"]) if spec["batch_size"] == "full" else int(spec["batch_size"])
    return round(3.0 * b * int(spec["width"]) * int(spec["p"]) * int(spec["steps"]) * models / 1e9, 1)


def chunk_work(chunk: dict) -> float:
    """``work_estimate`` of one chunk of :func:`plan` (its stack settings hold every shared key)."""
    return work_estimate(chunk["stack"], len(chunk["cells"]))


def chunks_of_grid(config: dict, grid: str, chunks: dict) -> list[str]:
    ids = {c["id"] for c in grid_cells(config, grid)}
    return sorted(name for name, ch in chunks.items() if any(c[0] in ids for c in ch["cells"]))


def width_sweep_jobs(config: dict) -> dict:
    """Fig 32 jobs: name -> {"spec": resolved run spec at one width, "seeds": [...]} (seeds stacked)."""
    ws = config.get("width_sweep")
    if not ws:
        return {}
    seeds = list(range(1, int(ws["seeds"]) + 1))
    per = int(ws["seeds_per_job"])
    jobs = {}
    for width in ws["widths"]:
        spec = dict(config["run_defaults"])
        spec.update(ws.get("settings") or {})
        spec.update({"width": int(width), "seed": seeds[0], "record_neuron_ipr": False,
                     "pair_seed": config["data"]["pair_seed"], "label_seed": config["data"]["label_seed"],
                     "ipr_mode": config["ipr"]["mode"]})
        spec["log_every"] = max(1, int(spec["steps"]) // int(ws["curve_points"]))
        spec = normalize(spec)
        for i in range(0, len(seeds), per):
            part = seeds[i:i + per]
            jobs[f"w{int(width):05d}_s{part[0]}-{part[-1]}"] = {"spec": spec, "seeds": part}
    return jobs
