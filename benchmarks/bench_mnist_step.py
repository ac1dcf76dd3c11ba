"""Time per model-step of Fig 16's MNIST MLP at the paper preset's size, for the cost of its grids.

Trains K stacked 784 -> 500 -> 500 -> 500 -> 10 ReLU MLPs (cross-entropy, full batch, one alpha of a
10,000-image pool; docs/paper.md §A3 (h)) for a few steps on random MNIST-shaped pixels: the cost does not
depend on the pixel values, and no MNIST files are needed. Per K: one untimed warm-up run, then runs of
``steps`` and of 2 x ``steps`` steps, each logging once at its end; their difference is the time of
``steps`` training steps without the evaluation (a grid chunk evaluates 21 times in 2000 steps). Writes
JSON (atomically) and prints a table with the projected time of the whole of Fig 16 (every cell of the
paper preset's grids x their steps) at the measured rate; asserts nothing.

    .venv/bin/python benchmarks/bench_mnist_step.py [--device auto] [--threads 2] [--stacks 1,4] [--alpha 0.5]
"""

from __future__ import annotations

import argparse
import datetime as _dt
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402

from grokking.data.images import ImageSet  # noqa: E402
from grokking.engine import ModelSettings, StackSettings, resolve_device, train  # noqa: E402
from grokking.experiments.gridplan import grid_cells  # noqa: E402
from grokking.experiments.specs import training_examples  # noqa: E402
from grokking.hostmemory import reuse_freed_memory  # noqa: E402
from grokking.models.deep_mlp import DeepMLPShape  # noqa: E402
from grokking.results import write_json  # noqa: E402

GRIDS = ("images_wd", "images_dropout")


def fig16_model_steps(config: dict) -> tuple[int, float]:
    """Models of Fig 16's grids (dropout 0 = weight decay 0 counted once) and their summed example-steps
    relative to ``alpha`` 0.5 (a full-batch step costs in proportion to the training examples)."""
    specs = {c["id"]: c["spec"] for g in GRIDS for c in grid_cells(config, g)}
    half = training_examples(dict(next(iter(specs.values())), train_fraction=0.5))
    return len(specs), sum(s["steps"] * training_examples(s) / half for s in specs.values())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--stacks", default="1,4")
    ap.add_argument("--alpha", type=float, default=0.5)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "out" / "bench_mnist_step.json"))
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    reuse_freed_memory()  # as every compute job does (grokking.hostmemory)
    dev = resolve_device(a.device)
    rng = np.random.default_rng(0)
    images = ImageSet.build(
        "mnist",
        rng.integers(0, 256, (10000, 784)),
        rng.integers(0, 10, 10000),
        rng.integers(0, 256, (10000, 784)),
        rng.integers(0, 10, 10000),
        pool=10000,
    )
    split = images.split(a.alpha)
    shape = DeepMLPShape(10, 500, depth=4, inputs=784, classes=10)

    def run(models, steps):
        start = time.perf_counter()
        settings = StackSettings(shape, loss="ce", steps=steps, log_steps=(steps,))
        train(split, settings, models, device=dev, progress=False)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    config = yaml.safe_load(open(REPO / "config" / "config.yaml"))
    n_models, model_steps = fig16_model_steps(config)
    report = {
        "when": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "device": str(dev),
        "threads": a.threads,
        "alpha": a.alpha,
        "n_train": split.n_train,
        "fig16_models": n_models,
        "rows": [],
    }
    print(f"{dev}, {a.threads} threads, alpha {a.alpha} ({split.n_train} training images)")
    for K in (int(k) for k in a.stacks.split(",")):
        models = [ModelSettings(corruption=0.2, weight_decay=1.0, lr=1e-3, seed=s) for s in range(1, K + 1)]
        run(models, 2)  # warm-up
        per = (run(models, 2 * a.steps) - run(models, a.steps)) / (a.steps * K)
        hours = per * (0.5 / a.alpha) * model_steps / 3600  # a step costs in proportion to n_train
        report["rows"].append({"K": K, "seconds_per_model_step": per, "fig16_hours": hours})
        print(f"  K={K:<3} {per * 1e3:8.1f} ms per model-step -> paper Fig 16 ({n_models} models): {hours:.1f} h")
    write_json(Path(a.out), report)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
