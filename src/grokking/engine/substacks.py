"""Training a large stack as consecutive sub-stacks (a CPU cache optimisation, kept out of the loop).

The models of a stack are independent, so cutting it changes results only by float rounding
(blocked reductions depend on K; tested to 1e-5 in tests/test_grids.py). The family says how many
of its models fit the cache (``cpu_sub_stack``); on a GPU the stack stays whole.
"""

from __future__ import annotations

import numpy as np
import torch


def sub_stack_limit(family, shape, device, K: int, max_stack: int | None) -> int:
    if max_stack is not None:
        return max_stack
    if device.type == "cpu" and hasattr(family, "cpu_sub_stack"):
        return family.cpu_sub_stack(shape)
    return K


def concat_results(parts: list):
    """One ``TrainResult`` of the models of ``parts``, in order (seconds add up)."""
    first = parts[0]

    def cat_np(arrays):
        return np.concatenate(arrays, axis=1)

    def cat_t(dicts):
        return {k: torch.cat([d[k] for d in dicts]) for k in dicts[0]}

    return type(first)(
        first.steps,
        {k: cat_np([p.curves[k] for p in parts]) for k in first.curves},
        None if first.neuron_ipr is None else cat_np([p.neuron_ipr for p in parts]),
        cat_t([p.params for p in parts]),
        cat_t([p.buffers for p in parts]),
        cat_t([p.init_params for p in parts]),
        np.concatenate([p.n_noise for p in parts]),
        sum(p.seconds for p in parts),
        first.device,
        np.concatenate([p.diverged_at for p in parts]),
        sum(p.log_seconds for p in parts),
    )
