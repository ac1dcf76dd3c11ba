"""Pilot for Figs 20-22 (batch 64, xi 0.3): where do the alpha 0.5 panels land, and why?

Trains, for every (norm, alpha), one stack of paper-size cells (p 97, N 500, quadratic, MSE, AdamW,
wd 0, batch 64) over learning rates x seeds with the engine, logs the curves every ``--log-every``
steps, and reads train / test accuracy and the phase (config/config.yaml's ``phases`` rules) at each
``--read`` step of the one long run: the optimizer has no schedule, so the state at step 4000 of an
8000-step run is the state of a 4000-step run. For BatchNorm nets it also evaluates the final weights
in train mode (batch statistics instead of the running ones): once with the statistics of the whole
training set, once batch by batch in batches of 64 (what the training loss sees). ``--bn-also 4000``
trains the BatchNorm stacks a second time to 4000 steps, for those train-mode numbers at the
figure's length (and as a check that the 4000-step run matches the long run's reading at 4000).
Writes JSON and prints one line per model.

    # time one small cell first
    .venv/bin/python benchmarks/pilot_minibatch.py --norms batchnorm,none --alphas 0.5 --steps 1000 \
        --read 1000 --out benchmarks/out/pilot_minibatch_timing.json
    # the sweep in config/README.md ("Figs 20-22 panel (b)"), on 2 shared CPU cores
    .venv/bin/python benchmarks/pilot_minibatch.py --norms batchnorm --alphas 0.4 \
        --out benchmarks/out/pilot_minibatch_bn_a04.json
    .venv/bin/python benchmarks/pilot_minibatch.py --threads 1 --alphas 0.5 \
        --out benchmarks/out/pilot_minibatch_a05.json
    .venv/bin/python benchmarks/pilot_minibatch.py --threads 1 --alphas 0.8 --lrs 0.005,0.01 --seeds 1 \
        --out benchmarks/out/pilot_minibatch_a08.json
    .venv/bin/python benchmarks/pilot_minibatch.py --threads 1 --norms layernorm,none --alphas 0.4 \
        --lrs 0.005,0.01 --seeds 1 --out benchmarks/out/pilot_minibatch_a04.json
    .venv/bin/python benchmarks/pilot_minibatch.py --threads 1 --norms batchnorm --alphas 0.5 --lrs 0.005 \
        --steps 4000 --read 2000,4000 --out benchmarks/out/pilot_minibatch_bn4000.json
    .venv/bin/python benchmarks/pilot_minibatch.py --threads 1 --alphas 0.5 --lrs 0.005 --seeds 1 \
        --log-every 40 --out benchmarks/out/pilot_minibatch_a05_curves.json
    # everything at once (20-30 minutes on an idle 2-core machine, far more on a busy one)
    .venv/bin/python benchmarks/pilot_minibatch.py --bn-also 4000
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402

from grokking.data import Universe  # noqa: E402
from grokking.engine import ModelSettings, StackSettings, log_schedule, train  # noqa: E402
from grokking.models import get_family  # noqa: E402
from grokking.models.mlp2 import MLPShape  # noqa: E402
from grokking.phases import classify, rules  # noqa: E402
from grokking.results import write_json  # noqa: E402

CURVES = ("train_acc", "test_acc", "corrupted_acc")  # stored per model (rounded) in the JSON


def floats(text):
    return [float(x) for x in text.split(",") if x]


def ints(text):
    return [int(x) for x in text.split(",") if x]


def phase_rules() -> dict:
    with open(REPO / "config" / "config.yaml") as fh:
        return rules(yaml.safe_load(fh).get("phases"))


@torch.no_grad()
def predictions(family, shape, params, buffers, x, *, mode, batch=64, seed=0):
    """Predicted classes (K, n) of every model on inputs x (n, 2).

    mode "eval": running statistics (what the engine logs); "population": BatchNorm statistics of
    ``x`` as a whole (exact, biased variance, as batch_norm normalizes in train mode); "batch": train
    mode on consecutive batches of ``batch`` examples of a fixed random permutation of x."""
    if mode == "eval":
        return family.forward(shape, params, buffers, x, train=False).argmax(-1)
    if mode == "population":
        plain = MLPShape(shape.p, shape.width, shape.activation, "none")
        h = family.hidden_features(plain, params, {}, x, train=False)  # (K, n, N) before the norm
        stats = {"running_mean": h.mean(1), "running_var": h.var(1, unbiased=False)}
        return family.forward(shape, params, stats, x, train=False).argmax(-1)
    perm = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(seed))
    out = torch.empty(next(iter(params.values())).shape[0], x.shape[0], dtype=torch.long)
    for start in range(0, x.shape[0], batch):
        idx = perm[start : start + batch]
        if idx.numel() < 2:  # BatchNorm needs two examples; a lone leftover joins the previous batch
            idx = perm[start - batch : start + batch]
        scratch = {k: v.clone() for k, v in buffers.items()}  # train mode updates the running buffers
        out[:, idx] = family.forward(shape, params, scratch, x[idx], train=True).argmax(-1)
    return out


def train_mode_accuracies(split, shape, params, buffers, corruption, batch):
    """Train / test accuracy of the final weights under each BatchNorm evaluation mode."""
    family = get_family(shape)
    y_train = torch.as_tensor(split.train_labels(corruption)[0])
    x_train = torch.as_tensor(split.train_inputs)
    x_test, y_test = torch.as_tensor(split.test_inputs), torch.as_tensor(split.test_labels)
    out = {}
    for mode in ("eval", "population", "batch"):
        tr = predictions(family, shape, params, buffers, x_train, mode=mode, batch=batch)
        if mode == "population":  # the test set normalized with the training set's statistics
            plain = MLPShape(shape.p, shape.width, shape.activation, "none")
            h = family.hidden_features(plain, params, {}, x_train, train=False)
            stats = {"running_mean": h.mean(1), "running_var": h.var(1, unbiased=False)}
            te = family.forward(shape, params, stats, x_test, train=False).argmax(-1)
        else:
            te = predictions(family, shape, params, buffers, x_test, mode=mode, batch=batch)
        out[mode] = {
            "train_acc": (tr == y_train).double().mean(1).tolist(),
            "test_acc": (te == y_test).double().mean(1).tolist(),
        }
    return out


def read_out(res, k, step, xi, window, prules):
    """Accuracies and phase of model k at ``step`` (a logged step) of a stack's result."""
    steps = np.asarray(res.steps)
    i = int(np.flatnonzero(steps == step)[0])
    c = res.curves
    train_acc, test_acc = float(c["train_acc"][i, k]), float(c["test_acc"][i, k])
    max_test = float(np.nanmax(c["test_acc"][: i + 1, k]))
    win = (steps >= step * (1 - window)) & (steps <= step)
    tw = c["train_acc"][win, k]
    return {
        "train_acc": train_acc,
        "test_acc": test_acc,
        "corrupted_acc": float(c["corrupted_acc"][i, k]),
        "uncorrupted_acc": float(c["uncorrupted_acc"][i, k]),
        "train_minus_0.9": train_acc - prules["accuracy_threshold"],
        "train_window": {
            "mean": float(tw.mean()),
            "min": float(tw.min()),
            "max": float(tw.max()),
            "points": int(win.sum()),
        },
        "phase": str(classify(train_acc, test_acc, xi, max_test, **prules)),
        "phase_window_mean": str(classify(float(tw.mean()), test_acc, xi, max_test, **prules)),
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--norms", default="batchnorm,layernorm,none")
    ap.add_argument("--alphas", type=floats, default=[0.4, 0.5, 0.8])
    ap.add_argument("--xi", type=float, default=0.3)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lrs", type=floats, default=[0.0025, 0.005, 0.01])
    ap.add_argument("--seeds", type=ints, default=[1, 2, 3])
    ap.add_argument("--steps", type=int, default=8000)
    ap.add_argument("--read", type=ints, default=[2000, 4000, 8000], help="steps at which to read the curves")
    ap.add_argument("--log-every", type=int, default=100)
    ap.add_argument("--window", type=float, default=0.25, help="train-accuracy spread over the last fraction")
    ap.add_argument("--bn-also", type=ints, default=[], help="also train BatchNorm stacks to these lengths")
    ap.add_argument("--p", type=int, default=97)
    ap.add_argument("--width", type=int, default=500)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "out" / "pilot_minibatch.json"))
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    prules = phase_rules()
    universe = Universe.build("add", a.p)
    grid = [(lr, seed) for lr in a.lrs for seed in a.seeds]
    models = [ModelSettings(corruption=a.xi, lr=lr, seed=seed) for lr, seed in grid]
    report = {
        "command": " ".join(sys.argv),
        "settings": {k: v for k, v in vars(a).items() if k != "out"},
        "rules": prules,
        "stacks": [],
        "models": [],
    }
    t_all = time.perf_counter()
    for norm in a.norms.split(","):
        shape = MLPShape(a.p, a.width, "quadratic", norm)
        lengths = [a.steps] + (sorted(set(a.bn_also) - {a.steps}) if norm == "batchnorm" else [])
        for alpha in a.alphas:
            split = universe.split(alpha)
            for steps in lengths:
                reads = [s for s in a.read if s <= steps]
                log_steps = tuple(sorted(set(log_schedule(steps, a.log_every)) | set(reads)))
                settings = StackSettings(shape, batch_size=a.batch, steps=steps, log_steps=log_steps)
                start = time.perf_counter()
                res = train(split, settings, models, device="cpu", progress=False, max_stack=len(models))
                seconds = time.perf_counter() - start
                modes = None
                if norm == "batchnorm":
                    modes = train_mode_accuracies(split, shape, res.params, res.buffers, a.xi, a.batch)
                report["stacks"].append(
                    {"norm": norm, "alpha": alpha, "steps": steps, "models": len(models), "seconds": seconds}
                )
                print(
                    f"{norm} alpha {alpha} steps {steps}: {len(models)} models in {seconds:.0f} s "
                    f"({seconds / len(models) / steps * 1e3:.2f} ms per model-step)",
                    flush=True,
                )
                for k, (lr, seed) in enumerate(grid):
                    entry = {"norm": norm, "alpha": alpha, "lr": lr, "seed": seed, "trained_steps": steps}
                    entry["at"] = {str(s): read_out(res, k, s, a.xi, a.window, prules) for s in reads}
                    entry["curve"] = {
                        "steps": [int(s) for s in res.steps],
                        **{name: [round(float(v), 4) for v in res.curves[name][:, k]] for name in CURVES},
                    }
                    if modes is not None:
                        entry["final_bn_modes"] = {
                            m: {
                                "train_acc": v["train_acc"][k],
                                "test_acc": v["test_acc"][k],
                                "phase": str(classify(v["train_acc"][k], v["test_acc"][k], a.xi, **prules)),
                            }
                            for m, v in modes.items()
                        }
                    report["models"].append(entry)
                    cells = " ".join(
                        f"{s}:{r['phase'][:4]}({r['train_acc']:.3f},{r['test_acc']:.3f})"
                        for s, r in entry["at"].items()
                    )
                    extra = ""
                    if modes is not None:
                        fm = entry["final_bn_modes"]
                        extra = " | train-mode pop ({:.3f},{:.3f}) b{} ({:.3f},{:.3f})".format(
                            fm["population"]["train_acc"],
                            fm["population"]["test_acc"],
                            a.batch,
                            fm["batch"]["train_acc"],
                            fm["batch"]["test_acc"],
                        )
                    print(f"  lr {lr:<7g} seed {seed}: {cells}{extra}", flush=True)
                write_json(Path(a.out), report)  # after every stack, so a killed sweep keeps its part
    report["total_seconds"] = time.perf_counter() - t_all
    write_json(Path(a.out), report)
    print(f"wrote {a.out} ({report['total_seconds']:.0f} s)")


if __name__ == "__main__":
    main()
