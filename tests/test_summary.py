"""summarize: final metrics, maxima over the logged points and the phase, on hand-made curves.

The library's decision (grokking.experiments.summary): max_test_acc / max_train_acc are the maxima over the
LOGGED points (docs/paper.md §A7's running maximum sampled on the log schedule), and the phase is A10's decision
list on the final accuracies, with Forgetting vs Confusion decided by that maximum test accuracy.
"""

import warnings

import numpy as np
import pytest

from grokking.experiments.summary import summarize


def curves(train, test, corrupted=None, **more):
    """Curves of one model over the logged points; corrupted defaults to train (any values do)."""
    out = {
        "train_acc": np.asarray(train, dtype=float),
        "test_acc": np.asarray(test, dtype=float),
        "corrupted_acc": np.asarray(train if corrupted is None else corrupted, dtype=float),
    }
    out.update({k: np.asarray(v, dtype=float) for k, v in more.items()})
    return out


# Hand-made runs at xi = 0.35 (Partial/Full boundary at train 1.05 - 0.35 = 0.7), with their phase set by hand.
RUNS = {
    # generalizes above 0.9 at a logged point, then both accuracies collapse: Forgetting (Fig 8)
    "forgetting": (curves([0.02, 1.0, 0.97, 0.4, 0.01], [0.01, 0.5, 0.95, 0.3, 0.01]), 0.35, "Forgetting"),
    # its logged test accuracy never reaches 0.9 (0.89 at best): Confusion
    "confusion": (curves([0.02, 0.6, 0.8, 0.5, 0.4], [0.01, 0.3, 0.89, 0.6, 0.3]), 0.35, "Confusion"),
    # memorizes, then generalizes, and keeps the corrupted labels: Coexistence (Fig 1a)
    "coexistence": (curves([0.1, 1.0, 1.0, 0.99, 0.98], [0.01, 0.05, 0.4, 0.9, 0.97]), 0.35, "Coexistence"),
    # train first reaches 1, then falls below 0.9 but stays >= 0.7 (Fig 1b)
    "partial": (curves([0.1, 1.0, 0.95, 0.85, 0.8], [0.01, 0.2, 0.8, 0.99, 1.0]), 0.35, "Partial Inversion"),
    # train falls to the plateau 1 - xi + xi/p (Fig 1c)
    "full": (curves([0.1, 1.0, 0.9, 0.7, 0.654], [0.01, 0.3, 0.9, 1.0, 1.0]), 0.35, "Full Inversion"),
    # fits the training set, test never above 0.2: Memorization, although train fell back below its peak
    "memorization": (curves([0.1, 1.0, 0.95, 0.93, 0.92], [0.01, 0.05, 0.2, 0.1, 0.05]), 0.35, "Memorization"),
    # a final test accuracy above 0.9 that is not the maximum does not matter; xi = 0.05 < 0.15: train 0.89
    # is below 1.05 - xi = 1.0 -> Full Inversion (rows 1-2 of Table 2 overlap; the ordered list decides)
    "clean_ish": (curves([0.5, 0.95, 0.89], [0.4, 0.99, 0.93]), 0.05, "Full Inversion"),
}


@pytest.mark.parametrize("name", sorted(RUNS))
def test_phase_of_hand_made_runs(name):
    c, xi, phase = RUNS[name]
    assert summarize(c, xi)["phase"] == phase


def test_forgetting_and_confusion_known_answers():
    s = summarize(*RUNS["forgetting"][:2])
    assert (s["train_acc"], s["test_acc"]) == (0.01, 0.01)  # the last logged point
    assert (s["max_train_acc"], s["max_test_acc"]) == (1.0, 0.95)  # the largest logged point
    s = summarize(*RUNS["confusion"][:2])
    assert (s["train_acc"], s["test_acc"], s["max_test_acc"], s["max_train_acc"]) == (0.4, 0.3, 0.89, 0.8)


def test_maxima_are_over_the_logged_points_only():
    """A peak between two logged steps is not seen: the same run logged more sparsely, skipping its
    peak, is Confusion instead of Forgetting."""
    train = [0.02, 0.95, 0.5, 0.6, 0.05]
    test = [0.01, 0.92, 0.4, 0.5, 0.02]
    dense = summarize(curves(train, test), 0.35)
    sparse = summarize(curves(train[::2], test[::2]), 0.35)  # points 1, 3, 5 of the dense log
    assert (dense["max_test_acc"], dense["max_train_acc"], dense["phase"]) == (0.92, 0.95, "Forgetting")
    assert (sparse["max_test_acc"], sparse["max_train_acc"], sparse["phase"]) == (0.4, 0.5, "Confusion")
    assert sparse["test_acc"] == dense["test_acc"] == 0.02


