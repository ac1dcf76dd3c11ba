"""Fig 32 width jobs, one after another on one device, within a time budget (how the paper-preset
widths 500-2067 were computed on an H100; see config/README.md).

    # where the workflow is installed: the jobs of the paper preset (JSON)
    .venv/bin/python benchmarks/gpu_width_sweep.py plan --out benchmarks/out/fig32_paper_jobs.json
    # on the GPU machine: train and prune width after width until the budget is spent
    python benchmarks/gpu_width_sweep.py run --plan benchmarks/out/fig32_paper_jobs.json \\
        --data results/paper/data/add_p97.npz --out-dir results/paper/analysis/width_sweep/jobs --budget-s 200
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
    for name in sorted(plan["jobs"]):
        if a.budget_s and time.perf_counter() - start > a.budget_s:
            print(f"budget reached before {name}", flush=True)
            break
        t = time.perf_counter()
        res = train_width_job(
            plan["jobs"][name], a.data, Path(a.out_dir) / f"{name}.npz", device=a.device, progress=False, desc=name
        )
        print(
            f"[{time.perf_counter() - start:6.1f} s] {name}: training {float(res['seconds']):.1f} s, with pruning "
            f"{time.perf_counter() - t:.1f} s; test >= 0.9 in {(res['final_test_acc'] >= 0.9).sum()}/"
            f"{len(res['seeds'])} seeds",
            flush=True,
        )


if __name__ == "__main__":
    main()
