"""Phase-diagram grids planned from the config alone (no torch: the DAG stays fast).

A grid is a set of panels (one regularization value each) over an alpha x xi grid, with one or more
model seeds per cell (``seeds``). Every model is a fully resolved run spec; identical models of
different grids (e.g. weight decay 0 == dropout 0) are trained once. Models that share everything
but their per-model settings (corruption, weight decay, dropout, lr, seed) and their alpha form one
stack; stacks are cut into chunks of at most ``chunk_size`` models, and each chunk is one training job.
"""

from __future__ import annotations

import json
import math

from .specs import (
    PER_MODEL_KEYS,
    cell_spec,
    class_count,
    grid_settings,
    spec_hash,
    stack_keys,
    training_examples,
    width_spec,
)


def cell_id(spec: dict) -> str:
    return "c" + spec_hash({k: spec[k] for k in sorted(spec)}, 12)


def grid_seeds(config: dict, grid: str) -> list:
    """The model seeds of every cell: the grid's ``seeds`` list, else ``[None]`` (the cell's own seed)."""
    return [int(s) for s in grid_settings(config, grid).get("seeds") or []] or [None]


def grid_cells(config: dict, grid: str) -> list[dict]:
    """Every trained model of a grid with its position: panel, xi, alpha and seed index."""
    g = grid_settings(config, grid)
    out = []
    for ip, pv in enumerate(g["panels"]):
        for ix, xi in enumerate(g["corruptions"]):
            for ia, alpha in enumerate(g["train_fractions"]):
                base = cell_spec(config, grid, pv, alpha, xi)
                for i_s, seed in enumerate(grid_seeds(config, grid)):
                    spec = base if seed is None else dict(base, seed=seed)
                    out.append({"panel": ip, "xi": ix, "alpha": ia, "seed": i_s, "id": cell_id(spec), "spec": spec})
    return out


def kept(config: dict, grid: str, cell: dict) -> bool:
    """Whether a grid cell's model is stored (weights, IPR at init and at the end): its (alpha, xi) is
    one of the grid's ``keep_weights``."""
    g = grid_settings(config, grid)
    at = (round(g["train_fractions"][cell["alpha"]], 6), round(g["corruptions"][cell["xi"]], 6))
    return at in {(round(a, 6), round(x, 6)) for a, x in g["keep_weights"]}


def plan(config: dict) -> dict:
    """chunk name -> {"stack": shared settings, "cells": [(id, per-model settings)], "keep": [ids whose
    models are stored]}."""
    unique = {}
    chunk_size = {}
    keep = set()
    for grid in config.get("grids", {}):
        size = int(grid_settings(config, grid)["chunk_size"])
        for cell in grid_cells(config, grid):
            unique.setdefault(cell["id"], cell["spec"])
            chunk_size[cell["id"]] = min(chunk_size.get(cell["id"], size), size)
            if kept(config, grid, cell):
                keep.add(cell["id"])
    stacks = {}
    for cid, spec in unique.items():
        key = json.dumps({k: spec[k] for k in stack_keys() if k in spec}, sort_keys=True)
        stacks.setdefault(key, []).append(cid)
    chunks = {}
    for key, ids in stacks.items():
        stack = json.loads(key)
        # `unique` keeps first-appearance order (grid, panel, xi), so a grid's alpha column fills whole
        # chunks before the cells that only another grid needs.
        size = min(chunk_size[c] for c in ids)
        prefix = f"a{round(stack['train_fraction'] * 1000):04d}_{spec_hash(stack, 8)}"
        for i in range(0, len(ids), size):
            part = ids[i : i + size]
            name = f"{prefix}_{spec_hash(part, 6)}"
            chunks[name] = {
                "stack": stack,
                "cells": [[c, {k: unique[c][k] for k in PER_MODEL_KEYS}] for c in part],
                "keep": [c for c in part if c in keep],
            }
    return chunks


def work_estimate(spec: dict, models: int = 1) -> float:
    """:func:`multiply_adds` in units of 10^9, rounded: the Snakemake job priority, so that the longest jobs
    start first and a 2-core build does not end on one long job."""
    return round(multiply_adds(spec, models) / 1e9, 1)


def multiply_adds(spec: dict, models: int = 1) -> float:
    """Rough cost of training ``models`` networks of ``spec`` in multiply-adds, forward and backward: the
    2-layer MLP's output layer (3 B N p per step), the Transformer's blocks (2 tokens, 12 d^2 weights each)
    and head, the deep MLP's matrices."""
    b = training_examples(spec) if spec["batch_size"] == "full" else int(spec["batch_size"])
    p, model = class_count(spec), spec.get("model", "mlp2")
    if model == "transformer":
        d = int(spec["d_model"])
        per_example = 3 * (2 * 12 * d * d * int(spec["layers"]) + p * d)
    elif model == "deep_mlp":
        n = int(spec["width"])
        first = n * int(spec["inputs"]) if spec.get("inputs") else 2 * n  # dense matmul, or the operand gather
        per_example = 3 * (first + (int(spec["depth"]) - 2) * n * n + n * p)
    else:
        per_example = 3 * int(spec["width"]) * p
    return float(per_example * b * int(spec["steps"]) * models)