def test_finals_are_the_last_logged_point_of_every_metric():
    c = curves(
        [0.1, 0.5, 0.8],
        [0.2, 0.6, 0.7],
        corrupted=[0.3, 0.2, 0.1],
        uncorrupted_acc=[0.4, 0.6, 0.9],
        train_loss=[1.0, 0.5, 0.25],
        test_loss=[2.0, 1.0, 0.75],
        norm_w=[1.0, 3.0, 2.0],
        ipr_mean=[0.04, 0.2, 0.6],
        batch_loss=[9.0, 8.0, 7.0],
        step=[1, 2, 4],
    )
    s = summarize(c, 0.35)
    assert {
        k: float(s[k])
        for k in (
            "train_acc",
            "test_acc",
            "corrupted_acc",
            "uncorrupted_acc",
            "train_loss",
            "test_loss",
            "norm_w",
            "ipr_mean",
        )
    } == {
        "train_acc": 0.8,
        "test_acc": 0.7,
        "corrupted_acc": 0.1,
        "uncorrupted_acc": 0.9,
        "train_loss": 0.25,
        "test_loss": 0.75,
        "norm_w": 2.0,
        "ipr_mean": 0.6,
    }
    # the pre-update batch loss and the step counter are not final metrics of the network
    assert "batch_loss" not in s and "step" not in s


def test_clean_runs_have_nan_corrupted_accuracy_and_a_phase():
    """xi = 0: nothing is corrupted, the corrupted-subset accuracy is NaN at every point (A7)."""
    nan = float("nan")
    c = curves([0.3, 1.0, 1.0], [0.01, 0.6, 0.99], corrupted=[nan, nan, nan])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no all-NaN warning either
        s = summarize(c, 0.0)
    assert np.isnan(s["corrupted_acc"])
    assert (s["phase"], s["max_test_acc"], s["max_train_acc"]) == ("Coexistence", 0.99, 1.0)
    # a clean run that fits the training set but does not generalize
    assert summarize(curves([0.3, 1.0, 1.0], [0.01, 0.2, 0.1], corrupted=[nan] * 3), 0.0)["phase"] == "Memorization"


def test_many_models_at_once_equal_one_at_a_time():
    """Curves (T, K) over K models give the per-model answers, xi broadcast per model; the clean model's
    NaN corrupted accuracy stays in its own column."""
    names = ["forgetting", "confusion", "coexistence", "partial", "full", "memorization"]
    nan = float("nan")
    stacked = {k: np.stack([RUNS[n][0][k] for n in names], axis=1) for k in ("train_acc", "test_acc", "corrupted_acc")}
    stacked["corrupted_acc"][:, 2] = nan  # the Coexistence model is clean in this stack
    xi = np.array([0.35, 0.35, 0.0, 0.35, 0.35, 0.35])
    many = summarize(stacked, xi)
    assert list(many["phase"]) == [RUNS[n][2] for n in names]  # hand-set phases
    for j, n in enumerate(names):
        one = summarize({k: v[:, j] for k, v in stacked.items()}, xi[j])
        assert one["phase"] == many["phase"][j]
        for key in ("train_acc", "test_acc", "max_test_acc", "max_train_acc", "corrupted_acc"):
            np.testing.assert_array_equal(many[key][j], one[key], err_msg=f"{n} {key}")
    assert np.isnan(many["corrupted_acc"][2]) and not np.isnan(many["corrupted_acc"][[0, 1, 3, 4, 5]]).any()


def test_phase_rules_come_from_the_config():
    """Thresholds are config keys (A10), passed as ``rules`` over the defaults."""
    c, xi, _ = RUNS["confusion"]  # max test 0.89
    assert summarize(c, xi, {"forgetting_threshold": 0.85})["phase"] == "Forgetting"
    c, xi, _ = RUNS["full"]  # final train 0.654: Full Inversion below 0.7, Partial Inversion from 0.6
    assert summarize(c, xi, {"inversion_slack": 0.95})["phase"] == "Partial Inversion"
    c, xi, _ = RUNS["coexistence"]  # final test 0.97 < 0.98
    assert summarize(c, xi, {"accuracy_threshold": 0.98})["phase"] == "Memorization"
