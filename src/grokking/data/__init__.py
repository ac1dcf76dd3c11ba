"""Datasets: modular arithmetic with label corruption (PAPER.md A1-A2)."""

from .modular import OPERATIONS, Split, Universe, noise_count, pair_order, random_label_stream, train_size

__all__ = ["OPERATIONS", "Split", "Universe", "noise_count", "pair_order", "random_label_stream", "train_size"]
