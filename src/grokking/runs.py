"""Named single runs: a resolved spec (see :func:`grokking.config.resolve_run`) trained as K = 1."""

from __future__ import annotations

import platform
from pathlib import Path

import numpy as np

from . import metrics, phases, results
from .config import RUN_KEYS, spec_hash
from .models import MLPShape
from .tasks import Universe
from .train import ModelSettings, StackSettings, log_schedule, train

FINAL_KEYS = ("train_acc", "test_acc", "corrupted_acc", "uncorrupted_acc", "full_acc", "train_loss",
              "test_loss", "norm_u", "norm_v", "norm_w", "ipr_mean")


def settings_from_spec(spec: dict) -> tuple[StackSettings, ModelSettings]:
    shape = MLPShape(spec["p"], spec["width"], spec["activation"], spec["norm"])
    bs = None if spec["batch_size"] == "full" else int(spec["batch_size"])
    stack = StackSettings(shape=shape, loss=spec["loss"], batch_size=bs, steps=int(spec["steps"]),
                          betas=tuple(spec["betas"]), eps=float(spec["eps"]), init_scale=spec["init_scale"],
                          log_steps=tuple(log_schedule(int(spec["steps"]), spec["log_every"])),
                          ipr_mode=spec.get("ipr_mode", "rfft"),
                          record_neuron_ipr=bool(spec.get("record_neuron_ipr", True)))
    model = ModelSettings(corruption=float(spec["corruption"]), weight_decay=float(spec["weight_decay"]),
                          dropout=float(spec["dropout"]), lr=float(spec["lr"]), seed=int(spec["seed"]))
    return stack, model


def load_universe(path) -> Universe:
    with np.load(path) as z:
        return Universe.from_arrays(z)


def check_universe(universe: Universe, spec: dict, path) -> None:
    want = (spec["operation"], spec["p"], spec["pair_seed"], spec["label_seed"])
    have = (universe.operation, universe.p, universe.pair_seed, universe.label_seed)
    if want != have:
        raise ValueError(f"dataset {path} holds (operation, p, pair_seed, label_seed)={have}, the run needs {want}")


def run_and_save(spec: dict, data_path, out_dir, *, device="auto", phase_rules=None, progress=True):
    """Train one run and write spec.json, curves.npz, model.pt and summary.json into ``out_dir``."""
    import torch

    universe = load_universe(data_path)
    check_universe(universe, spec, data_path)
    split = universe.split(spec["train_fraction"])
    stack_settings, model_settings = settings_from_spec(spec)
    res = train(split, stack_settings, [model_settings], device=device, progress=progress,
                desc=spec.get("name", "run"))
    out = Path(out_dir)
    curves = {k: v[:, 0] for k, v in res.curves.items()}
    curves["step"] = res.steps
    if res.neuron_ipr is not None:
        curves["neuron_ipr"] = res.neuron_ipr[:, 0]
    params = {k: v[0] for k, v in res.params.items()}
    init_params = {k: v[0] for k, v in res.init_params.items()}
    buffers = {k: v[0] for k, v in res.buffers.items()}
    comps = metrics.neuron_ipr_components({k: params[k].unsqueeze(0) for k in "UVW"}, stack_settings.ipr_mode)
    neuron = metrics.neuron_ipr({k: params[k].unsqueeze(0) for k in "UVW"}, stack_settings.ipr_mode)[0]

    rules = dict(phases.DEFAULTS, **(phase_rules or {}))
    final = {k: float(curves[k][-1]) for k in FINAL_KEYS}
    max_test = float(np.nanmax(curves["test_acc"]))
    max_train = float(np.nanmax(curves["train_acc"]))
    phase = phases.classify(final["train_acc"], final["test_acc"], spec["corruption"], max_test, **rules)
    n_noise = int(res.n_noise[0])
    provenance = {"code_version": results.code_version(), "spec_hash": spec_hash(spec),
                  "torch": torch.__version__, "python": platform.python_version(), "device": res.device}
    summary = dict(final, max_test_acc=max_test, max_train_acc=max_train, phase=phase,
                   n_train=split.n_train, n_test=split.p ** 2 - split.n_train, n_noise=n_noise,
                   full_table_plateau=1 - spec["corruption"] + spec["corruption"] / spec["p"],
                   ipr_quantiles={q: float(np.quantile(neuron.numpy(), q)) for q in (0.1, 0.25, 0.5, 0.75, 0.9)},
                   train_seconds=res.seconds, seconds_per_step=res.seconds / stack_settings.steps,
                   settings={k: spec[k] for k in RUN_KEYS}, phase_rules=rules, **provenance)
    results.write_json(out / "spec.json", dict(spec, **provenance))
    results.write_npz(out / "curves.npz", **curves)
    results.write_torch(out / "model.pt", {
        "shape": stack_settings.shape.to_dict(), "params": params, "init_params": init_params,
        "buffers": buffers, "neuron_ipr": neuron, **{k: v[0] for k, v in comps.items()}})
    results.write_json(out / "summary.json", summary)  # last: its presence marks a finished run
    return summary
