"""Wall time of a preset's phase-diagram grids, trained chunk by chunk on one device (the GPU timing).

The chunks are exactly the DAG's (``gridplan.plan``), trained with the same ``grids.train_chunk`` as the
``train_grid_chunk`` rule, one after another on one device, as Snakemake with ``--resources gpu=1`` runs
them. Two steps, because a GPU machine may lack the workflow's own dependencies (jsonschema, snakemake):

    # 1. where the workflow is installed: the chunk plan of some grids (JSON)
    .venv/bin/python benchmarks/bench_gpu_grid.py plan --configfile config/config.yaml --grids wd dropout \\
        --out benchmarks/out/fig03_paper_plan.json
    # 2. on the GPU machine (needs torch, numpy, tqdm, pyyaml): train them, write timings as JSON
    python benchmarks/bench_gpu_grid.py run --plan benchmarks/out/fig03_paper_plan.json \\
        --data-dir results/paper/data --out bench_gpu.json [--chunks-dir DIR] [--check] [--budget-s 540]

Any grid works, the image grids too: each chunk reads the dataset file that the DAG makes for it
(``Layout.dataset_of``: ``add_p97.npz``, ``mnist.npz``, ``digits.npz``) from ``--data-dir``, the DAG's
``results/<preset>/data`` (``snakemake results/paper/data/mnist.npz`` makes one alone).

``--check`` first trains a few cells of a chunk for a few steps on the CPU and on the device and reports
how far their curves and weights differ. ``--budget-s`` stops starting new chunks once that much time has
passed (the JSON says how many cells were done). ``--steps N`` trains every chunk for N steps only, a
quick try of the plumbing (its times are not the preset's). Never asserts timings.

``--precisions fp32 tf32 bf16`` trains the chunks once per precision (the config key ``precision``) and
reports each mode's time, its speed-up over the first mode, and every cell whose phase differs from the
first mode's (issue 14: Fig 3's alpha 0.5 column is ``--only a0500`` of the grids wd and dropout).

``--deterministic`` trains everything with torch's deterministic algorithms, as a build with config
``deterministic: true`` does (``grokking.numerics``): its cost is this run's time against the same run
without the flag.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))


def _deep_update(base, over):
    """Overlay ``over`` on ``base`` key by key, as Snakemake merges --configfile overlays."""
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            _deep_update(base[k], v)
        else:
            base[k] = v
    return base


def cmd_plan(a):
    import yaml

    from grokking.config import validate
    from grokking.experiments.gridplan import chunks_of_grid, plan

    config = {}
    for path in a.configfile:
        with open(path) as fh:
            _deep_update(config, yaml.safe_load(fh))
    if a.chunk_size:
        config["grid_defaults"]["chunk_size"] = a.chunk_size
        for g in config.get("grids", {}).values():
            g.pop("chunk_size", None)
    validate(config)
    chunks = plan(config)
    names = sorted({c for g in a.grids for c in chunks_of_grid(config, g, chunks)})
    out = {
        "preset": config["preset"],
        "grids": a.grids,
        "chunk_size": config["grid_defaults"]["chunk_size"],
        "chunks": {n: chunks[n] for n in names},
    }
    cells = sum(len(chunks[n]["cells"]) for n in names)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(out, sort_keys=True))
    print(f"{len(names)} chunks, {cells} cells -> {a.out}")


def _data(data_dir, stack) -> Path:
    """The dataset file a chunk trains on, named as the DAG names it, in ``data_dir`` (the DAG's
    ``results/<preset>/data``)."""
    from grokking.layout import Layout

    layout = Layout.of_results("results")
    return Path(data_dir) / Path(layout.dataset_of(stack)).relative_to(Path(layout.results, "data"))


def _capped(chunk: dict, steps: int | None) -> dict:
    """``chunk`` trained for ``steps`` steps (its log schedule shrinks with it); as planned when None."""
    if not steps:
        return chunk
    return dict(chunk, stack=dict(chunk["stack"], steps=steps, log_every=max(1, steps // 4)))


def _check(chunk, data_dir, device, n_cells=4, steps=200):
    """Few cells, few steps on the CPU and on the device: the largest differences."""
    import numpy as np

    from grokking.experiments.grids import train_chunk

    # Cells without dropout: a CUDA generator draws other masks than a CPU one, so dropout cells
    # follow different (equally valid) trajectories on the two devices.
    plain = [c for c in chunk["cells"] if float(c[1]["dropout"]) == 0.0][:n_cells]
    small = dict(_capped(chunk, steps), cells=plain)
    tmp = Path("/tmp/bench_gpu_check")
    tmp.mkdir(exist_ok=True)
    cpu = train_chunk(small, _data(data_dir, small["stack"]), tmp / "cpu.npz", device="cpu", progress=False)
    dev = train_chunk(small, _data(data_dir, small["stack"]), tmp / "dev.npz", device=device, progress=False)
    out = {
        "cells": len(plain),
        "steps": steps,
        "train_fraction": small["stack"]["train_fraction"],
        "cpu_seconds": cpu.seconds,
        "device_seconds": dev.seconds,
    }
    for key in ("train_acc", "test_acc", "train_loss"):
        out[f"max_abs_diff_{key}"] = float(np.nanmax(np.abs(cpu.curves[key] - dev.curves[key])))
    out["max_rel_diff_weights"] = max(
        float(np.linalg.norm((cpu.params[k] - dev.params[k]).numpy()) / np.linalg.norm(cpu.params[k].numpy()))
        for k in cpu.params
    )
    return out


def _summary(info, rows, start, dev, torch):
    total = time.perf_counter() - start
    info.update(
        {
            "chunks": rows,
            "chunks_done": len(rows),
            "cells_done": sum(r["cells"] for r in rows),
            "wall_seconds": total,
            "model_steps_per_second": sum(r["cells"] * r["steps"] for r in rows) / total if rows else None,
        }
    )
    if dev.type == "cuda":
        info["max_memory_allocated_gib"] = torch.cuda.max_memory_allocated(dev) / 2**30
    return total


def cmd_run(a):
    import torch

    from grokking import numerics
    from grokking.engine import resolve_device
    from grokking.results import write_json

    if a.deterministic:  # before the first CUDA operation: cuBLAS reads its workspace setting when it starts
        os.environ[numerics.DETERMINISTIC_VAR] = "1"
        numerics.apply_deterministic()

    job = json.loads(Path(a.plan).read_text())
    chunks = job["chunks"]
    names = sorted(chunks)
    if a.only:
        names = [n for n in names if any(n.startswith(o) for o in a.only)]
    if a.largest_first:  # by training-set size: a run stopped by --budget-s leaves the cheap chunks
        names.sort(key=lambda n: -chunks[n]["stack"]["train_fraction"])
    dev = resolve_device(a.device)
    info = {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": str(dev),
        "device_name": torch.cuda.get_device_name(dev)
        if dev.type == "cuda"
        else platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "deterministic": torch.are_deterministic_algorithms_enabled(),
        "steps": a.steps,  # every chunk capped at this many steps (None: as planned)
        "plan": a.plan,
        "grids": job["grids"],
        "chunk_size": job.get("chunk_size"),
        "preset": job["preset"],
        "chunks_planned": len(names),
        "cells_planned": sum(len(chunks[n]["cells"]) for n in names),
    }
    if a.check:
        with_plain = [n for n in names if any(float(c[1]["dropout"]) == 0.0 for c in chunks[n]["cells"])]
        if with_plain:
            steps = min(200, a.steps or 200)
            info["check"] = _check(chunks[with_plain[len(with_plain) // 2]], a.data_dir, dev, steps=steps)
        else:
            info["check"] = {"skipped": "every cell has dropout (its masks differ between CPU and device)"}
        print("check:", json.dumps(info["check"]), flush=True)
    out_dir = Path(a.chunks_dir) if a.chunks_dir else Path("/tmp/bench_gpu_chunks")
    out_dir.mkdir(parents=True, exist_ok=True)
    modes = a.precisions or [None]
    if a.warmup_steps and names:  # untimed: the process's CUDA context and every mode's kernels load here
        from grokking.experiments.grids import train_chunk

        first = chunks[names[0]]
        for mode in modes:
            ch = _capped(
                first if mode is None else dict(first, stack=dict(first["stack"], precision=mode)), a.warmup_steps
            )
            train_chunk(ch, _data(a.data_dir, ch["stack"]), out_dir / "warmup.npz", device=dev, progress=False)
        info["warmup_steps"] = a.warmup_steps
    for mode in modes:
        rows, phases = _train_chunks(a, chunks, names, dev, torch, info, out_dir, mode)
        if a.precisions:
            info.setdefault("precision", {})[mode] = {
                "wall_seconds": info["wall_seconds"],
                "chunks": rows,
                "phases": phases,
            }
    if a.precisions:
        _compare_precisions(info["precision"], modes)
        for mode in modes:
            r = info["precision"][mode]
            print(f"{mode}: {r['wall_seconds']:.1f} s, x{r['speedup']:.2f}, {len(r['other_phase'])} cells differ")
    write_json(a.out, info)


def _train_chunks(a, chunks, names, dev, torch, info, out_dir, mode):
    """Train ``names`` one after another (stack precision ``mode`` unless None); rows and each cell's phase."""
    from grokking.experiments.grids import train_chunk
    from grokking.experiments.summary import summarize
    from grokking.results import write_json

    rows, cell_phases = [], {}
    start = time.perf_counter()
    for i, name in enumerate(names):
        if a.budget_s and time.perf_counter() - start > a.budget_s:
            print(f"budget of {a.budget_s} s reached: {i} of {len(names)} chunks done", flush=True)
            break
        ch = chunks[name] if mode is None else dict(chunks[name], stack=dict(chunks[name]["stack"], precision=mode))
        ch = _capped(ch, a.steps)
        t0 = time.perf_counter()
        res = train_chunk(
            ch, _data(a.data_dir, ch["stack"]), out_dir / f"{name}.npz", device=dev, progress=False, desc=name
        )
        wall = time.perf_counter() - t0
        K, steps = len(ch["cells"]), ch["stack"]["steps"]
        s = summarize(res.curves, np.asarray([float(c[1]["corruption"]) for c in ch["cells"]]))
        for k, (cid, _) in enumerate(ch["cells"]):
            cell_phases[f"{name}/{cid}"] = [str(s["phase"][k]), float(s["train_acc"][k]), float(s["test_acc"][k])]
        rows.append(
            {
                "chunk": name,
                "precision": ch["stack"].get("precision", "fp32"),
                "train_fraction": ch["stack"]["train_fraction"],
                "cells": K,
                "steps": steps,
                "train_seconds": res.seconds,
                "wall_seconds": wall,
                "ms_per_model_step": res.seconds / (K * steps) * 1e3,
            }
        )
        print(
            f"[{time.perf_counter() - start:7.1f} s] {name} {rows[-1]['precision']}: K={K} {res.seconds:.1f} s "
            f"({rows[-1]['ms_per_model_step']:.3f} ms per model-step)",
            flush=True,
        )
        _summary(info, rows, start, dev, torch)
        write_json(a.out, info)  # after every chunk: a run stopped from outside still leaves its numbers
    total = _summary(info, rows, start, dev, torch)
    print(
        f"{len(rows)} chunks, {info['cells_done']} of {info['cells_planned']} cells in {total:.1f} s "
        f"on {info['device_name']}"
    )
    return rows, cell_phases


