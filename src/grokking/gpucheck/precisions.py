"""Part d of the GPU acceptance check: fp32, tf32 and bf16 on Fig 3's alpha 0.5 column.

The column's chunks are the paper preset's own (``benchmarks/bench_gpu_grid.py plan``, grids ``wd`` and
``dropout``: every xi and panel at alpha 0.5), trained by ``bench_gpu_grid.py run --only a0500 --precisions fp32
tf32 bf16`` on the GPU, once per precision: each mode's wall time and speed-up over fp32, and the cells whose
phase differs from fp32's (information, not a failure: tf32 and bf16 results are not the fp32 ones). Then fp32
once more under torch's deterministic algorithms (``--deterministic``, the config's ``deterministic: true``): what
the deterministic mode costs, and whether a phase moves.
"""

from __future__ import annotations

import json
from pathlib import Path

from .common import FAIL, PASS, Context, Outcome, Skip

MODES = ("fp32", "tf32", "bf16")
WARMUP_STEPS = 20  # untimed, in every mode, before the timed chunks: the CUDA context and each mode's kernels load
GRIDS = ("wd", "dropout")
SCRIPT = Path("benchmarks") / "bench_gpu_grid.py"
DETERMINISTIC = "--deterministic"
MARGIN_S = 10  # of the part's budget, kept for reading the results


def column(plan: dict, alpha: float = 0.5) -> str:
    """The chunk-name prefix of the plan's train fraction nearest ``alpha`` (``a0500`` in the paper preset)."""
    prefixes = sorted({name.split("_")[0] for name in plan["chunks"]})
    return min(prefixes, key=lambda p: (abs(int(p[1:]) / 1000 - alpha), p))


def _mode_rows(by_mode: dict, modes: list[str], reference: dict, cells_planned: int) -> tuple[list, list]:
    """One row per mode of a bench_gpu_grid.py run (``by_mode``: its ``precision`` entry), against the fp32
    ``reference`` (the same entry of the first run), and what falls short (a mode that did not train every
    cell of the column)."""
    rows, short = [], []
    for mode in modes:
        r = by_mode.get(mode)
        if r is None:
            short.append(f"{mode}: not trained")
            continue
        cells = sum(c["cells"] for c in r["chunks"])
        steps = sum(c["cells"] * c["steps"] for c in r["chunks"])
        if cells < cells_planned:
            short.append(f"{mode}: {cells} of {cells_planned} cells within the budget")
        ref = reference.get("phases", {})
        differ = sorted(c for c, got in r["phases"].items() if c in ref and got[0] != ref[c][0])
        rows.append(
            {
                "mode": mode,
                "cells": cells,
                "wall s": round(r["wall_seconds"], 1),
                "ms per model-step": round(sum(c["train_seconds"] for c in r["chunks"]) / max(steps, 1) * 1e3, 4),
                "speed-up over fp32": round(reference["wall_seconds"] / r["wall_seconds"], 2) if reference else None,
                "cells with another phase than fp32": len(differ),
                "which": ", ".join(differ[:4]) + (" ..." if len(differ) > 4 else ""),
            }
        )
    return rows, short


def run(ctx: Context) -> Outcome:
    repo = ctx.need_repo("bench_gpu_grid.py")
    script = repo / SCRIPT
    if not script.exists():
        raise Skip(f"{SCRIPT} is not in the checkout {repo}")
    folder = ctx.work / "precisions"
    folder.mkdir(parents=True, exist_ok=True)
    configs = [repo / "config" / "config.yaml"] + ([repo / "config" / "smoke.yaml"] if ctx.tiny else [])
    plan_file = folder / "plan.json"
    made = ctx.command(
        [ctx.python, script, "plan", "--configfile", *configs, "--grids", *GRIDS, "--out", plan_file],
        "precisions_plan",
        min(120, ctx.left()),
    )
    if made.rc != 0:
        return Outcome(FAIL, f"bench_gpu_grid.py plan failed (exit {made.rc}): {made.tail()}")
    plan = json.loads(plan_file.read_text())
    prefix = column(plan)
    chunks = {n: c for n, c in plan["chunks"].items() if n.startswith(prefix)}
    ctx.dataset(next(iter(chunks.values()))["stack"])  # the column's dataset file, where the script reads it
    planned = sum(len(c["cells"]) for c in chunks.values())
    runs = [("precisions", list(MODES), []), ("deterministic", ["fp32"], [DETERMINISTIC])]
    numbers = {"column": prefix, "chunks": len(chunks), "cells": planned}
    rows, short, reference = [], [], {}
    for name, modes, extra in runs:
        share = (ctx.left() - MARGIN_S) / (len(modes) + (1 if name == "precisions" else 0))  # of each mode
        out = folder / f"{name}.json"
        args = [ctx.python, script, "run", "--plan", plan_file, "--data-dir", ctx.work / "data", "--out", out]
        args += ["--device", ctx.device, "--only", prefix, "--precisions", *modes, "--budget-s", f"{max(share, 1):.0f}"]
        args += ["--chunks-dir", folder / f"{name}_chunks", "--warmup-steps", str(WARMUP_STEPS), *extra]
        done = ctx.command(args, f"precisions_{name}", ctx.left() - MARGIN_S)
        if done.rc != 0:
            why = "killed at the part's time limit" if done.rc is None else f"exit {done.rc}"
            short.append(f"bench_gpu_grid.py run {' '.join(modes + extra)}: {why}: {done.tail()}")
        by_mode = json.loads(out.read_text()).get("precision", {}) if out.exists() else {}
        reference = reference or by_mode.get("fp32", {})
        got, missing = _mode_rows(by_mode, [m for m in MODES if m in modes], reference, planned)
        for row in got:
            row["mode"] += " deterministic" if extra else ""
        rows += got
        short += missing
    numbers["modes"] = {r["mode"]: {k: v for k, v in r.items() if k != "mode"} for r in rows}
    notes = [
        f"Chunks {prefix}_* of grids {' and '.join(GRIDS)} ({planned} cells), trained once per mode; a phase that "
        "differs from fp32's is reported, not failed.",
        f"Each run of the script first trains one chunk {WARMUP_STEPS} steps in every mode, untimed, so that no mode's "
        "time includes the process's warm-up (CUDA context, kernel loading).",
    ]
    if short:
        return Outcome(FAIL, "; ".join(short), numbers, rows, notes)
    speed = ", ".join(f"{r['mode']} x{r['speed-up over fp32']}" for r in rows if r["mode"] != "fp32")
    differ = ", ".join(f"{r['mode']} {r['cells with another phase than fp32']}" for r in rows if r["mode"] != "fp32")
    what = f"{planned} cells of column {prefix}, {len(rows)} modes; speed-up {speed}; cells in another phase: {differ}"
    return Outcome(PASS, what, numbers, rows, notes)
