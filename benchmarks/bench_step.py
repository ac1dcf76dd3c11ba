"""Time per full-batch training step: the grokking engine vs a plain PyTorch reference loop.

Both are timed in the same process, on the same data, with the paper's default single-run setting
(docs/paper.md §A3-A5): addition mod p = 97, width N = 500, alpha = 0.5 (4704 training pairs, full batch),
quadratic activation, MSE against one-hot, AdamW lr 0.01, betas (0.9, 0.98), eps 1e-8, wd 5,
corruption xi = 0.35.

Variants (see benchmarks/README.md for what each number means):

* ``reference``          nn.Linear(2p, N) on concatenated one-hots, x^2, nn.Linear(N, p), torch.optim.AdamW
* ``engine``             grokking.engine.train, K = 1, one evaluation (at the last step)
* ``engine_default_log`` the same with the workflow's default log schedule (step 1 and every steps/100)
* ``engine_stack``       K stacked models (different weight decays) trained as one, per model-step

Writes JSON (atomically) and prints a table. It never asserts anything about the timings.

    .venv/bin/python benchmarks/bench_step.py [--threads 2] [--device auto] [--steps 50] [--repeats 3]
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import platform
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Always time THIS checkout's library, whether or not a (possibly different) copy is installed.
sys.path.insert(0, str(REPO / "src"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from grokking.data import Universe  # noqa: E402
from grokking.engine import ModelSettings, StackSettings, derive_seed, log_schedule, resolve_device, train  # noqa: E402
from grokking.hostmemory import reuse_freed_memory  # noqa: E402
from grokking.models.mlp2 import MLPShape  # noqa: E402
from grokking.models.mlp2 import init as init_model  # noqa: E402
from grokking.results import write_json  # noqa: E402

# The paper's default setting (docs/paper.md §A3-A5, Fig 1b cell).
P, WIDTH, TRAIN_FRACTION, CORRUPTION = 97, 500, 0.5, 0.35
LR, BETAS, EPS, WEIGHT_DECAY, SEED = 0.01, (0.9, 0.98), 1e-8, 5.0, 1
STACK_WEIGHT_DECAYS = (0.0, 5.0, 15.0, 20.0)  # the four wd panels of Fig 3(a)
OPERATION, PAIR_SEED, LABEL_SEED = "add", 420, 0


# --------------------------------------------------------------------------------------------------
# Reference: the textbook formulation, written independently of the engine.
# --------------------------------------------------------------------------------------------------


class ReferenceMLP(nn.Module):
    """W (phi(W_in [e_m; e_n])) with phi(x) = x^2, no biases."""

    def __init__(self, p: int, width: int):
        super().__init__()
        self.hidden = nn.Linear(2 * p, width, bias=False)
        self.out = nn.Linear(width, p, bias=False)

    def forward(self, x):
        h = self.hidden(x)
        return self.out(h * h)


def _sync(dev: torch.device):
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def gemm_peak(dev: torch.device, n: int = 2048, repeats: int = 5) -> dict:
    """The device's fp32 matrix-product rate, measured in this process: the best of ``repeats`` products of two
    n x n matrices (after one untimed). An engine's floor per model-step is its matrix-product FLOPs at this rate,
    so that ratios to it compare machines (issue 38)."""
    gen = torch.Generator(device=dev).manual_seed(0)
    a, b = (torch.randn(n, n, generator=gen, device=dev) for _ in range(2))
    out = torch.empty(n, n, device=dev)
    torch.mm(a, b, out=out)
    times = []
    for _ in range(repeats):
        _sync(dev)
        t = time.perf_counter()
        torch.mm(a, b, out=out)
        _sync(dev)
        times.append(time.perf_counter() - t)
    return {"n": n, "seconds": times, "flop_per_second": 2.0 * n**3 / min(times)}


def floor_ratios(flop_per_step: float, seconds_per_step: float, reference_seconds: float, peak: dict) -> dict:
    """A model-step against the GEMM floor (its FLOPs at ``peak``) and against the reference's step."""
    floor = flop_per_step / peak["flop_per_second"]
    return {
        "floor_seconds_per_model_step": floor,
        "engine_over_floor": seconds_per_step / floor,
        "engine_over_reference": seconds_per_step / reference_seconds,
    }


