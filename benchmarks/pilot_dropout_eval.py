"""Accuracy of dropout nets measured two ways: in eval mode (dropout off, docs/paper.md §A7, what every
figure but Fig 16b shows) and with dropout still on (train-mode masks, the mean over ``--draws`` draws).

Trains one image-grid cell at several dropout values and seeds, like ``pilot_cells.py``, and prints
both accuracies per model; the check behind measuring Fig 16b with dropout on (``eval_dropout``): the
paper's "dropout hurts train and test" reads that way. Example (config/README.md, Fig 16):

    .venv/bin/python benchmarks/pilot_dropout_eval.py --preset quick --grid images_dropout --panel 0 \\
        --alpha 0.8 --xi 0.2 --dropouts 0,0.3,0.6 --seeds 1-3
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from pilot_cells import REPO, base_spec, load_cell_split, preset_config, seed_list

from grokking.engine import train
from grokking.engine.dropout import StackDropout
from grokking.experiments.specs import ConfigError, model_settings, normalize, stack_settings
from grokking.models import get_family
from grokking.results import write_json

MASK_SEED_OFFSET = 1000  # the evaluation masks come from other generators than the training masks


@torch.no_grad()
def accuracies(family, shape, params, buffers, x, y, dropout=None, draws=1) -> np.ndarray:
    """Per-model accuracy (K,): eval mode without ``dropout``, else the mean over ``draws`` masked passes."""
    if dropout is None:
        return (family.forward(shape, params, buffers, x, train=False).argmax(-1) == y).double().mean(1).numpy()
    runs = [
        (family.forward(shape, params, buffers, x, train=True, dropout=dropout).argmax(-1) == y).double().mean(1)
        for _ in range(draws)
    ]
    return torch.stack(runs).mean(0).numpy()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="paper")
    ap.add_argument("--grid", required=True, help="an image grid of the preset")
    ap.add_argument("--panel", type=float, required=True)
    ap.add_argument("--alpha", type=float, required=True)
    ap.add_argument("--xi", type=float, required=True)
    ap.add_argument("--dropouts", default="0,0.3,0.6")
    ap.add_argument("--seeds", type=seed_list, default=[1])
    ap.add_argument("--draws", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "out" / "pilot_dropout_eval.json"))
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)

    cfg = preset_config(a.preset)
    spec = base_spec(cfg, argparse.Namespace(run=None, grid=a.grid, panel=a.panel, alpha=a.alpha, xi=a.xi))
    if spec["dataset"] == "modular":
        raise ConfigError(f"--grid {a.grid}: trains on the modular task; this pilot takes image grids only")
    dropouts = [float(v) for v in a.dropouts.split(",")]
    members = [normalize(dict(spec, dropout=d, seed=s)) for d in dropouts for s in a.seeds]
    split = load_cell_split(cfg, spec, a.preset)
    settings = stack_settings(spec)
    res = train(split, settings, [model_settings(m) for m in members], device="cpu", progress=False)

    family, shape = get_family(settings.shape), settings.shape
    labels, _ = split.train_labels(spec["corruption"])
    sets = {
        "train": (torch.as_tensor(split.train_inputs, dtype=torch.float32), torch.as_tensor(labels)),
        "test": (torch.as_tensor(split.test_inputs, dtype=torch.float32), torch.as_tensor(split.test_labels)),
    }
    probs, seeds = [m["dropout"] for m in members], [m["seed"] + MASK_SEED_OFFSET for m in members]
    dropout = StackDropout(probs, seeds, "cpu")
    acc = {}
    for name, (x, y) in sets.items():
        acc[f"{name}_eval"] = accuracies(family, shape, res.params, res.buffers, x, y)
        acc[f"{name}_dropout_on"] = accuracies(family, shape, res.params, res.buffers, x, y, dropout, a.draws)
    rows = []
    for i, m in enumerate(members):
        row = {"dropout": m["dropout"], "seed": m["seed"], **{k: float(v[i]) for k, v in acc.items()}}
        rows.append(row)
        print(
            f"dropout {m['dropout']:<4} seed {m['seed']}: eval mode (train {row['train_eval']:.3f}, test "
            f"{row['test_eval']:.3f}); dropout on (train {row['train_dropout_on']:.3f}, test "
            f"{row['test_dropout_on']:.3f})"
        )
    write_json(a.out, {"spec": spec, "draws": a.draws, "rows": rows})
    print("wrote", a.out)


if __name__ == "__main__":
    main()
