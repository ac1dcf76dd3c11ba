"""Config validation and run resolution for the workflow. Imports no torch: the DAG stays fast.

A config error names the key path, the bad value and what would be accepted, and is raised while
Snakemake parses the workflow, i.e. before any job runs.
"""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

from .runspec import SCHEMA_PATH, ConfigError, cell_spec, grid_settings, resolve_run, training_examples

# Package data: the claims' declarations (``claims:``, a list of mappings with an ``id``); validation reads
# their ids from the file, without importing the report that evaluates them.
CLAIMS_PATH = Path(__file__).resolve().parent / "claims.yaml"

__all__ = [
    "ConfigError",
    "claim_ids",
    "deep_merge",
    "load_preset",
    "validate",
    "enabled_figures",
    "figure_runs",
    "figure_grids",
    "replicate_config",
    "replicate_suffix",
    "split_replicate",
]

REPLICATE_MARK = "~rep"


def replicate_suffix(k: int) -> str:
    """The name suffix of the robustness study's replicate ``k`` (runs, grids, the width sweep); '' for
    the build itself (k = 0)."""
    return f"{REPLICATE_MARK}{k}" if k else ""


def split_replicate(name: str) -> tuple[str, int]:
    """``r1_wd0~rep2`` -> (``r1_wd0``, 2); a name without the suffix is replicate 0."""
    base, mark, k = name.partition(REPLICATE_MARK)
    return (base, int(k)) if mark else (name, 0)


def replicate_config(config: dict, k: int) -> dict:
    """The config of the robustness study's replicate ``k``: every model seed (runs, grid cells, grid
    seed lists and seed panels, the width sweep) plus ``k * robustness.seed_stride``; the datasets, their
    corruption and every other setting unchanged. Replicate 0 is the config itself."""
    if not k:
        return config
    shift = int(k) * int(config["robustness"]["seed_stride"])
    out = copy.deepcopy(config)
    seen = set()  # YAML aliases (`*mlp3`) make several keys share one dict: shift each dict once

    def once(d: dict | None) -> bool:
        if not d or id(d) in seen:
            return False
        seen.add(id(d))
        return True

    settings = [out["run_defaults"], *(out.get("model_defaults") or {}).values(), *out.get("runs", {}).values()]
    grids = [out["grid_defaults"], *out.get("grids", {}).values()]
    settings += [g.get("settings") for g in grids]
    for d in settings:
        if once(d) and "seed" in d:
            d["seed"] = int(d["seed"]) + shift
    for g in grids:
        if not once(g):
            continue
        if g.get("seeds"):
            g["seeds"] = [int(s) + shift for s in g["seeds"]]
        if g.get("panel_key") == "seed" and g.get("panels"):
            g["panels"] = [int(s) + shift for s in g["panels"]]
    if out.get("width_sweep"):
        out["width_sweep"]["first_seed"] = int(out["width_sweep"].get("first_seed", 1)) + shift
    return out


