"""The cost plan of a preset from its rehearsal (``make rehearse``; README, "Before the first GPU hour").

A rehearsal runs every job of a preset at its full shape, each training capped at a few steps. From each
training or pruning job it keeps the wall time and peak memory (the job's timing file, with ``max_rss``) and
the training loop's own split (``seconds``, of which ``log_seconds`` went to the log steps' metrics). The job's
time at the real step count is then extrapolated on the same machine as

    wall - seconds                          (start-up, data, IPRs, pruning, saving: independent of the steps)
    + models x real steps x (seconds - log_seconds) / (models x rehearsed steps)
    + models x real log steps x log_seconds / (models x rehearsed log steps)

The rehearsed steps include the first, slower step, so the estimate is on the high side. A GPU estimate is the
job's floating-point work at the real steps (2 x :func:`~grokking.experiments.gridplan.multiply_adds`) at the
rate measured for Fig 3 on an H100 (a benchmark record), for every family alike: extrapolated, not measured.
What a GPU must hold is the largest stack's parameters, gradients and AdamW's two moments (16 bytes per
parameter), activations not included.
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from functools import cache
from pathlib import Path

import numpy as np

from ..config import built_runs, enabled_figures, figure_grids, figure_runs
from ..experiments.gridplan import chunks_of_grid, multiply_adds, plan, width_sweep_jobs
from ..experiments.specs import stack_settings
from ..results import load_chunk, load_width_job, read_json
from ..runspec import resolve_run

BYTES_PER_PARAMETER = 16  # float32 parameter, gradient and AdamW's two moments
COLUMNS = (
    "rule", "name", "family", "figures", "models", "steps", "rehearsed_steps", "log_steps", "rehearsed_log_steps",
    "wall_s", "max_rss_mb", "train_s", "log_s", "s_per_model_step", "estimate_s", "gpu_estimate_s", "gpu_bytes",
)  # fmt: skip


def _family(spec: dict) -> str:
    model = spec.get("model", "mlp2")
    return f"{model} ({spec['dataset']})" if spec.get("dataset", "modular") != "modular" else model


@cache
def _parameters(shape_json: str) -> int:
    """Parameters of one model of a stack's shape (its family's own initialisation, counted)."""
    from ..models import get_family, shape_from_spec

    stack = json.loads(shape_json)
    shape = shape_from_spec(stack)
    params, _ = get_family(shape).init(shape, 0, stack.get("init_scale"))
    return sum(int(v.numel()) for v in params.values())


def _log_count(stack: dict) -> int:
    return len(stack_settings(stack).log_steps)


def jobs(config: dict) -> list[dict]:
    """Every training and pruning job of a build of ``config``, with the figures it serves (a job serving
    several figures is listed once): its rule, name, stack settings and number of models."""
    figures = defaultdict(set)
    chunks = plan(config)
    widths = width_sweep_jobs(config)
    for fig in enabled_figures(config):
        entry = config["figures"][fig]
        for run in figure_runs(config, fig).values():
            figures["train_run", run].add(fig)
            if entry.get("pruning"):
                figures["prune_run", run].add(fig)
        for grid in set(figure_grids(config, fig).values()):
            for name in chunks_of_grid(config, grid, chunks):
                figures["train_grid_chunk", name].add(fig)
        if entry.get("width_sweep"):
            for name in widths:
                figures["train_width_job", name].add(fig)
    out = [{"rule": "train_run", "name": r, "stack": resolve_run(config, r), "models": 1} for r in built_runs(config)]
    out += [
        {"rule": "prune_run", "name": r, "stack": resolve_run(config, r), "models": 1}
        for (rule, r) in sorted(figures)
        if rule == "prune_run"
    ]
    out += [
        {"rule": "train_grid_chunk", "name": n, "stack": c["stack"], "models": len(c["cells"])}
        for n, c in chunks.items()
    ]
    out += [
        {"rule": "train_width_job", "name": n, "stack": j["spec"], "models": len(j["seeds"])} for n, j in widths.items()
    ]
    for job in out:
        job["figures"] = sorted(figures.get((job["rule"], job["name"]), ()))
    return out


def _timing(path) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of a job's timing file (the columns of a Snakemake benchmark file)."""
    header, row = Path(path).read_text().splitlines()[:2]
    values = dict(zip(header.split("\t"), row.split("\t"), strict=True))
    return float(values["s"]), float(values["max_rss"])


