"""`make test-slurm`: the smoke preset through profiles/slurm on a real one-node SLURM cluster.

tests/slurm/run.sh starts the cluster (tests/slurm/cluster.sh), points SLURM_CONF at it and runs this
module by its path. Its name does not match pytest's `test_*.py`, so `make test` (`pytest tests`) never
collects it and never needs a cluster.

The workflow runs in a private copy (as tests/test_workflow.py does), through the shipped profile as it
is: the test cluster's partitions carry the profile's partition names, and its node offers stand-in GPUs,
so the profile's GPU requests are scheduled as on a real GPU partition. The command line adds only
--slurm-keep-successful-logs (every job's SLURM log stays, as evidence) and a 5 s first status check
(instead of 40 s) to keep the build short.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
COPY = ("Snakefile", "workflow", "config", "src", "profiles")
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
EXTRA = ["--slurm-keep-successful-logs", "--slurm-init-seconds-before-status-checks", "5"]
BUILD_TIMEOUT = int(os.environ.get("GROK_SLURM_BUILD_TIMEOUT", "1080"))  # seconds; SIGKILL when over
FAIL_TIMEOUT = 180  # seconds; the failing workflow takes about 80

pytestmark = pytest.mark.skipif(
    not os.environ.get("SLURM_CONF"), reason="needs the test cluster of tests/slurm/run.sh (make test-slurm)"
)


def snakemake(cwd: Path, *args: str, timeout: int) -> subprocess.CompletedProcess:
    """Snakemake in its own process; killed (SIGKILL: it may ignore SIGTERM while it polls SLURM) after
    ``timeout`` seconds, which fails the test instead of hanging it."""
    start = time.monotonic()
    try:
        res = subprocess.run(SNAKEMAKE + list(args), cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as err:
        out = (err.stdout or b"").decode(errors="replace") + (err.stderr or b"").decode(errors="replace")
        msg = f"snakemake {' '.join(args)} did not finish within {timeout} s (killed):\n{out[-5000:]}"
        print(msg, flush=True)  # now: a timeout of the whole run may cut pytest's report short
        pytest.fail(msg)
    print(f"snakemake {' '.join(args)}: exit {res.returncode} after {time.monotonic() - start:.0f} s")
    return res


def job_stats(output: str) -> dict[str, int]:
    """Jobs per rule from Snakemake's first 'Job stats' table."""
    counts = {}
    for line in output.split("Job stats:")[1].splitlines()[3:]:
        m = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if not m:
            break
        counts[m.group(1)] = int(m.group(2))
    return counts


def slurm_jobs(workdir: Path) -> list[dict[str, str]]:
    """Every job that the cluster's controller knows (finished ones stay for MinJobAge = 1 h) and that ran
    in ``workdir``, as scontrol's key=value fields."""
    out = subprocess.run(
        ["scontrol", "show", "job", "--oneliner"], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    jobs = []
    for line in out.splitlines():
        fields = dict(tok.split("=", 1) for tok in line.split() if "=" in tok)
        if fields.get("WorkDir") == str(workdir):
            jobs.append(fields)
    return jobs


def submitted_as(job: dict[str, str], profile: dict) -> tuple[str, str]:
    """(what, rule) of a SLURM job from the comment the plugin gives it: ("rule", <rule>) for one Snakemake job,
    rule_<rule>[_wildcards_<values>]; ("group", <rule>) for a group job of the profile's ``groups``,
    rule_<group>_<rule> (the group's name, then its rules)."""
    comment = job.get("Comment", "")
    assert comment.startswith("rule_"), job
    name = comment[len("rule_") :].split("_wildcards_")[0]
    for rule, group in profile.get("groups", {}).items():
        if name == f"{group}_{rule}":
            return "group", rule
    return "rule", name


def requested(profile: dict, rule: str) -> dict:
    """What the profile asks SLURM for on behalf of ``rule``."""
    res = {**profile.get("default-resources", {}), **profile.get("set-resources", {}).get(rule, {})}
    return {
        "partition": str(res["slurm_partition"]),
        "gpus": int(res.get("gpu") or 0),
        "requeue": bool(profile.get("slurm-requeue")) or "--requeue" in str(res.get("slurm_extra", "")),
    }


def is_png(path: Path) -> bool:
    data = path.read_bytes()
    return data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 5000


def is_pdf(path: Path) -> bool:
    data = path.read_bytes()
    return data.startswith(b"%PDF-") and b"%%EOF" in data[-1024:] and len(data) > 2000


@pytest.fixture(scope="module")
def profile() -> dict:
    return yaml.safe_load((ROOT / "profiles" / "slurm" / "config.yaml").read_text())


def test_a_failing_job_fails_the_build(tmp_path, profile):
    """A rule whose job exits non-zero makes Snakemake exit non-zero (after the profile's retries), in
    bounded time, with the job failed in SLURM and its SLURM log kept."""
    shutil.copy(HERE / "failing.smk", tmp_path / "Snakefile")
    res = snakemake(tmp_path, "--workflow-profile", str(ROOT / "profiles" / "slurm"), *EXTRA, timeout=FAIL_TIMEOUT)
    out = res.stdout + res.stderr
    assert res.returncode != 0, out[-5000:]
    assert not (tmp_path / "never.txt").exists()
    jobs = slurm_jobs(tmp_path)
    attempts = 1 + int(profile.get("retries", 0))
    assert len(jobs) == attempts, jobs
    for job in jobs:
        assert submitted_as(job, profile) == ("rule", "fails"), job
        assert job["JobState"] == "FAILED" and job["ExitCode"] != "0:0", job
        assert "this job fails on purpose" in Path(job["StdOut"]).read_text()
    assert "failed, SLURM status is: 'FAILED'" in out, out[-5000:]
    print(f"asserted: a failing rule ran as {attempts} failed SLURM job(s) and Snakemake exited {res.returncode}")


@pytest.fixture(scope="module")
def smoke_build(tmp_path_factory):
    """The smoke preset built through SLURM in a private copy of the workflow."""
    root = tmp_path_factory.mktemp("slurm_wf")
    for name in COPY:
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, root / name)
    res = snakemake(
        root, "--workflow-profile", "profiles/slurm", *EXTRA, "--configfile", "config/smoke.yaml", timeout=BUILD_TIMEOUT
    )
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-8000:]
    return root, out


