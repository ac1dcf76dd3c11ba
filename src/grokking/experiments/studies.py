"""Run one study (config ``studies.<name>``, planned by :mod:`.studyplan`): one stacked training per point of
``across``, accuracies and phase read at each ``read_at`` step, the ``report`` measures taken on the final
weights; written atomically as ``results/<preset>/studies/<name>.json`` (the rows, the resolved plan and the
provenance) and ``<name>.csv`` (the rows).

Rows: one per model and read step, with the study's varying keys (its ``across`` and ``vary`` keys, ``seed``,
``step``), ``phase``, ``train_acc``, ``test_acc``, ``corrupted_acc``, ``max_test_acc`` (the maximum over the
logged points up to the step) and, on the rows of the last step, the measures of ``report``: the median of
each IPR component (``ipr_u``, ``ipr_embed``, ..., and ``init_ipr_*`` at init), ``rho_out`` and ``rho_in``,
``train_acc_dropout_on`` and ``test_acc_dropout_on``, ``required_<criterion>``.
"""

from __future__ import annotations

import csv
import io
import math
import platform
from dataclasses import replace

import numpy as np

from .. import numerics, phases, results
from ..layout import Layout
from ..stats import spearman
from .specs import ConfigError, model_settings, stack_settings
from .studyplan import plan_study
from .summary import summarize

READ = ("phase", "train_acc", "test_acc", "corrupted_acc", "max_test_acc")


def load_stack_split(config: dict, spec: dict):
    """The split a stack trains on, from the preset's dataset file (an error naming the command that builds it)."""
    path = Layout.of_results(f"{config['results_dir']}/{config['preset']}").dataset_of(spec)
    try:
        return results.read_result(path, "dataset", lambda p: results.load_split(p, spec))
    except FileNotFoundError:
        overlay = "" if config["preset"] == "paper" else f" --configfile config/{config['preset']}.yaml"
        raise ConfigError(f"{path} does not exist; build it first: snakemake {path} --cores 1{overlay}") from None


def _measures(plan, stack, split, settings, res, device) -> list[dict]:
    """The measures of the plan's ``report`` for every model of a stack, on its final weights."""
    import torch

    from ..engine.dropout import EvalDropout
    from ..engine.evaluate import metrics_row
    from ..engine.loop import StackData
    from ..models import get_family

    report, family = plan["report"], get_family(settings.shape)
    models = [model_settings(m["spec"]) for m in stack["members"]]
    out = [{} for _ in models]
    params = {k: v.to(device) for k, v in res.params.items()}
    buffers = {k: v.to(device) for k, v in res.buffers.items()}
    comps = {k: v.cpu().numpy() for k, v in family.ipr_components(res.params, settings.ipr_mode).items()}
    if "ipr" in report:
        init = family.ipr_components(res.init_params, settings.ipr_mode)
        for k, row in enumerate(out):
            row.update({c: float(np.median(v[k])) for c, v in comps.items()})  # ipr_u, ipr_embed, ...
            row.update({f"init_{c}": float(np.median(v[k].cpu().numpy())) for c, v in init.items()})
    if "bn_rho" in report:  # Fig 15: output-column IPR against the last BatchNorm's |gamma|, input IPR the first's
        bn = sorted(k for k in res.params if k.startswith("bn") and k.endswith("_weight"))
        gammas = [res.params[k].abs().cpu().numpy() for k in bn]
        for k, row in enumerate(out):
            row["rho_out"] = spearman(comps["ipr_out"][k], gammas[-1][k])
            row["rho_in"] = spearman(comps["ipr_in"][k], gammas[0][k])
    if "dropout_on" in report:  # the masks Fig 16b's eval_dropout draws at the last step
        data = StackData.build(split, models, device)
        masks = EvalDropout([m.dropout for m in models], [m.seed for m in models], settings.steps, device)
        m = metrics_row(family, settings, params, buffers, data, dropout=masks)
        for k, row in enumerate(out):
            row["train_acc_dropout_on"] = float(m["train_acc"][k])
            row["test_acc_dropout_on"] = float(m["test_acc"][k])
    if "pruning" in report:  # Fig 32: prune lowest-IPR first, the neurons each criterion requires
        from .pruning import prune_curves, pruning_order
        from .widths import retained_count

        order = pruning_order(family.neuron_ipr(res.params, settings.ipr_mode), lowest_first=True)
        labels, n_noise = zip(*(split.train_labels(m.corruption) for m in models), strict=True)
        with torch.no_grad():
            curves = prune_curves(
                settings.shape, params, buffers, order, split, np.stack(labels), list(n_noise), settings.loss
            )
        width = settings.shape.width
        for label, criterion in plan["retention"].items():
            for k, row in enumerate(out):
                n = retained_count(curves[criterion["metric"]][k], criterion)
                row[f"required_{label}"] = float(width - n) if n >= 0 else math.nan
    return out


