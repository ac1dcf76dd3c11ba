"""Part f of the GPU acceptance check: pruning on the device.

The paper preset's first pruned run (Fig 6's, ``r1_wd0``) trains on the GPU with its step count capped (as the
rule ``train_run`` trains it), then its two pruning sweeps (lowest-IPR first, highest-IPR first) run as the rule
``prune_run`` runs them, once on the GPU and once on the CPU from the same saved weights: the curves must agree
within :data:`TOLERANCE` (the same weights, another device's arithmetic). Fig 32's pruning of a whole stack on the
device is part e's width job.
"""

from __future__ import annotations

import time

import numpy as np

from .common import FAIL, PASS, Context, Outcome, Skip

STEPS = {"gpu": 200, "tiny": 40}
TOLERANCE = 0.01  # accuracies, absolute; losses relative
DIRECTIONS = ("lowest", "highest")


def pruned_run(config: dict) -> str:
    """The first run of the preset's enabled figures that prunes it."""
    from ..config import enabled_figures, figure_runs

    for fig in enabled_figures(config):
        if config["figures"][fig].get("pruning"):
            return next(iter(figure_runs(config, fig).values()))
    raise Skip("the preset prunes no run")


def differences(device: dict, host: dict) -> dict:
    """Largest difference of each sweep's curves between the device and the CPU (losses relative)."""
    from ..experiments.pruning import CURVE_KEYS

    out = {}
    for direction in DIRECTIONS:
        for key in CURVE_KEYS:
            a, b = np.asarray(device[f"{direction}_{key}"]), np.asarray(host[f"{direction}_{key}"])
            both = ~(np.isnan(a) | np.isnan(b))
            diff = np.abs(a - b)[both]
            if "loss" in key:
                diff = diff / np.maximum(np.abs(b[both]), 1e-12)
            same_nan = np.array_equal(np.isnan(a), np.isnan(b))
            out[f"{direction}_{key}"] = float(diff.max()) if diff.size and same_nan else (0.0 if same_nan else np.inf)
    return out


def run(ctx: Context) -> Outcome:
    from ..experiments.pruning import prune_saved_run
    from ..experiments.runs import run_and_save
    from ..runspec import resolve_run

    name = pruned_run(ctx.config)
    steps = STEPS["tiny" if ctx.tiny else "gpu"]
    spec = resolve_run(dict(ctx.config, rehearsal={"steps": steps}), name)
    data = ctx.dataset(spec)
    folder = ctx.work / "pruning"
    start = time.perf_counter()
    run_and_save(spec, data, folder / "run", device=ctx.device, progress=False)
    trained = time.perf_counter() - start
    sweeps, took = {}, {}
    for label, where in (("device", ctx.device), ("cpu", "cpu")):
        start = time.perf_counter()
        sweeps[label] = prune_saved_run(folder / "run", data, folder / f"pruning_{label}.npz", device=where)
        took[label] = round(time.perf_counter() - start, 2)
    diffs = differences(sweeps["device"], sweeps["cpu"])
    numbers = {
        "run": name,
        "width": int(spec["width"]),
        "steps": steps,
        "train_s": round(trained, 2),
        "prune_device_s": took["device"],
        "prune_cpu_s": took["cpu"],
        "max_diff": diffs,
    }
    rows = [{"curve": k, "largest difference": v, "within bounds": v <= TOLERANCE} for k, v in diffs.items()]
    notes = [f"Device against CPU, the same saved weights: accuracies absolute, losses relative; bound {TOLERANCE}."]
    if not ctx.gpu:
        notes.append("A development run: the 'device' is the CPU, so both sweeps are the same computation.")
    bad = [k for k, v in diffs.items() if not v <= TOLERANCE]
    if bad:
        worst = ", ".join(f"{k} {diffs[k]:.3g}" for k in bad[:3])
        return Outcome(FAIL, f"pruning on {ctx.device} differs from the CPU's: {worst}", numbers, rows, notes)
    what = (
        f"{name} (width {numbers['width']}, {steps} steps) trained on {ctx.device}; both sweeps of its "
        f"{numbers['width']} neurons on {ctx.device} in {numbers['prune_device_s']} s match the CPU's"
    )
    return Outcome(PASS, what, numbers, rows, notes)
