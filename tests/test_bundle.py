"""Result bundles (src/grokking/bundle.py, workflow/rules/bundle.smk): the smoke build packed, then fetched into
fresh copies of the workflow (from a file and from a local HTTP server): the figures, tables and claims build with
no training job and the same claim values. A tampered file, a changed setting, a cut archive, an unreachable URL
and a different file in the way are each refused, naming what is wrong, with nothing placed or overwritten."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
import yaml
from conftest import copy_workflow, run_snakemake
from local_http import serve, unreachable_url

import grokking
from grokking import bundle
from grokking.codedeps import code_files
from grokking.config import ConfigError, deep_merge, enabled_figures, figure_grids, load_preset, validate
from grokking.layout import RUN_FILES, Layout
from grokking.runspec import resolve_run

pytestmark = pytest.mark.checkout  # needs the checkout: left out of make test-wheel

SMOKE = ["--configfile", "config/smoke.yaml"]
SRC = Path(grokking.__file__).resolve().parents[1]  # the library under test (its copies: <copy>/src)
# The rules that train, or make what training makes: none of them may run when a bundle supplies the results.
MAKERS = {
    "train_run",
    "train_grid_chunk",
    "train_width_job",
    "prune_run",
    "merge_grid",
    "merge_width_sweep",
    "dataset",
    "image_dataset",
}


def grokking(root, *args):
    """``python -m grokking ARGS`` in ``root`` with that copy's library."""
    env = dict(os.environ, PYTHONPATH=str(Path(root) / "src"))
    return subprocess.run(
        [sys.executable, "-m", "grokking", *args], cwd=root, env=env, capture_output=True, text=True, timeout=900
    )


def jobs(output: str) -> dict:
    """Rule -> job count of a dry run's job table ({} when there is nothing to do)."""
    if "Job stats:" not in output:
        return {}
    rows = output.split("Job stats:")[1].splitlines()[3:]
    return {m[1]: int(m[2]) for m in map(re.compile(r"^(\w+)\s+(\d+)$").match, map(str.strip, rows)) if m}