def run_study(config: dict, name: str, *, device="auto", progress=False) -> dict:
    """Train and measure study ``name`` of ``config``; the result document (see the module docstring)."""
    from ..engine import resolve_device, train

    plan = plan_study(config, name)
    rules = phases.rules(config.get("phases"))
    dev = resolve_device(device)
    rows, trainings = [], []
    for i, stack in enumerate(plan["stacks"]):
        split = load_stack_split(config, stack["spec"])
        settings = stack_settings(stack["spec"])
        settings = replace(settings, log_steps=tuple(sorted(set(settings.log_steps) | set(stack["read_at"]))))
        models = [model_settings(m["spec"]) for m in stack["members"]]
        res = train(split, settings, models, device=dev, progress=progress, desc=f"{name}[{i}]")
        trainings.append({"point": stack["point"], "models": len(models), "seconds": res.seconds})
        measured = _measures(plan, stack, split, settings, res, dev)
        xi = np.asarray([m.corruption for m in models])
        at = {}
        for step in stack["read_at"]:
            t = int(np.flatnonzero(np.asarray(res.steps) == step)[0])
            at[step] = summarize({k: np.asarray(v)[: t + 1] for k, v in res.curves.items()}, xi, rules)
        for k, member in enumerate(stack["members"]):
            for step, s in at.items():
                row = {**stack["point"], **member["point"], "seed": member["seed"], "step": int(step)}
                row.update({key: _plain(s[key][k]) for key in READ})
                if step == settings.steps:
                    row.update(measured[k])
                rows.append(row)
    return {
        "study": name,
        "preset": config["preset"],
        "question": plan["question"],
        "config": config["studies"][name],
        "plan": {k: v for k, v in plan.items() if k != "stacks"},
        "stacks": [{"point": s["point"], "spec": s["spec"], "read_at": s["read_at"]} for s in plan["stacks"]],
        "columns": _columns(rows),
        "rows": rows,
        "trainings": trainings,
        "seconds": float(sum(t["seconds"] for t in trainings)),
        "provenance": {
            "code_version": results.code_version(),
            "numerics": numerics.describe(dev.type),
            "python": platform.python_version(),
            "device": str(dev),
        },
    }


def _plain(v):
    v = v.item() if hasattr(v, "item") else v
    return str(v) if isinstance(v, str) else float(v)


def _columns(rows: list[dict]) -> list[str]:
    return list(dict.fromkeys(k for row in rows for k in row))


def to_csv(doc: dict) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(doc["columns"])
    for row in doc["rows"]:
        w.writerow(["" if row.get(c) is None else _cell(row[c]) for c in doc["columns"]])
    return buf.getvalue()


def _cell(v):
    if isinstance(v, float):
        return "" if math.isnan(v) else repr(v)
    return v


def write_study(doc: dict, out_json, out_csv) -> None:
    """The CSV first, the JSON last: the JSON's presence marks a finished study."""
    results.write_bytes(out_csv, to_csv(doc).encode())
    results.write_json(out_json, _finite(doc))


def _finite(x):
    """NaN as null: the result is plain JSON."""
    if isinstance(x, float) and math.isnan(x):
        return None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_finite(v) for v in x]
    return x
