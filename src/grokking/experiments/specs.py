"""From a resolved spec (:mod:`grokking.runspec`) to what the engine trains: :func:`stack_settings` (what
the models of a stack share) and :func:`model_settings` (what each model has of its own).

The resolution itself lives below the models and the engine, in :mod:`grokking.runspec`, so that the
config's validation never imports upwards; its names are re-exported here for the experiments.
"""

from __future__ import annotations

from ..runspec import (
    DATA_KEYS,
    FLOAT_KEYS,
    IMAGE_KEYS,
    INT_KEYS,
    PER_MODEL_KEYS,
    SCHEMA_PATH,
    ConfigError,
    cell_spec,
    class_count,
    grid_settings,
    normalize,
    resolve,
    resolve_run,
    run_keys,
    spec_hash,
    split_spec,
    stack_keys,
    training_examples,
    width_spec,
    with_seed,
)

__all__ = [
    "DATA_KEYS",
    "FLOAT_KEYS",
    "IMAGE_KEYS",
    "INT_KEYS",
    "PER_MODEL_KEYS",
    "SCHEMA_PATH",
    "ConfigError",
    "cell_spec",
    "class_count",
    "grid_settings",
    "model_settings",
    "normalize",
    "resolve",
    "resolve_run",
    "run_keys",
    "spec_hash",
    "split_spec",
    "stack_keys",
    "stack_settings",
    "training_examples",
    "width_spec",
    "with_seed",
]


def stack_settings(stack: dict):
    """``engine.StackSettings`` from the shared settings of a spec (per-model keys are not needed)."""
    from ..engine import StackSettings, log_schedule
    from ..models import shape_from_spec

    steps = int(stack["steps"])
    return StackSettings(
        shape=shape_from_spec(stack),
        loss=stack["loss"],
        batch_size=None if stack["batch_size"] == "full" else int(stack["batch_size"]),
        steps=steps,
        betas=tuple(stack["betas"]),
        eps=float(stack["eps"]),
        init_scale=stack["init_scale"],
        log_steps=tuple(log_schedule(steps, stack["log_every"])),
        ipr_mode=stack.get("ipr_mode", "rfft"),
        record_neuron_ipr=bool(stack.get("record_neuron_ipr", True)),
        no_decay=tuple(stack.get("no_decay") or ()),
        precision=stack.get("precision", "fp32"),
        eval_dropout=bool(stack.get("eval_dropout", False)),
    )


def model_settings(spec: dict):
    """``engine.ModelSettings`` from the per-model keys of a spec."""
    from ..engine import ModelSettings

    return ModelSettings(
        corruption=float(spec["corruption"]),
        weight_decay=float(spec["weight_decay"]),
        dropout=float(spec["dropout"]),
        lr=float(spec["lr"]),
        seed=int(spec["seed"]),
    )
