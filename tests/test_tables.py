"""Tables 1 and 2: the rendered rules are the classifier's rules, in its order, in both formats."""

from __future__ import annotations

from grokking.phases import PAPER_PHASES, classify
from grokking.report import tables


def test_table2_lists_the_decision_list_in_order():
    rows = tables.table2_rows()
    assert tuple(r[0] for r in rows) == PAPER_PHASES
    assert rows[0] == ("Coexistence", "≥ 90", "≥ 90")
    assert rows[1][2] == "< 90 and ≥ 100(1.05 − ξ)"


def test_table2_states_configured_thresholds():
    rows = tables.table2_rows({"accuracy_threshold": 0.85, "inversion_slack": 1.1, "forgetting_threshold": 0.8})
    assert rows[0][1:] == ("≥ 85", "≥ 85")
    assert rows[2][2] == "< 100(1.1 − ξ)"
    assert "max. during training ≥ 80" in rows[4][1]
    # The same thresholds drive the classifier: train 0.86 / test 0.86 is Coexistence only at 85 %.
    assert classify(0.86, 0.86, 0.2, accuracy_threshold=0.85) == "Coexistence"
    assert classify(0.86, 0.86, 0.2) == "Confusion"


def test_render_markdown_and_latex():
    out = tables.render()
    assert set(out) == {"table1.md", "table1.tex", "table2.md", "table2.tex"}
    md = out["table2.md"].splitlines()
    assert md[2] == "| Phase | Test accuracy | Train accuracy |"
    assert len([line for line in md if line.startswith("| ")]) == 1 + len(PAPER_PHASES)
    tex = out["table2.tex"]
    assert r"\begin{tabular}{lll}" in tex and r"\label{tab:table2}" in tex
    for raw in ("≥", "ξ", "−", "≈"):
        assert raw not in tex and raw not in out["table1.tex"]
    assert r"(\%)" in tex and r"$\geq$ 90" in tex