def _trained(job: dict, layout) -> tuple[float, float]:
    """(seconds, log_seconds) of the job's training loop, from its outputs."""
    rule, name = job["rule"], job["name"]
    if rule == "train_run":
        s = read_json(layout.run_file(name, "summary.json"))
        return float(s["train_seconds"]), float(s["log_seconds"])
    if rule == "train_grid_chunk":
        c = load_chunk(layout.chunk(name))
        return float(c["seconds"]), float(c["log_seconds"])
    if rule == "train_width_job":
        w = load_width_job(layout.width_job(name))
        return float(w["seconds"]), float(w["log_seconds"])
    return 0.0, 0.0


def measure(rehearsed: dict, real: dict, layout, gpu_flops: float | None) -> list[dict]:
    """One row per job of the rehearsal ``rehearsed`` (its results under ``layout``), extrapolated to the step
    counts of ``real`` (the same config without ``rehearsal``); ``gpu_flops``: the GPU rate (FLOP/s)."""
    rows = []
    for job, full in zip(jobs(rehearsed), jobs(real), strict=True):
        K, stack, real_stack = job["models"], job["stack"], full["stack"]
        wall, rss = _timing(layout.benchmark(job["rule"], job["name"]))
        train, logs = _trained(job, layout)
        row = {
            "rule": job["rule"], "name": job["name"], "family": _family(stack), "figures": " ".join(job["figures"]),
            "models": K, "wall_s": wall, "max_rss_mb": rss, "train_s": train, "log_s": logs,
        }  # fmt: skip
        if job["rule"] == "prune_run":  # no training: the same work at any step count
            row.update(steps=0, rehearsed_steps=0, log_steps=0, rehearsed_log_steps=0, s_per_model_step=np.nan)
            row.update(estimate_s=wall, gpu_estimate_s=np.nan, gpu_bytes=np.nan)
        else:
            steps, n_logs = int(stack["steps"]), _log_count(stack)
            per_step = (train - logs) / (K * steps)
            per_log = logs / (K * n_logs)
            row.update(steps=int(real_stack["steps"]), rehearsed_steps=steps)
            row.update(log_steps=_log_count(real_stack), rehearsed_log_steps=n_logs, s_per_model_step=per_step)
            row["estimate_s"] = wall - train + K * (row["steps"] * per_step + row["log_steps"] * per_log)
            flop = 2 * multiply_adds(real_stack, K)
            row["gpu_estimate_s"] = flop / gpu_flops if gpu_flops else np.nan
            shape = {k: v for k, v in real_stack.items() if k not in ("steps", "log_every")}
            row["gpu_bytes"] = BYTES_PER_PARAMETER * K * _parameters(json.dumps(shape, sort_keys=True))
        rows.append(row)
    return rows


def to_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, COLUMNS, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: (f"{r[k]:.6g}" if isinstance(r[k], float) else r[k]) for k in COLUMNS})
    return buf.getvalue()


def _hours(seconds: float) -> str:
    return "–" if not np.isfinite(seconds) else f"{seconds / 3600:.3g}"


def _gib(nbytes: float) -> str:
    return "–" if not np.isfinite(nbytes) else f"{nbytes / 2**30:.3g}"


def _summary(rows: list[dict]) -> dict:
    trained = [r for r in rows if r["rule"] != "prune_run"]
    model_steps = sum(r["models"] * r["steps"] for r in trained)
    rehearsed = sum(r["models"] * r["rehearsed_steps"] for r in trained)
    return {
        "jobs": len(rows),
        "model_steps": model_steps,
        "s_per_model_step": sum(r["train_s"] - r["log_s"] for r in trained) / rehearsed if rehearsed else np.nan,
        "cpu_s": sum(r["estimate_s"] for r in rows),
        "gpu_s": sum(r["gpu_estimate_s"] for r in trained) if trained else np.nan,
        "rss_mb": max(r["max_rss_mb"] for r in rows),
        "gpu_bytes": max((r["gpu_bytes"] for r in trained), default=np.nan),
    }


