"""Resumable training: a job killed mid-training and rerun ends bit-identical to an uninterrupted one;
a model whose loss stops being finite is recorded as diverged while its stack-mates train on."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from grokking.data import Universe
from grokking.engine import Checkpoint, ModelSettings, StackSettings, train
from grokking.experiments.specs import resolve, with_seed
from grokking.gpucheck.syncaudit import Interrupted, KilledAfter  # a job that dies after its n-th save
from grokking.models.deep_mlp import DeepMLPShape
from grokking.models.mlp2 import MLPShape
from grokking.models.transformer import TransformerShape
from grokking.results import load_chunk, write_npz

P = 13


@pytest.fixture(scope="module")
def split():
    return Universe.build("add", P).split(0.6)


def _assert_identical(a, b):
    assert a.curves.keys() == b.curves.keys()
    for key in a.curves:
        np.testing.assert_array_equal(a.curves[key], b.curves[key], err_msg=key)
    for what in ("params", "buffers", "init_params"):
        x, y = getattr(a, what), getattr(b, what)
        assert x.keys() == y.keys()
        for key in x:
            assert torch.equal(x[key], y[key]), f"{what}/{key}"
    np.testing.assert_array_equal(a.diverged_at, b.diverged_at)
    if a.neuron_ipr is not None:
        np.testing.assert_array_equal(a.neuron_ipr, b.neuron_ipr)


STACKS = {
    # minibatches from per-model generators, dropout masks, more models than one sub-stack
    "mlp2 minibatch dropout": (
        StackSettings(MLPShape(P, 24, "quadratic", "none"), batch_size=16, steps=40, record_neuron_ipr=True),
        [ModelSettings(corruption=0.2, weight_decay=1.0, dropout=q, seed=s) for s, q in ((1, 0.3), (2, 0.0), (3, 0.5))],
    ),
    "mlp2 batchnorm": (
        StackSettings(MLPShape(P, 24, "quadratic", "batchnorm"), batch_size=16, steps=40),
        [ModelSettings(corruption=0.2, seed=s) for s in (1, 2, 3)],
    ),
    "transformer": (
        StackSettings(TransformerShape(p=P, d_model=16, heads=2), steps=30),
        [ModelSettings(corruption=0.2, dropout=0.1, lr=1e-3, seed=s) for s in (1, 2, 3)],
    ),
    "deep mlp": (
        StackSettings(DeepMLPShape(p=P, width=16, norm="batchnorm"), loss="ce", batch_size=16, steps=30),
        [ModelSettings(corruption=0.2, lr=1e-3, seed=s) for s in (1, 2, 3)],
    ),
    # measured with dropout on: the evaluation masks are drawn afresh, not saved
    "deep mlp eval dropout": (
        StackSettings(DeepMLPShape(p=P, width=16), loss="ce", steps=30, eval_dropout=True),
        [ModelSettings(corruption=0.2, dropout=q, lr=1e-3, seed=s) for s, q in ((1, 0.3), (2, 0.5), (3, 0.0))],
    ),
}


@pytest.mark.parametrize("name", STACKS)
@pytest.mark.parametrize("kill_at", [1, 25, 45])  # 45: in the second sub-stack
def test_resumed_training_is_bit_identical(split, tmp_path, name, kill_at):
    settings, models = STACKS[name]
    whole = train(split, settings, models, device="cpu", progress=False, max_stack=2)
    every_step = 1e-9  # a save after every step and one per finished sub-stack (of 2 models)
    with pytest.raises(Interrupted):
        train(
            split,
            settings,
            models,
            device="cpu",
            progress=False,
            max_stack=2,
            checkpoint=KilledAfter(tmp_path, "job", every_step, n=kill_at),
        )
    resumed = train(
        split, settings, models, device="cpu", progress=False, max_stack=2, checkpoint=Checkpoint(tmp_path, "job", 0)
    )
    _assert_identical(whole, resumed)


def test_checkpoint_of_another_job_is_not_resumed(split, tmp_path, capfd):
    settings, models = STACKS["mlp2 batchnorm"]
    with pytest.raises(Interrupted):
        train(split, settings, models, device="cpu", progress=False, checkpoint=KilledAfter(tmp_path, "a", 1e-9, n=9))
    other = [ModelSettings(corruption=0.2, seed=s) for s in (5, 6)]
    resumed = train(split, settings, other, device="cpu", progress=False, checkpoint=Checkpoint(tmp_path, "b", 0))
    assert "belongs to another job" in capfd.readouterr().err
    _assert_identical(train(split, settings, other, device="cpu", progress=False), resumed)


def _chunk_job(steps: int) -> dict:
    """A grid chunk of three cells (minibatch, dropout, corrupted labels) from the paper config's keys."""
    config = yaml.safe_load(open(Path(__file__).resolve().parents[1] / "config" / "config.yaml"))
    base = resolve(
        config, dict(p=P, train_fraction=0.6, corruption=0.2, width=32, batch_size=16, dropout=0.2), {"steps": steps}
    )
    cells = [[f"cell{s}", with_seed(base, s)] for s in (1, 2, 3)]
    return {"stack": base, "cells": cells, "keep": ["cell1"]}