def _compare_precisions(by_mode: dict, modes: list):
    """Speed-up of each mode over the first one, and the cells whose phase differs from the first mode's."""
    ref = by_mode[modes[0]]
    for mode in modes:
        r = by_mode[mode]
        r["speedup"] = ref["wall_seconds"] / r["wall_seconds"]
        r["other_phase"] = {
            cell: {modes[0]: ref["phases"][cell], mode: got}
            for cell, got in r["phases"].items()
            if cell in ref["phases"] and got[0] != ref["phases"][cell][0]
        }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("plan", help="write the chunk plan of some grids")
    p.add_argument("--configfile", nargs="+", default=[str(REPO / "config" / "config.yaml")])
    p.add_argument("--grids", nargs="+", required=True)
    p.add_argument("--chunk-size", type=int, default=None, help="override grid_defaults.chunk_size (all grids)")
    p.add_argument("--out", required=True)
    r = sub.add_parser("run", help="train a plan's chunks on one device and time them")
    r.add_argument("--plan", required=True)
    r.add_argument("--data-dir", required=True)
    r.add_argument("--out", required=True)
    r.add_argument("--device", default="auto")
    r.add_argument("--chunks-dir", default=None, help="keep the chunk npz files here (default: a temp dir)")
    r.add_argument("--only", nargs="*", default=None, help="chunk name prefixes to run (e.g. a0500)")
    r.add_argument("--largest-first", action="store_true", help="train the largest alpha first")
    r.add_argument("--check", action="store_true", help="compare a few cells on CPU and device first")
    r.add_argument("--budget-s", type=float, default=None, help="start no new chunk after this many seconds")
    r.add_argument("--precisions", nargs="+", default=None, help="train the chunks once per precision, compare")
    r.add_argument("--steps", type=int, default=None, help="train every chunk for this many steps only (a quick try)")
    r.add_argument(
        "--warmup-steps", type=int, default=0, help="first train the first chunk this many steps in every mode, untimed"
    )
    r.add_argument(
        "--deterministic",
        action="store_true",
        help="train with torch's deterministic algorithms (config deterministic: true); compare with a run without",
    )
    a = ap.parse_args(argv)
    cmd_plan(a) if a.cmd == "plan" else cmd_run(a)


if __name__ == "__main__":
    main()
