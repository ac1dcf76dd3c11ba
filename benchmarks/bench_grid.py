"""Time per model-step of batched grid training against one reference model per cell.

For each size (p, width N, alpha) and each stack size K, the engine trains K cells (different weight
decays and corruptions, as in a grid chunk) as one stacked model, evaluating only at the last step;
the reference trains the same cells one at a time, each as a plain ``nn.Module`` + ``torch.optim.AdamW``
full-batch loop evaluated only at the end (what the authors' grid scripts did). Both are timed in the
same process. Writes JSON (atomically) and prints a table; never asserts anything about timings.

    .venv/bin/python benchmarks/bench_grid.py [--threads 2] [--sizes 97:500:0.5,59:256:0.5] [--stacks 1,4,16,64]
"""

from __future__ import annotations

import argparse
import datetime as _dt
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from bench_step import _sync, floor_ratios, gemm_peak, loadavg, machine_info, reference_model, train_reference  # noqa: E402

from grokking.data import Universe  # noqa: E402
from grokking.engine import ModelSettings, StackSettings, resolve_device, train  # noqa: E402
from grokking.hostmemory import reuse_freed_memory  # noqa: E402
from grokking.models.mlp2 import MLPShape  # noqa: E402
from grokking.results import write_json  # noqa: E402

WEIGHT_DECAYS = (0.0, 5.0, 15.0, 20.0)
CORRUPTIONS = (0.0, 0.1, 0.2, 0.3, 0.4)


def cells(k):
    return [
        ModelSettings(
            corruption=CORRUPTIONS[i % len(CORRUPTIONS)],
            weight_decay=WEIGHT_DECAYS[(i // len(CORRUPTIONS)) % len(WEIGHT_DECAYS)],
            seed=1,
        )
        for i in range(k)
    ]


def reference_cell(split, cell, width, steps, dev):
    """One cell, one nn.Module, full batch, evaluated once at the end; returns the loop's seconds."""
    p = split.p
    m = torch.as_tensor(split.train_m, dtype=torch.long)
    n = torch.as_tensor(split.train_n, dtype=torch.long)
    y, _ = split.train_labels(cell.corruption)
    x = torch.cat([F.one_hot(m, p), F.one_hot(n, p)], dim=1).float().to(dev)
    target = F.one_hot(torch.as_tensor(y, dtype=torch.long), p).float().to(dev)
    tx = (
        torch.cat([F.one_hot(torch.as_tensor(split.test_m), p), F.one_hot(torch.as_tensor(split.test_n), p)], dim=1)
        .float()
        .to(dev)
    )
    model = reference_model(p, width, cell.seed, dev)
    seconds = train_reference(model, x, target, steps, cell.lr, cell.weight_decay, dev)
    start = time.perf_counter()
    with torch.no_grad():  # the final evaluation the authors' scripts made
        model(x).argmax(1)
        model(tx).argmax(1)
    _sync(dev)
    return seconds + time.perf_counter() - start


def flop_counts(b, width, p):
    """Floating-point operations of one full-batch training step (b examples), matrix products only.

    The reference's first layer is a dense (b x 2p) @ (2p x N) product: 2*b*2p*N forward and the same
    for its weight gradient; its output layer costs 2*b*N*p forward and twice that backward: 14 b N p.
    The engine gathers the first layer (no multiplications) and does only the output layer's three
    products, 6 b N p. Their ratio, 7/3, is the speed-up at equal FLOP rates: beyond it the engine must
    run its products faster than the reference runs its own."""
    ref, eng = 14.0 * b * width * p, 6.0 * b * width * p
    return {"reference_flop_per_step": ref, "engine_flop_per_step": eng, "flop_ratio": ref / eng}


def engine_stack(split, width, k, steps, dev):
    res = train(
        split,
        StackSettings(MLPShape(split.p, width), steps=steps, log_steps=(steps,)),
        cells(k),
        device=dev,
        progress=False,
    )
    return res.seconds


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--sizes", default="97:500:0.5,59:256:0.5", help="comma list of p:width:alpha")
    ap.add_argument("--stacks", default="1,4,16,64")
    ap.add_argument("--steps", type=int, default=10, help="training steps per timed run")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument(
        "--reference-cells",
        type=int,
        default=2,
        help="reference cells timed per size (its cost per cell does not depend on K)",
    )
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "out" / "bench_grid.json"))
    a = ap.parse_args(argv)
    if a.threads > 0:
        torch.set_num_threads(a.threads)
        reuse_freed_memory()  # as every compute job does (grokking.hostmemory)
    dev = resolve_device(a.device)
    stacks = [int(k) for k in a.stacks.split(",")]
    report = {
        "benchmark": "bench_grid",
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": sys.argv,
        "machine": machine_info(dev, a.threads),
        "loadavg_before": loadavg(),
        "gemm": gemm_peak(dev),  # the floor's rate, measured in this run
        "steps": a.steps,
        "repeats": a.repeats,
        "sizes": [],
    }
    for size in a.sizes.split(","):
        p, width, alpha = size.split(":")
        p, width, alpha = int(p), int(width), float(alpha)
        split = Universe.build("add", p).split(alpha)
        engine_stack(split, width, 1, 2, dev)  # warm-up
        # Repeats interleave the reference and every K, so that a machine whose speed drifts during the
        # run biases no variant against another.
        ref, runs = [], {k: [] for k in stacks}
        for _ in range(a.repeats):
            ref += [reference_cell(split, c, width, a.steps, dev) for c in cells(a.reference_cells)]
            for k in stacks:
                runs[k].append(engine_stack(split, width, k, a.steps, dev))
        ref_step = statistics.median(ref) / a.steps
        flops = flop_counts(split.n_train, width, p)
        entry = {
            "p": p,
            "width": width,
            "train_fraction": alpha,
            "n_train": split.n_train,
            "reference_seconds_per_cell_step": ref_step,
            "reference_run_seconds": ref,
            **flops,
            "reference_gflop_per_second": flops["reference_flop_per_step"] / ref_step / 1e9,
            "stacks": [],
        }
        print(
            f"p={p} N={width} alpha={alpha} (n_train {split.n_train}): reference {ref_step * 1e3:.2f} ms per "
            f"cell-step ({entry['reference_gflop_per_second']:.0f} GFLOP/s); at equal FLOP rates the engine "
            f"would be {flops['flop_ratio']:.2f}x"
        )
        for k in stacks:
            times = runs[k]
            per_model = statistics.median(times) / a.steps / k
            rate = flops["engine_flop_per_step"] / per_model / 1e9
            ratios = floor_ratios(flops["engine_flop_per_step"], per_model, ref_step, report["gemm"])
            entry["stacks"].append(
                {
                    "K": k,
                    "run_seconds": times,
                    "seconds_per_model_step": per_model,
                    "speedup_vs_reference": ref_step / per_model,
                    "gflop_per_second": rate,
                    **ratios,
                }
            )
            print(
                f"  K={k:<3d} engine {per_model * 1e3:8.3f} ms per model-step ({rate:4.0f} GFLOP/s)   "
                f"reference / engine = {ref_step / per_model:5.2f}x   "
                f"engine / floor = {ratios['engine_over_floor']:.2f}"
            )
        report["sizes"].append(entry)
    report["loadavg_after"] = loadavg()
    write_json(Path(a.out), report)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
