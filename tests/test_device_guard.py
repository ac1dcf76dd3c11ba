"""Every model family and training path on a device that stands for a GPU, under the device guard
(grokking.gpucheck.guard): no CPU tensor meets a device tensor, no CPU generator draws device randomness,
and no training step between log steps copies to or from the host. CI has no GPU; PyTorch's ``meta``
device has a GPU's device rules and no data, so these runs check where tensors live and when the host
reads them, never the numbers (tests/test_numerics.py and tests/test_engine_equivalence.py do that).
The cases are those of :mod:`grokking.gpucheck.audit`, which the GPU acceptance check trains on CUDA.

The last tests break the engine on purpose (a CPU index, a CPU generator, an ``.item()`` in the step,
...) and show that the guard fails, naming the fault.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from grokking.data import Universe
from grokking.engine import Checkpoint, StackSettings, derive_seed, loop, train
from grokking.engine.adamw import AdamW
from grokking.engine.dropout import StackDropout, stacked_dropout_masks
from grokking.experiments.pruning import prune_curves, prune_saved_run, pruning_order
from grokking.experiments.runs import run_and_save
from grokking.experiments.specs import resolve
from grokking.experiments.widths import train_width_job
from grokking.gpucheck import audit
from grokking.gpucheck.audit import CASES, LOG, STEPS, P, settings, stack
from grokking.gpucheck.guard import GENERATOR, MIXING, SYNC, DeviceGuard, DeviceGuardError
from grokking.gpucheck.syncaudit import Interrupted, KilledAfter  # a job that dies after its n-th save
from grokking.models import get_family, mlp2_grads
from grokking.models.mlp2 import MLPShape
from grokking.results import write_npz

DEVICE = "meta"


@pytest.fixture(scope="module")
def modular():
    return audit.modular()


@pytest.fixture(scope="module")
def digits():
    return audit.digits()


@pytest.fixture(scope="module")
def mnist_shaped():
    return audit.mnist_shaped()


def guarded(split, st: StackSettings, models, **kw):
    with DeviceGuard() as guard:
        res = train(split, st, models, device=DEVICE, progress=False, **kw)
    assert res.device == DEVICE and guard.steps >= st.steps
    parts = guard.steps // st.steps
    assert guard.armed_steps == parts * (st.steps - len(st.log_steps)), "the guard checked every step between logs"
    return guard, res


@pytest.mark.parametrize("name", CASES)
def test_every_family_and_path_trains_on_the_device(name, request, monkeypatch):
    data, st, models, kw, constants = CASES[name]
    for key, value in constants.items():
        monkeypatch.setattr(mlp2_grads, key, value)
    guard, res = guarded(request.getfixturevalue(data), st, models, **kw)
    assert res.curves["train_acc"].shape == (len(st.log_steps), len(models))
    assert all(v.device.type == "cpu" for v in res.params.values())
    if any(m.dropout for m in models):  # the masks came from the device's own generators
        assert guard.device_draws >= guard.steps
    if st.batch_size and len(set(m.seed for m in models)) > 1 and st.batch_size > 100:
        assert guard.uploads > 0  # new epochs inside guarded steps went through the non-blocking upload


def test_checkpoint_save_and_resume_on_the_device(modular, tmp_path):
    """A job saves its state at every step (sub-stack 0 finishes, sub-stack 1 is killed after its third
    step) and a rerun resumes: the saves, the restore and the resumed steps all pass the guard."""
    st = settings(MLPShape(P, 16), batch_size=100)
    models = stack()
    killed = KilledAfter(tmp_path / "ck", "job", every_seconds=1e-9, n=STEPS + 1 + 3)
    with DeviceGuard() as first, pytest.raises(Interrupted):
        train(modular, st, models, device=DEVICE, progress=False, max_stack=2, checkpoint=killed)
    assert first.steps == STEPS + 3
    with DeviceGuard() as second:
        res = train(
            modular,
            st,
            models,
            device=DEVICE,
            progress=False,
            max_stack=2,
            checkpoint=Checkpoint(tmp_path / "ck", "job", 1e-9),
        )
    assert second.steps == STEPS - 3  # sub-stack 0 from its saved result, sub-stack 1 from step 3
    assert res.curves["test_acc"].shape == (len(LOG), 3)


def _spec(**over) -> dict:
    config = yaml.safe_load(open(Path(__file__).resolve().parents[1] / "config" / "config.yaml"))
    tiny = dict(p=P, train_fraction=0.6, corruption=0.2, width=16, batch_size=100, steps=STEPS, log_every=5, seed=3)
    return dict(resolve(config, tiny, over), name="tiny")


@pytest.fixture(scope="module")
def data_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / f"add_p{P}.npz"
    write_npz(path, **Universe.build("add", P).to_arrays())
    return path


@pytest.mark.parametrize("norm", ["none", "batchnorm"])
def test_pruning_on_the_device(modular, norm):
    shape = MLPShape(P, 16, "relu", norm)
    family = get_family(shape)
    inits = [family.init(shape, seed, None) for seed in (1, 2)]
    host = {k: torch.stack([p[k] for p, _ in inits]) for k in inits[0][0]}
    order = pruning_order(family.neuron_ipr(host, "rfft"))  # on the host, as the width jobs do
    params = {k: v.to(DEVICE) for k, v in host.items()}
    buffers = {k: torch.stack([b[k] for _, b in inits]).to(DEVICE) for k in inits[0][1]}
    labels, n_noise = modular.train_labels(0.2)
    with DeviceGuard():
        curves = prune_curves(shape, params, buffers, order, modular, np.stack([labels] * 2), [n_noise] * 2, "ce")
    assert curves["test_acc"].shape == (2, 16)


def test_a_single_run_and_its_pruning_on_the_device(data_path, tmp_path):
    with DeviceGuard() as guard:
        run_and_save(_spec(dropout=0.2), data_path, tmp_path / "run", device=DEVICE, progress=False)
        out = prune_saved_run(tmp_path / "run", data_path, tmp_path / "pruning.npz", device=DEVICE)
    assert guard.armed_steps == STEPS - 3 and out["lowest_test_acc"].shape == (16,)


def test_a_width_job_on_the_device(data_path, tmp_path):
    """Fig 32's job: the seeds of one width as one stack, trained, then pruned on the device."""
    spec = _spec(batch_size="full", corruption=0.35, weight_decay=1.0)
    with DeviceGuard() as guard:
        out = train_width_job(
            {"spec": spec, "seeds": [1, 2, 3]}, data_path, tmp_path / "w.npz", device=DEVICE, progress=False
        )
    assert guard.armed_steps == STEPS - 3 and out["pruned_test_acc"].shape == (3, 16)


