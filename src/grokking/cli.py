"""``python -m grokking <command>``: the entry points the Snakemake rules call."""

from __future__ import annotations

import argparse
import json
import sys


def _threads(n):
    import torch

    if n:
        torch.set_num_threads(int(n))


def cmd_dataset(a):
    from .results import write_npz
    from .tasks import Universe

    u = Universe.build(a.operation, a.p, a.pair_seed, a.label_seed)
    write_npz(a.out, **u.to_arrays())
    print(f"dataset {a.operation} p={a.p}: {a.p ** 2} pairs -> {a.out}", file=sys.stderr)


def cmd_train_run(a):
    from .runs import run_and_save

    _threads(a.threads)
    spec = json.loads(a.spec)
    rules = json.loads(a.phase_rules) if a.phase_rules else None
    s = run_and_save(spec, a.data, a.out, device=a.device, phase_rules=rules, progress=not a.no_progress)
    print(f"{spec.get('name')}: train {s['train_acc']:.4f} test {s['test_acc']:.4f} "
          f"corrupted {s['corrupted_acc']:.4f} -> {s['phase']} ({s['seconds_per_step'] * 1e3:.1f} ms/step "
          f"on {s['device']})", file=sys.stderr)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m grokking", description=__doc__)
    sub = ap.add_subparsers(dest="command", required=True)
    d = sub.add_parser("dataset", help="build the shuffled pair universe and label stream")
    d.add_argument("--operation", required=True, choices=["add", "mul"])
    d.add_argument("--p", type=int, required=True)
    d.add_argument("--pair-seed", type=int, default=420)
    d.add_argument("--label-seed", type=int, default=0)
    d.add_argument("--out", required=True)
    d.set_defaults(func=cmd_dataset)
    t = sub.add_parser("train-run", help="train one named run from its resolved spec")
    t.add_argument("--spec", required=True, help="resolved run spec as JSON")
    t.add_argument("--data", required=True)
    t.add_argument("--out", required=True, help="run directory")
    t.add_argument("--device", default="auto")
    t.add_argument("--threads", type=int, default=0)
    t.add_argument("--phase-rules", default=None, help="phase thresholds as JSON")
    t.add_argument("--no-progress", action="store_true")
    t.set_defaults(func=cmd_train_run)
    a = ap.parse_args(argv)
    a.func(a)


if __name__ == "__main__":
    main()
