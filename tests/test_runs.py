"""Single runs end to end through the library: determinism, results format, and the paper's phases."""

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import table2_phase

from grokking import load_run
from grokking.data import Universe
from grokking.experiments.runs import run_and_save
from grokking.experiments.specs import resolve, resolve_run
from grokking.results import write_npz


def tiny_spec(**over):
    """The paper config's run defaults, shrunk (every key the schema requires, none kept by hand)."""
    config = yaml.safe_load(open(Path(__file__).resolve().parents[1] / "config" / "config.yaml"))
    tiny = dict(
        p=13,
        train_fraction=0.6,
        corruption=0.2,
        width=24,
        dropout=0.2,
        weight_decay=1.0,
        batch_size=16,
        steps=30,
        seed=3,
    )
    return dict(resolve(config, tiny, over), name="tiny")


@pytest.fixture
def data13(tmp_path):
    path = tmp_path / "add_p13.npz"
    write_npz(path, **Universe.build("add", 13).to_arrays())
    return path


def test_same_spec_same_numbers(tmp_path, data13):
    a = run_and_save(tiny_spec(), data13, tmp_path / "a", device="cpu", progress=False)
    b = run_and_save(tiny_spec(), data13, tmp_path / "b", device="cpu", progress=False)
    ra, rb = load_run(tmp_path / "a"), load_run(tmp_path / "b")
    for key in ra.curves:
        np.testing.assert_array_equal(ra.curves[key], rb.curves[key], err_msg=key)
    for key in ra.params:
        assert (ra.params[key] == rb.params[key]).all()
    assert a["train_acc"] == b["train_acc"] and a["phase"] == b["phase"]
    run_and_save(tiny_spec(seed=4), data13, tmp_path / "c", device="cpu", progress=False)
    assert not np.array_equal(load_run(tmp_path / "c").curves["train_loss"], ra.curves["train_loss"])


def test_results_format(tmp_path, data13):
    spec = tiny_spec(steps=200, batch_size="full", dropout=0.0)
    run_and_save(spec, data13, tmp_path / "run", device="cpu", progress=False)
    run = load_run(tmp_path / "run")
    s = run.summary
    for key in ("train_acc", "test_acc", "corrupted_acc", "uncorrupted_acc", "train_loss", "test_loss"):
        assert 0 <= s[key] <= (1 if key.endswith("acc") else np.inf)
    assert s["settings"]["train_fraction"] == 0.6 and s["settings"]["width"] == 24
    assert s["n_train"] == 101 and s["n_noise"] == 20  # floor(0.6*169), floor(0.2*101)
    # curves: step 1, then every steps/100 = 2 steps, ending at 200 -> 101 points
    assert run.curves["step"][0] == 1 and run.curves["step"][-1] == 200 and len(run.curves["step"]) == 101
    assert run.curves["neuron_ipr"].shape == (101, 24)
    # train accuracy is the weighted mean of its two subsets
    n_c, n_u = s["n_noise"], s["n_train"] - s["n_noise"]
    assert s["train_acc"] == pytest.approx((n_c * s["corrupted_acc"] + n_u * s["uncorrupted_acc"]) / s["n_train"])
    # the summary's finals and maxima are the curves' last and largest logged points; its phase is Table 2's
    # decision list on those numbers
    assert (s["train_acc"], s["test_acc"]) == (run.curves["train_acc"][-1], run.curves["test_acc"][-1])
    assert s["max_test_acc"] == run.curves["test_acc"].max() and s["max_train_acc"] == run.curves["train_acc"].max()
    assert s["phase"] == table2_phase(s["train_acc"], s["test_acc"], 0.2, s["max_test_acc"])
    assert run.params["U"].shape == (24, 13) and run.params["W"].shape == (13, 24)
    assert not (run.params["U"] == run.init_params["U"]).all()
    assert json.load(open(tmp_path / "run" / "spec.json"))["name"] == "tiny"
    assert not list((tmp_path / "run").glob("*.tmp"))  # atomic writes leave no temp files


def test_mismatched_dataset_is_refused(tmp_path, data13):
    with pytest.raises(ValueError, match="dataset"):
        run_and_save(tiny_spec(p=11), data13, tmp_path / "x", device="cpu", progress=False)


@pytest.mark.parametrize(
    "run,phase", [("r1_wd0", "Coexistence"), ("r2_wd5", "Partial Inversion"), ("r3_wd15", "Full Inversion")]
)
def test_fig1_runs_land_in_the_paper_phases(repo_root, tmp_path, run, phase):
    """docs/paper.md §B (Fig 1) at the paper's own settings (alpha 0.5, xi 0.35, N 500, p 97): ~20-40 s each."""
    import torch

    torch.set_num_threads(2)
    cfg = yaml.safe_load(open(repo_root / "config" / "config.yaml"))
    spec = resolve_run(cfg, run)
    data = tmp_path / "add_p97.npz"
    write_npz(data, **Universe.build("add", 97).to_arrays())
    s = run_and_save(spec, data, tmp_path / run, device="cpu", progress=False)
    assert s["phase"] == phase
    assert s["max_train_acc"] >= 0.99  # two-stage dynamics: the network first fits everything
    if phase == "Full Inversion":
        assert s["train_acc"] == pytest.approx(1 - 0.35 + 0.35 / 97, abs=0.01)  # the plateau
        assert s["corrupted_acc"] < 0.05
