"""Part b of the GPU acceptance check: the sync audit. Every family and training path of the device guard
(:mod:`.audit`'s cases, a checkpoint saved and resumed, pruning, a single run and its pruning, a width job)
trains a few steps on the GPU under :class:`.guard.DeviceGuard`: no CPU tensor meets a device tensor, no CPU
generator draws device randomness, no training step between log steps copies to or from the host, and
PyTorch's own ``torch.cuda.set_sync_debug_mode("error")`` finds no synchronizing call in those steps. In a
development run on the CPU the same cases train on the ``meta`` stand-in, as in ``make test``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from ..engine import Checkpoint
from . import audit
from .common import FAIL, PASS, Context, Outcome
from .guard import DeviceGuard


class Interrupted(Exception):
    """The end of the first half of the checkpoint path: the job 'killed' after a save."""


class KilledAfter(Checkpoint):
    """A checkpoint whose job stops right after its ``n``-th save, as a kill between two saves would (also the
    resume tests' stand-in for a SIGKILL)."""

    def __init__(self, *args, n: int, **kw):
        super().__init__(*args, **kw)
        self.n = n

    def save(self, *args):
        super().save(*args)
        self.n -= 1
        if self.n == 0:
            raise Interrupted


def _guard(ctx: Context) -> DeviceGuard:
    return DeviceGuard(collect=True, device=ctx.guard_device, sync_debug=ctx.gpu)


def _expect(problems: list, got, want, what: str):
    if got != want:
        problems.append(f"{what}: {got}, expected {want}")


def train_case(ctx: Context, name: str, split) -> tuple[DeviceGuard, list]:
    """One case of :data:`.audit.CASES` under the guard; the guard and what did not hold."""
    from ..engine import train

    _, st, models, kw, constants = audit.CASES[name]
    problems = []
    with audit.engine_constants(constants), _guard(ctx) as g:
        train(split, st, models, device=ctx.guard_device, progress=False, **kw)
    parts = max(1, g.steps // st.steps)
    _expect(problems, g.armed_steps, parts * (st.steps - len(st.log_steps)), "steps checked between log steps")
    if any(m.dropout for m in models) and g.device_draws < g.steps:
        problems.append(f"dropout masks: {g.device_draws} draws from the device's generators in {g.steps} steps")
    return g, problems


def checkpoint_path(ctx: Context, folder: Path) -> tuple[DeviceGuard, list]:
    """A job saving its state every step, stopped after sub-stack 0 and 3 steps of sub-stack 1, then resumed."""
    from ..engine import train
    from ..models.mlp2 import MLPShape

    split, st, models = audit.modular(), audit.settings(MLPShape(audit.P, 16), batch_size=100), audit.stack()
    problems = []
    first = KilledAfter(folder, "job", 1e-9, n=audit.STEPS + 1 + 3)
    with _guard(ctx) as g:
        try:
            train(split, st, models, device=ctx.guard_device, progress=False, max_stack=2, checkpoint=first)
            problems.append("the job was not stopped after its checkpoints")
        except Interrupted:
            pass
        _expect(problems, g.steps, audit.STEPS + 3, "steps before the stop")
        before = g.steps
        again = Checkpoint(folder, "job", 1e-9)
        train(split, st, models, device=ctx.guard_device, progress=False, max_stack=2, checkpoint=again)
    _expect(problems, g.steps - before, audit.STEPS - 3, "steps after resuming")
    return g, problems


def pruning_path(ctx: Context, norm: str) -> tuple[DeviceGuard, list]:
    """Both models of a stack pruned neuron by neuron on the device (the sweeps of the width jobs and runs)."""
    import torch

    from ..experiments.pruning import prune_curves, pruning_order
    from ..models import get_family
    from ..models.mlp2 import MLPShape

    split = audit.modular()
    shape = MLPShape(audit.P, 16, "relu", norm)
    family = get_family(shape)
    inits = [family.init(shape, seed, None) for seed in (1, 2)]
    host = {k: torch.stack([p[k] for p, _ in inits]) for k in inits[0][0]}
    order = pruning_order(family.neuron_ipr(host, "rfft"))  # on the host, as the width jobs do
    params = {k: v.to(ctx.guard_device) for k, v in host.items()}
    buffers = {k: torch.stack([b[k] for _, b in inits]).to(ctx.guard_device) for k in inits[0][1]}
    labels, n_noise = split.train_labels(0.2)
    with _guard(ctx) as g:
        curves = prune_curves(shape, params, buffers, order, split, np.stack([labels] * 2), [n_noise] * 2, "ce")
    problems = []
    _expect(problems, curves["test_acc"].shape, (2, 16), "pruning curves")
    return g, problems


def _tiny_spec(ctx: Context, **over) -> dict:
    from ..experiments.specs import resolve

    tiny = dict(p=audit.P, train_fraction=0.6, corruption=0.2, width=16, batch_size=100, steps=audit.STEPS)
    return dict(resolve(ctx.config, dict(tiny, log_every=5, seed=3), over), name="tiny")


def _data(folder: Path) -> Path:
    from ..data import Universe
    from ..results import write_npz

    path = folder / f"add_p{audit.P}.npz"
    if not path.exists():
        write_npz(path, **Universe.build("add", audit.P).to_arrays())
    return path


def run_path(ctx: Context, folder: Path) -> tuple[DeviceGuard, list]:
    """A named run trained and saved, then its pruning sweeps, as the rules train_run and prune_run do."""
    from ..experiments.pruning import prune_saved_run
    from ..experiments.runs import run_and_save

    data = _data(folder)
    with _guard(ctx) as g:
        run_and_save(_tiny_spec(ctx, dropout=0.2), data, folder / "run", device=ctx.guard_device, progress=False)
        out = prune_saved_run(folder / "run", data, folder / "pruning.npz", device=ctx.guard_device)
    problems = []
    _expect(problems, g.armed_steps, audit.STEPS - 3, "steps checked between log steps")
    _expect(problems, out["lowest_test_acc"].shape, (16,), "pruning curve")
    return g, problems


def width_path(ctx: Context, folder: Path) -> tuple[DeviceGuard, list]:
    """Fig 32's job: the seeds of one width as one stack, trained, then pruned on the device."""
    from ..experiments.widths import train_width_job

    spec = _tiny_spec(ctx, batch_size="full", corruption=0.35, weight_decay=1.0)
    job = {"spec": spec, "seeds": [1, 2, 3]}
    with _guard(ctx) as g:
        out = train_width_job(job, _data(folder), folder / "w.npz", device=ctx.guard_device, progress=False)
    problems = []
    _expect(problems, g.armed_steps, audit.STEPS - 3, "steps checked between log steps")
    _expect(problems, out["pruned_test_acc"].shape, (3, 16), "pruning curves")
    return g, problems


def _paths(ctx: Context, folder: Path) -> dict:
    return {
        "checkpoint saved and resumed": lambda: checkpoint_path(ctx, folder / "checkpoint"),
        "pruning, no norm": lambda: pruning_path(ctx, "none"),
        "pruning, BatchNorm": lambda: pruning_path(ctx, "batchnorm"),
        "a run and its pruning": lambda: run_path(ctx, folder),
        "a width job (trained, then pruned)": lambda: width_path(ctx, folder),
    }


def _row(name: str, guard: DeviceGuard | None, problems: list) -> dict:
    g = guard
    return {
        "case": name,
        "steps": g.steps if g else 0,
        "checked": g.armed_steps if g else 0,
        "device draws": g.device_draws if g else 0,
        "uploads": g.uploads if g else 0,
        "faults": len(g.faults) if g else 0,
        "result": "pass" if not problems else "FAIL: " + "; ".join(problems),
    }


def run(ctx: Context) -> Outcome:
    import torch

    folder = ctx.work / "sync_audit"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    data = {}
    jobs = {name: None for name in audit.CASES} | _paths(ctx, folder)
    rows, failed = [], []
    for name, job in jobs.items():
        if ctx.left() <= 0:
            failed.append(f"budget spent before {name!r}")
            break
        guard, problems = None, []
        try:
            if job is None:
                source = audit.CASES[name][0]
                split = data.get(source) or data.setdefault(source, audit.DATASETS[source]())
                guard, problems = train_case(ctx, name, split)
            else:
                guard, problems = job()
            if ctx.gpu:  # a kernel's error surfaces here, as this case's
                torch.cuda.synchronize(torch.device(ctx.device))
        except Exception as err:  # noqa: BLE001 - any error is this case's finding; the others still run
            problems = [f"{type(err).__name__}: {err}"]
        problems = [str(f) for f in (guard.faults if guard else [])] + problems
        rows.append(_row(name, guard, problems))
        if problems:
            failed.append(f"{name}: {problems[0]}")
    where = f"on {ctx.device}" if ctx.gpu else "on the meta stand-in (no GPU)"
    numbers = {
        "device": ctx.guard_device,
        "cuda_sync_debug_mode": ctx.gpu,
        "cases": len(rows),
        "steps_checked": sum(r["checked"] for r in rows),
        "faults": sum(r["faults"] for r in rows),
    }
    notes = [] if ctx.gpu else ["PyTorch's CUDA sync debug mode needs CUDA: not part of a run on the stand-in."]
    if failed:
        return Outcome(FAIL, f"{len(failed)} of {len(jobs)} cases failed {where}: {failed[0]}", numbers, rows, notes)
    checks = "guard and torch.cuda sync debug mode" if ctx.gpu else "guard"
    what = f"{len(rows)} cases {where}, {numbers['steps_checked']} steps between log steps checked ({checks}): no fault"
    return Outcome(PASS, what, numbers, rows, notes)