# --- broken on purpose: the guard must fail, naming the fault ---------------------------------------


def _train_broken(split, st=None, models=None):
    st = st or settings(MLPShape(P, 16), batch_size=100)
    with DeviceGuard():
        train(split, st, models or stack(), device=DEVICE, progress=False)


def test_a_cpu_index_fails(modular, monkeypatch):
    """The batch order left on the host: its indices meet the device's training set."""
    monkeypatch.setattr(loop, "upload", lambda t, device: t)
    with pytest.raises(
        DeviceGuardError, match=r"device mixing: a cpu tensor \(3, 100\) int64 meets a meta tensor"
    ) as err:
        _train_broken(modular)
    assert err.value.kind == MIXING and "aten.index.Tensor" in str(err.value) and "loop.py" in str(err.value)


def test_a_cpu_generator_fails(modular, monkeypatch):
    """Dropout masks drawn from CPU generators (CUDA refuses them; the masks would be another stream)."""
    real = StackDropout.__init__

    def cpu_generators(self, probs, seeds, device, purpose="dropout"):
        real(self, probs, seeds, device, purpose)
        self.gens = {k: torch.Generator().manual_seed(derive_seed(seeds[k], purpose)) for k in self.gens}

    monkeypatch.setattr(StackDropout, "__init__", cpu_generators)
    with pytest.raises(
        DeviceGuardError, match=r"host generator: a cpu generator draws meta randomness in uniform_"
    ) as err:
        _train_broken(modular)
    assert err.value.kind == GENERATOR and "dropout.py" in str(err.value)


def _read_in_the_step(monkeypatch, read):
    """AdamW reading every gradient on the host from its second step on (step 1 is a log step)."""
    real = AdamW.step

    def step(self):
        if self.t >= 1:
            self.seen = [read(p.grad) for p in self.params.values()]
        real(self)

    monkeypatch.setattr(AdamW, "step", step)


@pytest.mark.parametrize(
    "read,named",
    [
        (lambda g: g.abs().max().item(), r"Tensor\.item\(\) copies a device tensor to the host"),
        (lambda g: float(g.sum()), r"Tensor\.__float__\(\) copies a device tensor to the host"),
        (lambda g: bool((g > 0).any()), r"Tensor\.__bool__\(\) copies a device tensor to the host"),
        (lambda g: g[0].tolist(), r"Tensor\.tolist\(\) copies a device tensor to the host"),
        (lambda g: g.cpu(), r"Tensor\.cpu\(\) copies a device tensor to the host"),
        (lambda g: g.to("cpu"), r"aten\._to_copy\.default copies a meta tensor .* to the host"),
        (lambda g: g[g > 0], r"aten\.index\.Tensor reads device data on the host"),
        (lambda g: torch.nonzero(g), r"aten\.nonzero\.default reads device data on the host"),
    ],
    ids=["item", "float", "bool", "tolist", "cpu", "to cpu", "boolean mask", "nonzero"],
)
def test_a_host_read_in_the_step_fails(modular, monkeypatch, read, named):
    _read_in_the_step(monkeypatch, read)
    with pytest.raises(DeviceGuardError, match=f"host sync: {named}.*, in a training step between log steps") as err:
        _train_broken(modular)
    assert err.value.kind == SYNC and "test_device_guard.py" in str(err.value)


def test_host_data_made_in_the_step_fails(modular, monkeypatch):
    """The keep probabilities made from Python floats at every dropout call (as the engine once did)."""

    def masks(self, B, N):
        return stacked_dropout_masks(self.gens, self.probs, B, N, self.device, None)[0]

    monkeypatch.setattr(StackDropout, "masks", masks)
    with pytest.raises(DeviceGuardError, match=r"host sync: torch\.tensor\(\.\.\.\) copies host data to the device"):
        _train_broken(modular)


def test_a_blocking_upload_in_the_step_fails(modular, monkeypatch):
    """A new epoch's batch order copied from pageable memory (the host waits for the device)."""
    monkeypatch.setattr(loop, "upload", lambda t, device: t.to(device))
    with pytest.raises(DeviceGuardError, match=r"host sync: aten\._to_copy\.default copies a cpu tensor \(3, 3, 100\)"):
        _train_broken(modular)
