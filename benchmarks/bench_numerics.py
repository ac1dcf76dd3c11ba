"""What the portable numeric profile costs: time per model-step of each family under each profile.

Every (profile, workload) pair runs in a fresh process (the profile is chosen through the environment,
before torch is imported), one after the other in the same run, so the ratio portable / native is
measured on one machine in one sitting. Writes JSON (atomically) and prints a table; asserts nothing.

    .venv/bin/python benchmarks/bench_numerics.py [--steps 20] [--repeats 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from grokking import numerics  # noqa: E402
from grokking.results import write_json  # noqa: E402

# name -> (family, p, size, K): the paper's 2-layer MLP cell, a quick-preset grid chunk, the quick
# Transformer and 3-layer MLP
WORKLOADS = {
    "mlp2 p97 N500 K1": ("mlp2", 97, 500, 1),
    "mlp2 p59 N256 K16": ("mlp2", 59, 256, 16),
    "transformer p47 d64 K4": ("transformer", 47, 64, 4),
    "deep_mlp p59 N128 K4": ("deep_mlp", 59, 128, 4),
}

CHILD = """
import json, sys, time, torch
from grokking import numerics
from grokking.data import Universe
from grokking.engine import ModelSettings, StackSettings, train
from grokking.models.deep_mlp import DeepMLPShape
from grokking.models.mlp2 import MLPShape
from grokking.models.transformer import TransformerShape
family, p, size, K, steps, repeats, threads = json.loads(sys.argv[1])
torch.set_num_threads(threads)
shape = {"mlp2": lambda: MLPShape(p, size), "transformer": lambda: TransformerShape(p, size, 4, 1),
         "deep_mlp": lambda: DeepMLPShape(p, size, 3)}[family]()
split = Universe.build("add", p).split(0.5)
models = [ModelSettings(corruption=0.2, weight_decay=1.0, lr=3e-3, seed=s + 1) for s in range(K)]
train(split, StackSettings(shape, steps=3, log_steps=(3,)), models, device="cpu", progress=False)
times = []
for _ in range(repeats):
    res = train(split, StackSettings(shape, steps=steps, log_steps=(steps,)), models, device="cpu", progress=False)
    times.append(res.seconds / (K * steps))
print(json.dumps({"ms_per_model_step": [t * 1e3 for t in times], "numerics": numerics.describe("cpu")}))
"""


def run(profile: str, workload: tuple, steps: int, repeats: int, threads: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in numerics.PINS["portable"]}
    env.update(numerics.environment(profile, threads), PYTHONPATH=str(REPO / "src"))
    arg = json.dumps([*workload, steps, repeats, threads])
    out = subprocess.run([sys.executable, "-c", CHILD, arg], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="intra-op threads (the quick preset's jobs: 1)")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "out" / "bench_numerics.json"))
    a = ap.parse_args(argv)
    rows = []
    print(f"{'workload':<26}{'native ms':>11}{'portable ms':>13}{'ratio':>8}")
    for name, workload in WORKLOADS.items():
        got = {p: run(p, workload, a.steps, a.repeats, a.threads) for p in ("native", "portable")}
        med = {p: statistics.median(g["ms_per_model_step"]) for p, g in got.items()}
        rows.append(
            {"workload": name, **{f"{p}_ms": m for p, m in med.items()}, "ratio": med["portable"] / med["native"]}
        )
        print(f"{name:<26}{med['native']:>11.2f}{med['portable']:>13.2f}{rows[-1]['ratio']:>8.2f}")
    doc = {
        "when": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "cpu": numerics.cpu_model(),
        "loadavg": list(os.getloadavg()),
        "steps": a.steps,
        "repeats": a.repeats,
        "threads": a.threads,
        "profiles": {p: g["numerics"] for p, g in got.items()},
        "rows": rows,
    }
    write_json(a.out, doc)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
