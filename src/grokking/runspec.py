"""Run specs: the config resolved into the settings of one model. Imports no torch: the DAG stays fast.

A *spec* is a flat dict of resolved run settings (the keys of ``run_defaults``) plus the dataset
seeds and the IPR convention; a spec on digit images (``dataset`` mnist or digits) also records the
dataset's input size and classes and its training pool (``IMAGE_KEYS``). Named runs, grid cells and
width-sweep seeds are all resolved by :func:`resolve` (``run_defaults`` overlaid by their own settings,
numbers in one canonical type). Below the models and the engine: the config's validation
(:mod:`grokking.config`) and the workflow's planning read it; :mod:`grokking.experiments.specs` turns a
spec into engine settings.
"""

from __future__ import annotations

import hashlib
import json
import math
from functools import lru_cache
from pathlib import Path

from .data.images import IMAGE_SETS, train_count
from .data.modular import train_size

# Package data: the schema travels with the package (a wheel works outside a checkout).
SCHEMA_PATH = Path(__file__).resolve().parent / "config.schema.yaml"
# What may differ between the models of one stack (engine.ModelSettings); everything else is shared.
PER_MODEL_KEYS = ("corruption", "weight_decay", "dropout", "lr", "seed")
DATA_KEYS = ("pair_seed", "label_seed", "ipr_mode")
IMAGE_KEYS = ("inputs", "classes", "train_pool", "pool_seed")  # image datasets only
FLOAT_KEYS = ("train_fraction", "corruption", "dropout", "lr", "eps", "weight_decay")
INT_KEYS = ("p", "width", "steps", "seed", "log_every", "d_model", "heads", "layers", "depth") + IMAGE_KEYS


class ConfigError(ValueError):
    """A configuration error: names the key path, the bad value and what would be accepted."""


@lru_cache(maxsize=1)
def run_keys() -> tuple:
    """The run settings, as the schema defines them (``$defs.run_settings``), in its order."""
    import yaml

    with open(SCHEMA_PATH) as fh:
        return tuple(yaml.safe_load(fh)["$defs"]["run_settings"]["properties"])


def stack_keys() -> tuple:
    """What the models of one stack share; a spec holds ``IMAGE_KEYS`` only on image datasets."""
    return tuple(k for k in run_keys() if k not in PER_MODEL_KEYS) + DATA_KEYS + IMAGE_KEYS


def resolve(config: dict, *overlays: dict) -> dict:
    """``run_defaults``, then the ``model_defaults`` of the model family the result selects, then each
    of ``overlays`` in turn; with the dataset seeds and IPR mode."""
    spec = dict(config["run_defaults"])
    for over in overlays:
        spec.update(over or {})
    family_defaults = (config.get("model_defaults") or {}).get(spec["model"]) or {}
    if family_defaults:
        spec = dict(config["run_defaults"], **family_defaults)
        for over in overlays:
            spec.update(over or {})
    spec.update(
        pair_seed=config["data"]["pair_seed"], label_seed=config["data"]["label_seed"], ipr_mode=config["ipr"]["mode"]
    )
    if spec["dataset"] != "modular":
        kind, data = IMAGE_SETS[spec["dataset"]], config["data"][spec["dataset"]]
        spec.update(
            inputs=kind.inputs, classes=kind.classes, train_pool=data["train_pool"], pool_seed=data["pool_seed"]
        )
    return normalize(spec)


def training_examples(spec: dict) -> int:
    """Training examples of a resolved spec: floor(alpha p^2) pairs, or floor(alpha pool) images."""
    if spec["dataset"] == "modular":
        return train_size(spec["p"], spec["train_fraction"])
    return train_count(spec["train_pool"], spec["train_fraction"])


def class_count(spec: dict) -> int:
    """Output classes: p for the modular task, the dataset's classes for images."""
    return int(spec.get("classes") or spec["p"])


