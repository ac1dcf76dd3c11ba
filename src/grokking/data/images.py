"""Labelled digit images with label corruption (docs/paper.md §A3 (h), Fig 16): MNIST, and the 8 x 8 UCI
handwritten digits bundled with scikit-learn as its offline stand-in.

The semantics follow the modular task (:mod:`grokking.data.modular`):

* a fixed *training pool* is drawn once from the training images with its own seeded generator
  (``pool_seed``); training sets are prefixes of the pool (nested across alpha, ``n_train =
  floor(alpha * pool)``), the test set is fixed (MNIST's 10,000 test images; for the digits, every
  image not in the pool) and never corrupted;
* the corrupted examples are a prefix of the training set (nested across xi, ``floor(xi * n_train)``),
  each given one uniform draw over the classes per *pool position* from a ``torch.Generator`` seeded with
  the label seed, so a position's corrupted label is the same in every cell that corrupts it.

Pixels are stored as uint8 (``max_value`` 255 for MNIST, 16 for the digits) and become model inputs as
``(x / max_value - mean) / std``, with one mean and one standard deviation over every pixel of the pool
(the usual MNIST normalization, computed rather than copied, so the stand-in gets its own).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .modular import exact_fraction, noise_count


@dataclass(frozen=True)
class ImageKind:
    """What a model needs to know of a dataset before it exists (the DAG reads this, never the data)."""

    inputs: int  # pixels per image
    classes: int
    train_images: int  # images the pool is drawn from
    title: str  # the dataset's name in figures and claims
    test_images: int | None  # a fixed test set, or None: the images outside the pool
    max_value: int  # the largest pixel value

    def test_count(self, pool: int) -> int:
        return self.train_images - pool if self.test_images is None else self.test_images


IMAGE_SETS = {
    "mnist": ImageKind(784, 10, 60000, "MNIST", 10000, 255),
    "digits": ImageKind(64, 10, 1797, "UCI 8x8 digits", None, 16),
}


def pool_size(name: str, requested: int) -> int:
    """The pool size a config asks for, checked against the dataset (the digits keep >= 1 test image)."""
    kind = IMAGE_SETS[name]
    limit = kind.train_images - (1 if kind.test_images is None else 0)
    if not 1 <= requested <= limit:
        raise ValueError(f"data.{name}.train_pool: {requested} must be in [1, {limit}]")
    return requested


def train_count(pool: int, train_fraction) -> int:
    """Training images of a cell, floor(alpha * pool), computed exactly."""
    return int(exact_fraction(train_fraction) * pool)


@dataclass(frozen=True)
class ImageSet:
    """The training pool (in pool order) and the test set of one dataset, with the corruption stream."""

    name: str
    pool_seed: int
    label_seed: int
    max_value: int
    classes: int
    train_pixels: np.ndarray  # (pool, inputs) uint8
    train_labels: np.ndarray  # (pool,) true labels
    test_pixels: np.ndarray  # (n_test, inputs) uint8
    test_labels: np.ndarray  # (n_test,)
    random_labels: np.ndarray  # (pool,) the corruption stream
    source: str = ""  # where the images came from (files and checksums, or the package)

    @classmethod
    def build(cls, name, images, labels, test_images, test_labels, *, pool, pool_seed=0, label_seed=0, source=""):
        """Draw the pool from ``images`` (N, ...) and attach the random-label stream. ``test_images``
        None (the digits): the images outside the pool are the test set."""
        import torch

        kind = IMAGE_SETS[name]
        pool = pool_size(name, int(pool))
        if (test_images is None) != (kind.test_images is None):
            raise ValueError(f"{name}: {'a separate' if kind.test_images else 'no separate'} test set expected")
        images = np.asarray(images).reshape(len(images), -1)
        if images.shape[1] != kind.inputs:
            raise ValueError(f"{name}: images have {images.shape[1]} pixels, expected {kind.inputs}")
        order = torch.randperm(len(images), generator=torch.Generator().manual_seed(int(pool_seed))).numpy()
        chosen, rest = order[:pool], order[pool:]
        if test_images is None:
            test_images, test_labels = images[rest], np.asarray(labels)[rest]
        gen = torch.Generator().manual_seed(int(label_seed))
        random_labels = torch.randint(0, kind.classes, (pool,), generator=gen).numpy()
        return cls(
            name,
            int(pool_seed),
            int(label_seed),
            kind.max_value,
            kind.classes,
            _pixels(images[chosen], kind.max_value),
            np.asarray(labels)[chosen].astype(np.int64),
            _pixels(np.asarray(test_images).reshape(len(test_images), -1), kind.max_value),
            np.asarray(test_labels).astype(np.int64),
            random_labels.astype(np.int64),
            source,
        )

    # --- the on-disk form (results/<preset>/data/<name>.npz) -----------------------------------------
    def to_arrays(self) -> dict:
        return dict(
            kind=np.array("images"),
            name=np.array(self.name),
            pool_seed=np.array(self.pool_seed),
            label_seed=np.array(self.label_seed),
            max_value=np.array(self.max_value),
            classes=np.array(self.classes),
            train_pixels=self.train_pixels,
            train_labels=self.train_labels,
            test_pixels=self.test_pixels,
            test_labels=self.test_labels,
            random_labels=self.random_labels,
            source=np.array(self.source),
        )

    @classmethod
    def from_arrays(cls, a) -> ImageSet:
        return cls(
            str(a["name"]),
            int(a["pool_seed"]),
            int(a["label_seed"]),
            int(a["max_value"]),
            int(a["classes"]),
            *(np.asarray(a[k]) for k in ("train_pixels", "train_labels", "test_pixels", "test_labels")),
            np.asarray(a["random_labels"]),
            str(a["source"]),
        )

    # --- cells ----------------------------------------------------------------------------------------
    @property
    def pool(self) -> int:
        return len(self.train_labels)

    @property
    def identity(self) -> dict:
        """The spec settings this file was made for (``results.load_split`` compares them)."""
        return {
            "dataset": self.name,
            "train_pool": self.pool,
            "pool_seed": self.pool_seed,
            "label_seed": self.label_seed,
        }

    def normalization(self) -> tuple[float, float]:
        """(mean, std) of every pixel of the pool, scaled to [0, 1]."""
        x = self.train_pixels.astype(np.float64) / self.max_value
        return float(x.mean()), float(x.std())

    def inputs(self, pixels) -> np.ndarray:
        mean, std = self.normalization()
        return ((pixels.astype(np.float32) / self.max_value - mean) / std).astype(np.float32)

    def split(self, train_fraction) -> ImageSplit:
        n_train = train_count(self.pool, train_fraction)
        if not 0 < n_train <= self.pool:
            raise ValueError(
                f"train_fraction: {train_fraction} gives {n_train} training images of the {self.pool} in the pool"
            )
        return ImageSplit(self, n_train)


def _pixels(x: np.ndarray, max_value: int) -> np.ndarray:
    x = np.asarray(x)
    if x.min() < 0 or x.max() > max_value or not np.array_equal(x, np.round(x)):
        raise ValueError(f"pixels must be integers in [0, {max_value}]")
    return x.astype(np.uint8)


@dataclass(frozen=True)
class ImageSplit:
    """One alpha of an :class:`ImageSet`: the first ``n_train`` pool images, and the whole test set."""

    images: ImageSet
    n_train: int

    @property
    def classes(self) -> int:
        return self.images.classes

    @property
    def input_dim(self) -> int:
        return self.images.train_pixels.shape[1]

    @property
    def train_inputs(self) -> np.ndarray:
        return self.images.inputs(self.images.train_pixels[: self.n_train])

    @property
    def test_inputs(self) -> np.ndarray:
        return self.images.inputs(self.images.test_pixels)

    @property
    def train_true(self) -> np.ndarray:
        return self.images.train_labels[: self.n_train]

    @property
    def test_labels(self) -> np.ndarray:
        return self.images.test_labels

    def train_labels(self, corruption) -> tuple[np.ndarray, int]:
        """Training labels of cell (alpha, xi): the first floor(xi * n_train) from the random stream."""
        n_noise = noise_count(self.n_train, corruption)
        y = self.train_true.copy()
        y[:n_noise] = self.images.random_labels[:n_noise]
        return y, n_noise


# --- where the images come from ------------------------------------------------------------------------


def load_digits() -> tuple[np.ndarray, np.ndarray, str]:
    """The 1,797 8 x 8 digits bundled with scikit-learn (pixels 0..16), offline."""
    try:
        import sklearn
        from sklearn.datasets import load_digits as sk_load_digits
    except ImportError as err:  # pragma: no cover - scikit-learn is in requirements.txt
        raise RuntimeError("the 'digits' dataset needs scikit-learn (pip install scikit-learn)") from err
    bunch = sk_load_digits()
    return bunch.images.reshape(len(bunch.images), -1), bunch.target, f"scikit-learn {sklearn.__version__} load_digits"


def build_image_set(
    name: str, *, pool: int, pool_seed: int = 0, label_seed: int = 0, mnist_dir=None, download=True, standin=False
):
    """The :class:`ImageSet` of a config: MNIST from its four files (found or downloaded, checked), or the
    scikit-learn digits. ``standin``: ``mnist_dir`` holds a rehearsal's stand-in files (:mod:`.standin`), read
    by the same reader and checked against their manifest."""
    if name == "digits":
        images, labels, source = load_digits()
        return ImageSet.build(
            name, images, labels, None, None, pool=pool, pool_seed=pool_seed, label_seed=label_seed, source=source
        )
    if name == "mnist":
        from . import mnist

        files = mnist.FILES
        if standin:
            from .standin import standin_files

            files = standin_files(mnist_dir)
        arrays = mnist.load(mnist_dir, download and not standin, files)
        kind = "stand-in MNIST IDX files (rehearsal)" if standin else "MNIST IDX files"
        source = f"{kind}, SHA-256 " + ", ".join(f.sha256[:12] for f in files.values())
        return ImageSet.build(
            name,
            arrays["train_images"],
            arrays["train_labels"],
            arrays["test_images"],
            arrays["test_labels"],
            pool=pool,
            pool_seed=pool_seed,
            label_seed=label_seed,
            source=source,
        )
    raise ValueError(f"dataset: {name!r} is not one of {sorted(IMAGE_SETS)}")
