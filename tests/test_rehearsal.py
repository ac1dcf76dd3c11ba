"""The rehearsal of the paper preset (make rehearse, config/rehearse.yaml): every job of the paper preset at its
full shape, only the step counts capped and MNIST read from stand-in files through the real reader; its
outputs say so."""

import html
import math

import numpy as np
import pytest

from grokking.config import enabled_figures, load_preset, validate
from grokking.data import mnist
from grokking.data.images import build_image_set
from grokking.data.standin import idx_bytes, standin_files, write_standin
from grokking.experiments.gridplan import plan, width_sweep_jobs
from grokking.report.claims import CLAIMS, Results, evaluate
from grokking.report.claims_render import to_html, to_markdown
from grokking.report.figures import captions
from grokking.report.tables import render
from grokking.report.verdicts import summary_text
from grokking.runspec import cell_spec, rehearsal_note, resolve_run, width_spec

pytestmark = pytest.mark.checkout  # needs the checkout: left out of make test-wheel


@pytest.fixture(scope="module")
def presets(repo_root):
    paper, rehearse = load_preset(repo_root / "config"), load_preset(repo_root / "config", "rehearse")
    validate(rehearse)
    return paper, rehearse


def _same_but_steps(real: dict, rehearsed: dict, cap: int):
    assert rehearsed["steps"] == min(real["steps"], cap)
    if real.get("log_every") is not None:
        assert 1 <= rehearsed["log_every"] <= rehearsed["steps"]
    drop = ("steps", "log_every")
    assert {k: v for k, v in rehearsed.items() if k not in drop} == {k: v for k, v in real.items() if k not in drop}


def test_a_rehearsal_differs_from_the_paper_preset_only_in_its_steps(presets):
    paper, rehearse = presets
    cap = rehearse["rehearsal"]["steps"]
    assert set(rehearse) == set(paper) and rehearse["runs"] == paper["runs"] and rehearse["grids"] == paper["grids"]
    for name in paper["runs"]:
        _same_but_steps(resolve_run(paper, name), resolve_run(rehearse, name), cap)
    for width in paper["width_sweep"]["widths"]:
        _same_but_steps(width_spec(paper, width), width_spec(rehearse, width), cap)
    # every chunk: the same cells in the same stacks, at the same shapes
    real, rehearsed = plan(paper), plan(rehearse)
    assert len(real) == len(rehearsed) == 612
    for a, b in zip(real.values(), rehearsed.values(), strict=True):
        assert [c[1] for c in a["cells"]] == [c[1] for c in b["cells"]]  # ids hash the steps too
        assert [c[0] in a["keep"] for c in a["cells"]] == [c[0] in b["keep"] for c in b["cells"]]
        _same_but_steps(a["stack"], b["stack"], cap)
    jobs_real, jobs_rehearsed = width_sweep_jobs(paper), width_sweep_jobs(rehearse)
    assert list(jobs_real) == list(jobs_rehearsed)
    for a, b in zip(jobs_real.values(), jobs_rehearsed.values(), strict=True):
        assert a["seeds"] == b["seeds"]


def test_the_minibatch_rule_scales_the_steps_before_the_cap(presets):
    paper, rehearse = presets
    rehearse = dict(rehearse, rehearsal={"steps": 10**6})
    for grid in ("batchnorm", "minibatch"):
        g = paper["grids"][grid]
        cell = (g["panels"][0], paper["grid_defaults"]["train_fractions"][0], 0.0)
        assert cell_spec(rehearse, grid, *cell) == cell_spec(paper, grid, *cell)


def test_idx_bytes_is_what_the_reader_parses():
    a = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    data = idx_bytes(a)
    assert data[:4] == b"\x00\x00\x08\x03" and len(data) == 4 + 12 + 24
    np.testing.assert_array_equal(mnist.parse_idx(data), a)
    with pytest.raises(ValueError, match="dtype int64"):
        idx_bytes(np.zeros(3, dtype=np.int64))