def normalize(spec: dict) -> dict:
    """Numbers in one canonical type per key, so that equal settings hash equally (0 == 0.0)."""
    out = dict(spec)
    for k in FLOAT_KEYS:
        out[k] = float(out[k])
    for k in INT_KEYS:
        if out.get(k) is not None:
            out[k] = int(out[k])
    if out["batch_size"] != "full":
        out["batch_size"] = int(out["batch_size"])
    if out.get("init_scale") is not None:
        out["init_scale"] = float(out["init_scale"])
    out["betas"] = [float(b) for b in out["betas"]]
    out["no_decay"] = sorted(out.get("no_decay") or [])
    return out


def spec_hash(spec: dict, n: int = 16) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:n]


# --- the three kinds of training job ------------------------------------------------------------


def rehearsal_steps(config: dict, steps: int) -> int:
    """``steps``, capped by a rehearsal (``rehearsal.steps``; make rehearse) of the preset."""
    cap = (config.get("rehearsal") or {}).get("steps")
    return min(int(steps), int(cap)) if cap else int(steps)


REHEARSAL = "REHEARSAL:"  # how a rehearsal's note begins (figures are stamped when their caption does)


def rehearsal_note(config: dict) -> str:
    """What every figure, the claims report and the tables of a rehearsal say ("" outside one)."""
    cap = (config.get("rehearsal") or {}).get("steps")
    if not cap:
        return ""
    return (
        f"{REHEARSAL} every training capped at {cap} step{'s' if cap > 1 else ''} and MNIST replaced by stand-in "
        "files (make rehearse); not the paper's results"
    )


def resolve_run(config: dict, name: str) -> dict:
    """Named run ``name``: ``run_defaults`` overlaid with ``runs[name]`` (steps capped in a rehearsal, with an
    explicit ``log_every`` capped at them)."""
    if name not in config.get("runs", {}):
        raise ConfigError(f"run {name!r} is not defined; defined runs: {sorted(config.get('runs', {}))}")
    spec = dict(resolve(config, config["runs"][name]), name=name)
    spec["steps"] = rehearsal_steps(config, spec["steps"])
    if spec["log_every"] is not None:
        spec["log_every"] = min(spec["log_every"], spec["steps"])
    return spec


def grid_settings(config: dict, grid: str) -> dict:
    """grid_defaults overlaid by the grid's own keys; ``settings`` merge key by key (grid wins)."""
    defaults, own = config["grid_defaults"], config["grids"][grid]
    g = dict(defaults)
    g.update(own)
    g["settings"] = {**(defaults.get("settings") or {}), **(own.get("settings") or {})}
    return g


def cell_spec(config: dict, grid: str, panel_value, alpha, xi) -> dict:
    """One grid cell: the grid's settings, its panel value, alpha and xi; coarse curves, no neuron IPR."""
    g = grid_settings(config, grid)
    spec = resolve(
        config,
        g["settings"],
        {g["panel_key"]: panel_value, "train_fraction": alpha, "corruption": xi, "record_neuron_ipr": False},
    )
    rule = g.get("minibatch_rule")
    if rule and spec["batch_size"] != "full":
        # docs/paper.md §A5: steps x (ref/bs), lr x sqrt(bs/ref), relative to the reference batch size.
        ref, bs = int(rule["reference_batch"]), int(spec["batch_size"])
        spec["steps"] = int(round(spec["steps"] * ref / bs))
        spec["lr"] = float(spec["lr"] * math.sqrt(bs / ref))
    spec["steps"] = rehearsal_steps(config, spec["steps"])
    spec["log_every"] = max(1, spec["steps"] // int(g["curve_points"]))
    return spec


def width_spec(config: dict, width: int) -> dict:
    """One width of the Fig 32 sweep (its seeds are per-model settings, :func:`with_seed`)."""
    ws = config["width_sweep"]
    spec = resolve(config, ws.get("settings"), {"width": int(width), "record_neuron_ipr": False})
    spec["steps"] = rehearsal_steps(config, spec["steps"])
    spec["log_every"] = max(1, spec["steps"] // int(ws["curve_points"]))
    return spec


def with_seed(spec: dict, seed: int) -> dict:
    return dict(spec, seed=int(seed))


def split_spec(spec: dict) -> tuple[dict, dict]:
    """(shared settings, per-model settings) of a resolved spec."""
    return ({k: spec[k] for k in stack_keys() if k in spec}, {k: spec[k] for k in PER_MODEL_KEYS})
