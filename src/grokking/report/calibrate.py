"""The resource formula (``resources.estimate``, :func:`grokking.experiments.gridplan.job_resources`) against a
rehearsal's cost plan: does it ask every job for enough, and which ``estimate`` would the rehearsal support.

A cost plan row (:func:`grokking.report.costplan.measure`) gives each job's peak memory (``max_rss_mb``) and its time
at the real step count on the rehearsal's machine (``estimate_s``). Memory does not grow with the step count, so the
rehearsal measures it directly; time is extrapolated. The fit keeps the formula's form and makes it cover every job
before ``headroom``, so that ``headroom`` is left for slower machines and a noisy node:

- ``bytes_per_parameter``: the slope of peak memory against stacked parameters (least squares over the jobs);
  ``base_mb``: the largest peak memory of a job less its stacked parameters at that rate;
- ``start_minutes``: the longest time a job spends outside its training and pruning (start-up, data, IPRs, saving);
- ``cpu_gflops``: the slowest training rate of a job (2 x multiply-adds per extrapolated training second), log
  steps included; ``cpu_prune_rate``: the slowest pruning rate, in 10^9 logits per second.

The GPU keys stay as configured: a CPU rehearsal cannot measure them.
"""

from __future__ import annotations

import math

import numpy as np

from ..experiments.gridplan import job_resources, multiply_adds, parameter_count, pruning_logits
from .costplan import jobs

FITTED = ("base_mb", "bytes_per_parameter", "start_minutes", "cpu_gflops", "cpu_prune_rate")


def _work(real: dict) -> list[dict]:
    """Per job of the real preset: its settings, models, and whether it trains and prunes."""
    return [
        dict(job, train=job["rule"] != "prune_run", prune=job["rule"] in ("prune_run", "train_width_job"))
        for job in jobs(real)
    ]


def fit(rows: list[dict], real: dict) -> dict:
    """The ``resources.estimate`` that covers every job of the cost plan ``rows`` (before headroom); the keys the
    rehearsal cannot measure keep ``real``'s values."""
    work = _work(real)
    params = np.array([w["models"] * parameter_count(w["stack"]) for w in work], dtype=float)
    rss = np.array([r["max_rss_mb"] for r in rows])
    slope = np.polyfit(params, rss, 1)[0] if np.ptp(params) > 0 else 0.0  # MB per parameter, least squares
    per_param = round(max(0.0, float(slope) * 2**20), 1)
    base = float(np.max(rss - per_param * params / 2**20))

    outside = np.array([r["wall_s"] - r["train_s"] for r in rows])
    plain = np.array([not w["prune"] for w in work])
    start = float(np.max(outside[plain]))
    train_rates, prune_rates = [], []
    for row, w in zip(rows, work, strict=True):
        trained = row["estimate_s"] - (row["wall_s"] - row["train_s"])
        if w["train"] and trained > 0:
            train_rates.append(2 * multiply_adds(w["stack"], w["models"]) / trained / 1e9)
        pruned = row["wall_s"] - row["train_s"] - np.median(outside[plain])
        if w["prune"] and pruned > 0:
            prune_rates.append(pruning_logits(w["stack"], w["models"]) / pruned / 1e9)
    estimate = dict(real["resources"]["estimate"])
    estimate.update(
        base_mb=math.ceil(base),
        bytes_per_parameter=per_param,
        start_minutes=math.ceil(start / 60 * 100) / 100,
        cpu_gflops=_down(min(train_rates)),
    )
    if prune_rates:
        estimate["cpu_prune_rate"] = _down(min(prune_rates))
    return estimate


def _down(rate: float) -> float:
    """``rate`` rounded down to three significant digits (a rounded-up rate would under-ask)."""
    scale = 10 ** (math.floor(math.log10(rate)) - 2)
    return round(math.floor(rate / scale) * scale, 12)


def shortfalls(rows: list[dict], real: dict, resources: dict) -> list[dict]:
    """The jobs whose CPU request under ``resources`` (headroom included, without the doubling of a retry) is less
    than what the rehearsal measured: rule, name, asked and needed memory (MB) and time (minutes)."""
    cpu = dict(resources, gpu=0)
    short = []
    for row, w in zip(rows, _work(real), strict=True):
        asked = job_resources(w["stack"], w["models"], cpu, w["train"], w["prune"])
        need = {"mem_mb": row["max_rss_mb"], "runtime": row["estimate_s"] / 60}
        if asked["mem_mb"] < need["mem_mb"] or asked["runtime"] < need["runtime"]:
            short.append({"rule": row["rule"], "name": row["name"], "asked": asked, "needed": need})
    return short


def to_markdown(fitted: dict, short: list[dict], n_jobs: int, configured: dict) -> str:
    """The cost plan's section on resource requests: which jobs the configured estimate under-asks, and the
    estimate this rehearsal supports."""

    def inline(d: dict) -> str:
        return "{" + ", ".join(f"{k}: {d[k]:g}" for k in d) + "}"

    lines = [
        "## Resource requests",
        "",
        'What a job asks SLURM for follows from its size (`resources.estimate` in the config; README, "Running on '
        "a SLURM cluster\"). Against this rehearsal, on the CPU, with headroom and without a retry's doubling:",
        "",
        f"- the configured estimate, `{inline(configured)}`, asks {n_jobs - len(short)} of {n_jobs} jobs for at "
        "least the memory and time measured here;",
    ]
    for s in short[:10]:
        lines.append(
            f"  - short: `{s['rule']}` `{s['name']}`: asks {s['asked']['mem_mb']} MB and {s['asked']['runtime']} min, "
            f"needs {s['needed']['mem_mb']:.0f} MB and {s['needed']['runtime']:.0f} min"
        )
    if len(short) > 10:
        lines.append(f"  - and {len(short) - 10} more")
    changed = {k: fitted[k] for k in FITTED if fitted[k] != configured.get(k)}
    lines += [
        f"- the estimate this rehearsal supports (every job covered before headroom; src/grokking/report/calibrate.py "
        f"says how): `{inline({k: fitted[k] for k in FITTED})}`" + ("" if changed else ", the configured one"),
        "",
    ]
    return "\n".join(lines)
