"""Modular-arithmetic datasets with label corruption (docs/paper.md §A1-A2).

Every random choice has its own explicitly seeded generator:

* the pair shuffle uses Python's ``random.Random(pair_seed)`` on the m-major pair index list
  (the released code's convention, pair seed 420);
* corrupted labels are one uniform draw over all p classes per *position of the global shuffle*,
  from a ``torch.Generator`` seeded with the label seed, so the corrupted label of a position is
  the same in every cell that corrupts it.

Training sets are prefixes of the shuffle (nested across alpha); the corrupted examples are a
prefix of the training set (nested across xi). Sizes are computed with exact rational arithmetic
(``int(alpha * p**2)`` on floats can truncate one too low, docs/paper.md §D12).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

OPERATIONS = ("add", "mul")


def exact_fraction(x) -> Fraction:
    """The decimal value the user wrote (0.35 -> 7/20), not the nearest binary float."""
    if isinstance(x, Fraction):
        return x
    return Fraction(str(x)).limit_denominator(10**9)


def train_size(p: int, train_fraction) -> int:
    """Number of training pairs, floor(alpha * p^2), computed exactly."""
    return int(exact_fraction(train_fraction) * p * p)


def noise_count(n_train: int, corruption) -> int:
    """Number of corrupted training examples, floor(xi * n_train), computed exactly."""
    return int(exact_fraction(corruption) * n_train)


def pair_order(p: int, pair_seed: int = 420) -> np.ndarray:
    """Shuffled m-major pair indices (index = m*p + n), shuffled once with ``random.Random``."""
    order = list(range(p * p))
    random.Random(pair_seed).shuffle(order)
    return np.asarray(order, dtype=np.int64)


def random_label_stream(p: int, label_seed: int = 0) -> np.ndarray:
    """One uniform label in {0..p-1} per position of the global shuffle."""
    import torch

    gen = torch.Generator().manual_seed(int(label_seed))
    return torch.randint(0, p, (p * p,), generator=gen).numpy().astype(np.int64)


def true_label(m: np.ndarray, n: np.ndarray, p: int, operation: str) -> np.ndarray:
    if operation == "add":
        return (m + n) % p
    if operation == "mul":
        return (m * n) % p
    raise ValueError(f"operation: {operation!r} is not one of {list(OPERATIONS)}")


@dataclass(frozen=True)
class Universe:
    """All p^2 pairs in shuffled order with their true and random labels."""

    operation: str
    p: int
    pair_seed: int
    label_seed: int
    m: np.ndarray  # (p^2,) first operand, in shuffled order
    n: np.ndarray  # (p^2,) second operand
    labels: np.ndarray  # (p^2,) true labels
    random_labels: np.ndarray  # (p^2,) the corruption stream

    @classmethod
    def build(cls, operation: str, p: int, pair_seed: int = 420, label_seed: int = 0) -> Universe:
        if operation not in OPERATIONS:
            raise ValueError(f"operation: {operation!r} is not one of {list(OPERATIONS)}")
        order = pair_order(p, pair_seed)
        m, n = order // p, order % p
        return cls(
            operation,
            p,
            pair_seed,
            label_seed,
            m,
            n,
            true_label(m, n, p, operation),
            random_label_stream(p, label_seed),
        )

    def to_arrays(self) -> dict:
        return dict(
            operation=np.array(self.operation),
            p=np.array(self.p),
            pair_seed=np.array(self.pair_seed),
            label_seed=np.array(self.label_seed),
            m=self.m,
            n=self.n,
            labels=self.labels,
            random_labels=self.random_labels,
        )

    @classmethod
    def from_arrays(cls, a) -> Universe:
        return cls(
            str(a["operation"]),
            int(a["p"]),
            int(a["pair_seed"]),
            int(a["label_seed"]),
            np.asarray(a["m"]),
            np.asarray(a["n"]),
            np.asarray(a["labels"]),
            np.asarray(a["random_labels"]),
        )

    @property
    def identity(self) -> dict:
        """The spec settings this file was made for (``results.load_split`` compares them)."""
        return {
            "dataset": "modular",
            "operation": self.operation,
            "p": self.p,
            "pair_seed": self.pair_seed,
            "label_seed": self.label_seed,
        }

    def split(self, train_fraction) -> Split:
        n_train = train_size(self.p, train_fraction)
        if not 0 < n_train < self.p * self.p:
            raise ValueError(
                f"train_fraction: {train_fraction} gives {n_train} training pairs; "
                f"it must leave both a training and a test set (0 < alpha < 1)"
            )
        return Split(self, n_train)

    def corrupted_labels(self, n_train: int, corruption) -> tuple[np.ndarray, int]:
        """Training labels of cell (alpha, xi): the first n_noise replaced by the random stream."""
        n_noise = noise_count(n_train, corruption)
        y = self.labels[:n_train].copy()
        y[:n_noise] = self.random_labels[:n_noise]
        return y, n_noise


@dataclass(frozen=True)
class Split:
    universe: Universe
    n_train: int

    @property
    def p(self) -> int:
        return self.universe.p

    @property
    def classes(self) -> int:
        return self.universe.p

    input_dim = None  # the model reads two operand indices, not a dense vector

    @property
    def train_inputs(self) -> np.ndarray:
        """Operand pairs (n_train, 2)."""
        return np.stack([self.train_m, self.train_n], 1)

    @property
    def test_inputs(self) -> np.ndarray:
        return np.stack([self.test_m, self.test_n], 1)

    @property
    def train_m(self):
        return self.universe.m[: self.n_train]

    @property
    def train_n(self):
        return self.universe.n[: self.n_train]

    @property
    def train_true(self):
        return self.universe.labels[: self.n_train]

    @property
    def test_m(self):
        return self.universe.m[self.n_train :]

    @property
    def test_n(self):
        return self.universe.n[self.n_train :]

    @property
    def test_labels(self):
        return self.universe.labels[self.n_train :]

    def train_labels(self, corruption) -> tuple[np.ndarray, int]:
        return self.universe.corrupted_labels(self.n_train, corruption)

    def corrupted_examples(self, corruption, count) -> np.ndarray:
        """Training positions of the first ``count`` corrupted examples whose random label differs from
        the true one (a random label can hit the true class; those are not evidence of memorization)."""
        labels, n_noise = self.train_labels(corruption)
        true = np.asarray(self.train_true)
        idx = np.flatnonzero(labels[:n_noise] != true[:n_noise])
        return idx[: int(count)]
