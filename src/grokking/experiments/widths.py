"""Fig 32: how many low-IPR neurons can be pruned while the network keeps generalizing, against width.

A job trains the seeds of one width as one stacked model (docs/paper.md §A9 (App. Q): alpha 0.5, xi 0.35, lr
0.005, wd 1.0, MSE), then prunes every seed lowest-IPR first with :func:`grokking.experiments.pruning.prune_curves`
(all pruned counts in one pass). The retention criterion (docs/paper.md §A12, config ``width_sweep.retention``):
a seed's prunable count is the largest n such that ``metric`` stays >= the bar after pruning 0, 1, ...,
n neurons (rule ``prefix``; rule ``last`` takes the largest n whose own value passes); the neurons
required to keep generalizing are ``width - n``. The bar is ``threshold`` itself, or with ``relative``
``threshold`` times the seed's unpruned value. A seed whose unpruned network is below ``generalized``
(default ``threshold``) did not generalize: it has no prunable count and is left out of the means.
"""

from __future__ import annotations

import csv
import io
import json

import numpy as np

from .. import numerics, results

RETENTION_RULES = ("prefix", "last")
IPR_BLOCK_BYTES = 64 * 2**20  # float64 bytes of the weights of the models whose IPR is computed at once


def prunable_count(curve, threshold: float, rule: str = "prefix") -> int:
    """Largest n (neurons pruned) such that the criterion holds, from ``curve[j]`` = metric after
    pruning j neurons; -1 when the unpruned network (j = 0) already fails it."""
    ok = np.asarray(curve, dtype=float) >= float(threshold)
    if not ok[0]:
        return -1
    if rule == "prefix":
        bad = np.flatnonzero(~ok)
        return int(bad[0] - 1) if bad.size else len(ok) - 1
    if rule == "last":
        return int(np.flatnonzero(ok)[-1])
    raise ValueError(f"width_sweep.retention.rule: {rule!r} is not one of {list(RETENTION_RULES)}")


def full_retention(retention: dict) -> dict:
    """``retention`` (keys as ``width_sweep.retention``) with its defaults filled in."""
    out = {"rule": "prefix", "relative": False, **retention}
    out.setdefault("generalized", out["threshold"])
    return out


def retained_count(curve, retention: dict) -> int:
    """Prunable count of one seed under ``retention``; -1 when the unpruned network does not generalize
    (its value is below ``generalized``, or in absolute mode below ``threshold``)."""
    r, curve = full_retention(retention), np.asarray(curve, dtype=float)
    if not curve[0] >= float(r["generalized"]):
        return -1
    bar = float(r["threshold"]) * (curve[0] if r["relative"] else 1.0)
    return prunable_count(curve, bar, r["rule"])


def describe_retention(retention: dict) -> str:
    """The criterion in words, for figure titles and logs."""
    r = full_retention(retention)
    metric = r["metric"].replace("_", " ")
    if not r["relative"]:
        return f"{metric} >= {r['threshold']:g} ({r['rule']} rule)"
    return (
        f"{metric} >= {r['threshold']:g} x its unpruned value ({r['rule']} rule), "
        f"seeds whose unpruned {metric} >= {r['generalized']:g}"
    )


