"""The training losses as the engine uses them: the definitions live below the models and the engine, in
:mod:`grokking.losses` (the models' hand-written gradients need them too), and are re-exported here."""

from __future__ import annotations

from ..losses import LOSSES, logit_grad_, per_example, per_model

__all__ = ["LOSSES", "logit_grad_", "per_example", "per_model"]
