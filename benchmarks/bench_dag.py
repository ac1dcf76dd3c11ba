"""How long Snakemake takes to read the workflow and plan a preset: `snakemake -n` from a copy of the workflow
with no results (every job planned), the time a user waits for a dry run and, in part, what every job of a
cluster build pays again (each SLURM job starts Snakemake on the workflow before running its one job).

With ``--base REV`` the same presets are timed, alternately, on a copy of that git revision too (the
reference), and each preset gets the ratio this tree / base (< 1: this tree is faster).

    .venv/bin/python benchmarks/bench_dag.py --presets smoke,quick,paper --repeats 3 --base HEAD~4

Writes JSON (default benchmarks/out/bench_dag.json); asserts nothing about timings.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
from grokking.report.records import cpu_identity  # noqa: E402
from grokking.results import write_json  # noqa: E402

WORKFLOW = ("Snakefile", "workflow", "config", "src", "profiles")  # what a dry run reads


def copy_tree(source: Path, dest: Path) -> Path:
    dest.mkdir(parents=True)
    for name in WORKFLOW:
        (shutil.copytree if (source / name).is_dir() else shutil.copy)(source / name, dest / name)
    return dest


def preset_args(preset: str) -> list[str]:
    return [] if preset == "paper" else ["--configfile", f"config/{preset}.yaml"]


def dry_run(tree: Path, preset: str) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds, jobs planned) of one `snakemake -n` of ``preset`` in ``tree``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    res = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", *preset_args(preset)], cwd=tree, capture_output=True, text=True
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if res.returncode != 0:
        sys.exit(f"snakemake -n {preset} failed in {tree}:\n{res.stderr[-3000:]}")
    total = re.search(r"^total\s+(\d+)$", res.stdout + res.stderr, re.M)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, int(total.group(1)) if total else 0


def summary(values: list[float]) -> dict:
    return {"median": statistics.median(values), "runs": values}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", default="smoke,quick,paper", help="comma-separated; paper = config.yaml alone")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--base", default=None, help="git revision timed alternately as the reference")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "out" / "bench_dag.json"))
    a = ap.parse_args(argv)
    presets = a.presets.split(",")
    started = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    with tempfile.TemporaryDirectory() as tmp:
        trees = {"this": copy_tree(REPO, Path(tmp) / "this")}
        if a.base:
            snapshot = Path(tmp) / "snapshot"
            subprocess.run(
                ["git", "-C", str(REPO), "worktree", "add", "--detach", str(snapshot), a.base],
                check=True,
                capture_output=True,
            )
            try:
                trees["base"] = copy_tree(snapshot, Path(tmp) / "base")
            finally:
                subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(snapshot)], check=True)
        rows = {p: {t: {"wall": [], "cpu": []} for t in trees} for p in presets}
        jobs = {}
        for r in range(a.repeats):
            order = list(trees) if r % 2 == 0 else list(reversed(trees))  # drifts in load hit both alike
            for preset in presets:
                for t in order:
                    wall, cpu, n = dry_run(trees[t], preset)
                    rows[preset][t]["wall"].append(wall)
                    rows[preset][t]["cpu"].append(cpu)
                    jobs[(preset, t)] = n
                    print(f"{preset:6s} {t:4s} {wall:6.2f} s wall, {cpu:6.2f} s CPU, {n} jobs", file=sys.stderr)
    out = {}
    for preset, by_tree in rows.items():
        out[preset] = {
            t: {"jobs": jobs[(preset, t)], "dry_run_seconds": summary(v["wall"]), "cpu_seconds": summary(v["cpu"])}
            for t, v in by_tree.items()
        }
        if "base" in by_tree:
            ratio = out[preset]["this"]["dry_run_seconds"]["median"] / out[preset]["base"]["dry_run_seconds"]["median"]
            out[preset]["ratio_this_over_base"] = ratio
    doc = {
        "benchmark": "bench_dag",
        "date": started,
        "loadavg": os.getloadavg(),
        "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
        "cpu": cpu_identity(),
        "base": a.base,
        "repeats": a.repeats,
        "presets": out,
    }
    write_json(Path(a.out), doc)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