def _train_chunk_cmd(job, data, out, ckpt, every):
    return [sys.executable, "-m", "grokking", "train-chunk", "--job", json.dumps(job), "--data", str(data)] + [
        "--out",
        str(out),
        "--device",
        "cpu",
        "--threads",
        "1",
        "--no-progress",
        "--checkpoint",
        str(ckpt),
        "--checkpoint-every",
        str(every),
    ]


def test_killed_job_resumes_bit_identical(tmp_path):
    """SIGKILL a training job mid-training, rerun it: the chunk file equals an uninterrupted run's."""
    data = tmp_path / "add.npz"
    write_npz(data, **Universe.build("add", P).to_arrays())
    job = _chunk_job(steps=6000)
    ckpt = tmp_path / "ckpt"
    cmd = _train_chunk_cmd(job, data, tmp_path / "killed.npz", ckpt, 0.2)
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    part = ckpt / "part000.pt"
    deadline = time.monotonic() + 120
    while not part.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)  # a checkpoint more: the kill may land while one is being written
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read()
    assert not (tmp_path / "killed.npz").exists()  # no partial output under the final name
    saved = torch.load(part, weights_only=False)
    assert 0 < saved["step"] < 6000

    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    assert f"resuming after step {saved['step']}" in res.stderr
    assert not ckpt.exists()  # removed once the outputs are written
    whole = subprocess.run(
        _train_chunk_cmd(job, data, tmp_path / "whole.npz", tmp_path / "ckpt2", 0),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert whole.returncode == 0, whole.stderr
    a, b = load_chunk(tmp_path / "killed.npz"), load_chunk(tmp_path / "whole.npz")
    assert a.keys() == b.keys()
    for key in a:
        if key not in ("seconds", "log_seconds"):  # timings
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_a_diverging_model_is_recorded_and_its_stack_mates_train_on(split, capfd):
    """An absurd learning rate makes one model's loss infinite: its metrics are NaN from that step, its
    phase is Diverged, the log says so, and the other model trains as it would alone."""
    from grokking.experiments.summary import summarize

    settings = StackSettings(MLPShape(P, 24, "quadratic", "none"), steps=50)
    good = ModelSettings(corruption=0.2, weight_decay=1.0, seed=2)
    res = train(split, settings, [ModelSettings(corruption=0.2, lr=1e12, seed=1), good], device="cpu", progress=False)
    alone = train(split, settings, [good], device="cpu", progress=False)
    err = capfd.readouterr().err
    assert res.diverged_at[1] == -1 and res.diverged_at[0] > 0
    assert f"model 0 diverged (loss not finite) at or before step {res.diverged_at[0]}" in err
    gone = res.steps >= res.diverged_at[0]
    for key in ("train_acc", "test_acc", "train_loss"):
        assert np.isnan(res.curves[key][gone, 0]).all() and np.isfinite(res.curves[key][~gone, 0]).all()
        np.testing.assert_allclose(res.curves[key][:, 1], alone.curves[key][:, 0], rtol=1e-5, atol=1e-6)
    s = summarize(res.curves, 0.2)
    assert list(s["phase"]) == ["Diverged", summarize(alone.curves, 0.2)["phase"][0]]


def test_diverged_seeds_are_explicit_in_the_merged_grid(tmp_path, repo_root):
    """At an absurd learning rate every seed diverges: the per-seed phases, the cell phase and the CSV say
    Diverged, the divergence steps are stored, and the sane panel is untouched."""
    from test_grids import small_config

    from grokking.experiments.gridplan import chunks_of_grid, plan
    from grokking.experiments.grids import merge_grid, train_chunk
    from grokking.phases import PHASE_CODES
    from grokking.results import load_grid

    cfg = small_config(yaml.safe_load(open(repo_root / "config" / "config.yaml")))
    cfg["grid_defaults"].update(train_fractions=[0.6], corruptions=[0.0, 0.2])
    cfg["grids"] = {"lr": {"panel_key": "lr", "panels": [0.01, 1e12], "seeds": [1, 2]}}
    data = tmp_path / "add_p13.npz"
    write_npz(data, **Universe.build("add", 13).to_arrays())
    chunks = plan(cfg)
    for name, chunk in chunks.items():
        train_chunk(chunk, data, tmp_path / f"{name}.npz", device="cpu", progress=False)
    files = [tmp_path / f"{n}.npz" for n in chunks_of_grid(cfg, "lr", chunks)]
    merge_grid(cfg, "lr", files, tmp_path / "lr.npz", tmp_path / "lr.csv")
    g = load_grid(tmp_path / "lr.npz")
    assert (g["phase"][1] == PHASE_CODES["Diverged"]).all() and (g["phase_seeds"][1] == PHASE_CODES["Diverged"]).all()
    assert (g["diverged_at_seeds"][1] > 0).all() and (g["diverged_at_seeds"][0] == -1).all()
    assert not (g["phase"][0] == PHASE_CODES["Diverged"]).any() and np.isfinite(g["test_acc"][0]).all()
    rows = [r.split(",") for r in (tmp_path / "lr.csv").read_text().splitlines()]
    col = rows[0].index("phase")
    assert {r[col] for r in rows[1:] if float(r[rows[0].index("lr")]) > 1} == {"Diverged"}


def _truncate(path: Path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_truncated_results_name_the_file_and_the_rebuild_command(tmp_path):
    from grokking import load_run
    from grokking.experiments.runs import run_and_save
    from grokking.results import ResultFileError, load_grid

    root = tmp_path / "results" / "quick"
    grid = root / "grids" / "wd.npz"
    write_npz(grid, phase=np.zeros((2, 3), np.int8), panels=np.arange(2.0))
    assert load_grid(grid)["phase"].shape == (2, 3)
    _truncate(grid)
    with pytest.raises(ResultFileError) as err:
        load_grid(grid)
    assert str(grid) in str(err.value) and f"snakemake --force {grid} --configfile config/quick.yaml" in str(err.value)

    data = tmp_path / "add.npz"
    write_npz(data, **Universe.build("add", P).to_arrays())
    spec = dict(_chunk_job(steps=5)["stack"], name="r")
    run_dir = tmp_path / "results" / "paper" / "runs" / "r"
    run_and_save(spec, data, run_dir, device="cpu", progress=False)
    _truncate(run_dir / "model.pt")
    run = load_run(run_dir)
    with pytest.raises(ResultFileError, match=f"{run_dir / 'model.pt'} .*rebuild it with: snakemake --force"):
        _ = run.params
    (run_dir / "summary.json").write_text('{"phase": ')
    with pytest.raises(ResultFileError, match="summary.json"):
        load_run(run_dir)


WRITER = """
import sys
import numpy as np
from grokking.results import write_npz
rng = np.random.default_rng(0)
for i in range(10**6):
    write_npz(sys.argv[1], i=np.int64(i), x=rng.random(2_000_000))
    print(i, flush=True)
"""


def test_a_killed_writer_leaves_no_partial_file_under_the_final_name(tmp_path):
    out = tmp_path / "out.npz"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(out)], stdout=subprocess.PIPE, text=True)
    for _ in range(3):  # let a few files complete, then kill during a write (a write takes ~0.1-0.5 s)
        proc.stdout.readline()
    time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with np.load(out) as z:  # the last complete file, whole
        assert z["x"].shape == (2_000_000,) and int(z["i"]) >= 2
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".tmp")] == ["out.npz"]
