"""The decision records (docs/decisions/) and their generated study tables.

- every block's content matches the SHA-256 in its begin marker (a block edited by hand fails here, with
  or without results at hand), and names a study that its preset declares;
- where the study's result exists (results/<preset>/studies/NAME.json), the block is what rendering it
  gives now;
- the renderer itself, on a small result written here, gives exactly the expected Markdown;
- no table row outside a generated block carries a measured-looking number (docs/decisions/, config/README.md).
"""

from __future__ import annotations

import copy
import json
import re

import pytest

from grokking import cli
from grokking.config import load_preset
from grokking.experiments import decisions
from grokking.experiments.studytable import render_study

pytestmark = pytest.mark.checkout  # needs the checkout: left out of make test-wheel

DOC = {
    "study": "tiny",
    "preset": "smoke",
    "question": "a test study",
    "plan": {"from": {"run": "r1_wd0"}, "across": [], "vary": ["weight_decay"], "seeds": [1, 2], "table": {}},
    "stacks": [{"point": {}, "spec": {"steps": 10}, "read_at": [5, 10]}],
    "trainings": [{"point": {}, "models": 4, "seconds": 1.25}],
    "seconds": 1.25,
    "columns": ["weight_decay", "seed", "step", "phase", "train_acc", "test_acc", "corrupted_acc", "max_test_acc"]
    + ["ipr_u", "init_ipr_u"],
    "rows": [
        {"weight_decay": 0.0, "seed": 1, "step": 5, "phase": "Memorization", "train_acc": 0.95, "test_acc": 0.1}
        | {"corrupted_acc": 0.9, "max_test_acc": 0.1},
        {"weight_decay": 0.0, "seed": 1, "step": 10, "phase": "Coexistence", "train_acc": 1.0, "test_acc": 0.9125}
        | {"corrupted_acc": 1.0, "max_test_acc": 0.95, "ipr_u": 0.5, "init_ipr_u": 0.04},
        {"weight_decay": 0.0, "seed": 2, "step": 5, "phase": "Confusion", "train_acc": 0.5, "test_acc": 0.05}
        | {"corrupted_acc": None, "max_test_acc": 0.05},
        {"weight_decay": 0.0, "seed": 2, "step": 10, "phase": "Memorization", "train_acc": 0.99, "test_acc": 0.2}
        | {"corrupted_acc": 0.98, "max_test_acc": 0.2, "ipr_u": 0.25, "init_ipr_u": 0.06},
        {"weight_decay": 5.0, "seed": 1, "step": 5, "phase": "Full Inversion", "train_acc": 0.7, "test_acc": 1.0}
        | {"corrupted_acc": 0.0, "max_test_acc": 1.0},
        {"weight_decay": 5.0, "seed": 1, "step": 10, "phase": "Forgetting", "train_acc": 0.1, "test_acc": 0.1}
        | {"corrupted_acc": 0.0, "max_test_acc": 1.0, "ipr_u": 0.125, "init_ipr_u": 0.04},
        {"weight_decay": 5.0, "seed": 2, "step": 5, "phase": "Partial Inversion", "train_acc": 0.85}
        | {"test_acc": 0.99, "corrupted_acc": 0.5, "max_test_acc": 0.99},
        {"weight_decay": 5.0, "seed": 2, "step": 10, "phase": "Full Inversion", "train_acc": 0.7, "test_acc": 1.0}
        | {"corrupted_acc": 0.0, "max_test_acc": 1.0, "ipr_u": None, "init_ipr_u": 0.06},
    ],
    "provenance": {
        "code_version": "abc123",
        "numerics": {"profile": "portable", "cpu": "Test CPU (avx2)", "threads": 1},
    },
}