def deep_merge(base: dict, over: dict) -> dict:
    """``over`` laid over ``base`` key by key, as Snakemake merges a --configfile into the config."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def load_preset(config_dir: Path | str, preset: str = "paper") -> dict:
    """``config.yaml`` of ``config_dir`` with the overlay ``<preset>.yaml`` laid over it, as
    ``snakemake --configfile config/<preset>.yaml`` merges them; ``paper`` is ``config.yaml`` alone."""
    config_dir = Path(config_dir)
    config = yaml.safe_load((config_dir / "config.yaml").read_text())
    if preset == "paper":
        return config
    overlay = config_dir / f"{preset}.yaml"
    if not overlay.is_file():
        known = sorted(f.stem for f in config_dir.glob("*.yaml") if f.name != "config.yaml")
        raise ConfigError(f"preset: no {overlay}; accepted: paper, {', '.join(known)}")
    return deep_merge(config, yaml.safe_load(overlay.read_text()) or {})


def _path(error) -> str:
    parts = [str(x) for x in error.absolute_path]
    return ".".join(parts) if parts else "<top level>"


def _describe(error) -> str:
    v = error.validator
    if v == "enum":
        return f"{error.instance!r} is not one of {error.validator_value}"
    if v == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed)) if isinstance(error.instance, dict) else []
        pattern = error.schema.get("patternProperties")
        if pattern:
            return f"unknown key(s) {extra}; names must match {list(pattern)}"
        return f"unknown key(s) {extra}; accepted keys: {allowed}"
    if v in ("oneOf", "anyOf"):
        options = " or ".join(_schema_words(s) for s in error.validator_value)
        return f"{error.instance!r} is not accepted; expected {options}"
    return error.message


def _schema_words(s: dict) -> str:
    if "const" in s:
        return repr(s["const"])
    if "enum" in s:
        return f"one of {s['enum']}"
    words = {"null": "null", "integer": "an integer", "number": "a number"}.get(s.get("type"), str(s.get("type")))
    for key, op in (("minimum", ">="), ("exclusiveMinimum", ">"), ("maximum", "<="), ("exclusiveMaximum", "<")):
        if key in s:
            words += f" {op} {s[key]}"
    return words


def claim_ids(path: Path | str = CLAIMS_PATH) -> list[str]:
    """The ids of the claims declared in ``path`` (package data ``claims.yaml``), sorted."""
    with open(path) as fh:
        return sorted(str(c["id"]) for c in yaml.safe_load(fh)["claims"])


def validate(config: dict, schema_path: Path | str = SCHEMA_PATH) -> dict:
    """Validate ``config`` against the JSON schema and the cross-references the schema cannot see."""
    import jsonschema

    with open(schema_path) as fh:
        schema = yaml.safe_load(fh)
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    messages = [f"config key '{_path(e)}': {_describe(e)}" for e in errors]
    if not messages:
        messages = _semantic_errors(config)
    if messages:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(messages))
    return config


def _semantic_errors(config: dict) -> list[str]:
    from .data.modular import noise_count  # numpy only

    errs = []
    named = {f"claims.{key}": (config.get("claims") or {}).get(key) or {} for key in ("thresholds", "known_failures")}
    named["robustness.claims"] = (config.get("robustness") or {}).get("claims") or []
    known = claim_ids() if any(named.values()) else []
    for key, ids in named.items():
        for cid in ids:
            if cid not in known:  # a mapping's key is the claim's id; a list names the claim as a value
                where = f"'{key}.{cid}'" if isinstance(ids, dict) else f"'{key}' ({cid!r})"
                errs.append(f"config key {where}: unknown claim; accepted ids: {known}")
    runs = config.get("runs", {})
    for name in runs:
        spec = resolve_run(config, name)
        where = f"config key 'runs.{name}"
        errs += _dataset_errors(spec, where)
        n_train = training_examples(spec)
        if spec["dataset"] == "modular" and not 0 < n_train < spec["p"] ** 2:
            errs.append(
                f"{where}.train_fraction': {spec['train_fraction']} leaves no training or no test "
                f"pairs at p={spec['p']}"
            )
            continue
        if n_train < 1:
            errs.append(f"{where}.train_fraction': {spec['train_fraction']} leaves no training images")
            continue
        bs = spec["batch_size"]
        if bs != "full" and bs > n_train:
            errs.append(
                f"{where}.batch_size': {bs} exceeds the {n_train} training examples; use 'full' or <= {n_train}"
            )
        if spec["log_every"] is not None and spec["log_every"] > spec["steps"]:
            errs.append(f"{where}.log_every': {spec['log_every']} exceeds steps={spec['steps']}")
        if spec["corruption"] > 0 and noise_count(n_train, spec["corruption"]) == 0:
            errs.append(f"{where}.corruption': {spec['corruption']} corrupts no example of {n_train}")
    grids = config.get("grids", {})
    for fig, entry in config.get("figures", {}).items():
        for panel, run in entry.get("runs", {}).items():
            if run not in runs:
                errs.append(
                    f"config key 'figures.{fig}.runs.{panel}': run {run!r} is not defined; defined runs: {sorted(runs)}"
                )
        if entry.get("width_sweep") and not config.get("width_sweep"):
            errs.append(
                f"config key 'figures.{fig}.width_sweep': the figure needs the top-level "
                f"'width_sweep' settings, which are missing"
            )
        for panel, grid in entry.get("grids", {}).items():
            if grid not in grids:
                errs.append(
                    f"config key 'figures.{fig}.grids.{panel}': grid {grid!r} is not defined; "
                    f"defined grids: {sorted(grids)}"
                )
    errs += _grid_errors(config) + _figure_cell_errors(config) + _results_bundle_errors(config)
    return errs


def _results_bundle_errors(config: dict) -> list[str]:
    """A bundle's source is a file path, an http(s):// or file:// URL, or doi:DOI/FILE (pooch's form)."""
    bundle, key = config.get("results_bundle"), "results_bundle"
    source = bundle["source"] if isinstance(bundle, dict) else bundle
    key += ".source" if isinstance(bundle, dict) else ""
    if not isinstance(source, str):
        return []
    scheme = source.split("://")[0] if "://" in source else None
    doi_file = source.startswith("doi:") and len(source[4:].split("/")) >= 3  # prefix/suffix/file
    if (scheme and scheme not in ("http", "https", "file")) or (source.startswith("doi:") and not doi_file):
        return [
            f"config key '{key}': {source!r} is not accepted; expected a file path, an http(s):// or file:// URL, "
            "or doi:DOI/FILE (e.g. doi:10.5281/zenodo.123/grok-or-not-paper.tar.gz)"
        ]
    return []


def _dataset_errors(spec: dict, where: str) -> list[str]:
    """Image datasets are read by the deep MLP only (dense inputs); dropout on the inputs needs dense inputs."""
    if spec["dataset"] != "modular" and spec["model"] != "deep_mlp":
        return [f"{where}.dataset': {spec['dataset']} needs model: deep_mlp (dense inputs), not {spec['model']!r}"]
    if spec["model"] == "deep_mlp" and spec["dropout_layers"] == "inputs" and spec["dataset"] == "modular":
        return [
            f"{where}.dropout_layers': 'inputs' needs an image dataset (dense inputs); accepted here: hidden, first"
        ]
    return []


def _grid_errors(config: dict) -> list[str]:
    errs = []
    for grid in config.get("grids", {}):
        g = grid_settings(config, grid)
        where = f"config key 'grids.{grid}"
        errs += _dataset_errors(
            cell_spec(config, grid, g["panels"][0], g["train_fractions"][0], 0.0), f"{where}.settings"
        )
        if g["panel_key"] == "batch_size" and g.get("settings", {}).get("batch_size") is not None:
            errs.append(f"{where}.settings.batch_size': the panels already set batch_size")
        for pv in g["panels"]:
            spec = cell_spec(config, grid, pv, min(g["train_fractions"]), 0.0)
            n_train = training_examples(spec)
            bs = spec["batch_size"]
            if bs != "full" and bs > n_train:
                errs.append(
                    f"{where}.panels': batch_size {bs} exceeds the {n_train} training examples at "
                    f"train_fraction {spec['train_fraction']}"
                )
            if g["panel_key"] == "dropout" and not 0 <= pv < 1:
                errs.append(f"{where}.panels': dropout {pv} must be in [0, 1)")
    return errs


def _stored_cells(g: dict) -> list:
    """The keep_weights cells of a grid's settings that lie on its alpha x xi grid."""
    return [
        (a, x)
        for a, x in g["keep_weights"]
        if any(abs(t - a) < 1e-9 for t in g["train_fractions"]) and any(abs(c - x) < 1e-9 for c in g["corruptions"])
    ]


