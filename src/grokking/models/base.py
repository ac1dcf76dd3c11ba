"""The interface every model family implements (a module; see :mod:`grokking.models.mlp2`).

The engine holds K models of one family as *stacked* tensors (leading axis K) and calls only what
is listed here. Inputs ``x`` are integer tensors of operand indices, (B, 2) when every model sees the
same examples or (K, B, 2) with a batch per model; outputs are logits (K, B, classes).
"""

from __future__ import annotations

from typing import Protocol


class ModelFamily(Protocol):
    """What a family module defines (module-level names)."""

    Shape: type  # frozen dataclass: ``family`` (registry name), ``from_spec(spec)``, ``to_dict()``

    def init(self, shape, seed: int, init_scale: float | None) -> tuple[dict, dict]:
        """(parameters, buffers) of ONE model, drawn from a generator seeded with ``seed``."""

    def forward(self, shape, params: dict, buffers: dict, x, *, train: bool, dropout=None):
        """Logits (K, B, classes). ``dropout`` (an ``engine.dropout.StackDropout`` or None) hands
        out per-model masks, applied whenever given (in training, and when measuring with dropout on);
        in train mode normalization layers use and update batch statistics."""

    def weight_norms(self, params: dict) -> dict:
        """Named per-model norms (K,) logged as curves, e.g. ``norm_u``."""

    def neuron_ipr(self, params: dict, mode: str):
        """Per-neuron IPR (K, N) of the weights that the paper's IPR reads (docs/paper.md §A8)."""

    def ipr_components(self, params: dict, mode: str) -> dict:
        """The parts averaged into ``neuron_ipr`` (e.g. ``ipr_u``, ``ipr_v``, ``ipr_w``), each (K, N)."""

    # Optional, for speed: hand-written gradients. The engine uses autograd where
    # ``manual_gradients(shape)`` is false or the family does not define it.
    #   manual_gradients(shape) -> bool
    #   loss_and_grads(shape, params, x, y, loss, dropout, need_loss) -> (per-model loss (K,) | None, grads)
    # Optional: cpu_sub_stack(shape) -> int, models per sub-stack on CPU (default: the whole stack).
    # Optional: for_inference(params) -> dict, the parameters with what forward derives from them made once,
    # for many eval-mode forward passes with the same weights (default: the parameters as they are).
