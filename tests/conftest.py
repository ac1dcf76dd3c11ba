import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
os.environ.setdefault("MPLBACKEND", "Agg")


def table2_phase(train, test, xi, max_test):
    """The expected phase, independent of ``grokking.phases``: docs/paper.md §A10's ordered decision list
    written out (fractions, ">=" inclusive, first match wins)."""
    rows = (
        ("Coexistence", test >= 0.9 and train >= 0.9),
        ("Partial Inversion", test >= 0.9 and train >= round(1.05 - xi, 10)),
        ("Full Inversion", test >= 0.9),
        ("Memorization", train >= 0.9),
        ("Forgetting", max_test >= 0.9),
    )
    return next((name for name, hit in rows if hit), "Confusion")


@pytest.fixture(scope="session")
def repo_root():
    return ROOT


# What a private copy of the workflow needs (tests never touch the user's results/ or figures/).
WORKFLOW_FILES = ("Snakefile", "workflow", "config", "src", "profiles")


def copy_workflow(dest: Path) -> Path:
    for name in WORKFLOW_FILES:
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, dest / name)
    return dest


def run_snakemake(workdir, *args, timeout=1500):
    """``snakemake ARGS`` in ``workdir`` with the interpreter running the tests."""
    return subprocess.run(
        [sys.executable, "-m", "snakemake", *args], cwd=workdir, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A private copy of the workflow, so tests never touch the user's results/ or figures/ (one per
    module: tests/test_workflow.py checks that a bad config leaves it without results/)."""
    return copy_workflow(tmp_path_factory.mktemp("wf"))


@pytest.fixture(scope="session")
def smoke_build(tmp_path_factory):
    """The smoke preset built once per test session, in its own private copy of the workflow; shared by
    tests/test_workflow.py and tests/test_report.py (the build takes minutes, the checks seconds)."""
    root = copy_workflow(tmp_path_factory.mktemp("smoke"))
    res = run_snakemake(root, "--cores", "2", "--configfile", "config/smoke.yaml")
    assert res.returncode == 0, (res.stdout + res.stderr)[-5000:]
    return root


@pytest.fixture(autouse=True)
def _torch_threads():
    import torch

    # Small test models are fastest single-threaded (and oversubscribed threads crawl on a busy CI box);
    # the paper-size tests raise this themselves.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "checkout: needs the repository checkout (workflow/, docs/, benchmarks/, .github/, Snakemake builds); make "
        "test runs these in the checkout and every other test from the installed wheel (tests/wheel/run.sh)",
    )


def pytest_terminal_summary(terminalreporter):
    """The CPU the suite ran on, and how the weights-hash test (tests/test_numerics.py) fared there: the
    record of which CPUs the portable profile has given the stored bits on (CI's included)."""
    from grokking.report.records import cpu_identity

    cpu = cpu_identity()
    outcome = "not run"
    for key in ("passed", "failed"):
        if any("test_portable_weights_are_the_stored_bits" in r.nodeid for r in terminalreporter.stats.get(key, [])):
            outcome = key
    terminalreporter.write_line(
        f"CPU: {cpu['model_name']} (vendor {cpu['vendor']}, family {cpu['family']}, model {cpu['model']}, "
        f"{' '.join(cpu['isa']) or 'no AVX2'}); weights-hash test: {outcome}"
    )