def _figure_cell_errors(config: dict) -> list[str]:
    """A figure that histograms a grid's stored cell needs that grid to store one (keep_weights)."""
    errs = []
    for fig, f in config.get("figures", {}).items():
        for row in (f.get("params") or {}).get("rows", []):
            for h in row.get("hists", []):
                if "grid" not in h:
                    continue
                grid = f.get("grids", {}).get(h["grid"])
                if grid is None:
                    errs.append(
                        f"config key 'figures.{fig}.params.rows': histogram grid {h['grid']!r} is not in 'grids'"
                    )
                elif grid in config.get("grids", {}) and not _stored_cells(grid_settings(config, grid)):
                    g = grid_settings(config, grid)
                    errs.append(
                        f"config key 'grids.{grid}.keep_weights': figure {fig} histograms a stored cell of the grid, "
                        f"but none of {g['keep_weights']} is on it (train_fractions {g['train_fractions']}, "
                        f"corruptions {g['corruptions']})"
                    )
    return errs


def figure_runs(config: dict, fig: str) -> dict:
    return dict(config["figures"][fig].get("runs", {}))


def figure_grids(config: dict, fig: str) -> dict:
    return dict(config["figures"][fig].get("grids", {}))


def enabled_figures(config: dict) -> list[str]:
    return [f for f, e in config.get("figures", {}).items() if e.get("enabled", True)]


def built_runs(config: dict) -> list[str]:
    """The named runs a build of ``config`` makes: those of enabled figures, and those no figure uses."""
    figs = config.get("figures", {})
    used = {r for f in figs for r in figure_runs(config, f).values()}
    wanted = {r for f in enabled_figures(config) for r in figure_runs(config, f).values()}
    return [r for r in sorted(config.get("runs", {})) if r in wanted or r not in used]
