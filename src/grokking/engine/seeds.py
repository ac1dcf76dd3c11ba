"""Per-model, per-purpose seeds: a model's randomness never depends on its stack companions.

Purposes in use: ``init`` (the seed itself), ``dropout`` (training masks), ``batch`` (minibatch order)
and ``eval_dropout/<split>/<step>/<chunk start>`` (masks when measuring with dropout on,
:class:`grokking.engine.dropout.EvalDropout`)."""

from __future__ import annotations

import hashlib


def derive_seed(seed: int, purpose: str) -> int:
    """A stable 63-bit seed for (model seed, purpose); the init uses the seed itself."""
    if purpose == "init":
        return int(seed)
    digest = hashlib.sha256(f"{purpose}:{int(seed)}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)