def test_the_standin_files_go_through_the_real_reader_and_its_checks(tmp_path):
    manifest = write_standin(tmp_path, seed=3)
    assert sorted(manifest["files"]) == sorted(mnist.FILES)
    files = standin_files(tmp_path)
    arrays = mnist.load(tmp_path, download=False, files=files)
    for key, f in mnist.FILES.items():
        assert arrays[key].shape == f.shape and arrays[key].dtype == np.uint8
        assert files[key].name == f.name  # MNIST's own file names
    assert arrays["train_labels"].max() == 9 and arrays["train_images"].max() == 255
    images = build_image_set("mnist", pool=10000, mnist_dir=tmp_path, standin=True)
    assert "stand-in" in images.source and images.pool == 10000
    # the published checksums reject the stand-ins: the check is not switched off, only its hashes differ
    with pytest.raises(mnist.ChecksumError, match="published"):
        mnist.load(tmp_path, download=False)
    path = tmp_path / mnist.FILES["test_labels"].name
    path.write_bytes(path.read_bytes()[:-1] + b"\x07")
    with pytest.raises(mnist.ChecksumError, match="t10k-labels"):
        mnist.load(tmp_path, download=False, files=files)


def test_standin_files_need_their_manifest(tmp_path):
    with pytest.raises(FileNotFoundError, match="make rehearse"):
        standin_files(tmp_path)


def test_every_output_of_a_rehearsal_says_so(presets, repo_root, tmp_path):
    paper, rehearse = presets
    note = rehearsal_note(rehearse)
    assert rehearsal_note(paper) == "" and note.startswith("REHEARSAL:")
    assert f"capped at {rehearse['rehearsal']['steps']} step" in note
    caps = captions(repo_root / "workflow", rehearse)
    assert caps and all(c.startswith(note) for c in caps.values())
    assert not any(c.startswith("REHEARSAL") for c in captions(repo_root / "workflow", paper).values())
    assert all(note in text for text in render(None, note).values())
    assert not any("REHEARSAL" in text for text in render(None).values())
    rows = evaluate(Results(tmp_path), CLAIMS[:2])  # no results: each row fails, naming what is missing
    assert note in to_markdown(rows, "rehearse", note) and html.escape(note) in to_html(rows, "rehearse", (), note)
    assert "REHEARSAL" not in to_markdown(rows, "paper") + to_html(rows, "paper")
    summary = summary_text({"preset": "rehearse", "note": note, "claims": rows})
    assert summary.splitlines()[0] == note


def _fake_outputs(config, layout, wall, train, logs, rss):
    """What a rehearsal leaves behind for the cost plan, with chosen numbers: each job's timing file and its
    training loop's seconds."""
    from pathlib import Path

    from grokking.report import costplan
    from grokking.results import write_json, write_npz

    for job in costplan.jobs(config):
        path = Path(layout.benchmark(job["rule"], job["name"]))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"s\th:m:s\tmax_rss\tcpu_time\n{wall}\t0:00:10\t{rss}\t9\n")
        if job["rule"] == "train_run":
            write_json(layout.run_file(job["name"], "summary.json"), {"train_seconds": train, "log_seconds": logs})
        elif job["rule"] == "train_grid_chunk":
            write_npz(layout.chunk(job["name"]), seconds=np.asarray(train), log_seconds=np.asarray(logs))
        elif job["rule"] == "train_width_job":
            write_npz(layout.width_job(job["name"]), seconds=np.float64(train), log_seconds=np.float64(logs))


@pytest.fixture
def smoke_plan(repo_root, tmp_path):
    """A smoke-preset rehearsal's cost plan of made-up timings: (real config, rehearsed config, layout, rows)."""
    from grokking.layout import Layout
    from grokking.report import costplan

    real = dict(load_preset(repo_root / "config", "smoke"), results_dir=str(tmp_path / "r"), preset="x")
    rehearsed = dict(real, rehearsal={"steps": 3})
    layout = Layout.from_config(rehearsed)
    _fake_outputs(rehearsed, layout, wall=10.0, train=6.0, logs=1.5, rss=300.0)
    return real, rehearsed, layout, costplan.measure(rehearsed, real, layout, gpu_flops=1e12)


