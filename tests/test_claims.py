"""The claims machinery on hand-made results: claims that must pass, claims that must fail."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from grokking.report.claims import CLAIMS, evaluate, to_markdown
from grokking.phases import PHASE_CODES

BY_ID = {c.id: c for c in CLAIMS}


def fake_run(train, test, corrupted, phase, xi=0.35, p=97, max_train=1.0, norm_w=(1.0, 2.0, 1.5), ipr=None,
             gamma=None):
    ipr = np.linspace(0.05, 0.9, 8) if ipr is None else np.asarray(ipr, dtype=float)
    params = {"norm_weight": torch.as_tensor(gamma, dtype=torch.float32)} if gamma is not None else {}
    return SimpleNamespace(
        summary={"train_acc": train, "test_acc": test, "corrupted_acc": corrupted, "phase": phase,
                 "max_train_acc": max_train},
        spec={"corruption": xi, "p": p},
        curves={"norm_w": np.asarray(norm_w), "ipr_mean": np.asarray([0.04, 0.3, 0.8])},
        checkpoint={"neuron_ipr": torch.as_tensor(ipr), "params": params})


class FakeResults:
    def __init__(self, runs=None, grids=None, pruning=None, widths=None):
        self.runs, self.grids, self.prunings, self.widths = runs or {}, grids or {}, pruning or {}, widths

    def width_sweep(self):
        if self.widths is None:
            raise FileNotFoundError("no width sweep")
        return self.widths

    def run(self, name):
        if name not in self.runs:
            raise FileNotFoundError(f"no run {name}")
        return self.runs[name]

    def grid(self, name):
        return self.grids[name]

    def pruning(self, name):
        return self.prunings[name]


def grid_with(phases_by_panel, panels):
    codes = np.array([[[PHASE_CODES[ph] for ph in row] for row in panel] for panel in phases_by_panel])
    return {"panels": np.asarray(panels, dtype=float), "phase": codes}


def pruning_curves(low_test, low_cor, high_test, high_cor):
    return {"lowest_test_acc": np.asarray(low_test), "lowest_corrupted_acc": np.asarray(low_cor),
            "highest_test_acc": np.asarray(high_test), "highest_corrupted_acc": np.asarray(high_cor)}


CHOSEN = ("coexistence", "two_stage_plateau", "forgetting_norms", "batchnorm_gamma_ipr", "prune_low_ipr",
          "prune_high_ipr", "all_phases", "memorization_corner", "wd20_forgetting", "ipr_rises_with_wd")


def good():
    plateau = 1 - 0.35 + 0.35 / 97
    ipr = np.linspace(0.05, 0.9, 8)
    return FakeResults(
        runs={"r1_wd0": fake_run(0.98, 0.97, 0.95, "Coexistence", ipr=ipr * 0.5),
              "r2_wd5": fake_run(0.8, 1.0, 0.4, "Partial Inversion", ipr=ipr * 0.8),
              "r3_wd15": fake_run(plateau + 0.01, 1.0, 0.01, "Full Inversion", ipr=ipr),
              "r5_wd20": fake_run(0.01, 0.01, 0.0, "Forgetting", norm_w=(1.0, 3.0, 0.05)),
              "r9_bn_a065": fake_run(0.9, 1.0, 0.6, "Coexistence", ipr=ipr, gamma=ipr * 2 + 0.1)},
        grids={"wd": grid_with([[["Coexistence", "Partial Inversion"], ["Memorization", "Full Inversion"]],
                                [["Forgetting", "Forgetting"], ["Confusion", "Forgetting"]]], [0, 20]),
               "dropout": grid_with([[["Coexistence", "Coexistence"], ["Memorization", "Memorization"]]], [0])},
        pruning={"r1_wd0": pruning_curves([1.0, 0.99, 0.95, 0.5], [0.95, 0.6, 0.1, 0.05],
                                          [1.0, 0.7, 0.3, 0.1], [0.95, 0.93, 0.9, 0.5])})


def bad():
    ipr = np.linspace(0.05, 0.9, 8)
    return FakeResults(
        runs={"r1_wd0": fake_run(0.98, 0.5, 0.95, "Memorization", ipr=ipr),
              "r2_wd5": fake_run(0.8, 1.0, 0.4, "Partial Inversion", ipr=ipr * 0.8),
              "r3_wd15": fake_run(0.9, 1.0, 0.3, "Full Inversion", ipr=ipr * 0.6),
              "r5_wd20": fake_run(0.01, 0.01, 0.0, "Forgetting", norm_w=(1.0, 3.0, 2.0)),
              "r9_bn_a065": fake_run(0.9, 1.0, 0.6, "Coexistence", ipr=ipr, gamma=-ipr * 2 + 2)},
        grids={"wd": grid_with([[["Coexistence", "Memorization"], ["Coexistence", "Coexistence"]],
                                [["Confusion", "Confusion"], ["Confusion", "Confusion"]]], [0, 20]),
               "dropout": grid_with([[["Coexistence", "Coexistence"], ["Memorization", "Memorization"]]], [0])},
        pruning={"r1_wd0": pruning_curves([1.0, 0.8, 0.5, 0.2], [0.95, 0.9, 0.8, 0.5],
                                          [1.0, 0.4, 0.3, 0.1], [0.95, 0.3, 0.2, 0.1])})


def test_claims_pass_on_results_that_show_the_phenomena():
    rows = evaluate(good(), [BY_ID[i] for i in CHOSEN])
    failed = [(r["id"], r["value"], r.get("error")) for r in rows if not r["passed"]]
    assert not failed
    values = {r["id"]: r["value"] for r in rows}
    assert values["coexistence"] == pytest.approx(0.95)
    assert values["prune_low_ipr"] == pytest.approx(0.1)  # test stays >= 0.9 down to 0.95, where corrupted is 0.1
    assert values["prune_high_ipr"] == pytest.approx(0.9)  # the first test < 0.5 is at 0.3
    assert values["forgetting_norms"] == pytest.approx(0.05 / 3.0)
    assert values["batchnorm_gamma_ipr"] == pytest.approx(1.0)
    assert values["all_phases"] == 6.0


def test_claims_fail_on_results_that_do_not():
    rows = {r["id"]: r for r in evaluate(bad(), [BY_ID[i] for i in CHOSEN])}
    for cid in CHOSEN:
        assert not rows[cid]["passed"], cid
    assert rows["coexistence"]["value"] == pytest.approx(0.5)
    assert rows["batchnorm_gamma_ipr"]["value"] == pytest.approx(-1.0)
    assert rows["memorization_corner"]["value"] == "Coexistence"
    assert rows["ipr_rises_with_wd"]["value"] < 0


def test_missing_inputs_fail_with_a_reason_and_thresholds_can_be_overridden():
    rows = {r["id"]: r for r in evaluate(FakeResults(), [BY_ID["coexistence"], BY_ID["forgetting"]])}
    assert not rows["coexistence"]["passed"] and "no run r1_wd0" in rows["coexistence"]["error"]
    res = good()
    assert not evaluate(res, [BY_ID["coexistence"]], thresholds={"coexistence": 0.99})[0]["passed"]
    empty = FakeResults(pruning={"r1_wd0": pruning_curves([0.5], [0.9], [1.0], [1.0])}, runs=res.runs)
    row = evaluate(empty, [BY_ID["prune_low_ipr"]])[0]
    assert math.isnan(row["value"]) and not row["passed"] and "not measurable" in row["error"]


def test_markdown_report_counts_and_marks_failures():
    rows = evaluate(bad(), [BY_ID["coexistence"], BY_ID["partial_inversion"]])
    md = to_markdown(rows, "quick")
    assert "1 of 2 claims pass." in md
    assert md.count("**FAIL**") == 1 and md.count("| PASS |") == 1
    assert "| Fig 1a |" in md and ">= 0.9" in md


def test_markdown_escapes_pipes_in_claim_text():
    rows = evaluate(good(), [BY_ID["batchnorm_gamma_ipr"]])
    line = [x for x in to_markdown(rows).splitlines() if x.startswith("| Fig 5c")][0]
    assert "\\|gamma_k\\|" in line
    assert len(line.replace("\\|", "").split("|")) == 8  # six cells


def width_summary(required, generalized, total=4):
    widths = np.asarray([500, 1000, 2000, 4000])
    required = np.asarray(required, dtype=float)
    return {"widths": widths, "required_mean": required, "prunable_pct_mean": 100 * (widths - required) / widths,
            "seeds_generalized": np.asarray(generalized), "seeds_total": np.full(4, total)}


WIDTH_CLAIMS = [BY_ID[i] for i in ("width_generalizes", "width_required_sublinear", "width_prunable_grows")]


def test_width_claims_pass_when_required_neurons_grow_sublinearly():
    rows = {r["id"]: r for r in evaluate(FakeResults(widths=width_summary([100, 140, 200, 280], [4, 4, 3, 4])),
                                         WIDTH_CLAIMS)}
    assert all(r["passed"] for r in rows.values()), rows
    assert rows["width_required_sublinear"]["value"] == pytest.approx(np.log2(2.8) / 3, rel=0.05)
    assert rows["width_prunable_grows"]["value"] == pytest.approx(1.0)
    assert rows["width_generalizes"]["value"] == pytest.approx(0.75)


def test_width_claims_fail_when_required_neurons_grow_linearly():
    rows = {r["id"]: r for r in evaluate(FakeResults(widths=width_summary([250, 500, 1000, 2000], [4, 1, 4, 4])),
                                         WIDTH_CLAIMS)}
    assert not any(r["passed"] for r in rows.values()), rows
    assert rows["width_required_sublinear"]["value"] == pytest.approx(1.0)
    assert rows["width_generalizes"]["value"] == pytest.approx(0.25)
    missing = evaluate(FakeResults(), WIDTH_CLAIMS[:1])[0]
    assert not missing["passed"] and "no width sweep" in missing["error"]


def test_require_all_fails_the_claims_command_after_writing_the_report(tmp_path):
    """The quick preset sets claims.require_all: a failing claim must fail the build, with the reason."""
    from grokking import cli

    args = ["claims", "--results", str(tmp_path), "--preset", "quick", "--active", "coexistence",
            "--json", str(tmp_path / "c.json"), "--md", str(tmp_path / "c.md")]
    cli.main(args)  # without the flag a failing claim is reported, not fatal
    assert "0 of 1 claims pass." in (tmp_path / "c.md").read_text()
    with pytest.raises(SystemExit) as err:
        cli.main(args + ["--require-all"])
    assert "1 failed (coexistence)" in str(err.value) and "claims.require_all" in str(err.value)
    assert (tmp_path / "c.json").exists()
