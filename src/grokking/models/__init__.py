"""Model families. Each is one module implementing :class:`grokking.models.base.ModelFamily`; the
registry below maps the config's ``model`` key to it. Adding a family = one module + one entry here
(and ``model``'s enum in the config schema, which a test keeps equal to this registry) + its tests.
"""

from __future__ import annotations

import importlib

FAMILIES = {
    "mlp2": "grokking.models.mlp2",  # the paper's 2-layer MLP (Eq. 1) and its variants
    "transformer": "grokking.models.transformer",  # the encoder-only Transformer of A3 (g)
    "deep_mlp": "grokking.models.deep_mlp",  # ReLU MLPs of any depth: A3 (f) (3 layers), (h) (MNIST)
}


def get_family(name_or_shape):
    """The family module for a registry name, or for a shape (which names its family)."""
    name = name_or_shape if isinstance(name_or_shape, str) else name_or_shape.family
    if name not in FAMILIES:
        raise ValueError(f"model: {name!r} is not one of {sorted(FAMILIES)}")
    return importlib.import_module(FAMILIES[name])


def shape_from_spec(spec: dict):
    """The family's shape (architecture settings) from a resolved spec."""
    return get_family(spec.get("model", "mlp2")).Shape.from_spec(spec)


def shape_from_dict(d: dict):
    """Inverse of ``shape.to_dict()`` (which records the family), e.g. for a saved checkpoint."""
    d = dict(d)
    return get_family(d.pop("family", "mlp2")).Shape(**d)
