"""Studies planned from the config alone (no torch: the DAG stays fast).

A study (config ``studies.<name>``) is a pilot as a DAG target: it starts from a named run, a grid cell or a
width of the Fig 32 sweep, lays ``set`` and ``steps`` over it, and trains one stack per point of ``across``
(settings the models of a stack cannot differ in: norm, heads, width, ...); each stack holds one model per
point of ``vary`` (per-model settings: corruption, weight decay, dropout, lr) and seed. :func:`plan_study`
resolves it into those stacks; :func:`study_errors` says which keys of a study are wrong, by name.
"""

from __future__ import annotations

import itertools

from ..runspec import (
    PER_MODEL_KEYS,
    ConfigError,
    cell_spec,
    normalize,
    resolve_run,
    run_keys,
    width_spec,
)

VARIED = tuple(k for k in PER_MODEL_KEYS if k != "seed")  # what `vary` may set; seeds have their own key
DEFAULT_CURVE_POINTS = 20
REPORTS = ("ipr", "bn_rho", "dropout_on", "pruning")


def study_names(config: dict, *, gpu: bool | None = None) -> list[str]:
    """The preset's studies, sorted; ``gpu=False`` only those a CPU can build, ``True`` only the others."""
    studies = config.get("studies") or {}
    return sorted(n for n, s in studies.items() if gpu is None or bool(s.get("needs_gpu", False)) == gpu)


def points(spec) -> list[dict]:
    """The points of an ``across`` or ``vary`` entry: a mapping gives every combination of its values, a list
    of mappings the union of theirs, in order; a single value stands for a list of one."""
    if not spec:
        return [{}]
    out = []
    for product in spec if isinstance(spec, list) else [spec]:
        keys = list(product)
        values = [v if isinstance(v, list) else [v] for v in product.values()]
        out += [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*values)]
    return out


def _keys(spec) -> list[str]:
    return list(dict.fromkeys(k for product in (spec if isinstance(spec, list) else [spec or {}]) for k in product))


def base_spec(config: dict, name: str) -> dict:
    """The resolved spec a study starts from (``from``), before its own settings."""
    start = config["studies"][name]["from"]
    if "run" in start:
        return resolve_run(config, start["run"])
    if "grid" in start:
        if start["grid"] not in config.get("grids", {}):
            grids = sorted(config.get("grids", {}))
            raise ConfigError(f"grid {start['grid']!r} is not defined; defined grids: {grids}")
        return cell_spec(config, start["grid"], start["panel"], start["alpha"], start["xi"])
    if not config.get("width_sweep"):
        raise ConfigError("from.width_sweep needs the top-level 'width_sweep' settings, which are missing")
    return width_spec(config, start["width_sweep"])