HEADER = (
    "Study `tiny` (preset `smoke`): a test study. From run `r1_wd0`; 4 models in 1 stacked training of 10 "
    "steps, seeds 1, 2. Trained in 1.2 s on Test CPU (avx2) (portable numerics, 1 thread), code abc123.\n"
)
PHASES = "Phases: C Coexistence, P Partial Inversion, F Full Inversion, M Memorization, G Forgetting, X Confusion."
EXPECTED = (
    HEADER
    + """
| weight_decay | step | phase | train | test | corrupted | median ipr_u |
|---|---|---|---|---|---|---|
| 0 | 5 | M / X | 0.950 / 0.500 | 0.100 / 0.050 | 0.900 / – |  |
| 0 | 10 | C / M | 1.000 / 0.990 | 0.912 / 0.200 | 1.000 / 0.980 | 0.500 / 0.250 |
| 5 | 5 | F / P | 0.700 / 0.850 | 1.000 / 0.990 | 0.000 / 0.500 |  |
| 5 | 10 | G / F | 0.100 / 0.700 | 0.100 / 1.000 | 0.000 / 0.000 | 0.125 / – |

"""
    + PHASES
    + " Cells: one value per seed, in seed order; accuracies at the row's step, the other measures at the last."
    " Median IPR at init: ipr_u 0.050.\n"
)
EXPECTED_PIVOT = (
    HEADER
    + """
| weight_decay | step 5 | step 10 |
|---|---|---|
| 0 | M (0.950, 0.100) / X (0.500, 0.050) | C (1.000, 0.912) / M (0.990, 0.200) |
| 5 | F (0.700, 1.000) / P (0.850, 0.990) | G (0.100, 0.100) / F (0.700, 1.000) |

"""
    + PHASES
    + " Cells: phase (train, test accuracy), one per seed in seed order. Median IPR at init: ipr_u 0.050.\n"
)
NOT_RUN = "*Not yet run:* `snakemake results/smoke/studies/tiny.json --configfile config/smoke.yaml`\n"
REBUILD = "\nRebuild: `snakemake results/smoke/studies/tiny.json --configfile config/smoke.yaml --force`\n"


def records(repo_root):
    return sorted((repo_root / "docs" / "decisions").glob("[0-9][0-9][0-9]-*.md"))


def test_the_renderer_gives_the_expected_table():
    assert render_study(DOC) == EXPECTED
    pivot = copy.deepcopy(DOC)
    pivot["plan"]["table"] = {"columns": "step"}
    assert render_study(pivot) == EXPECTED_PIVOT


def test_many_seeds_are_summarized():
    doc = copy.deepcopy(DOC)
    rows = [r for r in doc["rows"] if r["step"] == 10 and r["weight_decay"] == 0.0]
    doc["rows"] = [dict(rows[i % 2], seed=i + 1) for i in range(6)]
    doc["plan"]["seeds"] = list(range(1, 7))
    doc["stacks"][0]["read_at"] = [10]
    lines = render_study(doc).splitlines()
    assert lines[4] == "| C 3, M 3 | 0.995 ± 0.005 | 0.556 ± 0.390 | 0.990 ± 0.011 | 0.375 ± 0.137 |"
    assert "mean ± sd over the 6 seeds" in lines[-1]


def test_a_block_is_rendered_from_its_result_and_checked_by_its_hash(tmp_path):
    results = tmp_path / "results"
    text = "# A record\n\n" + decisions.block_text("tiny", "smoke", "old\n") + "\n\nAfter.\n"
    new, report = decisions.render_text(text, results)
    assert report == [{"study": "tiny", "preset": "smoke", "state": "not run", "changed": True}]
    assert decisions.blocks(new)[0].content == NOT_RUN
    assert new.endswith("<!-- study:tiny end -->\n\nAfter.\n") and new.startswith("# A record\n\n<!-- study:tiny")
    assert decisions.check_text(new, results) == [{"study": "tiny", "preset": "smoke", "state": "not run"}]

    path = decisions.result_path(results, "smoke", "tiny")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(DOC))
    assert decisions.check_text(new, results)[0]["state"] == "stale"  # the result exists, the block is old
    new, _ = decisions.render_text(new, results)
    (block,) = decisions.blocks(new)
    assert block.content == EXPECTED + REBUILD and decisions.check_block(block) is None
    assert decisions.check_text(new, results)[0]["state"] == "ok"
    assert decisions.render_text(new, results)[0] == new  # rendering again changes nothing
    path.unlink()  # a clone has the rendered block and no result: not run, not stale
    assert decisions.check_text(new, results) == [{"study": "tiny", "preset": "smoke", "state": "not run"}]

    edited = new.replace("0.912", "0.913")
    assert "edited by hand" in decisions.check_block(decisions.blocks(edited)[0])
    assert decisions.check_text(edited, results)[0]["state"] == "edited"


