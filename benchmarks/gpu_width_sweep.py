"""Fig 32 width jobs, one after another on one device, within a time budget (how the paper-preset
widths 500-2067 were computed on an H100; see config/README.md).

    # where the workflow is installed: the jobs of the paper preset (JSON)
    .venv/bin/python benchmarks/gpu_width_sweep.py plan --out benchmarks/out/fig32_paper_jobs.json
    # on the GPU machine: train and prune width after width until the budget is spent
    python benchmarks/gpu_width_sweep.py run --plan benchmarks/out/fig32_paper_jobs.json \\
        --data results/paper/data/add_p97.npz --out-dir results/paper/analysis/width_sweep/jobs --budget-s 200

    # a pilot of a few widths, seeds and another step count (the Fig 32 step decision in config/README.md)
    .venv/bin/python benchmarks/gpu_width_sweep.py run --plan benchmarks/out/fig32_paper_jobs.json \
        --data results/paper/data/add_p97.npz --out-dir /tmp/w32 --device cpu --widths 2067 --seeds 1 2 --steps 3000
    .venv/bin/python -m grokking merge-width-sweep --jobs /tmp/w32/*.npz --out /tmp/w32.npz --csv /tmp/w32.csv \
        --retention '{"metric": "test_acc", "threshold": 0.9, "relative": true, "generalized": 0.5}'
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("plan")
    p.add_argument("--configfile", default=str(REPO / "config" / "config.yaml"))
    p.add_argument("--out", required=True)
    r = sub.add_parser("run")
    r.add_argument("--plan", required=True)
    r.add_argument("--data", required=True)
    r.add_argument("--out-dir", required=True)
    r.add_argument("--device", default="auto")
    r.add_argument("--budget-s", type=float, default=None, help="start no new width after this many seconds")
    r.add_argument("--widths", type=int, nargs="+", default=None, help="only these widths (default: all)")
    r.add_argument("--seeds", type=int, nargs="+", default=None, help="only these seeds (default: the plan's)")
    r.add_argument("--steps", type=int, default=None, help="train this many steps instead of the plan's")
    a = ap.parse_args(argv)
    if a.cmd == "plan":
        import yaml

        from grokking.config import validate
        from grokking.experiments.gridplan import width_sweep_jobs

        cfg = validate(yaml.safe_load(open(a.configfile)))
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(
            json.dumps({"retention": cfg["width_sweep"]["retention"], "jobs": width_sweep_jobs(cfg)}, sort_keys=True)
        )
        return
    from grokking.experiments.widths import train_width_job

    plan = json.loads(Path(a.plan).read_text())
    Path(a.out_dir).mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    for name, job in sorted(plan["jobs"].items()):
        if a.widths and job["spec"]["width"] not in a.widths:
            continue
        if a.budget_s and time.perf_counter() - start > a.budget_s:
            print(f"budget reached before {name}", flush=True)
            break
        job = _pilot(job, a.seeds, a.steps)
        if a.seeds or a.steps:
            name = f"w{job['spec']['width']:05d}_s{'-'.join(map(str, job['seeds']))}_{job['spec']['steps']}steps"
        t = time.perf_counter()
        res = train_width_job(job, a.data, Path(a.out_dir) / f"{name}.npz", device=a.device, progress=False, desc=name)
        print(
            f"[{time.perf_counter() - start:6.1f} s] {name}: training {float(res['seconds']):.1f} s, with pruning "
            f"{time.perf_counter() - t:.1f} s; test >= 0.9 in {(res['final_test_acc'] >= 0.9).sum()}/"
            f"{len(res['seeds'])} seeds",
            flush=True,
        )


def _pilot(job: dict, seeds, steps) -> dict:
    """The plan's job with only ``seeds`` and ``steps`` steps (the curves keep the plan's point count)."""
    spec = dict(job["spec"])
    if steps:
        points = max(1, spec["steps"] // spec["log_every"])
        spec.update(steps=steps, log_every=max(1, steps // points))
    return {"spec": spec, "seeds": [s for s in job["seeds"] if not seeds or s in seeds]}


if __name__ == "__main__":
    main()
