"""Logits per second of the IPR-ordered pruning sweep, against a reference that materializes every logit.

The sweep (``grokking.experiments.pruning``) computes, for every model, example, pruned count and class, the
logits of the network with its first j neurons (in pruning order) removed: models x examples x N x p float64
logits (``gridplan.pruning_logits``, the count that the resources' ``cpu_prune_rate`` / ``gpu_prune_rate``
turn into time). The reference written here computes the same numbers the direct way: one (K, rows, N, p)
tensor of per-neuron terms per block of examples, a cumulative sum over N, suffix sums, ``argmax`` over the
classes and the loss. Both run on the same trained-looking weights (random, ReLU, MSE) in the same process,
interleaved; the JSON has each one's seconds and logits per second, their ratio, and whether the two agree
(accuracies exactly, losses to 1e-12). Writes JSON (atomically) and prints a table; never asserts timings.

    .venv/bin/python benchmarks/bench_prune.py [--threads 2] [--shapes 40:10000:97:64,1:500:97:9409]

A shape is K:N:p:examples (the width-10000 job of Fig 32 prunes 40 models of N 10000 over p^2 = 9409 pairs;
a sample of its examples measures its rate).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import functools
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from bench_step import _sync, loadavg, machine_info  # noqa: E402

from grokking.engine import resolve_device  # noqa: E402
from grokking.experiments import pruning  # noqa: E402
from grokking.hostmemory import reuse_freed_memory  # noqa: E402
from grokking.models.mlp2 import MLPShape, hidden_features  # noqa: E402
from grokking.results import write_json  # noqa: E402

SHAPES = "40:10000:97:48,40:500:97:960,1:500:97:9409"


@torch.no_grad()
def reference_sweep(shape, params, order, x, labels, groups, n_groups=2):
    """The direct way: every per-neuron term materialized, cumulative sum, suffix sums, argmax, MSE."""
    W = params["W"]
    K, p, N = W.shape
    w_ordered = torch.gather(W, 2, order.unsqueeze(1).expand(K, p, N)).double().transpose(1, 2).unsqueeze(1)
    correct = [torch.zeros(K, n_groups, N, dtype=torch.float64, device=W.device) for _ in labels]
    loss_sum = torch.zeros(K, n_groups, N, dtype=torch.float64, device=W.device)
    rows = max(1, (256 * 2**20) // (8 * K * N * p * 2))
    z_all = hidden_features(shape, params, {}, x, train=False)
    for s in range(0, x.shape[0], rows):
        sl = slice(s, min(x.shape[0], s + rows))
        z = torch.gather(z_all[:, sl], 2, order.unsqueeze(1).expand(-1, sl.stop - sl.start, -1)).double()
        terms = z.unsqueeze(3) * w_ordered  # (K, b, N, p)
        suffix = terms.flip(2).cumsum(2).flip(2)  # logits after pruning the first j neurons
        pred = suffix.argmax(-1)
        onehot_groups = F.one_hot(groups[:, sl], n_groups).double()
        for acc, y in zip(correct, labels, strict=True):
            acc.add_(torch.einsum("kbg,kbn->kgn", onehot_groups, (pred == y[:, sl].unsqueeze(2)).double()))
        target = F.one_hot(labels[0][:, sl], p).double().unsqueeze(2)
        per = (suffix - target).pow(2).mean(-1)
        loss_sum.add_(torch.einsum("kbg,kbn->kgn", onehot_groups, per))
    return correct, loss_sum


def sweep(shape, params, order, x, labels, groups):
    """The library's sweep on the same problem (two groups, MSE), as ``prune_curves`` runs it."""
    return pruning._sweep(shape, params, {}, order, x, labels, groups, 2, "mse")


def problem(K, N, p, examples, dev, seed=0):
    g = torch.Generator().manual_seed(seed)
    shape = MLPShape(p=p, width=N, activation="relu", norm="none")
    scale = N**-0.5
    params = {
        "U": torch.randn(K, N, p, generator=g) * scale,
        "V": torch.randn(K, N, p, generator=g) * scale,
        "W": torch.randn(K, p, N, generator=g) * scale,
    }
    params = {k: v.to(dev) for k, v in params.items()}
    x = torch.randint(0, p, (examples, 2), generator=g).to(dev)
    labels = [torch.randint(0, p, (K, examples), generator=g).to(dev) for _ in range(2)]
    groups = torch.randint(0, 2, (K, examples), generator=g).to(dev)
    order = torch.argsort(torch.rand(K, N, generator=g), -1).to(dev)
    return shape, params, order, x, labels, groups


def timed(fn, dev):
    _sync(dev)
    t0 = time.perf_counter()
    out = fn()
    _sync(dev)
    return time.perf_counter() - t0, out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--shapes", default=SHAPES, help="comma-separated K:N:p:examples")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "out" / "bench_prune.json"))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    reuse_freed_memory()  # as every compute job does (grokking.hostmemory)
    dev = resolve_device(args.device)
    rows = []
    for spec in args.shapes.split(","):
        K, N, p, examples = (int(v) for v in spec.split(":"))
        inputs = problem(K, N, p, examples, dev)
        sweeps = {"sweep": functools.partial(sweep, *inputs), "reference": functools.partial(reference_sweep, *inputs)}
        seconds = {name: [] for name in sweeps}
        results = {}
        for r in range(args.repeats):
            for name in sorted(sweeps, reverse=bool(r % 2)):
                dt, results[name] = timed(sweeps[name], dev)
                seconds[name].append(dt)
        (hits, loss), (ref_hits, ref_loss) = results["sweep"], results["reference"]
        logits = float(K * examples * N * p)
        row = {"K": K, "N": N, "p": p, "examples": examples, "logits": logits}
        for name, ts in seconds.items():
            row[f"{name}_seconds"] = statistics.median(ts)
            row[f"{name}_logits_per_second"] = logits / statistics.median(ts)
        row["reference_over_sweep"] = row["reference_seconds"] / row["sweep_seconds"]
        row["accuracies_equal"] = all(torch.equal(a, b) for a, b in zip(hits, ref_hits, strict=True))
        row["loss_max_relative_difference"] = float(((loss - ref_loss).abs() / ref_loss.abs()).max())
        rows.append(row)
        print(
            f"K {K:3d} N {N:5d} p {p} x{examples:5d}: sweep {row['sweep_logits_per_second'] / 1e9:.3f} G logits/s, "
            f"reference {row['reference_logits_per_second'] / 1e9:.3f} G/s, x{row['reference_over_sweep']:.2f}, "
            f"accuracies equal {row['accuracies_equal']}, loss rel. diff {row['loss_max_relative_difference']:.1e}",
            flush=True,
        )
    report = {
        "benchmark": "bench_prune",
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "torch": torch.__version__,
        "threads": args.threads,
        "repeats": args.repeats,
        "loadavg": loadavg(),
        "machine": machine_info(dev, args.threads),
        "rows": rows,
    }
    write_json(Path(args.out), report)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