def test_the_decisions_command_renders_and_checks(tmp_path):
    docs, results = tmp_path / "docs", tmp_path / "results"
    docs.mkdir()
    (docs / "001-x.md").write_text(decisions.block_text("tiny", "smoke", "") + "\n")
    (docs / "002-y.md").write_text(decisions.block_text("other", "paper", "") + "\n")
    path = decisions.result_path(results, "smoke", "tiny")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(DOC))
    args = ["--docs", str(docs), "--results-dir", str(results)]
    cli.main(["decisions", "render", *args, "--preset", "smoke", "--out", str(tmp_path / "done.txt")])
    assert EXPECTED in (docs / "001-x.md").read_text()
    assert decisions.blocks((docs / "002-y.md").read_text())[0].sha == decisions.digest("")  # other preset
    assert "001-x.md: tiny (smoke): rendered" in (tmp_path / "done.txt").read_text()
    cli.main(["decisions", "check", *args, "--preset", "smoke"])
    (docs / "001-x.md").write_text((docs / "001-x.md").read_text().replace("0.912", "0.999"))
    with pytest.raises(SystemExit, match="1 generated block"):
        cli.main(["decisions", "check", *args, "--preset", "smoke"])


def test_the_records_have_their_sections_and_blocks(repo_root):
    found = records(repo_root)
    assert len(found) >= 15
    numbers = [p.name[:3] for p in found]
    assert numbers == [f"{i:03d}" for i in range(1, len(found) + 1)], "records are numbered 001, 002, ..."
    for path in found:
        text = path.read_text()
        assert text.startswith(f"# {path.name[:3]}. "), path.name
        headings = re.findall(r"^## (.+)$", text, flags=re.M)
        assert headings in (
            ["Question", "Options", "Evidence", "Decision"],
            ["Question", "Options and decision", "Evidence"],
        ), (path.name, headings)
        assert "**Config:**" in text, path.name
    assert sum(len(decisions.blocks(p.read_text())) for p in found) >= 20


def test_no_generated_block_was_edited_by_hand(repo_root):
    bad = [
        f"{path.name}: {problem}"
        for path in records(repo_root)
        for block in decisions.blocks(path.read_text())
        if (problem := decisions.check_block(block))
    ]
    assert not bad, "render them again (python -m grokking decisions render):\n  " + "\n  ".join(bad)


def test_every_block_names_a_study_of_its_preset(repo_root):
    declared = {}
    bad = []
    for path in records(repo_root):
        for b in decisions.blocks(path.read_text()):
            if b.preset not in declared:
                declared[b.preset] = set(load_preset(repo_root / "config", b.preset).get("studies") or {})
            if b.name not in declared[b.preset]:
                bad.append(f"{path.name}: study {b.name!r} is not declared in the {b.preset} preset")
    assert not bad, "\n".join(bad)


def test_every_block_is_its_result_rendered_now(repo_root):
    """Only where the result exists here (results are never committed): a block of a study that has run
    must be what rendering its result gives."""
    results = repo_root / "results"
    stale = [
        f"{path.name}: {r['study']} ({r['preset']}): {r['state']}"
        for path in records(repo_root)
        for r in decisions.check_text(path.read_text(), results)
        if r["state"] not in ("ok", "not run")
    ]
    assert not stale, "render them (python -m grokking decisions render):\n  " + "\n  ".join(stale)


# An accuracy, IPR or correlation read off a run (0.873, 1.000) or a spread; settings such as lr 0.005 pass.
MEASURED = re.compile(r"\b(?:0\.[1-9]\d{2,}|[1-9]\d*\.\d{3,})\b|±")


@pytest.mark.parametrize("doc", ["docs/decisions", "config/README.md"])
def test_no_measured_number_is_typed_into_a_table(repo_root, doc):
    """Tables outside the generated blocks hold settings, not measurements (a 3-decimal fraction or a ±)."""
    paths = sorted((repo_root / doc).glob("*.md")) if (repo_root / doc).is_dir() else [repo_root / doc]
    bad = []
    for path in paths:
        text = decisions.BLOCK.sub("", path.read_text())
        bad += [f"{path.name}: {line}" for line in text.splitlines() if line.startswith("|") and MEASURED.search(line)]
    assert not bad, "\n".join(bad)
