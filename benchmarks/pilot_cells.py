"""Pilot for choosing a preset's open settings: one named run or grid cell of a preset, with overrides,
trained as one stack over seeds and over the values of one per-model key.

Prints, per model, the phase with (train, test) accuracy, the corrupted-subset accuracy and the median of
each IPR component of the family (for a BatchNorm deep MLP also Fig 15's Spearman correlations, as the
claims compute them); then, per value of ``--vary``, the mean and spread of those medians over the seeds.
Writes the numbers as JSON. The dataset file must exist (the command to build it is printed when it does
not). The pilots of config/README.md that name this script were run this way:

    .venv/bin/python benchmarks/pilot_cells.py --preset quick --grid transformer_wd --panel 2 \\
        --alpha 0.8 --xi 0.2 --set heads=8 --seeds 1-30
    .venv/bin/python benchmarks/pilot_cells.py --grid mlp3_lazy_wd --panel 1 --alpha 0.8 --xi 0.2 \\
        --vary weight_decay=1,10
    .venv/bin/python benchmarks/pilot_cells.py --run m_bn --seeds 1-8
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

from grokking.config import load_preset, validate  # noqa: E402
from grokking.engine import train  # noqa: E402
from grokking.engine.seeds import derive_seed  # noqa: E402
from grokking.experiments.specs import (  # noqa: E402
    PER_MODEL_KEYS,
    ConfigError,
    cell_spec,
    model_settings,
    normalize,
    resolve_run,
    stack_settings,
)
from grokking.experiments.summary import summarize  # noqa: E402
from grokking.layout import Layout  # noqa: E402
from grokking.models import get_family  # noqa: E402
from grokking.report.claims import spearman  # noqa: E402
from grokking.results import load_split, write_json  # noqa: E402


def preset_config(preset: str) -> dict:
    """config/config.yaml with config/<preset>.yaml laid over it key by key, as Snakemake's --configfile."""
    return validate(load_preset(REPO / "config", preset))


def seed_list(text: str) -> list[int]:
    """``1-30`` or ``1,3,5``."""
    if "-" in text:
        lo, hi = (int(x) for x in text.split("-"))
        return list(range(lo, hi + 1))
    return [int(x) for x in text.split(",") if x]


def base_spec(cfg: dict, a) -> dict:
    if (a.run is None) == (a.grid is None):
        raise SystemExit("give exactly one of --run NAME or --grid NAME (with --panel, --alpha, --xi)")
    if a.run is not None:
        return resolve_run(cfg, a.run)
    if None in (a.panel, a.alpha, a.xi):
        raise SystemExit("--grid needs --panel, --alpha and --xi")
    return cell_spec(cfg, a.grid, a.panel, a.alpha, a.xi)


def load_cell_split(cfg: dict, spec: dict, preset: str):
    """The split a spec trains on, from the preset's built dataset file (exit naming the command that builds it)."""
    data_path = REPO / Layout.from_config(cfg).dataset_of(spec)
    if not data_path.exists():
        raise SystemExit(
            f"{data_path} does not exist; build it first:\n  .venv/bin/snakemake {data_path.relative_to(REPO)} "
            f"--cores 1{'' if preset == 'paper' else f' --configfile config/{preset}.yaml'}"
        )
    return load_split(data_path, spec)


