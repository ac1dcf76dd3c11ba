"""The GPU acceptance check's report: ``report.json`` (everything, for machines) and ``report.md`` (a verdict line,
one table row per part, then a section per part with what it found, its table and notes)."""

from __future__ import annotations

import json
import math
from pathlib import Path

from ..results import write_bytes
from .common import seconds

VERDICTS = {"PASS": 0, "FAIL": 1, "INCOMPLETE": 2}  # and the exit status of the command


def verdict(statuses: list[str]) -> str:
    """PASS when every part passed, FAIL when one failed, INCOMPLETE when none failed but one was skipped."""
    if any(s == "fail" for s in statuses):
        return "FAIL"
    return "PASS" if all(s == "pass" for s in statuses) else "INCOMPLETE"


def _cell(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return "inf" if math.isinf(value) else f"{value:.4g}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def table(rows: list[dict]) -> list[str]:
    """A Markdown table of ``rows`` (the union of their keys, in order of first appearance)."""
    if not rows:
        return []
    columns = list(dict.fromkeys(k for r in rows for k in r))
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(r.get(c)) for c in columns) + " |" for r in rows]
    return lines


def banner(doc: dict) -> str | None:
    """What a reader must know first when the report is not the acceptance check of a GPU."""
    if not doc["gpu_run"]:
        return (
            "**Not a GPU run.** A development run of the check (`--device cpu --tiny`): every part at the smoke "
            "preset's sizes on the CPU, the sync audit on the `meta` stand-in. It checks the check, not a GPU."
        )
    if doc["tiny"]:
        return "**Tiny sizes** (`--tiny`): the smoke preset's shapes on the GPU; not the acceptance check."
    return None


def to_markdown(doc: dict) -> str:
    title = f"# GPU acceptance check: {doc['verdict']}"
    lines = [title + ("" if doc["gpu_run"] else " (a development run, not a GPU run)"), ""]
    if banner(doc):
        lines += [banner(doc), ""]
    lines += [
        f"`{doc['command']}` on {doc['device_name']} ({doc['device']}) · torch {doc['torch']} · code version "
        f"{doc['code_version']} · started {doc['started']} · {seconds(doc['wall_seconds'])} of a "
        f"{doc['budget_seconds']:.0f} s budget",
        "",
        "| part | verdict | time | budget | what it found |",
        "|---|---|---|---|---|",
    ]
    for p in doc["parts"]:
        took = seconds(p["seconds"]) if p["seconds"] is not None else "–"
        lines.append(
            f"| {p['letter']}. {p['title']} | {p['status'].upper()} | {took} | {p['budget_s']:.0f} s | "
            f"{_cell(p['reason'])} |"
        )
    for p in doc["parts"]:
        if p["seconds"] is None:  # not selected: the table says so
            continue
        lines += ["", f"## {p['letter']}. {p['title']}: {p['status'].upper()}", "", p["reason"]]
        if p["rows"]:
            lines += [""] + table(p["rows"])
        if p["notes"]:
            lines += [""] + [f"- {n}" for n in p["notes"]]
    return "\n".join(lines) + "\n"


def write(doc: dict, out: Path):
    """``report.json`` and ``report.md`` in ``out``, each written whole or not at all."""
    write_bytes(out / "report.json", (json.dumps(doc, indent=1, default=str) + "\n").encode())
    write_bytes(out / "report.md", to_markdown(doc).encode())
