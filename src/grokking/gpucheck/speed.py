"""Part c of the GPU acceptance check: speed and peak GPU memory per family at the paper's shapes and stack sizes.

The jobs are the paper preset's own (``config/config.yaml``), planned by the workflow's own code (every run, grid
chunk and width job with its models, :func:`training_jobs`): p 97, the widths 500 / 5000 / 10000, the d 128
Transformer, the deep MLPs and MNIST-sized images (stand-in files of MNIST's shapes). They are grouped by code path
(family and dataset, norm, full batch or minibatch, dropout), and of each group the job with the largest stack
(models x parameters) trains a few steps on the GPU: milliseconds per model-step (a warm-up first; the one log step
at the end is not counted) and ``torch.cuda.max_memory_allocated`` over those steps, the log step's metrics
included, beside what the plan says a GPU must hold for the stack (parameters, gradients and AdamW's moments). A
job that does not fit the GPU fails the part.
"""

from __future__ import annotations

import dataclasses
import time

from .common import FAIL, PASS, Context, Outcome

STEPS = 10  # timed steps of each job on the GPU, after WARMUP untimed ones
TINY_STEPS = 3  # in a development run
WARMUP = 2


def _path(stack: dict, per_model: list[dict]) -> str:
    """The code path a job takes: its family and dataset, norm, batch, and whether any model has dropout."""
    dataset = stack.get("dataset", "modular")
    words = [stack.get("model", "mlp2") + ("" if dataset == "modular" else f" ({dataset})")]
    if stack.get("norm", "none") != "none":
        words.append(stack["norm"])
    words.append("full batch" if stack["batch_size"] == "full" else "minibatch")
    if any(float(m["dropout"]) > 0 for m in per_model):
        words.append("dropout")
    return ", ".join(words)


def training_jobs(config: dict) -> list[dict]:
    """Every training job of a build of ``config`` (the workflow's runs, grid chunks and width jobs, from the
    plan code it uses): rule, job name, stack settings and per-model settings."""
    from ..config import built_runs
    from ..experiments.gridplan import plan, width_sweep_jobs
    from ..runspec import resolve_run, with_seed

    jobs = [("train_run", r, resolve_run(config, r), None) for r in built_runs(config)]
    jobs += [("train_grid_chunk", n, c["stack"], [cell for _, cell in c["cells"]]) for n, c in plan(config).items()]
    jobs += [
        ("train_width_job", n, j["spec"], [with_seed(j["spec"], s) for s in j["seeds"]])
        for n, j in width_sweep_jobs(config).items()
    ]
    return [{"rule": r, "job": n, "stack": st, "models": m or [st]} for r, n, st, m in jobs]


def largest_stacks(config: dict) -> list[dict]:
    """Per code path of ``config``'s build, its training job with the largest stack (models x parameters; of
    equal ones, the most work per step) and, where another job does more work per step (more examples), that
    one too, largest first: :func:`training_jobs`' entries with the path, ``size`` and ``work``."""
    from ..experiments.gridplan import multiply_adds, parameter_count

    largest, heaviest = {}, {}
    for entry in training_jobs(config):
        stack, K = entry["stack"], len(entry["models"])
        entry.update(path=_path(stack, entry["models"]), size=K * parameter_count(stack))
        entry["work"] = multiply_adds(dict(stack, steps=1), K)
        key = entry["path"]
        if key not in largest or (entry["size"], entry["work"]) > (largest[key]["size"], largest[key]["work"]):
            largest[key] = entry
        if key not in heaviest or (entry["work"], entry["size"]) > (heaviest[key]["work"], heaviest[key]["size"]):
            heaviest[key] = entry
    chosen = list(largest.values()) + [e for k, e in heaviest.items() if e is not largest[k]]
    return sorted(chosen, key=lambda e: (-e["size"], -e["work"]))


def measure(ctx: Context, entry: dict, steps: int) -> dict:
    """Train ``entry`` (from :func:`largest_stacks`) for ``steps`` steps after a warm-up; its row."""
    import torch

    from ..engine import train
    from ..experiments.gridplan import parameter_count
    from ..experiments.specs import model_settings, stack_settings
    from ..report.costplan import BYTES_PER_PARAMETER
    from ..results import load_split

    stack = entry["stack"]
    split = load_split(ctx.dataset(stack), stack)
    models = [model_settings(m) for m in entry["models"]]
    base = stack_settings(stack)
    dev = torch.device(ctx.device)
    K = len(models)
    train(split, dataclasses.replace(base, steps=WARMUP, log_steps=(WARMUP,)), models, device=dev, progress=False)
    if ctx.gpu:
        torch.cuda.synchronize(dev)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(dev)
    start = time.perf_counter()
    res = train(split, dataclasses.replace(base, steps=steps, log_steps=(steps,)), models, device=dev, progress=False)
    wall = time.perf_counter() - start
    per_step = (res.seconds - res.log_seconds) / (K * steps)
    return {
        "path": entry["path"],
        "job": f"{entry['rule']} {entry['job']}",
        "models": K,
        "parameters per model": parameter_count(stack),
        "ms per model-step": round(per_step * 1e3, 4),
        "peak GPU MiB": round(torch.cuda.max_memory_allocated(dev) / 2**20) if ctx.gpu else None,
        "plan MiB (weights, grads, AdamW)": round(BYTES_PER_PARAMETER * entry["size"] / 2**20),
        "real job's training s at this rate": round(per_step * K * int(stack["steps"]), 1),
        "wall s": round(wall, 2),
    }


def run(ctx: Context) -> Outcome:
    import torch

    steps = TINY_STEPS if ctx.tiny else STEPS
    entries = largest_stacks(ctx.config)
    rows, failed = [], []
    for entry in entries:
        if ctx.left() <= 0:
            failed.append(f"budget spent before {entry['path']!r}")
            break
        try:
            rows.append(measure(ctx, entry, steps))
        except Exception as err:  # noqa: BLE001 - out of memory or a crash is this path's finding
            msg = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
            rows.append({"path": entry["path"], "job": f"{entry['rule']} {entry['job']}", "error": msg})
            failed.append(f"{entry['path']} ({entry['job']}): {msg}")
        finally:
            if ctx.gpu:
                torch.cuda.empty_cache()
    numbers = {
        "preset": ctx.preset,
        "steps": steps,
        "warmup_steps": WARMUP,
        "paths": len(entries),
        "jobs": {r["job"].split()[-1]: r["ms per model-step"] for r in rows if "ms per model-step" in r},
    }
    notes = [
        f"Each job: {WARMUP} warm-up steps, then {steps} timed steps and one log step; ms per model-step leaves "
        "the log step out, the peak includes it. The last column multiplies the rate by the real job's models "
        "and steps (log steps and start-up not included).",
    ]
    if not ctx.gpu:
        notes.append("A development run on the CPU: no GPU memory to measure.")
    if failed:
        return Outcome(FAIL, f"{len(failed)} of {len(entries)} paths failed: {failed[0]}", numbers, rows, notes)
    peak = max((r["peak GPU MiB"] or 0 for r in rows), default=0)
    what = f"{len(rows)} code paths at the {ctx.preset} preset's largest stacks"
    if ctx.gpu:
        what += f"; largest peak {peak} MiB"
    return Outcome(PASS, what, numbers, rows, notes)
