"""Time per model-step of stacked Transformer and deep-MLP training against one reference model at a time.

For each family (``transformer``: 1 block, 4 heads; ``deep_mlp``: 3 weight matrices, ReLU) and each
stack size K, the engine (``grokking.engine.train``) trains K models (different weight decays and
corruptions, as in a grid chunk) as one stacked model, evaluating only at the last step; the reference
trains the same models one at a time, each as a plain ``nn.Module`` + ``torch.optim.AdamW`` full-batch
MSE loop evaluated only at the end. The reference modules are written here from the specification
(docs/paper.md §A3 (f), (g)), sharing only the initial weights with the engine (copied from the family's
``init``, so that both follow the same trajectory). Everything is timed in the same process; runs are
interleaved (reference, then every K, in an order rotated each repeat). Writes JSON (atomically) and
prints a table; never asserts anything about timings.

    .venv/bin/python benchmarks/bench_families.py [--threads 1] [--device auto] [--paper] [--stacks 1,4,16]
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

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from bench_step import _sync, floor_ratios, gemm_peak, loadavg, machine_info  # noqa: E402
from torch import nn  # noqa: E402

from grokking.data import Universe  # noqa: E402
from grokking.engine import ModelSettings, StackSettings, derive_seed, resolve_device, train  # noqa: E402
from grokking.hostmemory import reuse_freed_memory  # noqa: E402
from grokking.models import deep_mlp, transformer  # noqa: E402
from grokking.models.deep_mlp import DeepMLPShape  # noqa: E402
from grokking.models.transformer import TransformerShape  # noqa: E402
from grokking.results import write_json  # noqa: E402

BETAS, EPS = (0.9, 0.98), 1e-8
CORRUPTIONS = (0.0, 0.1, 0.2, 0.3, 0.4)
# Per family: learning rate (config.yaml model_defaults) and the weight-decay panels of its grid.
FAMILIES = {
    "transformer": {"lr": 0.01, "weight_decays": (0.1, 2.0)},  # transformer_wd grid
    "deep_mlp": {"lr": 0.001, "weight_decays": (10.0, 50.0)},  # mlp3_wd grid
}
QUICK_SIZES = {"transformer": "59:64:0.8", "deep_mlp": "59:128:0.8"}  # config/quick.yaml model_defaults
PAPER_SIZES = {"transformer": "97:128:0.8", "deep_mlp": "97:500:0.8"}  # docs/paper.md §A3 (f), (g)
STACKS = {"cpu": "1,4,16", "cuda": "1,4,16,64,128"}


def cells(family: str, k: int) -> list[ModelSettings]:
    """K grid-like cells: corruptions cycle fastest, then the family's weight decays, then seeds 1-3."""
    cfg = FAMILIES[family]
    wds = cfg["weight_decays"]
    return [
        ModelSettings(
            corruption=CORRUPTIONS[i % len(CORRUPTIONS)],
            weight_decay=wds[(i // len(CORRUPTIONS)) % len(wds)],
            lr=cfg["lr"],
            seed=1 + (i // (len(CORRUPTIONS) * len(wds))) % 3,
        )
        for i in range(k)
    ]


# --------------------------------------------------------------------------------------------------
# References: textbook nn.Modules, written independently of grokking.models.
# --------------------------------------------------------------------------------------------------


class ReferenceTransformer(nn.Module):
    """Token + position embeddings, per block bias-free nn.Linear q/k/v/o and a 4d ReLU MLP, no
    LayerNorm, attention logits / d_head over both positions, residual adds; logits read at the last
    position through nn.Linear(d, p), times 1/d. Every position of every block is computed."""

    def __init__(self, p: int, d: int, heads: int, layers: int):
        super().__init__()
        self.d, self.heads = d, heads
        self.embed = nn.Parameter(torch.zeros(p, d))
        self.pos = nn.Parameter(torch.zeros(2, d))
        self.blocks = nn.ModuleList()
        for _ in range(layers):
            blk = nn.Module()
            blk.q, blk.k, blk.v, blk.o = (nn.Linear(d, d, bias=False) for _ in range(4))
            blk.mlp_in = nn.Linear(d, 4 * d, bias=False)
            blk.mlp_out = nn.Linear(4 * d, d, bias=False)
            self.blocks.append(blk)
        self.head = nn.Linear(d, p, bias=False)

    def forward(self, x):  # x: (B, 2) operand indices
        h = self.embed[x] + self.pos  # (B, 2, d)
        B, S, d = h.shape
        H, dh = self.heads, d // self.heads
        for blk in self.blocks:
            q = blk.q(h).view(B, S, H, dh).transpose(1, 2)
            k = blk.k(h).view(B, S, H, dh).transpose(1, 2)
            v = blk.v(h).view(B, S, H, dh).transpose(1, 2)
            att = torch.softmax(q @ k.transpose(-1, -2) / dh, dim=-1)
            h = h + blk.o((att @ v).transpose(1, 2).reshape(B, S, d))
            h = h + blk.mlp_out(torch.relu(blk.mlp_in(h)))
        return self.head(h[:, -1]) / self.d

    def load(self, w: dict):
        with torch.no_grad():
            self.embed.copy_(w["embed"])
            self.pos.copy_(w["pos"])
            for i, blk in enumerate(self.blocks):
                for name in ("q", "k", "v", "o", "mlp_in", "mlp_out"):
                    getattr(blk, name).weight.copy_(w[f"l{i}_{name}"])
            self.head.weight.copy_(w["head"])


class ReferenceDeepMLP(nn.Module):
    """``depth`` bias-free nn.Linear layers on concatenated one-hot operands [e_m; e_n], ReLU after
    every hidden layer: 2p -> N -> ... -> N -> p."""

    def __init__(self, p: int, width: int, depth: int):
        super().__init__()
        dims = [2 * p] + [width] * (depth - 1)
        self.hidden = nn.ModuleList(nn.Linear(a, width, bias=False) for a in dims[:-1])
        self.out = nn.Linear(width, p, bias=False)

    def forward(self, x):  # x: (B, 2p) one-hot pairs
        h = x
        for layer in self.hidden:
            h = torch.relu(layer(h))
        return self.out(h)

    def load(self, w: dict):
        with torch.no_grad():
            self.hidden[0].weight.copy_(torch.cat([w["U"], w["V"]], dim=1))
            for i, layer in enumerate(self.hidden[1:], start=1):
                layer.weight.copy_(w[f"W{i}"])
            self.out.weight.copy_(w["W_out"])


def reference_inputs(family: str, split, dev):
    """(train inputs, test inputs) as the reference reads them: operand indices (B, 2) for the
    Transformer, concatenated one-hot vectors (B, 2p) for the MLP."""
    p = split.p

    def operands(m, n):
        return torch.stack([torch.as_tensor(np.asarray(m)), torch.as_tensor(np.asarray(n))], 1).long()

    tr, te = operands(split.train_m, split.train_n), operands(split.test_m, split.test_n)
    if family == "deep_mlp":
        tr, te = (torch.cat([F.one_hot(t[:, 0], p), F.one_hot(t[:, 1], p)], 1).float() for t in (tr, te))
    return tr.to(dev), te.to(dev)


def reference_model(family: str, shape, seed: int, dev) -> nn.Module:
    """A fresh reference with the engine's initial weights for ``seed``."""
    if family == "transformer":
        model = ReferenceTransformer(shape.p, shape.d_model, shape.heads, shape.layers)
        w, _ = transformer.init(shape, derive_seed(seed, "init"))
    else:
        model = ReferenceDeepMLP(shape.p, shape.width, shape.depth)
        w, _ = deep_mlp.init(shape, derive_seed(seed, "init"))
    model.load(w)
    return model.to(dev)


def reference_cell(family, shape, split, inputs, cell: ModelSettings, steps, dev):
    """One model, one nn.Module, full batch, evaluated once at the end (train and test predictions, as a
    grid script would). Returns (seconds of the loop and the evaluation, final training loss)."""
    x, tx = inputs
    y, _ = split.train_labels(cell.corruption)
    target = F.one_hot(torch.as_tensor(np.asarray(y), dtype=torch.long), split.p).float().to(dev)
    model = reference_model(family, shape, cell.seed, dev)
    opt = torch.optim.AdamW(model.parameters(), lr=cell.lr, betas=BETAS, eps=EPS, weight_decay=cell.weight_decay)
    _sync(dev)
    start = time.perf_counter()
    for _ in range(steps):
        loss = F.mse_loss(model(x), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        out = model(x)
        out.argmax(1)
        model(tx).argmax(1)
        final = F.mse_loss(out, target)
    _sync(dev)
    return time.perf_counter() - start, float(final)


def engine_stack(shape, split, models, steps, dev):
    """K models as one stack, logged only at the last step; (TrainResult.seconds, final train losses)."""
    res = train(
        split,
        StackSettings(shape, loss="mse", steps=steps, betas=BETAS, eps=EPS, log_steps=(steps,)),
        models,
        device=dev,
        progress=False,
    )
    return res.seconds, res.curves["train_loss"][-1]


def flop_counts(family: str, shape, b: int) -> dict:
    """Floating-point operations of one full-batch step (b examples), products with weights only;
    backward = 2 x forward except where an input gradient is not needed.

    Transformer, per example and block, forward: q, k, v, o cost 2 d^2 each and the MLP 16 d^2 per
    position, 48 d^2 for both positions; the head 2 d p. The reference computes both positions of every
    block; the engine computes k and v at both positions but q, o and the MLP of the last block only at
    the read-out position (28 d^2), and looks up the first block's q, k and v (12 d^2 per example, or
    10 d^2 when it is also the last) in tables of p + 2 rows per weight (6 (p + 2) d^2 per step). Every
    input gradient is needed (the embeddings are parameters), so a step costs 3 x forward in both.

    Deep MLP: the reference's first layer is a dense product with the one-hot inputs, 2 b 2p N forward
    and the same for its weight gradient (no input gradient); each N x N layer costs 6 b N^2 and the
    output layer 6 b N p. The engine gathers the first layer (no multiplications)."""
    if family == "transformer":
        d, p, L = shape.d_model, shape.p, shape.layers
        ref = 3.0 * b * (48 * d * d * L + 2 * d * p)
        first_qkv = 10 * d * d if L == 1 else 12 * d * d
        eng = 3.0 * b * (48 * d * d * (L - 1) + 28 * d * d - first_qkv + 2 * d * p) + 3.0 * 6 * (p + 2) * d * d
    else:
        N, p, hidden = shape.width, shape.p, shape.depth - 2
        ref = b * (8.0 * p * N + 6.0 * hidden * N * N + 6.0 * N * p)
        eng = b * (6.0 * hidden * N * N + 6.0 * N * p)
    return {"reference_flop_per_step": ref, "engine_flop_per_step": eng, "flop_ratio": ref / eng}


def make_shape(family: str, size: str, a):
    p, width, alpha = size.split(":")
    p, width, alpha = int(p), int(width), float(alpha)
    if family == "transformer":
        return TransformerShape(p, width, a.heads, a.layers), alpha
    return DeepMLPShape(p, width, a.depth, activation="relu"), alpha


def bench_family(family: str, size: str, stacks: list[int], a, dev, peak: dict) -> dict:
    shape, alpha = make_shape(family, size, a)
    split = Universe.build("add", shape.p).split(alpha)
    inputs = reference_inputs(family, split, dev)
    ref_cells = cells(family, a.reference_cells)
    stack_cells = {k: cells(family, k) for k in stacks}
    # Warm-up: one untimed short run of every variant (allocator, thread pool, kernels per shape).
    reference_cell(family, shape, split, inputs, ref_cells[0], a.warmup_steps, dev)
    for k in stacks:
        engine_stack(shape, split, stack_cells[k], a.warmup_steps, dev)

    variants = ["reference", *stacks]
    ref, ref_loss, runs, eng_loss = [], [], {k: [] for k in stacks}, {}
    for r in range(a.repeats):
        for v in variants[r % len(variants) :] + variants[: r % len(variants)]:
            if v == "reference":
                for c in ref_cells:
                    secs, loss = reference_cell(family, shape, split, inputs, c, a.steps, dev)
                    ref.append(secs)
                    ref_loss.append(loss)
            else:
                secs, losses = engine_stack(shape, split, stack_cells[v], a.steps, dev)
                runs[v].append(secs)
                eng_loss[v] = losses
    ref_step = statistics.median(ref) / a.steps
    flops = flop_counts(family, shape, split.n_train)
    # Sanity: the first cell starts from the same weights and data in both loops, so its final
    # training loss should agree to float precision; a large difference voids the comparison.
    k0 = stacks[0]
    ref0, eng0 = ref_loss[0], float(eng_loss[k0][0])
    entry = {
        "family": family,
        "shape": shape.to_dict(),
        "train_fraction": alpha,
        "n_train": split.n_train,
        "lr": FAMILIES[family]["lr"],
        "weight_decays": list(FAMILIES[family]["weight_decays"]),
        "reference_cells": a.reference_cells,
        "reference_seconds_per_model_step": ref_step,
        "reference_run_seconds": ref,
        **flops,
        "reference_gflop_per_second": flops["reference_flop_per_step"] / ref_step / 1e9,
        "sanity": {
            "K": k0,
            "reference_final_train_loss": ref0,
            "engine_final_train_loss": eng0,
            "relative_difference": abs(ref0 - eng0) / max(abs(ref0), 1e-30),
        },
        "stacks": [],
    }
    dims = f"d_model={shape.d_model} heads={shape.heads} layers={shape.layers}" if family == "transformer" else ""
    dims = dims or f"width={shape.width} depth={shape.depth}"
    print(
        f"{family} p={shape.p} {dims} alpha={alpha} (n_train {split.n_train}): reference "
        f"{ref_step * 1e3:.2f} ms per model-step ({entry['reference_gflop_per_second']:.0f} GFLOP/s); at equal "
        f"FLOP rates the engine would be {flops['flop_ratio']:.2f}x; final-loss check (K={k0}, model 0): "
        f"relative difference {entry['sanity']['relative_difference']:.1e}"
    )
    for k in stacks:
        times = runs[k]
        per_model = statistics.median(times) / a.steps / k
        rate = flops["engine_flop_per_step"] / per_model / 1e9
        ratios = floor_ratios(flops["engine_flop_per_step"], per_model, ref_step, peak)
        entry["stacks"].append(
            {
                "K": k,
                "run_seconds": times,
                "seconds_per_model_step": per_model,
                "seconds_per_model_step_min": min(times) / a.steps / k,
                "speedup_vs_reference": ref_step / per_model,
                "gflop_per_second": rate,
                **ratios,
            }
        )
        print(
            f"  K={k:<3d} engine {per_model * 1e3:8.3f} ms per model-step ({rate:4.0f} GFLOP/s)   "
            f"reference / engine = {ref_step / per_model:5.2f}x   engine / floor = {ratios['engine_over_floor']:.2f}"
        )
    return entry


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (default 0 = all cores)")
    ap.add_argument("--device", default="auto", help="auto, cpu or cuda[:i]")
    ap.add_argument("--families", default="transformer,deep_mlp")
    ap.add_argument("--transformer-size", default=None, help=f"p:d_model:alpha (default {QUICK_SIZES['transformer']})")
    ap.add_argument("--deep-mlp-size", default=None, help=f"p:width:alpha (default {QUICK_SIZES['deep_mlp']})")
    ap.add_argument(
        "--paper",
        action="store_true",
        help=f"the paper's sizes: transformer {PAPER_SIZES['transformer']}, deep_mlp {PAPER_SIZES['deep_mlp']}",
    )
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--layers", type=int, default=1)
    ap.add_argument("--depth", type=int, default=3, help="deep_mlp weight matrices")
    ap.add_argument(
        "--stacks", default=None, help=f"comma list of K (default {STACKS['cpu']} on CPU, else {STACKS['cuda']})"
    )
    ap.add_argument("--steps", type=int, default=20, help="training steps per timed run")
    ap.add_argument("--warmup-steps", type=int, default=3, help="steps of the one untimed run of each variant")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument(
        "--reference-cells",
        type=int,
        default=2,
        help="reference models timed per repeat (its cost per model does not depend on K)",
    )
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "out" / "bench_families.json"))
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
        reuse_freed_memory()  # as every compute job does (grokking.hostmemory)
    dev = resolve_device(a.device)
    stacks = [int(k) for k in (a.stacks or STACKS["cuda" if dev.type == "cuda" else "cpu"]).split(",")]
    defaults = PAPER_SIZES if a.paper else QUICK_SIZES
    sizes = {
        "transformer": a.transformer_size or defaults["transformer"],
        "deep_mlp": a.deep_mlp_size or defaults["deep_mlp"],
    }
    families = [f.strip() for f in a.families.split(",") if f.strip()]
    for f in families:
        if f not in FAMILIES:
            ap.error(f"--families: {f!r} is not one of {list(FAMILIES)}")
    report = {
        "benchmark": "bench_families",
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": sys.argv,
        "machine": machine_info(dev, a.threads),
        "loadavg_before": loadavg(),
        "gemm": gemm_peak(dev),  # the floor's rate, measured in this run
        "settings": {
            "steps": a.steps,
            "warmup_steps": a.warmup_steps,
            "repeats": a.repeats,
            "reference_cells": a.reference_cells,
            "stacks": stacks,
            "paper": a.paper,
            "sizes": {f: sizes[f] for f in families},
            "loss": "mse",
            "betas": list(BETAS),
            "eps": EPS,
            "corruptions": list(CORRUPTIONS),
            "log_steps": [a.steps],
        },
        "families": [],
    }
    for f in families:
        report["families"].append(bench_family(f, sizes[f], stacks, a, dev, report["gemm"]))
    report["loadavg_after"] = loadavg()
    report["total_wall_seconds"] = time.perf_counter() - t0

    print()
    print("| family | size | reference ms | " + " | ".join(f"K = {k}" for k in stacks) + " |")
    print("|---|---|---|" + "---|" * len(stacks))
    for e in report["families"]:
        s = e["shape"]
        size = f"p {s['p']}, d {s['d_model']}" if e["family"] == "transformer" else f"p {s['p']}, N {s['width']}"
        cols = [f"{r['seconds_per_model_step'] * 1e3:.2f} ms ({r['speedup_vs_reference']:.2f}x)" for r in e["stacks"]]
        print(
            f"| {e['family']} | {size}, alpha {e['train_fraction']} | "
            f"{e['reference_seconds_per_model_step'] * 1e3:.2f} | " + " | ".join(cols) + " |"
        )
    print(
        f"total {report['total_wall_seconds']:.0f} s, load average before/after {report['loadavg_before']} / "
        f"{report['loadavg_after']}"
    )
    write_json(Path(a.out), report)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
