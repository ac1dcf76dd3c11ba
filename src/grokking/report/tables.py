"""The paper's Tables 1 and 2 (docs/paper.md §A10) rendered as Markdown and LaTeX.

Table 2 is rendered from the phase rules actually used (``phases.rules``: the defaults overlaid by the config's
``phases`` keys), so the table in ``figures/<preset>/`` always states the thresholds behind the figures.
"""

from __future__ import annotations

from .. import phases

TABLE1_HEADER = ("Phase", "Memorizes corrupted training data", "Generalizes on test data")
TABLE1_ROWS = (
    ("Coexistence", "Yes", "Yes"),
    ("Partial Inversion", "Partially", "Yes (test > train accuracy)"),
    ("Full Inversion", "No (train ≈ 100(1 − ξ) %)", "Yes"),
    ("Memorization", "Yes", "No"),
    ("Forgetting / Confusion", "No", "No"),
)


def _pct(x: float) -> str:
    v = 100 * float(x)
    return f"{v:.0f}" if abs(v - round(v)) < 1e-9 else f"{v:g}"


def table2_rows(rules: dict | None = None) -> list[tuple[str, str, str]]:
    """(phase, test accuracy, train accuracy) conditions in percent, as the decision list applies them."""
    r = phases.rules(rules)
    acc, forget = _pct(r["accuracy_threshold"]), _pct(r["forgetting_threshold"])
    inv = f"100({float(r['inversion_slack']):g} − ξ)"
    return [
        ("Coexistence", f"≥ {acc}", f"≥ {acc}"),
        ("Partial Inversion", f"≥ {acc}", f"< {acc} and ≥ {inv}"),
        ("Full Inversion", f"≥ {acc}", f"< {inv}"),
        ("Memorization", f"< {acc}", f"≥ {acc}"),
        ("Forgetting", f"< {acc} (max. during training ≥ {forget})", f"< {acc}"),
        ("Confusion", f"< {acc} (max. during training < {forget})", f"< {acc}"),
    ]


def markdown(header, rows, caption: str = "") -> str:
    lines = [f"**{caption}**", ""] if caption else []
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


_LATEX = {
    "≥": r"$\geq$",
    "<": r"$<$",
    "≈": r"$\approx$",
    "ξ": r"$\xi$",
    "−": "-",
    "%": r"\%",
    "&": r"\&",
    "_": r"\_",
    "#": r"\#",
}


def _tex(text: str) -> str:
    return "".join(_LATEX.get(ch, ch) for ch in text)


def latex(header, rows, caption: str = "", label: str = "") -> str:
    cols = "l" * len(header)
    out = [r"\begin{table}[t]", r"\centering"]
    if caption:
        out.append(r"\caption{" + _tex(caption) + "}")
    if label:
        out.append(r"\label{" + label + "}")
    out += [r"\begin{tabular}{" + cols + "}", r"\hline", " & ".join(_tex(h) for h in header) + r" \\", r"\hline"]
    out += [" & ".join(_tex(c) for c in row) + r" \\" for row in rows]
    out += [r"\hline", r"\end{tabular}", r"\end{table}"]
    return "\n".join(out) + "\n"


def render(rules: dict | None = None, note: str = "") -> dict:
    """{'table1.md', 'table1.tex', 'table2.md', 'table2.tex'}: file name -> text; ``note`` (a rehearsal's)
    ends each caption."""
    t1 = ("Table 1: the phases, qualitatively", TABLE1_HEADER, TABLE1_ROWS)
    t2 = (
        "Table 2: phase rules on final-step accuracies (%), applied in this order; first match wins",
        ("Phase", "Test accuracy", "Train accuracy"),
        table2_rows(rules),
    )
    out = {}
    for name, (cap, header, rows) in (("table1", t1), ("table2", t2)):
        cap = f"{cap} ({note})" if note else cap
        out[f"{name}.md"] = markdown(header, rows, cap)
        out[f"{name}.tex"] = latex(header, rows, cap, f"tab:{name}")
    return out
