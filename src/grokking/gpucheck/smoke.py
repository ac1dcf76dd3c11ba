"""Part g of the GPU acceptance check: the smoke preset end to end on CUDA.

Snakemake builds the smoke preset (``config/smoke.yaml``) with ``config/gpu.yaml`` over it, as ``make figures-gpu
PRESET=smoke`` does, and one more overlay that the check writes: a preset name of its own (:data:`PRESET`), its
results and figures under the check's work folder (so the user's ``results/smoke/`` is never touched), and the
device under test. Its training jobs are tiny, so :data:`JOBS_AT_ONCE` of them share the GPU at a time (with one
GPU visible, or an explicit ``cuda:N``, no job waits for a lock) and the build fits the part's budget. It passes
when Snakemake finishes every job and every training result (runs, grid chunks, width jobs) records the device.
A development run (``--tiny``) builds one figure of the preset on the CPU instead of all of them.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import yaml

from .common import FAIL, PASS, Context, Outcome, Skip

PRESET = "gpu_check_smoke"
JOBS_AT_ONCE = 4
DONE = re.compile(r"(\d+) of (\d+) steps \(100%\) done")


def overlay(ctx: Context, folder: Path) -> Path:
    path = folder / "overlay.yaml"
    doc = {
        "preset": PRESET,
        "results_dir": str(folder / "results"),
        "figures_dir": str(folder / "figures"),
        "device": ctx.device,
    }
    path.write_text("# the GPU acceptance check's smoke build (python -m grokking gpu-check)\n" + yaml.safe_dump(doc))
    return path


def _first_figure(config: dict, layout) -> list[str]:
    """The files of the first enabled figure that reads named runs: a development run's one target."""
    from ..config import enabled_figures, figure_runs

    fig = next(f for f in enabled_figures(config) if figure_runs(config, f))
    return layout.figure_files(fig, config["figures"][fig]["slug"])


def devices(results: Path) -> dict[str, str]:
    """Training result -> the device it records: runs, grid chunks and width jobs."""
    out = {}
    for summary in sorted(results.glob("runs/*/summary.json")):
        out[f"run {summary.parent.name}"] = json.loads(summary.read_text())["device"]
    for kind, pattern in (("chunk", "grids/chunks/*.npz"), ("width job", "analysis/width_sweep/jobs/*.npz")):
        for path in sorted(results.glob(pattern)):
            with np.load(path, allow_pickle=False) as f:
                out[f"{kind} {path.stem}"] = str(f["device"])
    return out


def run(ctx: Context) -> Outcome:
    from ..config import deep_merge, validate
    from ..layout import Layout

    repo = ctx.need_repo("the smoke build")
    if not (repo / "Snakefile").exists():
        raise Skip(f"no Snakefile in {repo}")
    folder = ctx.work / "smoke"
    folder.mkdir(parents=True, exist_ok=True)
    files = [repo / "config" / "smoke.yaml", repo / "config" / "gpu.yaml", overlay(ctx, folder)]
    config = yaml.safe_load((repo / "config" / "config.yaml").read_text())
    for f in files:  # as snakemake lays them over config.yaml
        config = deep_merge(config, yaml.safe_load(f.read_text()) or {})
    config = validate(config)
    layout = Layout.from_config(config)
    args = [ctx.python, "-m", "snakemake", "--cores", os.cpu_count() or 1, "--resources", f"gpu={JOBS_AT_ONCE}"]
    args += ["--configfile", *files]
    if ctx.tiny:
        args += ["--", *_first_figure(config, layout)]
    build = ctx.command(args, "smoke_snakemake", ctx.left())
    text = build.log.read_text(errors="replace")
    steps = list(DONE.finditer(text))
    numbers = {
        "preset": PRESET,
        "results": layout.results,
        "wall_s": round(build.seconds, 1),
        "jobs": int(steps[-1][2]) if steps else 0,
        "jobs_at_once_on_the_gpu": JOBS_AT_ONCE,
        "target": "one figure, --tiny" if ctx.tiny else "the whole smoke build",
    }
    if build.rc != 0:
        why = "killed at the part's time limit" if build.rc is None else f"exit {build.rc}"
        return Outcome(FAIL, f"snakemake {why}: {build.tail(4)}", numbers)
    return judge(Path(layout.results), ctx.device, numbers)


def judge(results: Path, device: str, numbers: dict) -> Outcome:
    """The verdict on a finished build: every training result under ``results`` records ``device``."""
    found = devices(results)
    numbers = dict(numbers, training_results=len(found))
    elsewhere = {k: v for k, v in found.items() if v != device}
    rows = [{"device": d, "training results": sum(v == d for v in found.values())} for d in sorted(set(found.values()))]
    if not found or elsewhere:
        first = ", ".join(f"{k} on {v}" for k, v in list(elsewhere.items())[:3])
        why = "no training result" if not found else f"{len(elsewhere)} training results not on {device}: {first}"
        return Outcome(FAIL, why, numbers, rows)
    what = f"{numbers['jobs']} jobs in {numbers['wall_s']} s ({numbers['target']}); {len(found)} training results, "
    what += f"all on {device}"
    return Outcome(PASS, what, numbers, rows)
