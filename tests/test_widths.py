"""Fig 32: the retention criterion, the per-width summary, and width jobs (seeds stacked, then pruned)."""

import json

import numpy as np
import pytest

from grokking.data import Universe
from grokking.experiments.widths import (
    describe_retention,
    merge_width_sweep,
    prunable_count,
    retained_count,
    train_width_job,
)
from grokking.results import write_npz


@pytest.mark.parametrize(
    "curve,rule,want",
    [
        ([0.95, 0.93, 0.91, 0.5, 0.92, 0.1], "prefix", 2),  # stays >= 0.9 through 2 pruned neurons
        ([0.95, 0.93, 0.91, 0.5, 0.92, 0.1], "last", 4),  # the last count that passes on its own
        ([0.95, 0.94, 0.93], "prefix", 2),  # every count passes: all but the last neuron
        ([0.85, 0.95, 0.99], "prefix", -1),  # the unpruned network does not generalize
        ([0.85, 0.95, 0.99], "last", -1),
        ([0.9, 0.89], "prefix", 0),  # the threshold itself passes
    ],
)
def test_prunable_count(curve, rule, want):
    assert prunable_count(curve, 0.9, rule) == want


def test_unknown_rule_is_an_error():
    with pytest.raises(ValueError, match="width_sweep.retention.rule"):
        prunable_count([1.0], 0.9, "median")


WIDE = [0.88, 0.85, 0.80, 0.78, 0.2]  # a wide net still short of 0.9 when training stops


@pytest.mark.parametrize(
    "retention,want",
    [
        ({"threshold": 0.9}, -1),  # absolute: it never generalized
        ({"threshold": 0.9, "relative": True, "generalized": 0.5}, 2),  # bar 0.9 * 0.88 = 0.792
        ({"threshold": 0.9, "relative": True, "generalized": 0.5, "rule": "last"}, 2),
        ({"threshold": 0.85, "relative": True, "generalized": 0.5}, 3),  # bar 0.748
        ({"threshold": 0.9, "relative": True}, -1),  # the gate defaults to the threshold
        ({"threshold": 0.9, "relative": True, "generalized": 0.95}, -1),
        ({"threshold": 0.9, "generalized": 0.5}, -1),  # absolute mode also needs the threshold unpruned
    ],
)
def test_retained_count_absolute_and_relative(retention, want):
    assert retained_count(WIDE, {"metric": "test_acc", **retention}) == want


def test_relative_criterion_scales_with_the_unpruned_value():
    """The same curve shape at a lower level keeps the same count under the relative criterion."""
    r = {"metric": "test_acc", "threshold": 0.9, "relative": True, "generalized": 0.5}
    curve = np.asarray([1.0, 0.97, 0.93, 0.89, 0.5])
    assert retained_count(curve, r) == retained_count(0.7 * curve, r) == 2
    assert prunable_count(0.7 * curve, 0.9) == -1


def test_describe_retention_names_the_criterion():
    assert describe_retention({"metric": "test_acc", "threshold": 0.9}) == "test acc >= 0.9 (prefix rule)"
    relative = {"metric": "test_acc", "threshold": 0.9, "relative": True, "generalized": 0.5}
    assert describe_retention(relative) == (
        "test acc >= 0.9 x its unpruned value (prefix rule), seeds whose unpruned test acc >= 0.5"
    )


def _job(path, width, seeds, curves, final_test, diverged_at=None):
    write_npz(
        path,
        width=np.int64(width),
        seeds=np.asarray(seeds),
        pruned_test_acc=np.asarray(curves, np.float32),
        final_test_acc=np.asarray(final_test),
        final_train_acc=np.where(np.isnan(final_test), np.nan, 1.0),
        diverged_at=np.asarray(diverged_at or [-1] * len(seeds)),
    )


