"""IPR sanity checks (docs/paper.md §A8) and the phase decision list (A10)."""

import math

import numpy as np
import pytest
import torch

from grokking.metrics import ipr
from grokking.models.mlp2 import neuron_ipr, weight_norms
from grokking.phases import PHASES, classify

P = 97


@pytest.mark.parametrize("freq", [1, 5, 48])
@pytest.mark.parametrize("mode", ["rfft", "fft"])
def test_pure_cosine_has_ipr_one(freq, mode):
    n = torch.arange(P, dtype=torch.float64)
    x = 3.0 * torch.cos(2 * math.pi * freq * n / P + 0.7)
    # two-sided: a real cosine has two equal peaks (+f and -f), so IPR = 1/2
    expected = 1.0 if mode == "rfft" else 0.5
    assert ipr(x, mode).item() == pytest.approx(expected, abs=1e-10)


@pytest.mark.parametrize("mode,bins", [("rfft", P // 2 + 1), ("fft", P)])
def test_delta_has_the_minimum_ipr(mode, bins):
    x = torch.zeros(P, dtype=torch.float64)
    x[17] = 1.0
    assert ipr(x, mode).item() == pytest.approx(1.0 / bins, rel=1e-12)
    # and nothing scores lower: random vectors lie above the minimum
    g = torch.Generator().manual_seed(0)
    r = ipr(torch.randn(1000, P, generator=g, dtype=torch.float64), mode)
    assert (r >= 1.0 / bins - 1e-12).all()


def test_gaussian_rows_are_near_the_random_level():
    g = torch.Generator().manual_seed(1)
    r = ipr(torch.randn(5000, P, generator=g, dtype=torch.float64))
    assert r.mean().item() == pytest.approx(2 / 49, rel=0.15)  # docs/paper.md §A8: approx 0.04


def test_ipr_is_scale_free_and_neuron_ipr_averages_u_v_w():
    g = torch.Generator().manual_seed(2)
    params = {
        "U": torch.randn(2, 5, P, generator=g),
        "V": torch.randn(2, 5, P, generator=g),
        "W": torch.randn(2, P, 5, generator=g),
    }
    scaled = {k: 7.5 * v for k, v in params.items()}
    torch.testing.assert_close(neuron_ipr(params), neuron_ipr(scaled))
    manual = (ipr(params["U"][1, 3]) + ipr(params["V"][1, 3]) + ipr(params["W"][1, :, 3])) / 3
    torch.testing.assert_close(neuron_ipr(params)[1, 3], manual)
    norms = weight_norms(params)
    torch.testing.assert_close(norms["norm_w"][0], params["W"][0].norm())


# (train, test, xi, max_test) -> phase; accuracies as fractions
CASES = [
    ((0.98, 0.98, 0.35, 0.98), "Coexistence"),
    ((0.90, 0.90, 0.35, 0.90), "Coexistence"),  # inclusive thresholds
    ((0.78, 1.00, 0.35, 1.00), "Partial Inversion"),
    ((0.70, 1.00, 0.35, 1.00), "Partial Inversion"),  # exactly 1.05 - xi
    ((0.654, 1.00, 0.35, 1.00), "Full Inversion"),
    ((1.00, 0.05, 0.35, 0.20), "Memorization"),
    ((0.01, 0.01, 0.35, 1.00), "Forgetting"),
    ((0.40, 0.30, 0.35, 0.50), "Confusion"),
    # xi < 0.15: 1.05 - xi > 0.9, so rows overlap; the ordered list sends < 0.9 straight to Full Inversion
    ((0.89, 0.99, 0.10, 0.99), "Full Inversion"),
    ((0.95, 0.99, 0.10, 0.99), "Coexistence"),
]


@pytest.mark.parametrize("args,phase", CASES)
def test_decision_list_on_hand_made_cases(args, phase):
    assert classify(*args) == phase


def test_classify_is_vectorized_and_thresholds_are_configurable():
    train, test, xi, best = (np.array(x) for x in zip(*(c[0] for c in CASES), strict=True))
    np.testing.assert_array_equal(classify(train, test, xi, best), [c[1] for c in CASES])
    assert classify(0.85, 0.85, 0.3, 0.85, accuracy_threshold=0.8) == "Coexistence"
    assert classify(0.01, 0.01, 0.35, 0.85, forgetting_threshold=0.8) == "Forgetting"
    assert set(PHASES) == {
        "Coexistence",
        "Partial Inversion",
        "Full Inversion",
        "Memorization",
        "Forgetting",
        "Confusion",
        "Diverged",
    }
    assert classify(np.nan, np.nan, 0.2, np.nan) == "Diverged"  # a model whose loss stopped being finite


# Each phase's boundary, just at and just below the threshold (0.8999 is one example in 10^4 below 0.9).
# Thresholds: accuracy 0.9 (inclusive) on final train and test, inversion 1.05 - xi (inclusive) on final train,
# forgetting 0.9 (inclusive) on the maximum test accuracy over training.
BOUNDARY_CASES = [
    # Memorization: train >= 0.9 with test < 0.9
    ((0.90, 0.8999, 0.35, 0.8999), "Memorization"),  # train at the threshold
    ((0.8999, 0.8999, 0.35, 0.8999), "Confusion"),  # train just below: no longer memorizes
    ((1.00, 0.8999, 0.35, 0.8999), "Memorization"),  # test just below: does not generalize
    ((1.00, 0.90, 0.35, 0.90), "Coexistence"),  # test at the threshold: generalizes
    # Forgetting vs Confusion: both finals < 0.9, decided by the maximum test accuracy over training
    ((0.50, 0.30, 0.35, 0.90), "Forgetting"),  # max test at the threshold
    ((0.50, 0.30, 0.35, 0.8999), "Confusion"),  # max test just below
    ((0.8999, 0.8999, 0.35, 0.90), "Forgetting"),  # both finals just below, max test at it
    ((0.50, 0.8999, 0.35, 0.8999), "Confusion"),  # final test just below: not Full Inversion
    ((0.50, 0.90, 0.35, 0.90), "Full Inversion"),  # final test at the threshold
    # Full Inversion vs Partial Inversion at 1.05 - xi
    ((0.6999, 0.90, 0.35, 0.95), "Full Inversion"),  # just below 1.05 - 0.35 = 0.7
    ((0.70, 0.90, 0.35, 0.95), "Partial Inversion"),  # at it (in binary 1.05 - 0.35 = 0.7000000000000001)
    ((0.8499, 1.00, 0.20, 1.00), "Full Inversion"),  # just below 1.05 - 0.2 = 0.85
    ((0.85, 1.00, 0.20, 1.00), "Partial Inversion"),  # at it (in binary 1.05 - 0.2 = 0.8500000000000001)
    ((0.8999, 1.00, 0.20, 1.00), "Partial Inversion"),  # just below Coexistence
    # xi < 0.15: 1.05 - xi > 0.9, rows 1 and 2 of Table 2 overlap; the ordered list decides
    ((0.90, 0.90, 0.10, 0.90), "Coexistence"),  # meets rows 1 and 2 (0.9 < 0.95): row 1 comes first
    ((0.9499, 1.00, 0.10, 1.00), "Coexistence"),  # below 1.05 - xi = 0.95 but >= 0.9
    ((0.8999, 0.90, 0.10, 0.90), "Full Inversion"),  # below 0.9 is below 0.95: never Partial Inversion
    ((0.8999, 1.00, 0.00, 1.00), "Full Inversion"),  # xi = 0: 1.05 - xi is out of reach
    ((0.90, 1.00, 0.15, 1.00), "Coexistence"),  # xi = 0.15: both thresholds are 0.9
    ((0.8999, 1.00, 0.15, 1.00), "Full Inversion"),
    # accuracies as counts: 846 of 940 correct is exactly 90 %
    ((846 / 940, 1.00, 0.35, 1.00), "Coexistence"),
    ((845 / 940, 1.00, 0.35, 1.00), "Partial Inversion"),
    ((1.00, 846 / 940, 0.35, 846 / 940), "Coexistence"),
    ((1.00, 845 / 940, 0.35, 845 / 940), "Memorization"),
]


@pytest.mark.parametrize("args,phase", BOUNDARY_CASES)
def test_decision_list_at_each_threshold(args, phase):
    assert classify(*args) == phase


def test_boundaries_vectorized():
    train, test, xi, best = (np.array(x) for x in zip(*(c[0] for c in BOUNDARY_CASES), strict=True))
    np.testing.assert_array_equal(classify(train, test, xi, best), [c[1] for c in BOUNDARY_CASES])


def test_partial_inversion_needs_xi_above_0_15():
    """For xi <= 0.15, train >= 1.05 - xi implies train >= 0.9, so row 1 always takes it first."""
    k = np.arange(10001)
    train = k / 10000  # k correct of 10^4
    for xi in (0.0, 0.05, 0.1, 0.15):
        assert "Partial Inversion" not in set(classify(train, np.ones_like(train), xi, np.ones_like(train)))
    got = classify(train, np.ones_like(train), 0.2, np.ones_like(train))
    np.testing.assert_array_equal(got == "Partial Inversion", (k >= 8500) & (k < 9000))


def test_inversion_slack_is_configurable():
    assert classify(0.80, 1.0, 0.35, 1.0) == "Partial Inversion"  # 0.8 >= 1.05 - 0.35
    assert classify(0.80, 1.0, 0.35, 1.0, inversion_slack=1.2) == "Full Inversion"  # 0.8 < 1.2 - 0.35
    assert classify(0.60, 1.0, 0.35, 1.0, inversion_slack=0.95) == "Partial Inversion"  # 0.6 >= 0.95 - 0.35


def test_without_a_curve_collapsed_runs_count_as_confusion():
    assert classify(0.01, 0.01, 0.35) == "Confusion"