def sha256(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def members(archive) -> dict:
    """Archive member -> bytes, in the archive's order."""
    with tarfile.open(archive, "r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar}


def write_archive(path, contents: dict):
    """A tar.gz of ``contents`` (member -> bytes), in that order."""
    with gzip.open(path, "wb") as gz, tarfile.open(fileobj=gz, mode="w") as tar:
        for name, data in contents.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def fresh_dir(tmp_path) -> Path:
    (tmp_path / "wf").mkdir()
    return tmp_path / "wf"


def nothing_placed(root):
    results = Path(root) / "results" / "smoke"
    placed = [p for p in results.rglob("*") if p.is_file() and "downloads" not in p.parts and "logs" not in p.parts]
    assert placed == [], placed[:5]
    assert not list(results.glob("bundle/.staging-*")), "a staging folder was left behind"


@pytest.fixture(scope="module")
def packed(smoke_build, tmp_path_factory):
    """The smoke build's bundle, packed from the build's tree (which it leaves as it is)."""
    out = tmp_path_factory.mktemp("bundle") / "grok-or-not-smoke.tar.gz"
    res = grokking(smoke_build, "bundle", "pack", "--preset", "smoke", "--out", str(out))
    assert res.returncode == 0, res.stderr[-3000:]
    assert f"SHA-256 {sha256(out)}" in res.stderr
    return out


def test_pack_holds_every_result_the_build_reads_with_hash_spec_and_provenance(packed, smoke_build, tmp_path):
    config = load_preset(smoke_build / "config", "smoke")
    results = smoke_build / "results" / "smoke"
    contents = members(packed)
    manifest = json.loads(contents.pop("manifest.json"))
    assert list(contents) == sorted(manifest["files"])  # the manifest first, then every file it lists, once
    # what the figures, tables and claims read, written out from the config here: every run, its dataset, the
    # grids of the figures, the pruned runs, the width sweep; nothing a build only passes through
    expect = {f"runs/{r}/{f}" for r in config["runs"] for f in RUN_FILES}
    expect |= {f"data/{Path(Layout('', '').dataset_of(resolve_run(config, r))).name}" for r in config["runs"]}
    grids = {g for f in enabled_figures(config) for g in figure_grids(config, f).values()}
    expect |= {f"grids/{g}{ext}" for g in grids for ext in (".npz", ".csv")}
    pruned = {r for e in config["figures"].values() if e.get("pruning") for r in e["runs"].values()}
    expect |= {f"analysis/pruning/{r}.npz" for r in pruned} | {"analysis/width_sweep.npz", "analysis/width_sweep.csv"}
    assert set(contents) == expect
    for name, data in contents.items():
        entry = manifest["files"][name]
        assert data == (results / name).read_bytes(), name
        assert entry["sha256"] == hashlib.sha256(data).hexdigest() and entry["bytes"] == len(data), name
        assert name in manifest["results"][entry["result"]]["files"]
    for key, result in manifest["results"].items():
        assert {"spec", "code_version", "torch", "device", "precision"} <= set(result), key
    run = manifest["results"]["run/r1_wd0"]
    trained = json.loads((results / "runs" / "r1_wd0" / "spec.json").read_text())
    assert {k: trained[k] for k in run["spec"]["settings"]} == run["spec"]["settings"]  # the spec that made it
    summary = json.loads((results / "runs" / "r1_wd0" / "summary.json").read_text())
    assert (run["code_version"], run["torch"], run["device"]) == (summary["code_version"], summary["torch"], "cpu")
    assert run["precision"] == "fp32" and manifest["results"]["grid/wd"]["precision"] == "fp32"
    assert manifest["results"]["grid/wd"]["spec"]["grid"]["panels"] == config["grids"]["wd"]["panels"]
    assert manifest["preset"] == "smoke" and manifest["config"]["preset"] == "smoke"
    # deterministic: the same results pack to the same bytes
    again = tmp_path / "again.tar.gz"
    assert grokking(smoke_build, "bundle", "pack", "--preset", "smoke", "--out", str(again)).returncode == 0
    assert again.read_bytes() == packed.read_bytes()


def test_the_dag_fetches_instead_of_training_and_makes_the_same_claims(packed, smoke_build, tmp_path):
    root = copy_workflow(tmp_path)  # a clone of the workflow: no results at all
    args = [*SMOKE, "--config", f"results_bundle={packed}"]
    dry = run_snakemake(root, "-n", *args)
    assert dry.returncode == 0, dry.stderr[-3000:]
    counts = jobs(dry.stdout + dry.stderr)
    config = load_preset(root / "config", "smoke")
    assert counts["fetch_results"] == 1 and counts["figure"] == len(enabled_figures(config)), counts
    assert not MAKERS & set(counts), counts
    # Built here: the claims report and one figure. The fetched files are the trained ones byte for byte (below)
    # and the dry run above plans every figure from them with nothing to train, so the other notebooks, which
    # the smoke build has run on the same bytes, add nothing but minutes.
    fig = enabled_figures(config)[0]
    figure = [f"figures/smoke/{fig}_{config['figures'][fig]['slug']}{ext}" for ext in (".png", ".pdf")]
    targets = ["results/smoke/claims.json", "figures/smoke/claims.md", *figure]
    build = run_snakemake(root, "--cores", "2", *targets, *args)  # targets first: --config takes what follows
    assert build.returncode == 0, (build.stdout + build.stderr)[-5000:]
    results, built = root / "results" / "smoke", smoke_build / "results" / "smoke"
    assert not (results / "checkpoints").exists() and not (results / "logs" / "train_run").exists()
    assert all((root / f).stat().st_size > 1000 for f in figure), figure
    claims = {r["id"]: (r["value"], r["passed"]) for r in json.loads((results / "claims.json").read_text())["claims"]}
    trained = {r["id"]: (r["value"], r["passed"]) for r in json.loads((built / "claims.json").read_text())["claims"]}
    assert claims == trained and len(claims) > 10
    for name in json.loads(members(packed)["manifest.json"])["files"]:
        assert sha256(results / name) == sha256(built / name), name
    record = json.loads((results / "bundle" / "fetched.json").read_text())
    assert record["last_fetch"]["sha256"] == sha256(packed)
    # up to date, also once the training code is newer than every fetched result
    report_code = {f for fig in enabled_figures(config) for f in code_files(notebook=notebook(root, config, fig))}
    report_code |= {f for c in ("claims", "tables") for f in code_files(command=c)}
    commands = ("train-run", "train-chunk", "width-job", "prune-run", "merge-grid", "dataset")
    training_only = sorted({f for c in commands for f in code_files(command=c)} - report_code)
    assert str(SRC / "grokking" / "experiments" / "grids.py") in training_only
    later = time.time() + 60
    for f in training_only:
        os.utime(root / "src" / Path(f).relative_to(SRC), (later, later))
    again = run_snakemake(root, "-n", *targets, *args)
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr, jobs(again.stdout)
    rest = run_snakemake(root, "-n", *args)  # the whole build: the other figures to make, nothing to train
    assert rest.returncode == 0 and not MAKERS & set(jobs(rest.stdout + rest.stderr)), jobs(rest.stdout)


def notebook(root, config, fig) -> Path:
    entry = config["figures"][fig]
    return root / "workflow" / "notebooks" / (entry.get("notebook") or f"{fig}_{entry['slug']}.ipynb")


def test_fetch_over_http_then_the_dag_has_nothing_to_train_or_fetch(packed, tmp_path):
    root = copy_workflow(tmp_path)
    with serve(packed.parent) as base:
        url = base + packed.name
        res = grokking(root, "bundle", "fetch", url, "--preset", "smoke", "--sha256", sha256(packed))
        assert res.returncode == 0, res.stderr[-3000:]
        n = len(json.loads(members(packed)["manifest.json"])["files"])
        assert f"{n} files placed, 0 already there" in res.stderr and f"results_bundle={url}" in res.stderr
        downloads = list((root / "results" / "smoke" / "bundle" / "downloads").iterdir())
        assert [sha256(p) for p in downloads] == [sha256(packed)]  # pooch's copy, kept for the next fetch
        again = grokking(root, "bundle", "fetch", url, "--preset", "smoke")
        assert again.returncode == 0 and f"0 files placed, {n} already there" in again.stderr, again.stderr[-2000:]
    dry = run_snakemake(root, "-n", *SMOKE, "--config", f"results_bundle={url}")
    assert dry.returncode == 0, dry.stderr[-3000:]
    counts = jobs(dry.stdout + dry.stderr)
    assert not (MAKERS | {"fetch_results"}) & set(counts) and counts["figure"] > 0, counts


def test_a_tampered_file_is_refused_naming_it(packed, tmp_path):
    contents = members(packed)
    name = "runs/r2_wd5/curves.npz"
    data = bytearray(contents[name])
    data[len(data) // 2] ^= 1
    contents[name] = bytes(data)
    tampered = tmp_path / "tampered.tar.gz"
    write_archive(tampered, contents)
    root = copy_workflow(fresh_dir(tmp_path))
    res = grokking(root, "bundle", "fetch", str(tampered), "--preset", "smoke")
    assert res.returncode != 0
    assert f"{name}: SHA-256 {hashlib.sha256(data).hexdigest()}, but the bundle's manifest says" in res.stderr
    nothing_placed(root)


def _changes(config):
    """(overlay, config key, value in the bundle, value in the changed config): a run, a grid, the phase rules,
    the dataset seeds and the width sweep."""
    steps = resolve_run(config, "r1_wd0")["steps"]
    points = config["grid_defaults"]["curve_points"]
    threshold = config["phases"]["accuracy_threshold"]
    seed = config["data"]["pair_seed"]
    retention = config["width_sweep"]["retention"]["threshold"]
    return [
        ({"runs": {"r1_wd0": {"steps": steps + 1}}}, "runs.r1_wd0.steps", steps, steps + 1),
        ({"grid_defaults": {"curve_points": points + 1}}, "grid_defaults.curve_points", points, points + 1),
        ({"phases": {"accuracy_threshold": threshold - 0.1}}, "phases.accuracy_threshold", threshold, threshold - 0.1),
        ({"data": {"pair_seed": seed + 1}}, "data.pair_seed", seed, seed + 1),
        ({"width_sweep": {"retention": {"threshold": 0.5}}}, "width_sweep.retention.threshold", retention, 0.5),
    ]


@pytest.mark.parametrize("case", range(5))
def test_a_changed_setting_is_refused_naming_its_config_key(packed, tmp_path, case):
    root = copy_workflow(tmp_path)
    overlay, key, old, new = _changes(load_preset(root / "config", "smoke"))[case]
    (root / "changed.yaml").write_text(yaml.safe_dump(overlay))
    res = grokking(root, "bundle", "fetch", str(packed), "--preset", "smoke", "--configfile", "changed.yaml")
    assert res.returncode != 0
    assert f"is {old!r} in the bundle and {new!r} in the current config (config key '{key}')" in res.stderr
    nothing_placed(root)
    # fetched with the bundle's own settings, then the setting changed: the workflow stops before any job
    assert grokking(root, "bundle", "fetch", str(packed), "--preset", "smoke").returncode == 0
    dry = run_snakemake(root, "-n", *SMOKE, "changed.yaml", "--config", f"results_bundle={packed}")
    out = dry.stdout + dry.stderr
    assert dry.returncode != 0 and f"(config key '{key}')" in out and "in the results fetched from a bundle" in out


@pytest.mark.parametrize("keep", [0.001, 0.6])
def test_a_truncated_archive_is_refused(packed, tmp_path, keep):
    cut = tmp_path / "cut.tar.gz"
    data = packed.read_bytes()
    cut.write_bytes(data[: int(len(data) * keep)])
    root = copy_workflow(fresh_dir(tmp_path))
    res = grokking(root, "bundle", "fetch", str(cut), "--preset", "smoke")
    assert res.returncode != 0 and f"{cut} is truncated or corrupt" in res.stderr, res.stderr[-2000:]
    nothing_placed(root)


def test_an_unreachable_url_or_a_missing_file_gives_a_clear_message(tmp_path):
    root = copy_workflow(tmp_path)
    url = unreachable_url() + "grok-or-not-smoke.tar.gz"
    res = grokking(root, "bundle", "fetch", url, "--preset", "smoke")
    assert res.returncode != 0 and f"error: cannot download {url}: " in res.stderr
    assert "Connection refused" in res.stderr and "download the archive yourself" in res.stderr
    with serve(tmp_path) as base:  # a server that does not have the file
        res = grokking(root, "bundle", "fetch", base + "missing.tar.gz", "--preset", "smoke")
    assert res.returncode != 0 and f"cannot download {base}missing.tar.gz: 404" in res.stderr
    res = grokking(root, "bundle", "fetch", str(tmp_path / "nowhere.tar.gz"), "--preset", "smoke")
    assert res.returncode != 0 and f"{tmp_path / 'nowhere.tar.gz'}: no such file" in res.stderr
    nothing_placed(root)


def test_a_different_file_on_disk_is_never_overwritten(packed, tmp_path):
    root = copy_workflow(tmp_path)
    assert grokking(root, "bundle", "fetch", packed.as_uri(), "--preset", "smoke").returncode == 0
    results = root / "results" / "smoke"
    mine = results / "runs" / "r1_wd0" / "summary.json"
    mine.write_text(mine.read_text() + " ")
    (results / "runs" / "r2_wd5" / "spec.json").unlink()
    res = grokking(root, "bundle", "fetch", str(packed), "--preset", "smoke")
    assert res.returncode != 0 and "runs/r1_wd0/summary.json" in res.stderr and "nothing is overwritten" in res.stderr
    # the workflow's fetch, asked for the missing file: refused the same way, neither file deleted nor replaced
    args = ["results/smoke/runs/r2_wd5/spec.json", "--cores", "1", *SMOKE, "--config", f"results_bundle={packed}"]
    dag = run_snakemake(root, *args)
    assert dag.returncode != 0 and "runs/r1_wd0/summary.json" in dag.stdout + dag.stderr
    assert mine.read_text().endswith(" ") and not (results / "runs" / "r2_wd5" / "spec.json").exists()


def test_results_bundle_is_validated_before_anything_runs():
    config = load_preset(Path(__file__).resolve().parents[1] / "config", "smoke")
    for bad, key in [
        ("ftp://example.org/b.tar.gz", "results_bundle"),
        ("doi:10.5281/zenodo.1", "results_bundle"),
        ({"source": "s3://b/x.tar.gz"}, "results_bundle.source"),
        ({"source": "b.tar.gz", "sha256": "abc"}, "results_bundle"),
    ]:
        with pytest.raises(ConfigError, match=f"config key '{re.escape(key)}'"):
            validate(deep_merge(config, {"results_bundle": bad}))
    for good in ("b.tar.gz", "https://example.org/b.tar.gz", "doi:10.5281/zenodo.1/b.tar.gz", {"source": "b.tgz"}):
        validate(deep_merge(config, {"results_bundle": good}))
    assert bundle.source_of(deep_merge(config, {"results_bundle": {"source": "x", "sha256": "0" * 64}})) == (
        "x",
        "0" * 64,
    )
