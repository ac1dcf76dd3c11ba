"""Pilot for tuning a preset's grids: phases of a few (alpha, xi, regularization) cells at a given size.

Trains, for each alpha, one stack of cells over xi x {weight decays, dropouts} with the engine and
prints the phase table (train/test accuracy in brackets); writes the numbers as JSON. Used to find a
small p / N / step count at which every phase of Fig 3 still shows (config/README.md). With
``--digits POOL`` the cells are Fig 16's instead: the 4-layer ReLU MLP (cross-entropy, lr 1e-3) on a
pool of POOL 8x8 digits of scikit-learn, the other images as the test set.

    .venv/bin/python benchmarks/pilot_phases.py --p 59 --width 128 --steps 2000 --alphas 0.3,0.5,0.7
    .venv/bin/python benchmarks/pilot_phases.py --digits 1000 --width 64 --alphas 0.9 --xis 0.2,0.4 \
        --wds 0,10,30 --dropouts 0.3,0.6
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

import torch  # noqa: E402

from grokking.data import Universe  # noqa: E402
from grokking.data.images import build_image_set  # noqa: E402
from grokking.engine import ModelSettings, StackSettings, log_schedule, train  # noqa: E402
from grokking.models.deep_mlp import DeepMLPShape  # noqa: E402
from grokking.models.mlp2 import MLPShape  # noqa: E402
from grokking.phases import classify  # noqa: E402
from grokking.results import write_json  # noqa: E402


def floats(text):
    return [float(x) for x in text.split(",") if x]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--p", type=int, default=59)
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--alphas", type=floats, default=[0.3, 0.5, 0.7])
    ap.add_argument("--xis", type=floats, default=[0.0, 0.2, 0.4, 0.6])
    ap.add_argument("--wds", type=floats, default=[0, 5, 15, 20])
    ap.add_argument("--dropouts", type=floats, default=[0.3, 0.6, 0.9])
    ap.add_argument("--digits", type=int, default=0, help="Fig 16 on a pool of this many 8x8 digits")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "out" / "pilot_phases.json"))
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    regs = [("wd", v) for v in a.wds] + [("dp", v) for v in a.dropouts]
    log_steps = tuple(log_schedule(a.steps, max(1, a.steps // 20)))
    if a.digits:  # Fig 16 (docs/paper.md §A3 (h)) on the offline stand-in
        data, lr = build_image_set("digits", pool=a.digits), 1e-3
        shape = DeepMLPShape(10, a.width, depth=4, inputs=64, classes=10)
        settings = StackSettings(shape, loss="ce", steps=a.steps, log_steps=log_steps)
    else:
        data, lr = Universe.build("add", a.p), 0.01
        settings = StackSettings(MLPShape(a.p, a.width), steps=a.steps, log_steps=log_steps)
    report = {"p": a.p, "digits": a.digits, "width": a.width, "steps": a.steps, "cells": []}
    for alpha in a.alphas:
        models = [
            ModelSettings(
                corruption=xi, weight_decay=v if kind == "wd" else 0.0, dropout=v if kind == "dp" else 0.0, lr=lr
            )
            for kind, v in regs
            for xi in a.xis
        ]
        start = time.perf_counter()
        res = train(data.split(alpha), settings, models, device="cpu", progress=False)
        seconds = time.perf_counter() - start
        print(
            f"alpha {alpha}: {len(models)} cells in {seconds:.0f} s "
            f"({seconds / len(models) / a.steps * 1e3:.2f} ms per model-step)"
        )
        for i, (kind, v) in enumerate(regs):
            row = []
            for j, xi in enumerate(a.xis):
                k = i * len(a.xis) + j
                train_acc, test_acc = res.curves["train_acc"][-1, k], res.curves["test_acc"][-1, k]
                phase = classify(train_acc, test_acc, xi, res.curves["test_acc"][:, k].max())
                row.append(f"{phase[:4]}({train_acc:.2f},{test_acc:.2f})")
                report["cells"].append(
                    {
                        "alpha": alpha,
                        "xi": xi,
                        kind: v,
                        "train_acc": float(train_acc),
                        "test_acc": float(test_acc),
                        "phase": phase,
                    }
                )
            print(f"  {kind}={v:<5g}", " ".join(row))
    write_json(Path(a.out), report)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