def test_merge_summarizes_required_and_prunable_neurons(tmp_path):
    # width 4: seeds prune 2 and 1 neurons (required 2 and 3); width 6: one seed never generalized, the
    # other diverged at step 30 (its curves NaN, as the width job writes them)
    _job(tmp_path / "a.npz", 4, [1, 2], [[1, 1, 1, 0.2], [1, 1, 0.3, 0.2]], [1, 1])
    _job(tmp_path / "b.npz", 6, [1, 2], [[1, 1, 1, 1, 1, 0.5], [0.5, 0.1, 0.1, 0.1, 0.1, 0.1]], [1, 0.5])
    _job(tmp_path / "c.npz", 6, [3], [[np.nan] * 6], [np.nan], [30])
    out = merge_width_sweep(
        [tmp_path / "b.npz", tmp_path / "c.npz", tmp_path / "a.npz"],
        {"metric": "test_acc", "threshold": 0.9},
        tmp_path / "s.npz",
        tmp_path / "s.csv",
    )
    assert out["widths"].tolist() == [4, 6]
    assert out["seeds_generalized"].tolist() == [2, 1] and out["seeds_total"].tolist() == [2, 3]
    assert out["seeds_diverged"].tolist() == [0, 1]
    assert out["required_mean"][0] == pytest.approx(2.5)
    assert out["required_se"][0] == pytest.approx(np.std([2, 3], ddof=1) / np.sqrt(2))
    assert out["prunable_pct_mean"][0] == pytest.approx(100 * 1.5 / 4)
    assert out["required_mean"][1] == pytest.approx(2) and np.isnan(out["required_se"][1])
    assert json.loads(str(out["retention"])) == {
        "metric": "test_acc",
        "threshold": 0.9,
        "rule": "prefix",
        "relative": False,
        "generalized": 0.9,
    }
    rows = (tmp_path / "s.csv").read_text().splitlines()
    assert rows[0] == "width,seed,final_train_acc,final_test_acc,generalized,prunable,required,diverged"
    assert rows[1:] == ["4,1,1,1,1,2,2,0", "4,2,1,1,1,1,3,0", "6,1,1,1,1,4,2,0", "6,2,1,0.5,0,,,0", "6,3,nan,nan,0,,,1"]


def _spec(p, width, steps=60):
    return {
        "operation": "add",
        "p": p,
        "train_fraction": 0.6,
        "corruption": 0.3,
        "width": width,
        "activation": "quadratic",
        "norm": "none",
        "dropout": 0.0,
        "loss": "mse",
        "lr": 0.01,
        "betas": [0.9, 0.98],
        "eps": 1e-8,
        "weight_decay": 1.0,
        "batch_size": "full",
        "steps": steps,
        "seed": 1,
        "init_scale": None,
        "log_every": 20,
        "pair_seed": 420,
        "label_seed": 0,
        "ipr_mode": "rfft",
    }


@pytest.fixture(scope="module")
def data_path(tmp_path_factory):

    path = tmp_path_factory.mktemp("data") / "add_p17.npz"
    u = Universe.build("add", 17, pair_seed=420, label_seed=0)
    write_npz(path, **u.to_arrays())
    return path


def test_width_job_stacks_seeds_without_coupling_them(data_path, tmp_path):
    """A seed trained inside a stack prunes exactly like the same seed trained alone, and pruning
    nothing gives the trained network's own accuracy."""
    both = train_width_job(
        {"spec": _spec(17, 24), "seeds": [1, 2]}, data_path, tmp_path / "b.npz", device="cpu", progress=False
    )
    alone = train_width_job(
        {"spec": _spec(17, 24), "seeds": [2]}, data_path, tmp_path / "a.npz", device="cpu", progress=False
    )
    assert both["pruned_test_acc"].shape == (2, 24)
    np.testing.assert_allclose(both["pruned_test_acc"][1], alone["pruned_test_acc"][0], atol=1e-6)
    np.testing.assert_allclose(both["neuron_ipr"][1], alone["neuron_ipr"][0], rtol=1e-4)
    np.testing.assert_allclose(both["pruned_test_acc"][:, 0], both["final_test_acc"], atol=2 / 145)
    assert not np.allclose(both["pruned_test_acc"][0], both["pruned_test_acc"][1])  # seeds differ