def train_width_job(
    job: dict, data_path, out_path, *, device="auto", progress=True, desc="width", checkpoint=None
) -> dict:
    """Train ``job["seeds"]`` at ``job["spec"]["width"]`` as one stack, prune each seed lowest-IPR first."""
    import torch

    from ..engine import resolve_device, train
    from ..models import get_family
    from .pruning import CURVE_KEYS, prune_curves, pruning_order
    from .specs import model_settings, stack_settings, with_seed

    spec, seeds = dict(job["spec"]), [int(s) for s in job["seeds"]]
    dev = resolve_device(device)
    split = results.load_split(data_path, spec)
    settings = stack_settings(dict(spec, record_neuron_ipr=False))
    models = [model_settings(with_seed(spec, s)) for s in seeds]
    res = train(split, settings, models, device=dev, progress=progress, desc=desc, checkpoint=checkpoint)
    K = len(seeds)
    # Host memory: the initial weights are not needed here; the IPR is computed a block of models at a time
    # (its float64 and complex temporaries are those of the block, the numbers the same); the final weights
    # go to the device one tensor at a time, each host copy let go as it goes (on the CPU, .to keeps the
    # very same tensor).
    res.init_params.clear()
    family, mode = get_family(settings.shape), settings.ipr_mode
    block = max(1, IPR_BLOCK_BYTES // (8 * sum(v[0].numel() for v in res.params.values())))
    ipr = torch.cat(
        [family.neuron_ipr({k: v[s : s + block] for k, v in res.params.items()}, mode) for s in range(0, K, block)]
    )  # (K, N)
    order = pruning_order(ipr, lowest_first=True)
    labels, n_noise = split.train_labels(spec["corruption"])
    params = {k: res.params.pop(k).to(dev) for k in list(res.params)}
    buffers = {k: res.buffers.pop(k).to(dev) for k in list(res.buffers)}
    curves = prune_curves(
        settings.shape, params, buffers, order, split, np.tile(labels, (K, 1)), [n_noise] * K, settings.loss
    )
    out = {
        "width": np.int64(settings.shape.width),
        "seeds": np.asarray(seeds),
        "steps": res.steps,
        "neuron_ipr": ipr.float().numpy(),
        "n_noise": np.int64(n_noise),
        "diverged_at": res.diverged_at,
        "seconds": np.float64(res.seconds),
        "log_seconds": np.float64(res.log_seconds),
        "device": np.asarray(res.device),
        "numerics": np.asarray(json.dumps(numerics.describe(res.device), sort_keys=True)),
        "spec": np.asarray(json.dumps(spec, sort_keys=True)),
    }
    gone = res.diverged_at >= 0  # a diverged network has nothing to prune: NaN
    for key in CURVE_KEYS:
        out[f"final_{key}"] = res.curves[key][-1]
        out[f"pruned_{key}"] = np.where(gone[:, None], np.nan, curves[key]).astype(np.float32)  # (K, N): j pruned
    results.write_npz(out_path, **out)
    return out


def _standard_error(x: np.ndarray) -> float:
    return float(x.std(ddof=1) / np.sqrt(len(x))) if len(x) > 1 else np.nan


def merge_width_sweep(paths, retention: dict, out_npz, out_csv) -> dict:
    """Per (width, seed): prunable and required neurons; per width: mean and standard error."""
    metric = retention["metric"]
    rows, profiles = [], set()
    for path in paths:
        z = results.load_width_job(path)
        profiles.add(str(z["numerics"]) if "numerics" in z else "{}")
        width = int(z["width"])
        curves = z[f"pruned_{metric}"]
        for k, seed in enumerate(z["seeds"]):
            n = retained_count(curves[k], retention)
            rows.append(
                {
                    "width": width,
                    "seed": int(seed),
                    "final_train_acc": float(z["final_train_acc"][k]),
                    "final_test_acc": float(z["final_test_acc"][k]),
                    "diverged": bool(z["diverged_at"][k] >= 0),
                    "generalized": n >= 0,
                    "prunable": n if n >= 0 else np.nan,
                    "required": width - n if n >= 0 else np.nan,
                }
            )
    rows.sort(key=lambda r: (r["width"], r["seed"]))
    widths = np.asarray(sorted({r["width"] for r in rows}))
    summary = {
        k: np.full(len(widths), np.nan)
        for k in ("required_mean", "required_se", "prunable_pct_mean", "prunable_pct_se")
    }
    n_gen = np.zeros(len(widths), dtype=np.int64)
    n_seeds = np.zeros(len(widths), dtype=np.int64)
    n_diverged = np.zeros(len(widths), dtype=np.int64)
    for i, w in enumerate(widths):
        sel = [r for r in rows if r["width"] == w]
        n_seeds[i] = len(sel)
        n_diverged[i] = sum(r["diverged"] for r in sel)
        good = [r for r in sel if r["generalized"]]
        n_gen[i] = len(good)
        if good:
            req = np.asarray([r["required"] for r in good], dtype=float)
            pct = 100.0 * np.asarray([r["prunable"] for r in good], dtype=float) / w
            summary["required_mean"][i], summary["required_se"][i] = req.mean(), _standard_error(req)
            summary["prunable_pct_mean"][i], summary["prunable_pct_se"][i] = pct.mean(), _standard_error(pct)
    out = dict(
        summary,
        widths=widths,
        seeds_total=n_seeds,
        seeds_generalized=n_gen,
        seeds_diverged=n_diverged,
        row_width=np.asarray([r["width"] for r in rows]),
        row_seed=np.asarray([r["seed"] for r in rows]),
        row_prunable=np.asarray([r["prunable"] for r in rows], dtype=float),
        row_required=np.asarray([r["required"] for r in rows], dtype=float),
        row_final_test_acc=np.asarray([r["final_test_acc"] for r in rows]),
        retention=np.asarray(json.dumps(full_retention(retention), sort_keys=True)),
        code_version=np.asarray(results.code_version()),
        numerics=np.asarray(json.dumps(sorted(profiles))),
    )
    results.write_npz(out_npz, **out)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    cols = ["width", "seed", "final_train_acc", "final_test_acc", "generalized", "prunable", "required", "diverged"]
    w.writerow(cols)
    for r in rows:
        w.writerow(
            [
                r["width"],
                r["seed"],
                f"{r['final_train_acc']:.6g}",
                f"{r['final_test_acc']:.6g}",
                int(r["generalized"]),
                "" if np.isnan(r["prunable"]) else int(r["prunable"]),
                "" if np.isnan(r["required"]) else int(r["required"]),
                int(r["diverged"]),
            ]
        )
    results.write_bytes(out_csv, buf.getvalue().encode())
    return out
