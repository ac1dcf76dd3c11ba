"""A study's result (``results/<preset>/studies/<name>.json``, :mod:`.studies`) as Markdown: a header saying
where the study starts, what it trained and on what, then one table.

By default a row per point of the study (its varying ``across`` / ``vary`` keys and the read step) and a
column per measure; the seeds of a point share a cell, their values one after another (up to
``MAX_LISTED`` seeds), else as mean ± sd and the phases counted. With ``table.columns: KEY`` the values of
KEY become the columns and each cell gives the phase with (train, test) accuracy.
"""

from __future__ import annotations

import math

import numpy as np

from ..phases import PHASES

MAX_LISTED = 4
ABBREVIATION = {
    "Coexistence": "C",
    "Partial Inversion": "P",
    "Full Inversion": "F",
    "Memorization": "M",
    "Forgetting": "G",
    "Confusion": "X",
    "Diverged": "D",
}
LABELS = {
    "train_acc": "train",
    "test_acc": "test",
    "corrupted_acc": "corrupted",
    "train_acc_dropout_on": "train, dropout on",
    "test_acc_dropout_on": "test, dropout on",
    "rho_out": "ρ out",
    "rho_in": "ρ in",
}
READ = ("phase", "train_acc", "test_acc", "corrupted_acc", "max_test_acc")
HIDDEN = ("max_test_acc",)  # in the CSV and JSON, not in the table


def _num(v) -> float:
    return math.nan if v is None else float(v)


def _fmt(column: str, v) -> str:
    v = _num(v)
    if math.isnan(v):
        return "–"
    if column.startswith("required_"):
        return f"{v:.0f}"
    if column.startswith("rho_"):
        return f"{v:+.2f}"
    return f"{v:.3f}"


def _value(v) -> str:
    if isinstance(v, float) and v.is_integer() and abs(v) >= 1:
        return f"{v:g}"
    return f"{v:g}" if isinstance(v, float) else str(v)


def _aggregate(column: str, values: list) -> str:
    if column == "phase":
        if len(values) <= MAX_LISTED:
            return " / ".join(ABBREVIATION[v] for v in values)
        counts = {p: values.count(p) for p in PHASES if p in values}
        return ", ".join(f"{ABBREVIATION[p]} {n}" for p, n in counts.items())
    if len(values) <= MAX_LISTED:
        return " / ".join(_fmt(column, v) for v in values)
    x = np.asarray([_num(v) for v in values])
    ok = x[~np.isnan(x)]
    if not len(ok):
        return "–"
    sd = ok.std(ddof=1) if len(ok) > 1 else 0.0
    text = f"{_fmt(column, ok.mean())} ± {_fmt(column, sd).lstrip('+')}"
    return text if len(ok) == len(x) else f"{text} ({len(ok)} of {len(x)})"


def _keys(doc: dict) -> list[str]:
    """The label columns that take more than one value in the study, in plan order (the step only where a
    training is read at more than one)."""
    plan = doc["plan"]
    keys = [k for k in [*plan["across"], *plan["vary"]] if len({str(r.get(k)) for r in doc["rows"]}) > 1]
    if any(len(s["read_at"]) > 1 for s in doc["stacks"]):
        keys.append("step")
    return list(dict.fromkeys(keys))


def _groups(rows: list[dict], keys: list[str]) -> dict:
    groups = {}
    for r in rows:
        groups.setdefault(tuple(r.get(k) for k in keys), []).append(r)
    return groups


def _measures(doc: dict) -> list[str]:
    label = set(doc["plan"]["across"]) | set(doc["plan"]["vary"]) | {"seed", "step"}
    cols = [c for c in doc["columns"] if c not in label and c not in HIDDEN and not c.startswith("init_")]
    return [c for c in cols if c != "corrupted_acc" or any(r.get(c) is not None for r in doc["rows"])]