def test_the_cost_plan_extrapolates_each_job_to_its_real_steps(smoke_plan):
    from grokking.report import costplan
    from grokking.runspec import training_examples

    real, rehearsed, _, rows = smoke_plan
    jobs = costplan.jobs(real)
    assert [(r["rule"], r["name"].split("_")[0]) for r in rows] == [(j["rule"], j["name"].split("_")[0]) for j in jobs]
    assert {r["rule"] for r in rows} == {"train_run", "prune_run", "train_grid_chunk", "train_width_job"}
    assert sum(r["rule"] == "train_grid_chunk" for r in rows) == len(plan(real))
    for r, j in zip(rows, jobs, strict=True):
        if r["rule"] == "prune_run":  # no training: its time does not depend on the steps
            assert r["estimate_s"] == 10.0 and np.isnan(r["gpu_estimate_s"])
            continue
        K, steps, n_logs = r["models"], r["steps"], r["log_steps"]
        assert steps == j["stack"]["steps"] and r["rehearsed_steps"] == min(3, steps) and K == j["models"]
        assert r["s_per_model_step"] == pytest.approx(4.5 / (K * r["rehearsed_steps"]))
        expected = 4.0 + steps * 4.5 / r["rehearsed_steps"] + n_logs * 1.5 / r["rehearsed_log_steps"]
        assert r["estimate_s"] == pytest.approx(expected)
        assert r["gpu_estimate_s"] > 0 and r["gpu_bytes"] % (16 * K) == 0
    run = next(r for r in rows if r["name"] == "r1_wd0")  # the 2-layer MLP: 3 p N parameters, 3 B N p MACs/step
    spec = resolve_run(real, "r1_wd0")
    assert run["gpu_bytes"] == 16 * 3 * spec["p"] * spec["width"]
    macs = 3 * training_examples(spec) * spec["width"] * spec["p"] * spec["steps"]
    assert run["gpu_estimate_s"] == pytest.approx(2 * macs / 1e12, rel=0.01)
    assert len(costplan.to_csv(rows).splitlines()) == len(rows) + 1
    md = costplan.to_markdown(rows, "x", "a CPU", 2, "a record", rehearsal_note(rehearsed))
    for fig in enabled_figures(real):
        assert f"| {fig} |" in md
    assert "REHEARSAL" in md and costplan.headline(rows, 2) in md


def test_the_cost_plan_record_renders_the_readme_line(smoke_plan):
    from grokking.report import costplan, records

    _, _, layout, rows = smoke_plan
    cpu = records.cpu_identity()
    rec = costplan.record(rows, layout, "smoke", cpu, 2, "abc123")
    assert rec["kind"] == "cost_plan" and rec["preset"] == "x" and rec["jobs"] == len(rows)
    assert rec["cpu_hours"] == round(sum(r["estimate_s"] for r in rows) / 3600, 1)
    assert rec["max_rss_gib"] == round(300 / 1024, 2) and 0 <= rec["wall_minutes"] < 60
    assert records.render_cost_plan([]).startswith("- no rehearsal recorded yet")
    line = records.render_cost_plan([{"kind": "build"}, dict(rec, cpu_hours=1234.5, gpu_hours=12.25)])
    assert "**1.23e+03 CPU-hours**" in line and "**12.2 GPU-hours**" in line and "`smoke` preset" in line
    assert records.describe_cpu(cpu) in line and "abc123" in line


def test_the_parameter_count_is_each_familys_own(presets):
    """gridplan.parameter_count (torch-free, for the DAG's resource requests) counts what each family's own
    initialisation makes, for every shape of the paper preset (runs, grid stacks, widths)."""
    import torch

    from grokking.experiments.gridplan import parameter_count
    from grokking.models import get_family, shape_from_spec

    paper, _ = presets
    specs = [resolve_run(paper, r) for r in paper["runs"]] + [c["stack"] for c in plan(paper).values()]
    specs += [width_spec(paper, w) for w in paper["width_sweep"]["widths"]]
    shapes = {shape_from_spec(s): s for s in specs}
    assert {type(s).__name__ for s in shapes} >= {"MLPShape", "TransformerShape", "DeepMLPShape"}
    with torch.device("meta"):
        for shape, spec in shapes.items():
            params, _ = get_family(shape).init(shape, 0, None)
            assert parameter_count(spec) == sum(v.numel() for v in params.values()), shape


