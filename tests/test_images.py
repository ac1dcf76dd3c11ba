"""Digit-image datasets (Fig 16): the pool, the corruption semantics of the modular task, the on-disk form,
and the image-dataset command without MNIST's files. The 8x8 digits come with scikit-learn (offline)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from grokking import results
from grokking.data.images import IMAGE_SETS, ImageSet, build_image_set, load_digits
from grokking.data.modular import noise_count


@pytest.fixture(scope="module")
def digits():
    return build_image_set("digits", pool=600, pool_seed=0, label_seed=0)


def test_the_pool_is_seeded_and_the_rest_is_the_test_set(digits):
    images, labels, _ = load_digits()
    again = build_image_set("digits", pool=600, pool_seed=0, label_seed=0)
    other = build_image_set("digits", pool=600, pool_seed=1, label_seed=0)
    np.testing.assert_array_equal(digits.train_pixels, again.train_pixels)
    assert not np.array_equal(digits.train_pixels, other.train_pixels)
    assert digits.pool == 600 and len(digits.test_labels) == 1797 - 600 == IMAGE_SETS["digits"].test_count(600)
    # pool and test set together are every image once, each with its own label
    every = sorted(map(bytes, np.concatenate([digits.train_pixels, digits.test_pixels])))
    assert every == sorted(map(bytes, images.astype(np.uint8)))
    pairs = {(bytes(x), int(y)) for x, y in zip(images.astype(np.uint8), labels, strict=True)}
    for x, y in zip(digits.test_pixels[:50], digits.test_labels[:50], strict=True):
        assert (bytes(x), int(y)) in pairs


def test_training_sets_are_nested_prefixes_and_corruption_is_a_prefix(digits):
    small, large = digits.split(0.3), digits.split(0.6)
    assert (small.n_train, large.n_train) == (180, 360)
    np.testing.assert_array_equal(small.train_inputs, large.train_inputs[:180])
    np.testing.assert_array_equal(small.test_inputs, large.test_inputs)  # the test set never changes
    y2, n2 = large.train_labels(0.2)
    y4, n4 = large.train_labels(0.4)
    assert (n2, n4) == (noise_count(360, 0.2), noise_count(360, 0.4)) == (72, 144)
    np.testing.assert_array_equal(y4[:n2], y2[:n2])  # a position's random label is the same in every cell
    np.testing.assert_array_equal(y2[n2:], large.train_true[n2:])
    np.testing.assert_array_equal(y4[:n4], digits.random_labels[:n4])
    ys, _ = small.train_labels(0.4)
    np.testing.assert_array_equal(ys[:72], digits.random_labels[:72])  # the stream is per pool position
    assert 0.04 < np.mean(y4[:n4] == large.train_true[:n4]) < 0.2  # uniform over 10 classes: ~1/10 unchanged
    assert set(np.unique(digits.random_labels)) == set(range(10))


def test_inputs_are_standardized_over_the_pool(digits):
    x = digits.inputs(digits.train_pixels)
    assert x.dtype == np.float32 and x.shape == (600, 64)
    assert abs(float(x.mean())) < 1e-4 and float(x.std()) == pytest.approx(1.0, abs=1e-4)


def test_round_trip_and_a_mismatching_file_is_refused(tmp_path, digits):
    path = tmp_path / "digits.npz"
    results.write_npz(path, **digits.to_arrays())
    back = results.load_dataset(path)
    assert isinstance(back, ImageSet) and back.source == digits.source
    spec = {"dataset": "digits", "train_pool": 600, "pool_seed": 0, "label_seed": 0, "train_fraction": 0.5}
    split = results.load_split(path, spec)
    np.testing.assert_array_equal(split.train_inputs, digits.split(0.5).train_inputs)
    with pytest.raises(
        ValueError, match=r"holds \{'dataset': 'digits', 'train_pool': 600, .*needs .*'train_pool': 500"
    ):
        results.load_split(path, dict(spec, train_pool=500))


def test_bad_pool_sizes_and_pixels_are_refused():
    images, labels, _ = load_digits()
    with pytest.raises(ValueError, match=r"data.digits.train_pool: 1797 must be in \[1, 1796\]"):
        ImageSet.build("digits", images, labels, None, None, pool=1797)
    with pytest.raises(ValueError, match=r"integers in \[0, 16\]"):
        ImageSet.build("digits", images + 0.5, labels, None, None, pool=100)
    with pytest.raises(ValueError, match="a separate test set expected"):
        ImageSet.build("mnist", np.zeros((100, 784)), np.zeros(100), None, None, pool=10)


def test_mnist_command_without_files_or_network_fails_at_once_naming_them(tmp_path):
    out = tmp_path / "mnist.npz"
    cmd = [sys.executable, "-m", "grokking", "image-dataset", "--name", "mnist", "--train-pool", "100"]
    cmd += ["--dir", str(tmp_path / "none"), "--no-download", "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    for name in (
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ):
        assert name in proc.stderr
    assert "data.mnist.dir" in proc.stderr and str(tmp_path / "none") in proc.stderr
    assert "Traceback" not in proc.stderr and not out.exists()
