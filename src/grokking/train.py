"""The training engine: ONE loop for K >= 1 stacked models (a single run is K = 1).

AdamW follows ``torch.optim.AdamW`` exactly (decoupled decay ``w *= 1 - lr*wd`` first, then the
bias-corrected Adam update), with a learning rate and weight decay per model. Full batch or
minibatch (fresh permutation each epoch, last incomplete batch dropped). Metrics are taken in eval
mode on the whole training and test sets at the logged steps.

Randomness is per model and per purpose (init, dropout masks, batch order), each from its own
generator derived from the model's seed, so a model's trajectory does not depend on which other
models share its stack.
"""

from __future__ import annotations

import hashlib
import math
import sys
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from . import metrics
from .models import (MLPShape, forward, init_buffers, init_weights, loss_and_grads, per_model_loss, stack,
                     stacked_dropout_masks)
from .tasks import Split

CURVE_KEYS = ("train_acc", "test_acc", "corrupted_acc", "uncorrupted_acc", "full_acc",
              "train_loss", "test_loss", "batch_loss", "norm_u", "norm_v", "norm_w", "ipr_mean")


def derive_seed(seed: int, purpose: str) -> int:
    """A stable 63-bit seed for (model seed, purpose); the init uses the seed itself."""
    if purpose == "init":
        return int(seed)
    digest = hashlib.sha256(f"{purpose}:{int(seed)}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def log_schedule(steps: int, log_every: int | None = None) -> list[int]:
    """Step 1, then every ``log_every`` steps (default steps/100), always ending at ``steps``."""
    every = max(1, steps // 100) if log_every is None else int(log_every)
    return sorted({1, steps, *range(every, steps + 1, every)})


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device: {device!r} was requested but CUDA is not available; use 'auto' or 'cpu'")
    return torch.device(device)


@dataclass(frozen=True)
class StackSettings:
    """What all models of one stack share (architecture, data size, schedule)."""

    shape: MLPShape
    loss: str = "mse"
    batch_size: int | None = None  # None = full batch
    steps: int = 2000
    betas: tuple = (0.9, 0.98)
    eps: float = 1e-8
    init_scale: float | None = None
    log_steps: tuple = ()
    ipr_mode: str = "rfft"
    record_neuron_ipr: bool = False


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
    extra: dict = field(default_factory=dict)


def _as_per_model(values, K, device, view_dims):
    """A Python float when all models agree (exact scalar ops), else a broadcastable tensor."""
    vals = [float(v) for v in values]
    if all(v == vals[0] for v in vals):
        return vals[0]
    return torch.tensor(vals, device=device).view(K, *([1] * view_dims))


class AdamW:
    """``torch.optim.AdamW`` (amsgrad off, non-maximize) for stacked parameters, per-model lr and wd."""

    def __init__(self, params: dict, lr, weight_decay, betas, eps):
        self.params = params
        K = next(iter(params.values())).shape[0]
        self.lr = [float(x) for x in lr]
        self.wd = [float(x) for x in weight_decay]
        self.betas, self.eps, self.t = betas, eps, 0
        self.state = {k: (torch.zeros_like(v), torch.zeros_like(v)) for k, v in params.items()}
        dev = next(iter(params.values())).device
        self._lr = {k: _as_per_model(self.lr, K, dev, v.dim() - 1) for k, v in params.items()}
        self._decay = {k: _as_per_model([1 - a * b for a, b in zip(self.lr, self.wd)], K, dev, v.dim() - 1)
                       for k, v in params.items()}

    @torch.no_grad()
    def step(self):
        self.t += 1
        b1, b2 = self.betas
        bc1 = 1 - b1 ** self.t
        bc2_sqrt = math.sqrt(1 - b2 ** self.t)
        for name, p in self.params.items():
            g = p.grad
            m, v = self.state[name]
            p.mul_(self._decay[name])
            m.lerp_(g, 1 - b1)
            v.mul_(b2).addcmul_(g, g, value=1 - b2)
            denom = (v.sqrt() / bc2_sqrt).add_(self.eps)
            lr = self._lr[name]
            if isinstance(lr, float):
                p.addcdiv_(m, denom, value=-lr / bc1)
            else:
                p.sub_(m / denom * (lr / bc1))


class _Progress:
    """tqdm bar with ETA on stderr (the job log); sparse updates when stderr is not a terminal."""

    def __init__(self, total, desc, enabled):
        self.bar = None
        if enabled:
            from tqdm import tqdm

            tty = sys.stderr.isatty()
            self.bar = tqdm(total=total, desc=desc, file=sys.stderr, mininterval=0.5 if tty else 10.0,
                            dynamic_ncols=tty, ascii=not tty, unit="step")

    def set_postfix(self, **post):
        if self.bar is not None:
            self.bar.set_postfix(post, refresh=False)

    def update(self, n=1):
        if self.bar is not None:
            self.bar.update(n)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def _eval_chunk_size(K, N, budget_bytes=256 * 2**20):
    return max(64, int(budget_bytes // (4 * max(1, K) * max(N, 1) * 3)))


@torch.no_grad()
def evaluate(shape, params, buffers, m, n, y, loss, chunk=None):
    """Eval-mode per-model loss (K,) against y, and the predicted classes (K, B); y is (B,) or (K, B)."""
    K = params["U"].shape[0]
    chunk = chunk or _eval_chunk_size(K, shape.width)
    losses, preds = [], []
    B = m.shape[-1]
    for s in range(0, B, chunk):
        sl = slice(s, min(B, s + chunk))
        logits = forward(shape, params, buffers, m[..., sl], n[..., sl], train=False)
        losses.append(per_model_loss(logits, y[..., sl].expand(K, -1), loss) * (sl.stop - sl.start))
        preds.append(logits.argmax(-1))
    return torch.stack(losses).sum(0) / B, torch.cat(preds, dim=1)


CPU_TABLE_BYTES = 2**21  # on CPU, sub-stacks whose first-layer tables (2p x K*N floats) fit in ~2 MiB of cache


def cpu_sub_stack(shape: MLPShape) -> int:
    """Models per sub-stack on CPU. Larger stacks spill the first layer's tables and gradients out of
    the cache and get slower per model (benchmarks/README.md); the models of a stack are independent,
    so cutting it changes results only by float rounding (the example blocks depend on K; tested to
    1e-5). Rounded down to a multiple of 4: the batched products split
    evenly over 1, 2 or 4 threads (4 models measured 15 % faster per model than 5 at paper size)."""
    n = CPU_TABLE_BYTES // (2 * shape.p * shape.width * 4)
    return n - n % 4 if n >= 4 else max(1, n)


def _concat_results(parts: list[TrainResult]) -> TrainResult:
    first = parts[0]
    cat_np = lambda arrays: np.concatenate(arrays, axis=1)  # noqa: E731
    cat_t = lambda dicts: {k: torch.cat([d[k] for d in dicts]) for k in dicts[0]}  # noqa: E731
    return TrainResult(first.steps, {k: cat_np([p.curves[k] for p in parts]) for k in first.curves},
                       None if first.neuron_ipr is None else cat_np([p.neuron_ipr for p in parts]),
                       cat_t([p.params for p in parts]), cat_t([p.buffers for p in parts]),
                       cat_t([p.init_params for p in parts]), np.concatenate([p.n_noise for p in parts]),
                       sum(p.seconds for p in parts), first.device)


def train(split: Split, settings: StackSettings, models: list[ModelSettings], *, device="auto",
          progress=True, desc="train", max_stack: int | None = None) -> TrainResult:
    """Train ``len(models)`` networks on ``split`` as one stacked model.

    On CPU a large stack is trained as consecutive sub-stacks of ``max_stack`` models (default
    :func:`cpu_sub_stack`); on a GPU as one stack unless ``max_stack`` is given.
    """
    if not models:
        raise ValueError("train: at least one model is required")
    dev = resolve_device(device) if isinstance(device, str) else device
    shape, K, p = settings.shape, len(models), settings.shape.p
    limit = max_stack if max_stack is not None else (cpu_sub_stack(shape) if dev.type == "cpu" else K)
    if K > limit:
        return _concat_results([train(split, settings, models[i:i + limit], device=dev, progress=progress,
                                      desc=f"{desc}[{i}:{min(K, i + limit)}]", max_stack=limit)
                                for i in range(0, K, limit)])
    if shape.p != split.p:
        raise ValueError(f"p: model has p={shape.p} but the dataset has p={split.p}")
    n_train = split.n_train
    bs = settings.batch_size
    if bs is not None and not 1 <= bs <= n_train:
        raise ValueError(f"batch_size: {bs} must be 'full' or an integer in [1, {n_train}] (training set size)")
    if shape.norm == "batchnorm" and (bs or n_train) < 2:
        raise ValueError("batch_size: BatchNorm needs at least 2 examples per batch")
    for ms in models:
        if not 0 <= ms.dropout < 1:
            raise ValueError(f"dropout: {ms.dropout} must be in [0, 1)")
    log_steps = list(settings.log_steps) or log_schedule(settings.steps)
    if log_steps[-1] != settings.steps or log_steps[0] < 1:
        raise ValueError("log_steps must lie in [1, steps] and end at steps")

    def t(a):
        return torch.as_tensor(np.asarray(a), dtype=torch.long, device=dev)

    train_m, train_n = t(split.train_m), t(split.train_n)
    test_m, test_n, test_y = t(split.test_m), t(split.test_n), t(split.test_labels)
    true_y = t(split.train_true)
    labels, n_noise = [], []
    for ms in models:
        y, nn_ = split.train_labels(ms.corruption)
        labels.append(y)
        n_noise.append(nn_)
    train_y = t(np.stack(labels))  # (K, n_train)
    n_noise = np.asarray(n_noise)

    init = [init_weights(shape, derive_seed(ms.seed, "init"), settings.init_scale) for ms in models]
    init_params = stack(init)
    # The plain MLP's gradients are computed by hand (models.loss_and_grads); normalized models use autograd.
    manual = shape.norm == "none"
    params = {k: v.to(dev, copy=True).requires_grad_(not manual) for k, v in init_params.items()}
    buffers = {k: v.to(dev) for k, v in stack([init_buffers(shape) for _ in models]).items()}
    opt = AdamW(params, [ms.lr for ms in models], [ms.weight_decay for ms in models],
                tuple(settings.betas), settings.eps)

    drop_idx = [k for k, ms in enumerate(models) if ms.dropout > 0]
    drop_gens = {k: torch.Generator(device=dev).manual_seed(derive_seed(models[k].seed, "dropout"))
                 for k in drop_idx}
    drop_probs, drop_buf = [ms.dropout for ms in models], None
    batch_seeds = [derive_seed(ms.seed, "batch") for ms in models]
    shared_order = len(set(batch_seeds)) == 1  # identical seeds -> identical schedules: draw once
    batch_gens = [torch.Generator().manual_seed(s) for s in (batch_seeds[:1] if shared_order else batch_seeds)]
    batches, batch_pos = None, 0

    T = len(log_steps)
    curves = {k: np.full((T, K), np.nan) for k in CURVE_KEYS}
    neuron_curve = np.full((T, K, shape.width), np.nan, dtype=np.float32) if settings.record_neuron_ipr else None
    arange_train = torch.arange(n_train, device=dev)
    corrupt_mask = arange_train.unsqueeze(0) < torch.as_tensor(n_noise, device=dev).unsqueeze(1)

    bar = _Progress(settings.steps, desc, progress)
    start = time.perf_counter()
    li = 0
    for step in range(1, settings.steps + 1):
        if bs is None:
            idx = None
            m_b, n_b, y_b = train_m, train_n, train_y
        else:
            if batches is None or batch_pos >= batches.shape[1]:
                nb = n_train // bs
                perms = [torch.randperm(n_train, generator=g)[: nb * bs].view(nb, bs) for g in batch_gens]
                batches = torch.stack(perms, dim=0).to(dev)  # (1 or K, nb, bs)
                batch_pos = 0
            idx = batches[:, batch_pos]  # (1 or K, bs)
            batch_pos += 1
            if shared_order:
                m_b, n_b = train_m[idx[0]], train_n[idx[0]]
                y_b = train_y[:, idx[0]]
            else:
                m_b, n_b = train_m[idx], train_n[idx]
                y_b = torch.gather(train_y, 1, idx)
        B = m_b.shape[-1]
        mask = None
        if drop_idx:
            mask, drop_buf = stacked_dropout_masks(drop_gens, drop_probs, B, shape.width, dev, drop_buf)
        logging = step == log_steps[li]
        if manual:
            batch_loss, grads = loss_and_grads(shape, params, m_b, n_b, y_b, settings.loss, mask, need_loss=logging)
            for name, prm in params.items():
                prm.grad = grads[name]
        else:
            logits = forward(shape, params, buffers, m_b, n_b, train=True, mask=mask)
            batch_loss = per_model_loss(logits, y_b, settings.loss)
            for prm in params.values():
                prm.grad = None
            batch_loss.sum().backward()
        opt.step()

        if logging:
            row = _log_metrics(shape, settings, params, buffers, train_m, train_n, train_y, true_y,
                               test_m, test_n, test_y, corrupt_mask)
            row["batch_loss"] = batch_loss.detach()
            for key, val in row.items():
                curves[key][li] = val.double().cpu().numpy()
            if neuron_curve is not None:
                neuron_curve[li] = metrics.neuron_ipr({k: params[k].detach() for k in "UVW"},
                                                      settings.ipr_mode).float().cpu().numpy()
            bar.set_postfix(train=f"{np.nanmean(curves['train_acc'][li]):.3f}",
                            test=f"{np.nanmean(curves['test_acc'][li]):.3f}")
            li += 1
        bar.update(1)
    bar.close()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    final = {k: v.detach().cpu() for k, v in params.items()}
    return TrainResult(np.asarray(log_steps), curves, neuron_curve, final,
                       {k: v.cpu() for k, v in buffers.items()}, init_params, n_noise, seconds, str(dev))


@torch.no_grad()
def _log_metrics(shape, settings, params, buffers, train_m, train_n, train_y, true_y,
                 test_m, test_n, test_y, corrupt_mask):
    p = {k: v.detach() for k, v in params.items()}
    train_loss, train_pred = evaluate(shape, p, buffers, train_m, train_n, train_y, settings.loss)
    test_loss, test_pred = evaluate(shape, p, buffers, test_m, test_n, test_y, settings.loss)
    train_ok, test_ok, true_ok = train_pred == train_y, test_pred == test_y, train_pred == true_y
    ok = train_ok.double()
    cm = corrupt_mask.double()
    n_c = cm.sum(1)
    n_u = (1 - cm).sum(1)
    n_all = train_ok.shape[1] + test_ok.shape[1]
    row = {
        "train_acc": ok.mean(1),
        "test_acc": test_ok.double().mean(1),
        "corrupted_acc": (ok * cm).sum(1) / n_c,  # NaN when nothing is corrupted
        "uncorrupted_acc": (ok * (1 - cm)).sum(1) / n_u,
        "full_acc": (true_ok.double().sum(1) + test_ok.double().sum(1)) / n_all,
        "train_loss": train_loss,
        "test_loss": test_loss,
    }
    row.update(metrics.weight_norms(p))
    row["ipr_mean"] = metrics.neuron_ipr(p, settings.ipr_mode).mean(1)
    return row
