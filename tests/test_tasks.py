"""Dataset invariants (docs/paper.md §A1-A2, D12)."""

import random

import numpy as np
import pytest
import torch

from grokking.data import Universe, noise_count, pair_order, random_label_stream, train_size

# docs/paper.md §A1 table.
TRAIN_SIZES = {0.1: 940, 0.3: 2822, 0.4: 3763, 0.5: 4704, 0.65: 6115, 0.8: 7527, 0.9: 8468}


@pytest.fixture(scope="module")
def universe():
    return Universe.build("add", 97, pair_seed=420, label_seed=0)


@pytest.mark.parametrize("alpha,size", sorted(TRAIN_SIZES.items()))
def test_train_sizes_match_paper_table(alpha, size):
    assert train_size(97, alpha) == size


def test_counts_are_exact_on_the_whole_paper_grid():
    # floor(k/20 * p^2) and floor(j/20 * n_train) with exact integers, for the 17 x 19 grid
    for k in range(2, 19):
        n_train = train_size(97, round(k / 20, 2))
        assert n_train == (k * 97 * 97) // 20
        for j in range(0, 19):
            assert noise_count(n_train, round(j / 20, 2)) == (j * n_train) // 20


def test_exact_arithmetic_where_floats_truncate():
    # 0.29 * 100 == 28.999999999999996 in binary floating point; the decimal the user wrote is 29.
    assert int(0.29 * 100) == 28
    assert noise_count(100, 0.29) == 29


def test_pair_order_is_the_seeded_python_shuffle_of_m_major_indices():
    order = pair_order(7, 420)
    expected = list(range(49))
    random.Random(420).shuffle(expected)
    assert order.tolist() == expected
    assert sorted(order.tolist()) == list(range(49))
    assert not np.array_equal(pair_order(7, 421), order)


def test_pairs_and_true_labels(universe):
    p = universe.p
    assert universe.m.shape == (p * p,)
    assert set(zip(universe.m.tolist(), universe.n.tolist(), strict=True)) == {
        (a, b) for a in range(p) for b in range(p)
    }
    np.testing.assert_array_equal(universe.labels, (universe.m + universe.n) % p)
    mul = Universe.build("mul", 11)
    np.testing.assert_array_equal(mul.labels, (mul.m * mul.n) % 11)


def test_random_labels_cover_all_classes_uniformly(universe):
    counts = np.bincount(universe.random_labels, minlength=97)
    assert counts.shape == (97,) and counts.min() > 0  # including class p-1 (released Transformer bug)
    assert abs(counts.mean() - 97) < 1e-9
    assert counts.std() < 4 * np.sqrt(97)  # multinomial spread, not degenerate


def test_split_is_nested_prefix_and_test_is_complement(universe):
    small, big = universe.split(0.3), universe.split(0.5)
    assert small.n_train == 2822 and big.n_train == 4704
    np.testing.assert_array_equal(big.train_m[: small.n_train], small.train_m)
    np.testing.assert_array_equal(big.train_n[: small.n_train], small.train_n)
    train_pairs = set(zip(big.train_m.tolist(), big.train_n.tolist(), strict=True))
    test_pairs = set(zip(big.test_m.tolist(), big.test_n.tolist(), strict=True))
    assert not train_pairs & test_pairs and len(train_pairs | test_pairs) == 97 * 97


def test_corruption_is_a_prefix_with_the_stream_labels(universe):
    split = universe.split(0.5)
    y, n_noise = split.train_labels(0.35)
    assert n_noise == 1646  # docs/paper.md §A2
    np.testing.assert_array_equal(y[:n_noise], universe.random_labels[:n_noise])
    np.testing.assert_array_equal(y[n_noise:], split.train_true[n_noise:])
    # about 1/p of the "corrupted" examples keep their true label by chance, and still count as corrupted
    same = (y[:n_noise] == split.train_true[:n_noise]).mean()
    assert 0 < same < 3 / 97


