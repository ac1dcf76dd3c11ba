"""The training loop: ONE loop for K >= 1 stacked models of any family (a single run is K = 1).

Setup (data on the device, stacked init from per-model seeds, AdamW, dropout, batch order), then per
step: a batch, the gradients (the family's hand-written ones where it has them, else autograd), the
optimizer step, and on the log schedule the metrics of every model in eval mode (or with dropout on,
``eval_dropout``) on the whole training and test sets (a model whose loss is no longer finite is marked
diverged there, :mod:`.state`); with a checkpoint, the whole state is saved at its interval and
restored on rerun (:mod:`.checkpoint`).
Randomness is per model and per purpose (:mod:`grokking.engine.seeds`), so a model's trajectory does
not depend on which other models share its stack.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, fields

import numpy as np
import torch

from ..models import get_family
from . import losses
from .adamw import AdamW
from .checkpoint import Checkpoint
from .dropout import EvalDropout, StackDropout
from .evaluate import metrics_row
from .precision import autocast, computing
from .progress import Progress
from .seeds import derive_seed
from .state import TrainState
from .substacks import concat_results, sub_stack_limit
from .transfer import upload


@dataclass(frozen=True)
class StackSettings:
    """What all models of one stack share (architecture, data size, schedule)."""

    shape: object  # a family's Shape, e.g. models.mlp2.MLPShape
    loss: str = "mse"
    batch_size: int | None = None  # None = full batch
    steps: int = 2000
    betas: tuple = (0.9, 0.98)
    eps: float = 1e-8
    init_scale: float | None = None
    log_steps: tuple = ()
    ipr_mode: str = "rfft"
    record_neuron_ipr: bool = False
    no_decay: tuple = ()  # parameter names AdamW does not decay (default: every parameter is decayed)
    precision: str = "fp32"  # fp32 | tf32 | bf16 (:mod:`grokking.engine.precision`)
    eval_dropout: bool = False  # measure with dropout on (fresh masks, :class:`.dropout.EvalDropout`)


@dataclass(frozen=True)
class ModelSettings:
    """What may differ between the models of one stack."""

    corruption: float = 0.0
    weight_decay: float = 0.0
    dropout: float = 0.0
    lr: float = 0.01
    seed: int = 1


@dataclass
class TrainResult:
    steps: np.ndarray  # (T,) logged steps
    curves: dict  # name -> (T, K)
    neuron_ipr: np.ndarray | None  # (T, K, N) when recorded
    params: dict  # final weights, stacked (K, ...), CPU
    buffers: dict
    init_params: dict
    n_noise: np.ndarray  # (K,)
    seconds: float
    device: str
    diverged_at: np.ndarray  # (K,) the logged step at which a model's loss was first not finite, -1: never
    log_seconds: float = 0.0  # of ``seconds``, those spent on the log steps' metrics (the cost plan's split)
    extra: dict = field(default_factory=dict)


def log_schedule(steps: int, log_every: int | None = None) -> list[int]:
    """Step 1, then every ``log_every`` steps (default steps/100), always ending at ``steps``."""
    every = max(1, steps // 100) if log_every is None else int(log_every)
    return sorted({1, steps, *range(every, steps + 1, every)})


def resolve_device(device="auto") -> torch.device:
    """The device a job trains on: ``auto`` is CUDA where available, else the CPU. CUDA without an index
    (``auto`` or ``cuda``) is ``cuda:0`` where one device is visible and, where several are, one that the
    job claims for its lifetime from a pool shared with the other jobs (:mod:`.gpus`); an explicit
    ``cuda:N`` is taken as given."""
    from . import gpus

    if isinstance(device, torch.device):
        return device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device: {device!r} was requested but CUDA is not available; use 'auto' or 'cpu'")
    return gpus.cuda_device() if device == "cuda" else torch.device(device)


@dataclass
class StackData:
    """The tensors of one stack on the device: inputs x (n, 2) operand indices or (n, D) dense vectors,
    labels per model (K, n)."""

    train_x: torch.Tensor
    train_y: torch.Tensor  # (K, n_train): each model's (partly corrupted) labels
    true_y: torch.Tensor  # (n_train,)
    test_x: torch.Tensor
    test_y: torch.Tensor
    corrupt_mask: torch.Tensor  # (K, n_train): training positions [0, n_noise)
    n_noise: np.ndarray  # (K,)

    @classmethod
    def build(cls, split, models: list[ModelSettings], device) -> StackData:
        def t(a):
            return torch.as_tensor(np.asarray(a), dtype=torch.long, device=device)

        def inputs(a):  # operand indices stay integers, dense inputs float32
            a = np.asarray(a)
            return t(a) if a.dtype.kind in "iu" else torch.as_tensor(a, dtype=torch.float32, device=device)

        labels, n_noise = zip(*(split.train_labels(ms.corruption) for ms in models), strict=True)
        n_noise = np.asarray(n_noise)
        corrupt = torch.arange(split.n_train, device=device).unsqueeze(0) < t(n_noise).unsqueeze(1)
        return cls(
            inputs(split.train_inputs),
            t(np.stack(labels)),
            t(split.train_true),
            inputs(split.test_inputs),
            t(split.test_labels),
            corrupt,
            n_noise,
        )


class BatchOrder:
    """Minibatch indices: each epoch a fresh permutation from the model's own generator, the last
    incomplete batch dropped. Models with equal batch seeds share one schedule (drawn once)."""

    def __init__(self, models: list[ModelSettings], n_train: int, batch_size: int, device):
        seeds = [derive_seed(ms.seed, "batch") for ms in models]
        self.shared = len(set(seeds)) == 1
        self.gens = [torch.Generator().manual_seed(s) for s in (seeds[:1] if self.shared else seeds)]
        self.n_train, self.bs, self.device = n_train, batch_size, device
        self.epoch, self.pos = None, 0

    def state_dict(self) -> dict:
        epoch = None if self.epoch is None else self.epoch.cpu()
        return {"gens": [g.get_state() for g in self.gens], "epoch": epoch, "pos": self.pos}

    def load_state_dict(self, state: dict):
        for g, s in zip(self.gens, state["gens"], strict=True):
            g.set_state(s)
        self.epoch = None if state["epoch"] is None else state["epoch"].to(self.device)
        self.pos = state["pos"]

    def next(self) -> torch.Tensor:
        """(bs,) indices shared by every model, or (K, bs) per model."""
        if self.epoch is None or self.pos >= self.epoch.shape[1]:
            nb = self.n_train // self.bs
            perms = [torch.randperm(self.n_train, generator=g)[: nb * self.bs].view(nb, self.bs) for g in self.gens]
            # Drawn on the host (the order does not depend on the device), uploaded without the host
            # waiting for the device (:func:`.transfer.upload`): (1 or K, nb, bs).
            self.epoch, self.pos = upload(torch.stack(perms, dim=0), self.device), 0
        idx = self.epoch[:, self.pos]
        self.pos += 1
        return idx[0] if self.shared else idx


def train(
    split,
    settings: StackSettings,
    models: list[ModelSettings],
    *,
    device="auto",
    progress=True,
    desc="train",
    max_stack: int | None = None,
    checkpoint: Checkpoint | None = None,
) -> TrainResult:
    """Train ``len(models)`` networks on ``split`` (a split of :mod:`grokking.data`) as one stacked model.

    On CPU a large stack is trained as consecutive sub-stacks of ``max_stack`` models (default: the
    family's ``cpu_sub_stack``); on a GPU as one stack unless ``max_stack`` is given. With a
    ``checkpoint`` the state of the sub-stack in training is saved at the checkpoint's interval and each
    finished sub-stack's result is kept, so a rerun after a kill resumes where the last save left off.
    """
    if not models:
        raise ValueError("train: at least one model is required")
    dev = resolve_device(device)
    K = len(models)
    limit = sub_stack_limit(get_family(settings.shape), settings.shape, dev, K, max_stack)
    layout = {"device": dev.type, "models": K, "sub_stack": limit}
    parts = []
    for part, start in enumerate(range(0, K, limit)):
        stack = models[start : start + limit]
        name = desc if limit >= K else f"{desc}[{start}:{start + len(stack)}]"
        saved = checkpoint.load(part, layout) if checkpoint else None
        if saved is not None and "result" in saved:
            parts.append(TrainResult(**saved["result"]))
            continue
        res = _train_stack(split, settings, stack, dev, progress, name, saved, checkpoint, (part, layout))
        if checkpoint:
            checkpoint.save(part, {"result": {f.name: getattr(res, f.name) for f in fields(res)}}, layout)
        parts.append(res)
    return parts[0] if len(parts) == 1 else concat_results(parts)


def _check(split, settings: StackSettings) -> list[int]:
    shape, bs = settings.shape, settings.batch_size
    _check_inputs(shape, split)
    if bs is not None and not 1 <= bs <= split.n_train:
        raise ValueError(f"batch_size: {bs} must be 'full' or an integer in [1, {split.n_train}] (training set size)")
    if getattr(shape, "norm", "none") == "batchnorm" and (bs or split.n_train) < 2:
        raise ValueError("batch_size: BatchNorm needs at least 2 examples per batch")
    log_steps = list(settings.log_steps) or log_schedule(settings.steps)
    if log_steps[-1] != settings.steps or log_steps[0] < 1:
        raise ValueError("log_steps must lie in [1, steps] and end at steps")
    return log_steps


def _check_inputs(shape, split):
    """The model reads what the dataset holds: operand pairs mod p, or dense vectors and classes."""
    dense = getattr(shape, "inputs", None)
    if split.input_dim is None:
        if dense is not None:
            raise ValueError(f"inputs: the model reads dense vectors of length {dense}, the dataset operand pairs")
        if shape.p != split.p:
            raise ValueError(f"p: model has p={shape.p} but the dataset has p={split.p}")
    elif dense != split.input_dim or shape.n_classes != split.classes:
        raise ValueError(
            f"inputs: the dataset has {split.input_dim} inputs and {split.classes} classes; the model reads "
            f"{'operand pairs' if dense is None else dense} and has {getattr(shape, 'n_classes', shape.p)} classes"
        )


def _train_stack(split, settings, models, dev, progress, desc, saved=None, checkpoint=None, where=None):
    """One stack; ``saved``: a checkpointed state to resume from; ``checkpoint``: where to save it, as
    sub-stack ``where = (part, layout)`` of the job."""
    # --- setup ---
    family, shape, K = get_family(settings.shape), settings.shape, len(models)
    log_steps = _check(split, settings)
    seeds = [ms.seed for ms in models]
    dropout = StackDropout([ms.dropout for ms in models], seeds, dev)
    data = StackData.build(split, models, dev)
    inits = [family.init(shape, derive_seed(ms.seed, "init"), settings.init_scale) for ms in models]
    init_params = _stack([p for p, _ in inits])
    # Hand-written gradients are float32 code: under bf16 autograd differentiates the autocast forward.
    manual = getattr(family, "manual_gradients", lambda s: False)(shape) and settings.precision != "bf16"
    params = {k: v.to(dev, copy=True).requires_grad_(not manual) for k, v in init_params.items()}
    buffers = {k: v.to(dev) for k, v in _stack([b for _, b in inits]).items()}
    opt = AdamW(
        params,
        [ms.lr for ms in models],
        [ms.weight_decay for ms in models],
        tuple(settings.betas),
        settings.eps,
        settings.no_decay,
    )
    order = BatchOrder(models, split.n_train, settings.batch_size, dev) if settings.batch_size else None
    state = TrainState(K, settings.record_neuron_ipr)
    if saved is not None:
        state.restore(saved, params, buffers, opt, dropout, order)
    bar = Progress(settings.steps, desc, progress)
    bar.update(state.step)
    start = time.perf_counter()

    # --- training ---
    with computing(settings.precision, dev):
        for step in range(state.step + 1, settings.steps + 1):
            logging = step == log_steps[state.li]
            batch_loss = _train_step(family, settings, params, buffers, data, order, dropout, opt, manual, logging)
            if logging:  # --- log ---
                log_start = time.perf_counter()
                masks = EvalDropout(dropout.probs, seeds, step, dev) if settings.eval_dropout else None
                row = metrics_row(family, settings, params, buffers, data, masks)
                row["batch_loss"] = batch_loss.detach()
                if state.neuron_ipr is not None:
                    p = {k: v.detach() for k, v in params.items()}
                    row["neuron_ipr"] = family.neuron_ipr(p, settings.ipr_mode)
                state.log(step, len(log_steps), row, desc)
                state.log_seconds += time.perf_counter() - log_start
                bar.set_postfix(
                    **{k: f"{_finite_mean(state.curves[k + '_acc'][state.li - 1]):.3f}" for k in ("train", "test")}
                )
            state.step = step
            bar.update(1)
            if checkpoint is not None and checkpoint.due():  # --- checkpoint ---
                snapshot = state.snapshot(params, buffers, opt, dropout, order, time.perf_counter() - start)
                checkpoint.save(where[0], snapshot, where[1])
    bar.close()
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)  # the device trained on (not the current one: they differ with cuda:N)
    seconds = state.seconds + time.perf_counter() - start
    return TrainResult(
        np.asarray(log_steps),
        _curve_order(state.curves),
        None if state.neuron_ipr is None else np.stack(state.neuron_ipr),
        {k: v.detach().cpu() for k, v in params.items()},
        {k: v.cpu() for k, v in buffers.items()},
        init_params,
        data.n_noise,
        seconds,
        str(dev),
        state.diverged_at,
        state.log_seconds,
    )


def _finite_mean(x: np.ndarray) -> float:
    """Mean over the models that have not diverged (NaN when none is left)."""
    x = x[np.isfinite(x)]
    return float(x.mean()) if x.size else float("nan")


def _stack(dicts: list[dict]) -> dict:
    return {k: torch.stack([d[k] for d in dicts]) for k in dicts[0]} if dicts else {}


def _train_step(family, settings, params, buffers, data, order, dropout, opt, manual, logging):
    """One optimisation step of every model of the stack: a batch, the gradients, the AdamW update.

    Outside the log steps (``logging`` false) a step runs on the device alone: no copy between host
    and device that the host waits for, no read of a device value, nothing drawn from a generator of
    another device, so that a GPU is never idle waiting for the host (tests/test_device_guard.py holds
    every family to this). Returns the per-model batch loss (None when not ``logging`` and the family's
    hand-written gradients can skip it)."""
    x, y = _batch(data, order)
    batch_loss = _set_gradients(family, settings, params, buffers, x, y, dropout, manual, logging)
    opt.step()
    return batch_loss


def _batch(data: StackData, order: BatchOrder | None):
    """This step's operands (B, 2) or (K, B, 2) and labels (K, B)."""
    if order is None:
        return data.train_x, data.train_y
    idx = order.next()
    if idx.dim() == 1:
        return data.train_x[idx], data.train_y[:, idx]
    return data.train_x[idx], torch.gather(data.train_y, 1, idx)


def _set_gradients(family, settings, params, buffers, x, y, dropout, manual, need_loss):
    """Fill ``.grad`` of every parameter with the gradient of the summed per-model batch losses;
    returns the per-model batch loss (train mode, before the update; None when not needed and the
    family's hand-written gradients can skip it)."""
    shape, loss = settings.shape, settings.loss
    if manual:
        value, grads = family.loss_and_grads(shape, params, x, y, loss, dropout, need_loss)
        for name, prm in params.items():
            prm.grad = grads[name]
        return value
    with autocast(settings.precision, x.device):
        logits = family.forward(shape, params, buffers, x, train=True, dropout=dropout)
    value = losses.per_model(logits.float(), y, loss)
    for prm in params.values():
        prm.grad = None
    value.sum().backward()
    return value


FIRST_CURVES = (
    "train_acc",
    "test_acc",
    "corrupted_acc",
    "uncorrupted_acc",
    "full_acc",
    "train_loss",
    "test_loss",
    "batch_loss",
)


def _curve_order(curves: dict) -> dict:
    """Accuracies and losses first, then the family's norms, then ``ipr_mean``."""
    keys = [k for k in FIRST_CURVES if k in curves] + [k for k in curves if k not in FIRST_CURVES]
    return {k: curves[k] for k in keys}