def _table(groups: dict[str, list[dict]], what: str) -> list[str]:
    lines = [
        f"| {what} | jobs | model-steps | s per model-step (measured) | CPU hours (extrapolated) | "
        "GPU hours (extrapolated) | peak host memory (GiB) | largest stack on a GPU (GiB) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for key, rows in groups.items():
        s = _summary(rows)
        per = "–" if not np.isfinite(s["s_per_model_step"]) else f"{s['s_per_model_step']:.3g}"
        lines.append(
            f"| {key} | {s['jobs']} | {s['model_steps']:,} | {per} | {_hours(s['cpu_s'])} | {_hours(s['gpu_s'])} | "
            f"{s['rss_mb'] / 1024:.3g} | {_gib(s['gpu_bytes'])} |"
        )
    return lines


def record(rows: list[dict], layout, rehearses: str, cpu: dict, cores: int, code: str) -> dict:
    """The cost plan's summary as a benchmark record (``kind: "cost_plan"``; ``make record-rehearsal`` keeps it in
    benchmarks/records/, the README's cost line is rendered from it). Its span: from the first job's start (its
    timing file's time less its wall time) to now."""
    import time

    starts = [Path(layout.benchmark(r["rule"], r["name"])).stat().st_mtime - r["wall_s"] for r in rows]
    s = _summary(rows)
    return {
        "kind": "cost_plan",
        "preset": layout.results.rstrip("/").split("/")[-1],
        "rehearses": rehearses,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(min(starts))),
        "wall_minutes": round((time.time() - min(starts)) / 60, 1),
        "jobs": s["jobs"],
        "cpu_hours": round(s["cpu_s"] / 3600, 1),
        "gpu_hours": round(s["gpu_s"] / 3600, 2),
        "max_rss_gib": round(s["rss_mb"] / 1024, 2),
        "gpu_gib": round(s["gpu_bytes"] / 2**30, 2),
        "cores": cores,
        "cpu": cpu,
        "code_version": code,
        # per job, for calibrating resource formulas: rule, name, models, wall and extrapolated seconds, peak MB
        "job_columns": ["rule", "name", "models", "wall_s", "estimate_s", "max_rss_mb", "gpu_bytes"],
        "job_rows": [
            [r["rule"], r["name"], r["models"], round(r["wall_s"], 2), round(r["estimate_s"], 1), r["max_rss_mb"]]
            + [None if not np.isfinite(r["gpu_bytes"]) else int(r["gpu_bytes"])]
            for r in rows
        ],
    }


def headline(rows: list[dict], cores: int) -> str:
    s = _summary(rows)
    return (
        f"the whole preset: about {_hours(s['cpu_s'])} CPU-hours on this machine's {cores} cores, about "
        f"{_hours(s['gpu_s'])} GPU-hours on an H100 (extrapolated)"
    )


def to_markdown(rows: list[dict], preset: str, cpu: str, cores: int, gpu_source: str, note: str = "") -> str:
    by_figure, by_kind = defaultdict(list), defaultdict(list)
    for r in rows:
        for fig in r["figures"].split() or ["(claims only)"]:
            by_figure[fig].append(r)
        by_kind[f"{r['rule']}: {r['family']}"].append(r)
    biggest = max(rows, key=lambda r: r["estimate_s"])
    heaviest = max(rows, key=lambda r: r["max_rss_mb"])
    lines = [
        f"# Cost plan of the {preset} preset",
        "",
        *([f"**{note}**", ""] if note else []),
        f"Measured by a rehearsal on {cpu} ({cores} cores): every training and pruning job of the preset at its full "
        "shape, each training capped at a few steps; extrapolated to the real step counts on the same machine "
        "(src/grokking/report/costplan.py says how). GPU hours: the jobs' floating-point work at the rate measured "
        f"for Fig 3 on an H100 ({gpu_source}), every family alike: an extrapolation, not a measurement.",
        "",
        f"**Headline:** {headline(rows, cores)}.",
        "",
        f"Longest job: `{biggest['rule']}` `{biggest['name']}`, about {_hours(biggest['estimate_s'])} hours. Largest "
        f"host memory: `{heaviest['rule']}` `{heaviest['name']}`, {heaviest['max_rss_mb'] / 1024:.3g} GiB.",
        "",
        "## Per figure",
        "",
        "A job that serves several figures counts in each of them; the headline counts it once.",
        "",
        *_table(dict(sorted(by_figure.items())), "figure"),
        "",
        "## Per kind of job",
        "",
        *_table(dict(sorted(by_kind.items())), "rule: family"),
        "",
        "Per job: the CSV beside the results (cost_plan.csv).",
        "",
    ]
    return "\n".join(lines)