def test_a_jobs_request_grows_with_its_size_and_steps(presets):
    from grokking.experiments.gridplan import job_resources, multiply_adds, parameter_count

    paper, _ = presets
    res = dict(paper["resources"], mem_mb=1, runtime=1)
    e = res["estimate"]
    spec = resolve_run(paper, "r1_wd0")
    one, many = job_resources(spec, 1, res), job_resources(spec, 40, res)
    assert many["mem_mb"] > one["mem_mb"] and many["runtime"] > one["runtime"]
    longer = job_resources(dict(spec, steps=10 * spec["steps"]), 1, res)
    assert longer["mem_mb"] == one["mem_mb"] and longer["runtime"] > one["runtime"]
    expected = e["headroom"] * (e["base_mb"] + e["bytes_per_parameter"] * 40 * parameter_count(spec) / 2**20)
    assert many["mem_mb"] == pytest.approx(expected, abs=1)
    minutes = e["headroom"] * (e["start_minutes"] + 2 * multiply_adds(spec, 40) / (1e9 * e["cpu_gflops"]) / 60)
    assert many["runtime"] == pytest.approx(minutes, abs=1)
    on_gpu = job_resources(spec, 40, dict(res, gpu=1))
    assert on_gpu["runtime"] < many["runtime"] and on_gpu["mem_mb"] == many["mem_mb"]
    assert job_resources(spec, 40, res, train=False)["runtime"] == math.ceil(e["headroom"] * e["start_minutes"])
    floors = job_resources(spec, 1, dict(res, mem_mb=10**6, runtime=10**4))  # the config's least request
    assert floors == {"mem_mb": 10**6, "runtime": 10**4}


def test_a_pruning_jobs_time_follows_its_logits(presets):
    """A pruning sweep (prune_run, and each width job after training) asks for time in proportion to the logits it
    computes (models x p^2 pairs x N pruned counts x p classes): Fig 32's widest job asks for more than its
    narrowest, and for more than its training alone."""
    from grokking.experiments.gridplan import job_resources, pruning_logits

    paper, _ = presets
    res = dict(paper["resources"], mem_mb=1, runtime=1)
    e = res["estimate"]
    jobs = width_sweep_jobs(paper)
    narrow, wide = (jobs[n] for n in (min(jobs), max(jobs)))
    spec, k = wide["spec"], len(wide["seeds"])
    assert pruning_logits(spec, k) == k * spec["p"] ** 3 * spec["width"]
    only_prune = job_resources(spec, k, res, train=False, prune=True)["runtime"]
    minutes = e["headroom"] * (e["start_minutes"] + pruning_logits(spec, k) / (1e9 * e["cpu_prune_rate"]) / 60)
    assert only_prune == pytest.approx(minutes, abs=1)
    both = job_resources(spec, k, res, prune=True)["runtime"]
    assert both > job_resources(spec, k, res)["runtime"] and both > only_prune
    assert both > job_resources(narrow["spec"], len(narrow["seeds"]), res, prune=True)["runtime"]


def test_the_fitted_estimate_covers_every_job_and_no_more(smoke_plan):
    """calibrate.fit gives the resources.estimate under which every job of a cost plan asks for at least what the
    rehearsal measured (before headroom), and not much more: asking for less breaks it for some job."""
    from grokking.experiments.gridplan import parameter_count
    from grokking.report import calibrate, costplan

    real, _, _, rows = smoke_plan
    params = [j["models"] * parameter_count(j["stack"]) for j in costplan.jobs(real)]
    rows = [dict(r, max_rss_mb=250 + 24 * n / 2**20) for r, n in zip(rows, params, strict=True)]
    for r in rows:  # pruning takes its jobs 10 minutes more
        if r["rule"] in ("prune_run", "train_width_job"):
            r.update(wall_s=r["wall_s"] + 600, estimate_s=r["estimate_s"] + 600)
    fitted = calibrate.fit(rows, real)
    assert fitted["bytes_per_parameter"] == pytest.approx(24, abs=0.1) and fitted["base_mb"] in (250, 251)
    assert fitted["start_minutes"] == round(4 / 60, 2)  # the made-up jobs spend 10 - 6 s outside their training
    assert fitted["gpu_gflops"] == real["resources"]["estimate"]["gpu_gflops"]  # a CPU rehearsal leaves it
    exact = dict(real["resources"], mem_mb=1, runtime=1, estimate=dict(fitted, headroom=1))
    assert calibrate.shortfalls(rows, real, exact) == []
    for key, factor in (("cpu_gflops", 1.5), ("base_mb", 0.9), ("cpu_prune_rate", 1.5)):
        stingy = dict(exact, estimate=dict(exact["estimate"], **{key: factor * fitted[key]}))
        short = calibrate.shortfalls(rows, real, stingy)
        assert short, key
        if key == "cpu_prune_rate":  # only the jobs that prune
            assert {s["rule"] for s in short} <= {"prune_run", "train_width_job"}
    md = calibrate.to_markdown(fitted, calibrate.shortfalls(rows, real, stingy), len(rows), exact["estimate"])
    assert f"asks {len(rows) - len(short)} of {len(rows)} jobs" in md and "short: `" in md
