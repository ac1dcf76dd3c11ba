"""Named single runs: a resolved spec (:func:`grokking.experiments.specs.resolve_run`) trained as K = 1."""

from __future__ import annotations

import platform
from pathlib import Path

import numpy as np

from .. import numerics, phases, results
from ..engine import train
from ..models import get_family
from .specs import model_settings, run_keys, spec_hash, stack_settings
from .summary import summarize


def run_and_save(spec: dict, data_path, out_dir, *, device="auto", phase_rules=None, progress=True, checkpoint=None):
    """Train one run and write spec.json, curves.npz, model.pt and summary.json into ``out_dir`` (with a
    ``checkpoint``, :class:`grokking.engine.Checkpoint`, resuming from it)."""
    import torch

    split = results.load_split(data_path, spec)
    settings = stack_settings(spec)
    res = train(
        split,
        settings,
        [model_settings(spec)],
        device=device,
        progress=progress,
        desc=spec.get("name", "run"),
        checkpoint=checkpoint,
    )
    family = get_family(settings.shape)
    curves = {k: v[:, 0] for k, v in res.curves.items()}
    comps = family.ipr_components(res.params, settings.ipr_mode)
    neuron = family.neuron_ipr(res.params, settings.ipr_mode)[0]
    s = summarize(curves, spec["corruption"], phase_rules)
    curves["step"] = res.steps
    if res.neuron_ipr is not None:
        curves["neuron_ipr"] = res.neuron_ipr[:, 0]

    rules = phases.rules(phase_rules)
    provenance = {
        "code_version": results.code_version(),
        "spec_hash": spec_hash(spec),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": res.device,
        "numerics": numerics.describe(res.device),
    }
    summary = dict(
        {k: (v if k == "phase" else float(v)) for k, v in s.items()},
        n_train=split.n_train,
        n_test=split.p**2 - split.n_train,
        n_noise=int(res.n_noise[0]),
        diverged_at=int(res.diverged_at[0]) if res.diverged_at[0] >= 0 else None,
        full_table_plateau=1 - spec["corruption"] + spec["corruption"] / spec["p"],
        ipr_quantiles={q: float(np.quantile(neuron.numpy(), q)) for q in (0.1, 0.25, 0.5, 0.75, 0.9)},
        train_seconds=res.seconds,
        seconds_per_step=res.seconds / settings.steps,
        log_seconds=res.log_seconds,
        settings={k: spec[k] for k in run_keys()},
        phase_rules=rules,
        **provenance,
    )
    out = Path(out_dir)
    results.write_json(out / "spec.json", dict(spec, **provenance))
    results.write_npz(out / "curves.npz", **curves)
    results.write_torch(
        out / "model.pt",
        {
            "shape": settings.shape.to_dict(),
            "params": {k: v[0] for k, v in res.params.items()},
            "init_params": {k: v[0] for k, v in res.init_params.items()},
            "buffers": {k: v[0] for k, v in res.buffers.items()},
            "neuron_ipr": neuron,
            **{k: v[0] for k, v in comps.items()},
        },
    )
    results.write_json(out / "summary.json", summary)  # last: its presence marks a finished run
    return summary