def reference_inputs(split, corruption, dev):
    """Concatenated one-hot inputs (n_train, 2p) and one-hot (partly corrupted) targets (n_train, p)."""
    p = split.p
    m = torch.as_tensor(np.asarray(split.train_m), dtype=torch.long)
    n = torch.as_tensor(np.asarray(split.train_n), dtype=torch.long)
    y, _ = split.train_labels(corruption)
    x = torch.cat([F.one_hot(m, p), F.one_hot(n, p)], dim=1).float()
    target = F.one_hot(torch.as_tensor(y, dtype=torch.long), p).float()
    return x.to(dev), target.to(dev)


def reference_model(p, width, seed, dev):
    """A fresh reference model with the engine's initial weights for ``seed``, so both follow the same
    trajectory and the timed arithmetic is the same (no blow-up or underflow in one of them only)."""
    model = ReferenceMLP(p, width)
    w, _ = init_model(MLPShape(p, width), derive_seed(seed, "init"))
    with torch.no_grad():
        model.hidden.weight.copy_(torch.cat([w["U"], w["V"]], dim=1))
        model.out.weight.copy_(w["W"])
    return model.to(dev)


def train_reference(model, x, target, steps, lr, weight_decay, dev):
    """``steps`` full-batch AdamW steps of the plain loop; returns the seconds of the loop."""
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=BETAS, eps=EPS, weight_decay=weight_decay)
    _sync(dev)
    start = time.perf_counter()
    for _ in range(steps):
        loss = F.mse_loss(model(x), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    _sync(dev)
    return time.perf_counter() - start


def run_reference(x, target, steps, dev):
    """Train one fresh reference model for ``steps`` full-batch steps; (seconds of the loop, final loss)."""
    model = reference_model(P, WIDTH, SEED, dev)
    seconds = train_reference(model, x, target, steps, LR, WEIGHT_DECAY, dev)
    with torch.no_grad():
        final = float(F.mse_loss(model(x), target))
    return seconds, final


# --------------------------------------------------------------------------------------------------
# Engine variants: grokking.engine.train; its TrainResult.seconds is the wall time of its loop.
# --------------------------------------------------------------------------------------------------


def engine_models(k: int):
    if k == 1:
        return [ModelSettings(corruption=CORRUPTION, weight_decay=WEIGHT_DECAY, lr=LR, seed=SEED)]
    wds = [STACK_WEIGHT_DECAYS[i % len(STACK_WEIGHT_DECAYS)] for i in range(k)]
    return [ModelSettings(corruption=CORRUPTION, weight_decay=wd, lr=LR, seed=SEED) for wd in wds]


def engine_settings(steps: int, default_log: bool) -> StackSettings:
    shape = MLPShape(P, WIDTH)
    if default_log:
        # As a workflow run does (grokking.experiments.specs.stack_settings): default schedule, neuron IPR on.
        return StackSettings(
            shape=shape, steps=steps, betas=BETAS, eps=EPS, log_steps=tuple(log_schedule(steps)), record_neuron_ipr=True
        )
    return StackSettings(shape=shape, steps=steps, betas=BETAS, eps=EPS, log_steps=(steps,))


def run_engine(split, steps, k, default_log, dev):
    """(seconds of the engine's loop, mean final train loss over the stack)."""
    res = train(split, engine_settings(steps, default_log), engine_models(k), device=dev, progress=False)
    return res.seconds, float(np.mean(res.curves["train_loss"][-1]))


# --------------------------------------------------------------------------------------------------
# Harness
# --------------------------------------------------------------------------------------------------


def summarize(seconds: list[float], steps: int, k: int) -> dict:
    per_step = [s / steps for s in seconds]
    med, lo = statistics.median(per_step), min(per_step)
    return {
        "run_seconds": seconds,
        "seconds_per_step": {"median": med, "min": lo, "max": max(per_step)},
        "seconds_per_model_step": {"median": med / k, "min": lo / k},
        "spread": (max(per_step) - lo) / med if med > 0 else float("nan"),
    }


def machine_info(dev: torch.device, threads: int) -> dict:
    info = {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "threads_requested": threads,
        "device": str(dev),
        "device_name": None,
        "cuda_version": torch.version.cuda,
    }
    if dev.type == "cuda":
        info["device_name"] = torch.cuda.get_device_name(dev)
    else:
        from grokking.report.records import cpu_identity

        info["cpu"] = cpu_identity()  # model, vendor, family, model number, vector extensions (avx2, fma, avx512f)
        try:
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("model name"):
                    info["device_name"] = line.split(":", 1)[1].strip()
                    break
        except OSError:
            pass
    return info


def loadavg():
    try:
        return list(os.getloadavg())
    except OSError:
        return None


def _ratio(a, b):
    return a / b if b > 0 else float("nan")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (default 0 = all cores)")
    ap.add_argument("--device", default="auto", help="auto | cpu | cuda[:i] (default auto)")
    ap.add_argument("--steps", type=int, default=50, help="training steps per timed run (default 50)")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per variant; median and min reported")
    ap.add_argument("--warmup-steps", type=int, default=5, help="steps of the untimed warm-up run per variant")
    ap.add_argument("--stack", type=int, default=4, help="K, models in the stacked variant (default 4)")
    ap.add_argument(
        "--workflow-steps",
        type=int,
        default=2000,
        help="run length for the projected per-step cost with the default log schedule",
    )
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "out" / "bench_step.json"))
    a = ap.parse_args(argv)
    if a.steps < 2 or a.repeats < 1 or a.warmup_steps < 1 or a.stack < 1:
        ap.error("--steps must be >= 2, --repeats, --warmup-steps and --stack >= 1")

    threads = a.threads if a.threads > 0 else (os.cpu_count() or 1)
    torch.set_num_threads(threads)
    reuse_freed_memory()  # as every compute job does (grokking.hostmemory)
    dev = resolve_device(a.device)
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", torch.cuda.current_device())

    split = Universe.build(OPERATION, P, PAIR_SEED, LABEL_SEED).split(TRAIN_FRACTION)
    x, target = reference_inputs(split, CORRUPTION, dev)
    S, K = a.steps, a.stack

    variants = {
        "reference": dict(
            k=1,
            n_evals=0,
            fn=lambda s: run_reference(x, target, s, dev),
            description="nn.Module (Linear on one-hot, x^2, Linear) + torch.optim.AdamW; "
            "forward, MSE, zero_grad, backward, step; no evaluation",
        ),
        "engine": dict(
            k=1,
            n_evals=1,
            fn=lambda s: run_engine(split, s, 1, False, dev),
            description="grokking.engine.train, K=1, log_steps=(steps,): one evaluation",
        ),
        "engine_default_log": dict(
            k=1,
            n_evals=len(log_schedule(S)),
            fn=lambda s: run_engine(split, s, 1, True, dev),
            description="grokking.engine.train, K=1, default log schedule "
            "(step 1 and every steps/100) with neuron IPR, as a workflow run",
        ),
        "engine_stack": dict(
            k=K,
            n_evals=1,
            fn=lambda s: run_engine(split, s, K, False, dev),
            description=f"grokking.engine.train, K={K} stacked models "
            f"(weight decays {[m.weight_decay for m in engine_models(K)]}), "
            "log_steps=(steps,)",
        ),
    }

    load_before = loadavg()
    wall0 = time.perf_counter()
    print(
        f"bench_step: device {dev}, {threads} threads, {S} steps x {a.repeats} repeats "
        f"(+{a.warmup_steps}-step warm-up per variant)",
        file=sys.stderr,
    )
    for v in variants.values():
        v["fn"](a.warmup_steps)
    times = {name: [] for name in variants}
    final_loss = {}
    # Round-robin (rotated order) so that drifting background load hits every variant alike.
    names = list(variants)
    for r in range(a.repeats):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            sec, loss = variants[name]["fn"](S)
            times[name].append(sec)
            final_loss[name] = loss
            print(f"  repeat {r + 1}/{a.repeats} {name:<19} {sec / S * 1e3:8.2f} ms/step", file=sys.stderr)
    wall = time.perf_counter() - wall0
    load_after = loadavg()

    results = {}
    for name, v in variants.items():
        results[name] = dict(
            description=v["description"],
            K=v["k"],
            steps=S,
            evaluations=v["n_evals"],
            final_train_loss_mean=final_loss[name],
            **summarize(times[name], S, v["k"]),
        )

    def per_step(name, stat, key="seconds_per_step"):
        return results[name][key][stat]

    ratios = {}
    for stat in ("median", "min"):
        ratios[stat] = {
            "reference/engine": _ratio(per_step("reference", stat), per_step("engine", stat)),
            "reference/engine_default_log": _ratio(per_step("reference", stat), per_step("engine_default_log", stat)),
            "reference/engine_stack_per_model_step": _ratio(
                per_step("reference", stat), per_step("engine_stack", stat, "seconds_per_model_step")
            ),
            "engine/engine_stack_per_model_step": _ratio(
                per_step("engine", stat), per_step("engine_stack", stat, "seconds_per_model_step")
            ),
        }

    # Evaluation cost, from the difference of the two K = 1 engine variants (median run seconds).
    n_def = variants["engine_default_log"]["n_evals"]
    t_eng = statistics.median(times["engine"])
    t_def = statistics.median(times["engine_default_log"])
    t_eval = (t_def - t_eng) / (n_def - 1) if n_def > 1 else float("nan")
    n_wf = len(log_schedule(a.workflow_steps))
    train_only = (t_eng - t_eval) / S
    derived = {
        "engine_seconds_per_evaluation": t_eval,
        "engine_train_only_seconds_per_step": train_only,
        "workflow_steps": a.workflow_steps,
        "workflow_evaluations": n_wf,
        "engine_projected_seconds_per_step_at_workflow_steps": train_only + n_wf * t_eval / a.workflow_steps,
        "note": "median-based estimates from the difference engine_default_log - engine; noisy when the "
        "machine is loaded (can even come out negative)",
    }

    ref_loss, eng_loss = final_loss["reference"], final_loss["engine"]
    warnings = [
        f"{name}: repeats differ by {r['spread']:.0%} of the median"
        for name, r in results.items()
        if r["spread"] > 0.10
    ]
    if load_after and load_after[0] > threads + 1:
        warnings.append(
            f"1-minute load average {load_after[0]:.1f} exceeds the {threads} threads used + 1: "
            "other processes competed for the CPU"
        )
    report = {
        "benchmark": "bench_step",
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": [Path(sys.executable).name, *sys.argv],
        "machine": machine_info(dev, threads),
        "settings": {
            "operation": OPERATION,
            "p": P,
            "width": WIDTH,
            "train_fraction": TRAIN_FRACTION,
            "n_train": split.n_train,
            "batch": "full",
            "activation": "quadratic",
            "loss": "mse",
            "optimizer": "AdamW",
            "lr": LR,
            "betas": list(BETAS),
            "eps": EPS,
            "weight_decay": WEIGHT_DECAY,
            "corruption": CORRUPTION,
            "seed": SEED,
            "steps": S,
            "repeats": a.repeats,
            "warmup_steps": a.warmup_steps,
            "stack_K": K,
            "stack_weight_decays": [m.weight_decay for m in engine_models(K)],
            "default_log_evaluations": n_def,
        },
        "variants": results,
        "ratios": ratios,
        "ratios_note": "reference / engine seconds per (model-)step; > 1 means the engine is faster",
        "derived": derived,
        "sanity": {
            "reference_final_train_loss": ref_loss,
            "engine_final_train_loss": eng_loss,
            "relative_difference": abs(ref_loss - eng_loss) / max(abs(ref_loss), 1e-30),
            "note": "same init, data and optimizer settings: both loops should end at (nearly) the same loss",
        },
        "noise_warnings": warnings,
        "loadavg_before": load_before,
        "loadavg_after": load_after,
        "total_wall_seconds": wall,
    }
    out = Path(a.out)
    write_json(out, report)

    print(f"\nbench_step on {dev} ({report['machine']['device_name']}), {threads} threads, torch {torch.__version__}")
    print(f"p={P} N={WIDTH} n_train={split.n_train} full batch, {S} steps, {a.repeats} repeats")
    print(
        f"{'variant':<20}{'K':>3}{'evals':>7}{'ms/step med':>13}{'ms/step min':>13}"
        f"{'ms/model-step':>15}{'ref/this':>10}{'spread':>8}"
    )
    ref_med = per_step("reference", "median")
    for name, r in results.items():
        med = r["seconds_per_step"]["median"]
        pm = r["seconds_per_model_step"]["median"]
        print(
            f"{name:<20}{r['K']:>3}{r['evaluations']:>7}{med * 1e3:>13.2f}{r['seconds_per_step']['min'] * 1e3:>13.2f}"
            f"{pm * 1e3:>15.2f}{_ratio(ref_med, pm):>10.2f}{r['spread'] * 100:>7.0f}%"
        )
    print(
        f"evaluation ~{t_eval * 1e3:.1f} ms; projected engine cost at {a.workflow_steps} steps with "
        f"{n_wf} evaluations: {derived['engine_projected_seconds_per_step_at_workflow_steps'] * 1e3:.2f} ms/step"
    )
    print(
        f"final train loss: reference {ref_loss:.6g}, engine {eng_loss:.6g}; load avg {load_before} -> "
        f"{load_after}; {wall:.0f} s total"
    )
    for w in warnings:
        print(f"warning (noisy timings): {w}")
    print(f"wrote {out}")
    return report


if __name__ == "__main__":
    main()
