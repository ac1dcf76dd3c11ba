"""IPR sanity checks (PAPER.md A8) and the phase decision list (A10)."""

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
    assert r.mean().item() == pytest.approx(2 / 49, rel=0.15)  # PAPER.md A8: approx 0.04


def test_ipr_is_scale_free_and_neuron_ipr_averages_u_v_w():
    g = torch.Generator().manual_seed(2)
    params = {"U": torch.randn(2, 5, P, generator=g), "V": torch.randn(2, 5, P, generator=g),
              "W": torch.randn(2, P, 5, generator=g)}
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
    train, test, xi, best = (np.array(x) for x in zip(*(c[0] for c in CASES)))
    np.testing.assert_array_equal(classify(train, test, xi, best), [c[1] for c in CASES])
    assert classify(0.85, 0.85, 0.3, 0.85, accuracy_threshold=0.8) == "Coexistence"
    assert classify(0.01, 0.01, 0.35, 0.85, forgetting_threshold=0.8) == "Forgetting"
    assert set(PHASES) == {"Coexistence", "Partial Inversion", "Full Inversion", "Memorization",
                           "Forgetting", "Confusion"}


def test_without_a_curve_collapsed_runs_count_as_confusion():
    assert classify(0.01, 0.01, 0.35) == "Confusion"