def _table(head: list[str], body: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return lines + ["| " + " | ".join(row) + " |" for row in body]


def _label(column: str) -> str:
    if column.startswith("ipr_"):
        return f"median {column}"
    if column.startswith("required_"):
        return f"required ({column[len('required_') :]})"
    return LABELS.get(column, column)


def default_table(doc: dict) -> list[str]:
    keys, measures = _keys(doc), _measures(doc)
    body = []
    for label, rows in _groups(doc["rows"], keys).items():
        rows = sorted(rows, key=lambda r: r["seed"])
        cells = [_aggregate(c, [r.get(c) for r in rows if c == "phase" or c in r]) for c in measures]
        body.append([_value(v) for v in label] + cells)
    return _table(keys + [_label(c) for c in measures], body)


def _phase_cell(r: dict) -> str:
    return f"{ABBREVIATION[r['phase']]} ({_fmt('', r['train_acc'])}, {_fmt('', r['test_acc'])})"


def pivot_table(doc: dict, column: str) -> list[str]:
    keys = [k for k in _keys(doc) if k != column]
    values = list(dict.fromkeys(r[column] for r in doc["rows"]))
    body = []
    for label, rows in _groups(doc["rows"], keys).items():
        cells = []
        for v in values:
            at = sorted((r for r in rows if r[column] == v), key=lambda r: r["seed"])
            cells.append(" / ".join(_phase_cell(r) for r in at))
        body.append([_value(v) for v in label] + cells)
    return _table(keys + [f"{column} {_value(v)}" for v in values], body)


def _start(doc: dict) -> str:
    start = doc["plan"]["from"]
    if "run" in start:
        return f"run `{start['run']}`"
    if "grid" in start:
        return f"grid `{start['grid']}`, cell (panel {_value(start['panel'])}, α {start['alpha']:g}, ξ {start['xi']:g})"
    return f"the width sweep at width {start['width_sweep']}"


def header(doc: dict) -> str:
    steps = sorted({s["spec"]["steps"] for s in doc["stacks"]})
    models = sum(t["models"] for t in doc["trainings"])
    seeds = ", ".join(str(s) for s in doc["plan"]["seeds"])
    prov = doc["provenance"]
    num = prov["numerics"]
    where = num.get("gpu") or num["cpu"]
    n, threads = len(doc["trainings"]), num["threads"]
    seconds = f"{doc['seconds']:.1f}" if doc["seconds"] < 10 else f"{doc['seconds']:.0f}"
    return (
        f"Study `{doc['study']}` (preset `{doc['preset']}`): {doc['question']}. From {_start(doc)}; "
        f"{models} models in {n} stacked training{'s' if n > 1 else ''} of {'/'.join(map(str, steps))} steps, "
        f"seed{'s' if len(doc['plan']['seeds']) > 1 else ''} {seeds}. Trained in {seconds} s on {where} "
        f"({num['profile']} numerics, {threads} thread{'s' if threads > 1 else ''}), code {prov['code_version']}."
    )


def legend(doc: dict) -> str:
    n = len(doc["plan"]["seeds"])
    seeds = "one value per seed, in seed order" if n <= MAX_LISTED else f"mean ± sd over the {n} seeds"
    inits = [c for c in doc["columns"] if c.startswith("init_")]
    note = ""
    if inits:
        at = {c[len("init_") :]: np.nanmean([_num(r[c]) for r in doc["rows"] if c in r]) for c in inits}
        note = " Median IPR at init: " + ", ".join(f"{c} {v:.3f}" for c, v in at.items()) + "."
    phases = ", ".join(f"{a} {p}" for p, a in ABBREVIATION.items() if p != "Diverged")
    if (doc["plan"].get("table") or {}).get("columns"):
        return f"Phases: {phases}. Cells: phase (train, test accuracy), one per seed in seed order.{note}"
    return f"Phases: {phases}. Cells: {seeds}; accuracies at the row's step, the other measures at the last.{note}"


def render_study(doc: dict) -> str:
    """The Markdown of one study result (the content of its block in a decision record)."""
    column = (doc["plan"].get("table") or {}).get("columns")
    table = pivot_table(doc, column) if column else default_table(doc)
    return "\n".join([header(doc), "", *table, "", legend(doc)]) + "\n"
