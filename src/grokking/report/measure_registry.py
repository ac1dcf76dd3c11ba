"""The measures' registry: a claim's measure by name, and what its arguments name as inputs.

A measure (:mod:`.measures`) is a function ``f(results, **arguments)`` registered under its name. A
claim (``grokking/claims.yaml``) names its measure and gives the arguments; what the claim reads
follows from them, by their names (``INPUT_ARGUMENTS``), so that each input is named once:

- ``run``, ``runs``: run names;
- ``grid``, ``grids``: grid names;
- ``pruning``: the name of a run whose pruning sweep is read (the run is an input too);
- ``model``, ``reference``, ``pairs`` (pairs of models): each model a run name or a grid's stored
  cell, ``{grid: NAME, panel_index: I}`` (I indexes the grid's panels, so -1 is the last);
- a measure registered with ``width_sweep=True`` reads the width sweep.

Any other argument is a setting (a phase name, a panel value, a threshold of the measure).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple


class Cell(NamedTuple):
    """A grid's stored model (its ``keep_weights`` cell) in one panel: as ``Results.model`` takes it."""

    grid: str
    panel_index: int


@dataclass(frozen=True)
class Measure:
    name: str
    fn: Callable
    required: tuple
    optional: tuple
    width_sweep: bool = False

    @property
    def params(self) -> tuple:
        return self.required + self.optional

    def __call__(self, results, args: dict):
        return self.fn(results, **args)


MEASURES: dict[str, Measure] = {}

# An argument of this name names inputs of this kind: runs, grids, pruning sweeps, models.
INPUT_ARGUMENTS = {
    "run": "run",
    "runs": "runs",
    "grid": "grid",
    "grids": "grids",
    "pruning": "pruning",
    "model": "model",
    "reference": "model",
    "pairs": "pairs",
}


def register(fn: Callable | None = None, *, width_sweep: bool = False):
    """Register ``fn(results, **arguments)`` as a measure under its name."""

    def add(f):
        params = list(inspect.signature(f).parameters.values())[1:]
        required = tuple(p.name for p in params if p.default is p.empty)
        optional = tuple(p.name for p in params if p.default is not p.empty)
        if f.__name__ in MEASURES:
            raise ValueError(f"measure {f.__name__!r} is registered twice")
        MEASURES[f.__name__] = Measure(f.__name__, f, required, optional, width_sweep)
        return f

    return add(fn) if fn is not None else add


class ArgumentError(ValueError):
    """A measure's argument that cannot be used; ``field`` is where it is (e.g. ``args.run``)."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def arguments(measure: Measure, args: dict) -> tuple[dict, dict]:
    """The measure's keyword arguments from a claim's ``args`` (lists become tuples, grid cells
    :class:`Cell`), and the inputs they name: ``runs``, ``grids``, ``pruning`` (tuples in the order
    of the measure's parameters and then of the values) and ``width_sweep``."""
    unknown = [k for k in args if k not in measure.params]
    if unknown:
        raise ArgumentError(
            f"args.{unknown[0]}", f"unknown argument of measure '{measure.name}'; accepted: {list(measure.params)}"
        )
    missing = [k for k in measure.required if k not in args]
    if missing:
        raise ArgumentError(f"args.{missing[0]}", f"missing argument of measure '{measure.name}'")
    kwargs, found = {}, {"runs": [], "grids": [], "pruning": []}
    for name in measure.params:
        if name in args:
            kwargs[name] = _value(name, args[name], found)
    inputs = {key: tuple(dict.fromkeys(names)) for key, names in found.items()}
    return kwargs, {**inputs, "width_sweep": measure.width_sweep}


def _value(name: str, value, found: dict):
    field, kind = f"args.{name}", INPUT_ARGUMENTS.get(name)
    if kind in ("run", "grid", "pruning"):
        found[{"run": "runs", "grid": "grids"}.get(kind, kind)].append(_name(field, value))
        if kind == "pruning":
            found["runs"].append(value)
        return value
    if kind in ("runs", "grids"):
        names = tuple(_name(f"{field}[{i}]", v) for i, v in enumerate(_list(field, value)))
        found[kind] += names
        return names
    if kind == "model":
        return _model(field, value, found)
    if kind == "pairs":
        pairs = []
        for i, pair in enumerate(_list(field, value)):
            if not isinstance(pair, list | tuple) or len(pair) != 2:
                raise ArgumentError(f"{field}[{i}]", "a pair is a list of two models")
            pairs.append(tuple(_model(f"{field}[{i}][{j}]", m, found) for j, m in enumerate(pair)))
        return tuple(pairs)
    if isinstance(value, dict):
        raise ArgumentError(field, "a mapping is accepted only as a model's grid cell {grid, panel_index}")
    return tuple(value) if isinstance(value, list) else value


def _list(field: str, value) -> list:
    if not isinstance(value, list | tuple) or not value:
        raise ArgumentError(field, "expected a non-empty list")
    return list(value)


def _name(field: str, value) -> str:
    if not isinstance(value, str) or not value:
        raise ArgumentError(field, f"expected a name, got {value!r}")
    return value


def _model(field: str, value, found: dict):
    """A run name, or a grid cell ``{grid, panel_index}`` as a :class:`Cell`."""
    if isinstance(value, str):
        found["runs"].append(_name(field, value))
        return value
    cell = Cell(**value) if isinstance(value, dict) and set(value) == set(Cell._fields) else value
    if isinstance(cell, Cell) and isinstance(cell.panel_index, int) and not isinstance(cell.panel_index, bool):
        found["grids"].append(_name(f"{field}.grid", cell.grid))
        return cell
    raise ArgumentError(field, f"expected a run name or a grid cell {{grid: NAME, panel_index: I}}, got {value!r}")
