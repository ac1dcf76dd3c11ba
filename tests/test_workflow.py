"""The Snakemake workflow: dry run of the paper preset, config errors before any job, smoke build."""

import itertools
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import table2_phase

from grokking import load_run
from grokking.config import enabled_figures, figure_grids, load_preset
from grokking.data import train_size
from grokking.experiments.gridplan import chunk_work, chunks_of_grid, plan, work_estimate
from grokking.experiments.specs import resolve_run

pytestmark = pytest.mark.checkout  # needs the checkout: left out of make test-wheel

SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def job_counts(output: str) -> dict:
    counts = {}
    table = output.split("Job stats:")[1]
    for line in table.splitlines()[3:]:
        m = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if not m:
            break
        counts[m.group(1)] = int(m.group(2))
    return counts


def snakemake(workdir, *args, timeout=1500):
    return subprocess.run(SNAKEMAKE + list(args), cwd=workdir, capture_output=True, text=True, timeout=timeout)


def test_paper_dry_run_lists_every_job(workdir):
    cfg = yaml.safe_load(open(workdir / "config" / "config.yaml"))
    start = time.perf_counter()
    res = snakemake(workdir, "-n", "-p", "--forceall")
    elapsed = time.perf_counter() - start
    assert res.returncode == 0, res.stderr[-3000:]
    counts = job_counts(res.stdout + res.stderr)
    assert counts["train_run"] == len(cfg["runs"])
    assert counts["figure"] == len(cfg["figures"])
    chunks = plan(cfg)
    assert counts["train_grid_chunk"] == len(chunks)
    assert counts["merge_grid"] == len(cfg["grids"])
    datasets = {(resolve_run(cfg, r)["operation"], resolve_run(cfg, r)["p"]) for r in cfg["runs"]}
    datasets |= {
        (c["stack"]["operation"], c["stack"]["p"]) for c in chunks.values() if c["stack"]["dataset"] == "modular"
    }
    assert counts["dataset"] == len(datasets) == 2 and counts["all"] == 1  # addition and multiplication
    assert counts["image_dataset"] == 1 and "image-dataset --name mnist" in res.stdout + res.stderr  # Fig 16
    pruned = {r for e in cfg["figures"].values() if e.get("pruning") for r in e["runs"].values()}
    assert counts["prune_run"] == len(pruned) == 3 and counts["tables"] == 1
    ws = cfg["width_sweep"]
    assert counts["train_width_job"] == len(ws["widths"]) * -(-ws["seeds"] // ws["seeds_per_job"]) == 20
    assert counts["merge_width_sweep"] == 1 and counts["claims"] == 1
    print(f"paper dry run: {sum(counts.values())} jobs in {elapsed:.1f} s")


def test_quick_jobs_are_prioritized_by_their_work(workdir):
    """Training jobs carry their estimated work as priority, so that a 2-core build starts the longest
    first; the largest is the alpha 0.65 chunk of Fig 3, the smallest the batch-256 minibatch cells."""
    cfg = load_preset(workdir / "config", "quick")
    res = snakemake(workdir, "-n", "--forceall", "--cores", "2", "--configfile", "config/quick.yaml")
    assert res.returncode == 0, res.stderr[-3000:]
    jobs = re.findall(r"rule (train_\w+):.*?wildcards: \w+=(\S+)\n\s+priority: ([\d.]+)", res.stdout + res.stderr, re.S)
    chunks = plan(cfg)
    built = {g for f in enabled_figures(cfg) for g in figure_grids(cfg, f).values()}
    names = {n for g in built for n in chunks_of_grid(cfg, g, chunks)}
    got = {w: float(pr) for rule, w, pr in jobs if rule == "train_grid_chunk"}
    assert got == {name: chunk_work(chunks[name]) for name in names}
    # the 2-layer MLP's chunks (the Transformer's cost ~24 d^2 per example, ordered separately below)
    mlp2 = {n: w for n, w in got.items() if chunks[n]["stack"]["model"] == "mlp2"}
    first = max(mlp2, key=mlp2.get)
    stack = chunks[first]["stack"]
    assert (stack["train_fraction"], stack["batch_size"], len(chunks[first]["cells"])) == (0.65, "full", 42)
    # the priority is proportional to the cells, the steps and the rows per step (rounded to 0.1 each)
    w = got[first]
    assert work_estimate(stack, 84) == pytest.approx(2 * w, abs=0.15)
    assert work_estimate(stack, 21) == pytest.approx(w / 2, abs=0.15)
    assert work_estimate({**stack, "steps": 3 * stack["steps"]}, 42) == pytest.approx(3 * w, abs=0.25)
    mb = {**stack, "batch_size": 64}
    assert work_estimate({**mb, "batch_size": 256}, 42) == pytest.approx(4 * work_estimate(mb, 42), abs=0.35)
    # a full batch is a batch of the whole training set
    assert w == work_estimate({**stack, "batch_size": train_size(stack["p"], stack["train_fraction"])}, 42) > 0

    # the ordering of priorities follows the ordering of work: a chunk at least as large in every factor
    # (rows per step, width, p, steps, cells) never has the lower priority, and strictly larger in one, the higher
    def factors(chunk):
        s = chunk["stack"]
        rows = train_size(s["p"], s["train_fraction"]) if s["batch_size"] == "full" else int(s["batch_size"])
        return rows, int(s["width"]), int(s["p"]), int(s["steps"]), len(chunk["cells"])

    compared = 0
    for a, b in itertools.permutations(mlp2, 2):
        fa, fb = factors(chunks[a]), factors(chunks[b])
        if all(x >= y for x, y in zip(fa, fb, strict=True)) and fa != fb:
            assert got[a] > got[b], (a, fa, got[a], b, fb, got[b])
            compared += 1
    assert compared > len(mlp2)  # the property is not vacuous
    # a Transformer chunk outranks a 2-layer MLP chunk of as many cells, examples and steps
    t = next(n for n in chunks if chunks[n]["stack"]["model"] == "transformer")
    like = {**chunks[t]["stack"], "model": "mlp2", "width": 256}
    assert chunk_work(chunks[t]) > work_estimate(like, len(chunks[t]["cells"]))
    runs = {w: float(pr) for rule, w, pr in jobs if rule == "train_run"}
    assert runs["r5_wd20"] == work_estimate(resolve_run(cfg, "r5_wd20")) > runs["r1_wd0"] > 0
    assert min(mlp2.values()) == work_estimate({**stack, "batch_size": 256, "steps": 2000}, 3)
    # the datasets every training job waits for rank above all of them (else the largest chunks'
    # dataset waits until the smaller jobs run out)
    data = re.findall(
        r"rule dataset:.*?wildcards: operation=(\w+), p=(\d+)\n\s+priority: (\d+)", res.stdout + res.stderr, re.S
    )
    assert {f"{op}_p{p}" for op, p, _ in data} == {"add_p47", "add_p59", "add_p97", "mul_p59"}
    assert min(int(pr) for *_, pr in data) > max([*got.values(), *runs.values()])


def test_bad_config_fails_before_any_job(workdir, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("run_defaults:\n  activation: cubic\nruns:\n  r1_wd0: {wd: 3}\n")
    res = snakemake(workdir, "--cores", "1", "--configfile", str(bad))
    assert res.returncode != 0
    out = res.stdout + res.stderr
    assert "config key 'run_defaults.activation': 'cubic' is not one of ['quadratic', 'relu']" in out
    assert "config key 'runs.r1_wd0': unknown key(s) ['wd']" in out
    assert not (workdir / "results").exists()


def _is_png(path):
    import matplotlib.image as mpimg

    with open(path, "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n", path
    img = mpimg.imread(path)
    return img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100 and np.ptp(img) > 0


def _is_pdf(path):
    data = Path(path).read_bytes()
    return data.startswith(b"%PDF-") and b"%%EOF" in data[-1024:] and len(data) > 2000


def test_smoke_build_makes_every_figure(smoke_build):
    cfg = yaml.safe_load(open(smoke_build / "config" / "config.yaml"))
    for fig, entry in cfg["figures"].items():
        stem = smoke_build / "figures" / "smoke" / f"{fig}_{entry['slug']}"
        assert _is_png(stem.with_suffix(".png")), stem
        assert _is_pdf(stem.with_suffix(".pdf")), stem
        nb = smoke_build / "results" / "smoke" / "notebooks" / f"{fig}_{entry['slug']}.ipynb"
        assert "papermill" in nb.read_text()
    assert not (smoke_build / "figures" / "paper").exists()  # presets never write into each other
    for name in ("table1.md", "table1.tex", "table2.md", "table2.tex"):
        assert "Coexistence" in (smoke_build / "figures" / "smoke" / name).read_text()


def test_smoke_pruning_starts_from_the_trained_network(smoke_build):
    """Pruning nothing must reproduce the run's own final accuracies (two independent code paths)."""
    for name in ("r1_wd0", "r2_wd5", "r3_wd15"):
        run = load_run(smoke_build / "results" / "smoke" / "runs" / name)
        with np.load(smoke_build / "results" / "smoke" / "analysis" / "pruning" / f"{name}.npz") as z:
            width = run.spec["width"]
            assert z["lowest_test_acc"].shape == (width,) and z["fraction"][-1] == (width - 1) / width
            for direction in ("lowest", "highest"):
                for key in ("train_acc", "test_acc", "corrupted_acc"):
                    assert abs(z[f"{direction}_{key}"][0] - run.summary[key]) <= 1.5 / run.summary["n_train"], key
                ipr = z["neuron_ipr"][z[f"{direction}_order"]]
                assert np.all(np.diff(ipr) >= 0) if direction == "lowest" else np.all(np.diff(ipr) <= 0)


def test_smoke_runs_are_complete_and_consistent(smoke_build):
    cfg = load_preset(smoke_build / "config", "smoke")
    for name in cfg["runs"]:
        run = load_run(smoke_build / "results" / "smoke" / "runs" / name)
        s = run.summary
        assert s["settings"]["p"] == cfg["run_defaults"]["p"]  # the smoke overlay's p
        assert s["settings"]["steps"] == resolve_run(cfg, name)["steps"] <= 60
        assert run.curves["step"][-1] == s["settings"]["steps"]
        assert s["phase"] == table2_phase(s["train_acc"], s["test_acc"], s["settings"]["corruption"], s["max_test_acc"])
        assert s["max_test_acc"] == run.curves["test_acc"].max() and s["test_acc"] == run.curves["test_acc"][-1]
        assert all(0 <= s[k] <= 1 for k in ("train_acc", "test_acc", "uncorrupted_acc"))
        assert (smoke_build / "results" / "smoke" / "logs" / "train_run" / f"{name}.log").exists()
        # the job's own timing record (Snakemake benchmark columns) spans its training
        head, row = (
            (smoke_build / "results" / "smoke" / "benchmarks" / "train_run" / f"{name}.tsv").read_text().split("\n")[:2]
        )
        timing = dict(zip(head.split("\t"), row.split("\t"), strict=True))
        assert set(timing) == {"s", "h:m:s", "max_rss", "cpu_time"}
        assert float(timing["s"]) >= s["seconds_per_step"] * s["settings"]["steps"]
        assert float(timing["cpu_time"]) > 0 and float(timing["max_rss"]) > 50  # MiB: a torch process


def test_smoke_build_is_up_to_date_afterwards(smoke_build):
    res = snakemake(smoke_build, "-n", "--configfile", "config/smoke.yaml")
    assert res.returncode == 0
    assert "Nothing to be done" in res.stdout + res.stderr


def test_smoke_width_sweep_prunes_the_trained_networks(smoke_build):
    """Pruning nothing reproduces each seed's own final test accuracy, and the summary follows the jobs."""
    root = smoke_build / "results" / "smoke" / "analysis"
    with np.load(root / "width_sweep.npz") as z:
        summary = {k: z[k] for k in z.files}
    smoke = yaml.safe_load(open(smoke_build / "config" / "smoke.yaml"))["width_sweep"]
    assert summary["widths"].tolist() == smoke["widths"]
    for w in smoke["widths"]:
        with np.load(root / "width_sweep" / "jobs" / f"w{w:05d}_s1-{smoke['seeds']}.npz") as z:
            assert z["pruned_test_acc"].shape == (smoke["seeds"], w)
            np.testing.assert_allclose(z["pruned_test_acc"][:, 0], z["final_test_acc"], atol=0.01)  # argmax ties
    rows = (root / "width_sweep.csv").read_text().splitlines()
    assert rows[0].startswith("width,seed,") and len(rows) == 1 + len(smoke["widths"]) * smoke["seeds"]


def test_smoke_claims_report_has_a_value_for_every_claim(smoke_build):
    """Every claim is built by the smoke preset and measured: a value, no error (pass or fail is not
    expected at this size)."""
    from grokking.report.claims import CLAIMS

    report = json.loads((smoke_build / "results" / "smoke" / "claims.json").read_text())
    rows = report["claims"]
    assert sorted(r["id"] for r in rows) == sorted(c.id for c in CLAIMS) and report["not_built_in_this_preset"] == []
    for r in rows:
        assert "error" not in r, (r["id"], r["error"])
        assert r["value"] is not None and r["value"] == r["value"], r["id"]  # not None, not NaN
        assert isinstance(r["passed"], bool)
    assert report["total"] == len(rows) and report["passed"] == sum(r["passed"] for r in rows)
    md = (smoke_build / "figures" / "smoke" / "claims.md").read_text()
    assert f"{report['passed']} of {len(rows)} claims pass, " in md and "not measurable" not in md


def test_a_failing_claim_never_fails_the_build_but_fails_strict_mode(smoke_build):
    """A claim forced to fail (its threshold raised in a throw-away overlay) leaves the build at exit 0 with
    the claim named in its last lines; the strict overlay makes the same build fail, after the report,
    naming it (the claims that fail at the smoke size are listed as known failures in the overlay)."""
    rows = json.loads((smoke_build / "results" / "smoke" / "claims.json").read_text())["claims"]
    forced = next(r for r in rows if r["verdict"] == "PASS" and r["op"] in (">=", ">"))
    known = {r["id"]: "fails at the smoke size" for r in rows if r["verdict"] != "PASS"}
    overlay = {"claims": {"thresholds": {forced["id"]: float(forced["value"]) + 1}, "known_failures": known}}
    (smoke_build / "forced.yaml").write_text(yaml.safe_dump(overlay))
    args = ["--cores", "2", "--configfile", "config/smoke.yaml", "forced.yaml"]
    res = snakemake(smoke_build, *args)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-3000:]
    tail = out[out.rindex("Claims (smoke preset)") :]
    assert f"FAIL       {forced['id']} ({forced['figure']})" in tail and f"needs {forced['op']} " in tail
    strict = snakemake(smoke_build, *args, "config/strict.yaml")
    out = strict.stdout + strict.stderr
    assert strict.returncode != 0 and f"1 failed ({forced['id']})" in out and "claims.strict" in out
    assert not (smoke_build / "results" / "smoke" / "claims_verdict.txt").exists()
    assert snakemake(smoke_build, "--cores", "2", "--configfile", "config/smoke.yaml").returncode == 0


def test_every_result_records_its_numeric_profile(smoke_build):
    """The presets run under the portable profile, and each result says so (with the kernels ATen ran)."""
    results = smoke_build / "results" / "smoke"
    run = load_run(results / "runs" / "r1_wd0")
    assert run.summary["numerics"]["profile"] == "portable"
    assert run.summary["numerics"]["environment"]["MKL_CBWR"] == "COMPATIBLE"
    assert (
        run.summary["numerics"]["threads"]
        == yaml.safe_load(open(smoke_build / "config" / "smoke.yaml"))["resources"]["threads"]
    )
    with np.load(results / "grids" / "wd.npz") as z:
        assert [json.loads(p)["profile"] for p in json.loads(str(z["numerics"]))] == ["portable"]
    with np.load(results / "analysis" / "width_sweep.npz") as z:
        assert [json.loads(p)["profile"] for p in json.loads(str(z["numerics"]))] == ["portable"]


# One claim of each kind of input: a run, a pruned run, a grid, the width sweep, and a claim over three runs.
STUDIED = ["coexistence", "ipr_rises_with_wd", "prune_low_ipr", "memorization_corner", "width_generalizes"]


def test_robustness_study_gives_each_claim_its_noise_and_seed_count(smoke_build):
    """`snakemake robustness` retrains what the studied claims read (config `robustness.claims`) with shifted
    model seeds (the data unchanged), evaluates each claim per seed, and the claims report then carries noise,
    seed counts and verdicts for those claims, and none for the others."""
    overlay = smoke_build / "config" / "robustness_subset.yaml"
    overlay.write_text(yaml.safe_dump({"robustness": {"claims": STUDIED}}))
    base = ["--cores", "2", "--configfile", "config/smoke.yaml", str(overlay)]
    res = snakemake(smoke_build, "robustness", *base)
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    results = smoke_build / "results" / "smoke"
    cfg = load_preset(smoke_build / "config", "smoke")
    n, stride = cfg["robustness"]["replicates"], cfg["robustness"]["seed_stride"]
    study = json.loads((results / "robustness.json").read_text())
    assert study["seeds"] == n and study["seed_shifts"] == [k * stride for k in range(n)]
    assert sorted(study["claims"]) == sorted(STUDIED)
    replica, build = load_run(results / "runs" / "r1_wd0~rep1"), load_run(results / "runs" / "r1_wd0")
    assert replica.spec["seed"] == build.spec["seed"] + stride
    assert replica.spec["corruption"] == build.spec["corruption"] and replica.spec["p"] == build.spec["p"]
    assert not np.array_equal(replica.params["U"].numpy(), build.params["U"].numpy())
    # what no studied claim reads is not retrained
    assert not (results / "runs" / "r5_wd20~rep1").exists() and not (results / "grids" / "dropout~rep1.csv").exists()
    rows = (results / "grids" / "wd~rep2.csv").read_text().splitlines()
    seed = rows[0].split(",").index("seed")
    assert {int(r.split(",")[seed]) for r in rows[1:]} == {1 + 2 * stride}
    values = json.loads((results / "robustness" / "values.json").read_text())
    claims = json.loads((results / "claims.json").read_text())  # the build's report, before the study
    built = {r["id"]: r["value"] for r in claims["claims"]}
    assert {r["id"]: r["value"] for r in values["claims"]} == {c: built[c] for c in STUDIED}
    res = snakemake(smoke_build, *base)  # the report now reads the study
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    claims = json.loads((results / "claims.json").read_text())
    assert claims["robustness"]["seeds"] == n
    for r in claims["claims"]:
        if r["id"] not in STUDIED:
            assert not r.get("seeds") and r.get("noise") is None and r["verdict"] != "UNRESOLVED", r["id"]
            continue
        entry = study["claims"][r["id"]]
        assert r["seeds"] == n and r["holds"] == sum(entry["holds"]), r["id"]
        assert r["verdict"] in ("PASS", "FAIL", "UNRESOLVED")
        if r["margin"] is not None:
            assert r["noise"] == pytest.approx(np.std([float(v) for v in entry["values"]], ddof=1)), r["id"]
            unresolved = 0 < r["noise"] and abs(r["margin"]) <= r["noise"]
            assert (r["verdict"] == "UNRESOLVED") == unresolved, r["id"]
    md = (smoke_build / "figures" / "smoke" / "claims.md").read_text()
    assert f"of {n} |" in md and f"Noise measured for {len(STUDIED)} of the {len(claims['claims'])} claims" in md