def _finish(spec: dict, curve_points: int) -> dict:
    spec = normalize(dict(spec, record_neuron_ipr=False))
    spec["log_every"] = max(1, spec["steps"] // curve_points)
    return spec


def plan_study(config: dict, name: str) -> dict:
    """The study resolved into its trainings: ``stacks`` of {``point`` (the ``across`` point), ``spec`` (the
    shared settings), ``members`` ([{``point`` (the ``vary`` point), ``seed``, ``spec``}]) and ``read_at``}."""
    study = config["studies"][name]
    curve_points = int(study.get("curve_points", DEFAULT_CURVE_POINTS))
    start = dict(base_spec(config, name), **(study.get("set") or {}))
    if "steps" in study:
        start["steps"] = study["steps"]
    stacks = []
    for across in points(study.get("across")):
        spec = _finish(dict(start, **across), curve_points)
        read_at = sorted(int(s) for s in study.get("read_at") or [spec["steps"]])
        members = [
            {"point": vary, "seed": int(seed), "spec": normalize(dict(spec, **vary, seed=int(seed)))}
            for vary in points(study.get("vary"))
            for seed in study.get("seeds") or [spec["seed"]]
        ]
        stacks.append({"point": across, "spec": spec, "members": members, "read_at": read_at})
    return {
        "name": name,
        "question": study["question"],
        "from": dict(study["from"]),
        "across": _keys(study.get("across")),
        "vary": _keys(study.get("vary")),
        "seeds": sorted({m["seed"] for s in stacks for m in s["members"]}),
        "report": list(study.get("report") or []),
        "retention": study.get("retention") or {"sweep": (config.get("width_sweep") or {}).get("retention")},
        "table": dict(study.get("table") or {}),
        "needs_gpu": bool(study.get("needs_gpu", False)),
        "stacks": stacks,
    }


def study_config(config: dict, name: str) -> dict:
    """The part of the config that a study reads (so that unrelated edits do not rerun it)."""
    keys = ("preset", "results_dir", "run_defaults", "model_defaults", "data", "ipr", "phases", "grid_defaults")
    sub = {k: config.get(k) for k in keys}
    study = config["studies"][name]
    start = study["from"]
    sub["runs"] = {start["run"]: config["runs"][start["run"]]} if "run" in start else {}
    sub["grids"] = {start["grid"]: config["grids"][start["grid"]]} if "grid" in start else {}
    if "width_sweep" in start or "pruning" in (study.get("report") or []):
        sub["width_sweep"] = config.get("width_sweep")
    sub["studies"] = {name: study}
    return sub


def study_datasets(config: dict, name: str, layout) -> list[str]:
    """The dataset files of a study's trainings (one per task or image set), by ``layout``."""
    return sorted({layout.dataset_of(s["spec"]) for s in plan_study(config, name)["stacks"]})


def model_count(config: dict, name: str) -> int:
    return sum(len(s["members"]) for s in plan_study(config, name)["stacks"])


def describe_plan(config: dict, name: str) -> str:
    """What ``grokking study NAME --plan`` prints: the study's trainings, their models and steps, and their
    floating-point work (``gridplan.multiply_adds`` x 2), the sum of which says whether it fits a CPU."""
    from .gridplan import multiply_adds

    plan = plan_study(config, name)
    lines, total = [], 0.0
    for stack in plan["stacks"]:
        flop = 2 * multiply_adds(stack["spec"], len(stack["members"]))
        total += flop
        point = ", ".join(f"{k} {v}" for k, v in stack["point"].items()) or "(one training)"
        lines.append(f"  {point}: {len(stack['members'])} models x {stack['spec']['steps']} steps, {flop:.3g} FLOP")
    where = "needs a GPU (left out of `snakemake studies`)" if plan["needs_gpu"] else "a CPU study"
    head = (
        f"study {name}: {where}; {len(plan['stacks'])} trainings, {model_count(config, name)} models, {total:.3g} FLOP"
    )
    return "\n".join([head, *lines])


def study_errors(config: dict) -> list[str]:
    """What is wrong with the config's studies beyond the schema, each message naming its key."""
    errs = []
    settings = set(run_keys())
    for name, study in (config.get("studies") or {}).items():
        where = f"config key 'studies.{name}"
        start = study["from"]
        kinds = [k for k in ("run", "grid", "width_sweep") if k in start]
        if len(kinds) != 1:
            errs.append(f"{where}.from': give exactly one of run, grid (with panel, alpha, xi) or width_sweep")
            continue
        missing = [k for k in ("panel", "alpha", "xi") if k not in start]
        if kinds == ["grid"] and missing:
            errs.append(f"{where}.from': a grid cell needs panel, alpha and xi; missing {missing}")
            continue
        extra = sorted(set(start) - {"grid", "panel", "alpha", "xi"} - set(kinds))
        if extra:
            errs.append(f"{where}.from': {extra} only go with grid")
            continue
        if kinds == ["run"] and start["run"] not in config.get("runs", {}):
            runs = sorted(config.get("runs", {}))
            errs.append(f"{where}.from.run': run {start['run']!r} is not defined; defined runs: {runs}")
            continue
        bad = [
            f"{where}.across.{key}': not a run setting (seeds: `seeds`); accepted: {sorted(settings - {'seed'})}"
            for key in _keys(study.get("across"))
            if key not in settings or key == "seed"
        ]
        bad += [
            f"{where}.vary.{key}': not a per-model setting; accepted: {list(VARIED)} (seeds: `seeds`; settings "
            "the models of one stack share go in `across`)"
            for key in _keys(study.get("vary"))
            if key not in VARIED
        ]
        if bad:
            errs += bad
            continue
        try:
            plan = plan_study(config, name)
        except (ConfigError, KeyError, TypeError, ValueError) as err:
            errs.append(f"{where}.from': {err}")
            continue
        errs += _plan_errors(plan, where)
    return errs


def _plan_errors(plan: dict, where: str) -> list[str]:
    errs = {}  # one message per problem, naming the first point it concerns
    table = plan["table"].get("columns")
    if table and table not in plan["across"] + plan["vary"] + ["seed", "step"]:
        varied = plan["across"] + plan["vary"]
        errs["table"] = f"{where}.table.columns': {table!r} is not a key the study varies: {varied}"
    if "pruning" in plan["report"] and not all(plan["retention"].values()):
        errs["retention"] = f"{where}.retention': report pruning needs criteria here or in width_sweep.retention"
    for stack in plan["stacks"]:
        spec, point = stack["spec"], stack["point"]
        late = [s for s in stack["read_at"] if s > spec["steps"]]
        if late:
            errs.setdefault("read_at", f"{where}.read_at': {late} after the last step {spec['steps']} of point {point}")
        if "pruning" in plan["report"] and (spec["model"] != "mlp2" or spec["norm"] == "layernorm"):
            errs.setdefault("pruning", f"{where}.report': pruning needs the 2-layer MLP without LayerNorm ({point})")
        if "bn_rho" in plan["report"] and (spec["model"] != "deep_mlp" or spec["norm"] != "batchnorm"):
            errs.setdefault("bn_rho", f"{where}.report': bn_rho needs model deep_mlp with norm batchnorm ({point})")
    return list(errs.values())


def check(config: dict) -> None:
    """Raise :class:`ConfigError` listing every study error (no-op when there is none)."""
    errs = study_errors(config)
    if errs:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(errs))