def test_every_smoke_figure_is_built(smoke_build):
    root, _ = smoke_build
    sys.path.insert(0, str(root / "src"))
    from grokking.config import enabled_figures, load_preset

    cfg = load_preset(root / "config", "smoke")
    figures = enabled_figures(cfg)
    assert figures
    for fig in figures:
        stem = root / "figures" / "smoke" / f"{fig}_{cfg['figures'][fig]['slug']}"
        assert is_png(stem.with_suffix(".png")), stem
        assert is_pdf(stem.with_suffix(".pdf")), stem
    print(f"asserted: {len(figures)} figures of the smoke preset, each a PNG and a PDF under figures/smoke/")


def test_every_job_ran_as_a_slurm_job_where_the_profile_says(smoke_build, profile):
    """One finished SLURM job per Snakemake job (but the local target rule `all`), except for the rules the
    profile groups: their jobs ran `group-components` at a time, as one SLURM job each, one after another on its
    one GPU. Each SLURM job in the partition the profile names for its rule, with the profile's GPUs and requeue
    flag, and its SLURM log written by the job step; none of this exists when jobs run locally."""
    root, out = smoke_build
    stats = job_stats(out)
    jobs = slurm_jobs(root)
    by_rule: dict[tuple[str, str], list[dict[str, str]]] = {}
    for job in jobs:
        by_rule.setdefault(submitted_as(job, profile), []).append(job)
    expected = {rule: n for rule, n in stats.items() if rule not in ("all", "total")}
    groups, size = profile.get("groups", {}), profile.get("group-components", {})
    slurm_counts = {
        ("group", r) if r in groups else ("rule", r): -(-n // int(size[groups[r]])) if r in groups else n
        for r, n in expected.items()
    }
    assert {key: len(js) for key, js in by_rule.items()} == slurm_counts
    assert sum(expected.values()) == stats["total"] - 1 > 100
    assert any(what == "group" and n > 1 for (what, _), n in slurm_counts.items()), "the profile groups no jobs"

    node = subprocess.run(["hostname", "-s"], capture_output=True, text=True, check=True).stdout.strip()
    gpu_jobs = 0
    for (what, rule), rule_jobs in by_rule.items():
        want = requested(profile, rule)
        members = set()
        for job in rule_jobs:
            where = f"{what} {rule} (SLURM job {job['JobId']})"
            assert job["JobState"] == "COMPLETED" and job["ExitCode"] == "0:0", where
            assert job["Partition"] == want["partition"], where
            assert job["NodeList"] == node and job["BatchFlag"] == "1", where
            tres = job.get("TresPerJob", "")
            if want["gpus"]:
                assert re.search(rf"\bgpu:{want['gpus']}$", tres), (where, tres)
                gpu_jobs += 1
            else:
                assert "gpu" not in tres, (where, tres)
            assert job["Requeue"] == ("1" if want["requeue"] else "0"), where
            log = Path(job["StdOut"])
            logdir = f"group_{groups[rule]}_{rule}" if what == "group" else f"rule_{rule}"
            assert log.is_relative_to(root / ".snakemake" / "slurm_logs" / logdir), (where, log)
            assert log.name == f"{job['JobId']}.log", (where, log)
            text = log.read_text()
            assert "--executor slurm-jobstep" in text and f"rule {rule}:" in text, (where, text[-2000:])
            assert "Finished job" in text or "Finished jobid" in text, (where, text[-2000:])
            members |= set(re.findall(r"^\s*output: (\S+)", text, flags=re.M))
        if what == "group":  # together its group jobs ran every job of the rule, each once
            assert len(members) == expected[rule], (rule, sorted(members))
    assert gpu_jobs == sum(n for (_, r), n in slurm_counts.items() if requested(profile, r)["gpus"]) > 0
    grouped = ", ".join(f"{expected[r]} {r} jobs in {slurm_counts['group', r]}" for r in groups if r in expected)
    print(
        f"asserted: {len(jobs)} SLURM jobs for {sum(expected.values())} jobs of {len(expected)} rules (COMPLETED, "
        f"exit 0:0; grouped: {grouped}), {gpu_jobs} of them with the profile's GPU on its GPU partition, the rest on "
        f"'{profile['default-resources']['slurm_partition']}', requeue as the profile asks, "
        "each with its SLURM log from the job step"
    )


def test_status_is_read_with_squeue(smoke_build, profile):
    """The profile's status command is the one the plugin used (sacct has no database here)."""
    _, out = smoke_build
    assert profile["slurm-status-command"] == "squeue"
    assert "Falling back to 'sacct'" not in out
    print("asserted: the build polled job status with squeue (no fallback to sacct)")