def parameter_count(spec: dict) -> int:
    """Parameters of one model of ``spec``, counted without building it (tests/test_rehearsal.py checks the count
    against each family's own initialisation): the 2-layer MLP's U, V (N x p) and W (p x N); the Transformer's
    embeddings, blocks (4 d^2 attention, 8 d^2 MLP) and head; the deep MLP's matrices; and norm scales."""
    p, model, norm = class_count(spec), spec.get("model", "mlp2"), spec.get("norm", "none")
    if model == "transformer":
        d = int(spec["d_model"])
        return p * d + 2 * d + 12 * d * d * int(spec["layers"]) + (0 if spec.get("tie_embeddings") else p * d)
    n = int(spec["width"])
    if model == "deep_mlp":
        depth = int(spec["depth"])
        first = n * (int(spec["inputs"]) if spec.get("inputs") else 2 * p)
        return first + (depth - 2) * n * n + p * n + (2 * n * (depth - 1) if norm == "batchnorm" else 0)
    return 3 * p * n + (2 * n if norm != "none" else 0)


def pruning_logits(spec: dict, models: int = 1) -> float:
    """Logits one IPR-ordered pruning sweep computes (:func:`grokking.experiments.pruning.prune_curves`): for
    every model, every pair of the table (training and test, p^2), every pruned count (N) and class (p), in
    float64. Its passes over them are element-wise, so their time follows this count, not a GEMM rate."""
    p = class_count(spec)
    return float(models * p * p * int(spec["width"]) * p)


def job_resources(spec: dict, models: int, resources: dict, train: bool = True, prune: bool = False) -> dict:
    """What a SLURM job of ``models`` stacked models of ``spec`` asks for (README, "Running on a SLURM cluster"),
    from ``resources`` (the config's; its ``estimate`` to be calibrated against a rehearsal's cost plan): memory in
    MB, the host's ``base_mb`` plus ``bytes_per_parameter`` for each stacked parameter; time in minutes,
    ``start_minutes``, plus the training's floating-point work (``train``: :func:`multiply_adds`, x 2) at
    ``cpu_gflops`` (``gpu_gflops`` where ``resources.gpu`` is set), plus a pruning sweep's logits (``prune``:
    :func:`pruning_logits`) at ``cpu_prune_rate`` (``gpu_prune_rate``) 10^9 per second; each times ``headroom``,
    and at least ``resources.mem_mb`` and ``runtime``."""
    e = resources["estimate"]
    device = "gpu" if resources["gpu"] else "cpu"
    mem = e["base_mb"] + e["bytes_per_parameter"] * models * parameter_count(spec) / 2**20
    seconds = 2 * multiply_adds(spec, models) / (1e9 * e[f"{device}_gflops"]) if train else 0.0
    seconds += pruning_logits(spec, models) / (1e9 * e[f"{device}_prune_rate"]) if prune else 0.0
    return {
        "mem_mb": max(int(resources["mem_mb"]), math.ceil(e["headroom"] * mem)),
        "runtime": max(int(resources["runtime"]), math.ceil(e["headroom"] * (e["start_minutes"] + seconds / 60))),
    }


def chunk_work(chunk: dict) -> float:
    """``work_estimate`` of one chunk of :func:`plan` (its stack settings hold every shared key)."""
    return work_estimate(chunk["stack"], len(chunk["cells"]))


def chunks_of_grid(config: dict, grid: str, chunks: dict) -> list[str]:
    ids = {c["id"] for c in grid_cells(config, grid)}
    return sorted(name for name, ch in chunks.items() if any(c[0] in ids for c in ch["cells"]))


def width_sweep_jobs(config: dict) -> dict:
    """Fig 32 jobs: name -> {"spec": resolved spec at one width, "seeds": [...]} (seeds stacked)."""
    ws = config.get("width_sweep")
    if not ws:
        return {}
    first = int(ws.get("first_seed", 1))
    seeds = list(range(first, first + int(ws["seeds"])))
    per = int(ws["seeds_per_job"])
    jobs = {}
    for width in ws["widths"]:
        spec = dict(width_spec(config, width), seed=seeds[0])
        for i in range(0, len(seeds), per):
            part = seeds[i : i + per]
            jobs[f"w{int(width):05d}_s{part[0]}-{part[-1]}"] = {"spec": spec, "seeds": part}
    return jobs
