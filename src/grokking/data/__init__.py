"""Datasets with label corruption: modular arithmetic (docs/paper.md §A1-A2) and digit images (A3 (h)).

Both give a *split* per train fraction with the interface the engine reads: ``n_train``,
``train_inputs`` / ``test_inputs`` (operand pairs (n, 2), or dense vectors (n, D) with ``input_dim``
D), ``classes``, ``train_true``, ``test_labels`` and ``train_labels(corruption)``.
"""

from .images import IMAGE_SETS, ImageSet, ImageSplit
from .modular import OPERATIONS, Split, Universe, noise_count, pair_order, random_label_stream, train_size


def dataset_title(spec: dict) -> str:
    """How figures and claims name a resolved spec's dataset: "addition mod 59", "UCI 8x8 digits"."""
    dataset = spec.get("dataset", "modular")
    if dataset == "modular":
        return f"{'addition' if spec['operation'] == 'add' else 'multiplication'} mod {spec['p']}"
    return IMAGE_SETS[dataset].title


__all__ = [
    "dataset_title",
    "IMAGE_SETS",
    "ImageSet",
    "ImageSplit",
    "OPERATIONS",
    "Split",
    "Universe",
    "noise_count",
    "pair_order",
    "random_label_stream",
    "train_size",
]