def test_corruption_nested_across_xi_and_alpha(universe):
    y_lo, n_lo = universe.split(0.5).train_labels(0.2)
    y_hi, n_hi = universe.split(0.8).train_labels(0.35)
    n = min(n_lo, n_hi)
    np.testing.assert_array_equal(y_lo[:n], y_hi[:n])  # same positions, same corrupted labels


def test_clean_labels_and_test_labels_are_never_corrupted(universe):
    split = universe.split(0.65)
    y, n_noise = split.train_labels(0.0)
    assert n_noise == 0
    np.testing.assert_array_equal(y, split.train_true)
    np.testing.assert_array_equal(split.test_labels, (split.test_m + split.test_n) % 97)


# Known answers, computed once from the definitions (docs/paper.md §A1-A2), not from the library:
#   torch.randint(0, 97, (97 * 97,), generator=torch.Generator().manual_seed(0))[:10]
#   order = list(range(97 * 97)); random.Random(420).shuffle(order); order[:10]
# (torch 2.x CPU generator, Python 3 random).
STREAM_97_SEED0 = [57, 82, 25, 87, 55, 60, 59, 72, 73, 66]
ORDER_97_SEED420 = [2204, 4039, 7027, 7067, 3492, 9160, 8459, 4505, 5909, 5283]


def test_label_stream_and_pair_order_known_answers(universe):
    assert random_label_stream(97, 0)[:10].tolist() == STREAM_97_SEED0
    assert universe.random_labels[:10].tolist() == STREAM_97_SEED0
    assert pair_order(97, 420)[:10].tolist() == ORDER_97_SEED420
    # m-major: index = m * p + n
    assert list(zip(universe.m[:10].tolist(), universe.n[:10].tolist(), strict=True)) == [
        divmod(i, 97) for i in ORDER_97_SEED420
    ]


def cell_from_definition(p, k_alpha, j_xi, pair_seed=420, label_seed=0):
    """Training pairs and labels of cell (alpha, xi) = (k/20, j/20), built from docs/paper.md §A1-A2 alone."""
    order = list(range(p * p))
    random.Random(pair_seed).shuffle(order)
    m, n = np.array(order) // p, np.array(order) % p
    stream = torch.randint(0, p, (p * p,), generator=torch.Generator().manual_seed(label_seed)).numpy()
    n_train = k_alpha * p * p // 20  # floor(alpha p^2), exactly
    n_noise = j_xi * n_train // 20  # floor(xi n_train), exactly
    labels = (m[:n_train] + n[:n_train]) % p
    labels[:n_noise] = stream[:n_noise]  # positions [0, n_noise) of the global shuffle take the stream's labels
    return m[:n_train], n[:n_train], labels, n_noise


@pytest.mark.parametrize("p,k_alpha,j_xi,n_noise", [(97, 10, 7, 1646), (13, 13, 9, 49), (13, 13, 0, 0)])
def test_corrupted_labels_equal_their_definition(p, k_alpha, j_xi, n_noise):
    """(97, 0.5, 0.35): 1646 of 4704 corrupted (A2); (13, 0.65, 0.45): floor(0.45 * floor(0.65 * 169)) = 49."""
    m, n, labels, n_noise_def = cell_from_definition(p, k_alpha, j_xi)
    assert n_noise_def == n_noise
    split = Universe.build("add", p, pair_seed=420, label_seed=0).split(round(k_alpha / 20, 2))
    got, got_noise = split.train_labels(round(j_xi / 20, 2))
    assert got_noise == n_noise and split.n_train == len(labels)
    np.testing.assert_array_equal(split.train_m, m)
    np.testing.assert_array_equal(split.train_n, n)
    np.testing.assert_array_equal(got, labels)


def test_label_stream_depends_on_label_seed_only():
    a = Universe.build("add", 13, pair_seed=1, label_seed=0)
    b = Universe.build("add", 13, pair_seed=2, label_seed=0)
    c = Universe.build("add", 13, pair_seed=1, label_seed=5)
    np.testing.assert_array_equal(a.random_labels, b.random_labels)
    assert not np.array_equal(a.random_labels, c.random_labels)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="operation"):
        Universe.build("sub", 7)
    with pytest.raises(ValueError, match="train_fraction"):
        Universe.build("add", 7).split(0.01)
