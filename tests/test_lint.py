"""Lint as a habit: ruff (check and format), snakefmt and `snakemake --lint` hold in every test run.

The tools come from requirements.txt (the environment that runs the tests); a missing tool fails.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.checkout  # needs the checkout: left out of make test-wheel

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

# `snakemake --lint` findings that are kept, each with the reason. Anything else fails the test.
ACCEPTED_SNAKEMAKE_LINTS = {
    "Specify a conda environment or container for each rule.": (
        "every job runs in the environment that runs Snakemake (the `make` venv or environment.yml), "
        "calling that interpreter; a per-rule environment would reinstall torch for each and conda "
        "channels cannot be reached on the project's machines (pip only)"
    ),
}


def tool(name: str) -> str:
    path = BIN / name
    if not path.exists():
        pytest.fail(f"{name} is not installed next to {sys.executable}; install requirements.txt (make test does)")
    return str(path)


def run(*args):
    return subprocess.run(list(args), cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_ruff_check_is_clean():
    res = run(tool("ruff"), "check", "--no-cache", ".")
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]


def test_ruff_format_is_clean():
    res = run(tool("ruff"), "format", "--no-cache", "--check", ".")
    assert res.returncode == 0, "run `.venv/bin/ruff format .`:\n" + res.stdout[-4000:]


def test_snakefmt_is_clean():
    res = run(tool("snakefmt"), "--check", "Snakefile", "workflow")
    assert res.returncode == 0, "run `.venv/bin/snakefmt Snakefile workflow`:\n" + (res.stdout + res.stderr)[-4000:]


def test_snakemake_lint_finds_only_accepted_lints():
    res = run(tool("snakemake"), "--lint")
    out = res.stdout + res.stderr
    assert "Lints for" in out or res.returncode == 0, out[-3000:]  # the linter ran on the workflow
    titles = set(re.findall(r"^    \* (.+?):?$", out, flags=re.M))
    assert titles <= set(ACCEPTED_SNAKEMAKE_LINTS), (
        f"new snakemake lints: {sorted(titles - set(ACCEPTED_SNAKEMAKE_LINTS))}"
    )