def apply_overrides(spec: dict, sets: list[str], steps_points: int) -> dict:
    spec = dict(spec)
    for item in sets:
        key, _, value = item.partition("=")
        if key not in spec:
            raise ConfigError(f"--set {key}: not a setting of this spec; settings: {sorted(spec)}")
        spec[key] = yaml.safe_load(value)
    spec = normalize(spec)
    spec["log_every"] = max(1, int(spec["steps"]) // steps_points)
    return spec


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="paper", help="paper (config/config.yaml) or an overlay in config/")
    ap.add_argument("--run", help="a named run of the preset")
    ap.add_argument("--grid", help="a grid of the preset (with --panel, --alpha, --xi)")
    ap.add_argument("--panel", type=float)
    ap.add_argument("--alpha", type=float)
    ap.add_argument("--xi", type=float)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a setting")
    ap.add_argument("--vary", metavar="KEY=V1,V2", help=f"one per-model key over values: {', '.join(PER_MODEL_KEYS)}")
    ap.add_argument("--seeds", type=seed_list, default=None, help="1-30 or 1,3 (default: the spec's seed)")
    ap.add_argument("--curve-points", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "out" / "pilot_cells.json"))
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)

    cfg = preset_config(a.preset)
    spec = apply_overrides(base_spec(cfg, a), a.set, a.curve_points)
    key, values = "seed", [None]
    if a.vary:
        key, _, text = a.vary.partition("=")
        if key not in PER_MODEL_KEYS or key == "seed":
            others = [k for k in PER_MODEL_KEYS if k != "seed"]
            raise ConfigError(f"--vary {key}: must be a per-model key other than seed: {others}")
        values = [yaml.safe_load(v) for v in text.split(",")]
    seeds = a.seeds or [spec["seed"]]
    members = [normalize(dict(spec, seed=s, **({key: v} if v is not None else {}))) for v in values for s in seeds]

    split = load_cell_split(cfg, spec, a.preset)
    settings = stack_settings(spec)
    start = time.perf_counter()
    res = train(split, settings, [model_settings(m) for m in members], device=a.device, progress=False)
    seconds = time.perf_counter() - start
    family = get_family(settings.shape)
    comps = {k: v.cpu().numpy() for k, v in family.ipr_components(res.params, settings.ipr_mode).items()}
    first, _ = family.init(settings.shape, derive_seed(members[0]["seed"], "init"), settings.init_scale)
    init = family.ipr_components({k: v.unsqueeze(0) for k, v in first.items()}, settings.ipr_mode)
    bn = sorted(k for k in res.params if k.startswith("bn") and k.endswith("_weight"))
    gammas = [res.params[k].abs().cpu().numpy() for k in bn]
    s = summarize(res.curves, np.array([m["corruption"] for m in members]))

    shown = {k: v for k, v in spec.items() if k not in ("name", "log_every", "record_neuron_ipr")}
    print(f"{len(members)} models, {settings.steps} steps, {seconds:.0f} s; spec: {shown}")
    print("init median IPR (first model):", {k: round(float(v.median()), 4) for k, v in init.items()})
    rows = []
    for i, m in enumerate(members):
        row = {
            "seed": m["seed"],
            key: m[key],
            "phase": str(s["phase"][i]),
            "train_acc": float(s["train_acc"][i]),
            "test_acc": float(s["test_acc"][i]),
            "corrupted_acc": float(s["corrupted_acc"][i]) if "corrupted_acc" in s else None,
            "max_test_acc": float(s["max_test_acc"][i]),
            "median_ipr": {k: float(np.median(v[i])) for k, v in comps.items()},
        }
        if gammas:  # Fig 15: rho of output-column IPR with the last BatchNorm's |gamma|, input IPR with the first's
            row["rho_out"] = spearman(comps["ipr_out"][i], gammas[-1][i])
            row["rho_in"] = spearman(comps["ipr_in"][i], gammas[0][i])
        rows.append(row)
        med = " ".join(f"{k} {v:.4f}" for k, v in row["median_ipr"].items())
        varied = f"{key} {m[key]!s:<6} " if a.vary else ""
        corrupted = "" if row["corrupted_acc"] is None else f" corrupted {row['corrupted_acc']:.3f}"
        print(
            f"  {varied}seed {m['seed']:<3} {row['phase']:<17} "
            f"({row['train_acc']:.3f}, {row['test_acc']:.3f}){corrupted}; median {med}"
            + (f"; rho_out {row['rho_out']:.2f}, rho_in {row['rho_in']:.2f}" if gammas else "")
        )
    for v in values if a.vary else [None]:
        group = [r for r in rows if v is None or r[key] == v]
        for comp in comps:
            x = np.array([r["median_ipr"][comp] for r in group])
            sd = x.std(ddof=1) if len(x) > 1 else 0.0
            label = f"{key} {v}" if a.vary else "all models"
            print(f"{label}: median {comp} over {len(x)} seeds: mean {x.mean():.4f}, sd {sd:.4f}")
    write_json(Path(a.out), {"spec": shown, "seconds": seconds, "vary": key, "models": rows})
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
