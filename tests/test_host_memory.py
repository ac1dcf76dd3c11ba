"""Host memory of checkpoints and result files: the writers stream into the atomic write's temp file.

Serialising a whole-stack checkpoint into memory first (and copying it again) raised a job's peak host
memory by several times the stack's parameter bytes: at the paper's width-10000 x 40-seed job (444 MiB of
parameters) that is gigabytes on top of the CUDA context (issue 34, item 4). These tests measure the
host memory a write takes, against the bytes of the tensors it writes: Python's own allocations
(``tracemalloc``: a serialised blob in memory is a Python bytes object) and, on Linux, the rise of the
process's peak resident memory (which also sees copies made by torch).
"""

import os
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch

from grokking.engine import Checkpoint
from grokking.engine.adamw import AdamW
from grokking.results import load_chunk, write_npz, write_torch

K, N, P = 4, 2048, 97  # a stack of 4 models of the 2-layer MLP at width 2048


def _stack_state(seed=0) -> tuple[dict, int]:
    """A checkpoint-like state (weights, optimizer moments, curves) and the bytes of its tensors."""
    gen = torch.Generator().manual_seed(seed)
    params = {k: torch.randn(K, N, P, generator=gen) for k in ("U", "V", "W")}
    moments = {k: (torch.randn(v.shape, generator=gen), torch.randn(v.shape, generator=gen)) for k, v in params.items()}
    state = {
        "step": 3,
        "params": params,
        "optimizer": {"t": 3, "moments": moments},
        "curves": {"train_acc": np.zeros((21, K))},
    }
    return state, 3 * sum(v.numel() * v.element_size() for v in params.values())


def _traced_peak(write) -> int:
    """Peak bytes Python allocated while ``write()`` ran."""
    tracemalloc.start()
    try:
        write()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _equal(a, b):
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            _equal(a[k], b[k])
    elif isinstance(a, (tuple, list)):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _equal(x, y)
    elif isinstance(a, torch.Tensor):
        assert torch.equal(a, b)
    elif isinstance(a, np.ndarray):
        np.testing.assert_array_equal(a, b)
    else:
        assert a == b


def test_checkpoint_save_streams_to_its_file(tmp_path):
    state, nbytes = _stack_state()
    ckpt = Checkpoint(tmp_path / "ck", "job")
    peak = _traced_peak(lambda: ckpt.save(0, state, {"models": K}))
    assert peak < 0.05 * nbytes, f"saving {nbytes / 2**20:.0f} MiB of tensors allocated {peak / 2**20:.1f} MiB"
    assert [p.name for p in (tmp_path / "ck").iterdir()] == ["part000.pt"]  # no temp file left behind
    loaded = ckpt.load(0, {"models": K})
    assert loaded.pop("fingerprint") == "job" and loaded.pop("layout") == {"models": K}
    _equal(state, loaded)


def test_result_writers_stream_to_their_files(tmp_path):
    state, nbytes = _stack_state(1)
    peak = _traced_peak(lambda: write_torch(tmp_path / "model.pt", state))
    assert peak < 0.05 * nbytes, f"write_torch of {nbytes / 2**20:.0f} MiB allocated {peak / 2**20:.1f} MiB"
    _equal(state, torch.load(tmp_path / "model.pt", weights_only=False))

    # per model and parameter, as a grid chunk stores kept cells: 36 arrays of 0.76 MiB
    arrays = {f"weights/{i}/{k}": v[i].numpy() for k, v in state["params"].items() for i in range(K)}
    arrays.update({f"m/{i}/{k}": m[i].numpy() for k, (m, _) in state["optimizer"]["moments"].items() for i in range(K)})
    arrays.update({f"v/{i}/{k}": v[i].numpy() for k, (_, v) in state["optimizer"]["moments"].items() for i in range(K)})
    peak = _traced_peak(lambda: write_npz(tmp_path / "chunk.npz", **arrays))
    # streamed array by array: what numpy and zlib buffer for one array, not the compressed file
    assert peak < 0.25 * nbytes, f"write_npz of {nbytes / 2**20:.0f} MiB allocated {peak / 2**20:.1f} MiB"
    _equal(arrays, load_chunk(tmp_path / "chunk.npz"))


def _proc_status(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(key)


def _reset_peak_rss() -> int:
    """Reset the peak resident memory (VmHWM) to the current one (Linux); returns the current one."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError as err:
        pytest.skip(f"cannot reset the peak resident memory here: {err}")
    return _proc_status("VmRSS")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="peak resident memory from /proc (Linux)")
def test_writing_a_stack_raises_peak_resident_memory_by_little(tmp_path):
    state, nbytes = _stack_state(2)
    for name, write in {
        "checkpoint": lambda: Checkpoint(tmp_path / "ck", "job").save(0, state, {"models": K}),
        "write_torch": lambda: write_torch(tmp_path / "model.pt", state),
    }.items():
        base = _reset_peak_rss()
        write()
        rise = _proc_status("VmHWM") - base
        assert rise < 0.1 * nbytes, (
            f"{name}: {nbytes / 2**20:.0f} MiB of tensors raised peak RSS by {rise / 2**20:.0f} MiB"
        )
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]
    assert os.path.getsize(tmp_path / "model.pt") > nbytes  # the tensors were written, not skipped


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="peak resident memory from /proc (Linux)")
def test_checkpointing_the_optimizer_copies_no_moments(tmp_path):
    """AdamW's state for a checkpoint is its moments themselves (streamed to the file by the save), not host
    copies of them: two sets of moments are twice the stack's parameter bytes (and on a GPU a second copy)."""
    state, nbytes = _stack_state(3)
    opt = AdamW(state["params"], lr=[0.01] * K, weight_decay=[1.0] * K, betas=(0.9, 0.98), eps=1e-8)
    for m, v in opt.state.values():
        m.normal_(), v.uniform_()
    ckpt = Checkpoint(tmp_path / "ck", "job")
    base = _reset_peak_rss()
    ckpt.save(0, {"step": 3, "params": state["params"], "optimizer": opt.state_dict()}, {"models": K})
    rise = _proc_status("VmHWM") - base
    assert rise < 0.1 * nbytes, (
        f"{nbytes / 2**20:.0f} MiB of parameters and moments: peak RSS rose by {rise / 2**20:.0f} MiB"
    )
    restored = AdamW(
        {k: torch.zeros_like(v) for k, v in state["params"].items()}, [0.01] * K, [1.0] * K, (0.9, 0.98), 1e-8
    )
    restored.load_state_dict(ckpt.load(0, {"models": K})["optimizer"])
    _equal({k: tuple(mv) for k, mv in opt.state.items()}, {k: tuple(mv) for k, mv in restored.state.items()})


TRAIN_THREE_TIMES = """
import resource, sys, torch
if sys.argv[1] == "job":
    from grokking.cli import _threads
    _threads(1)  # what every compute job of `python -m grokking` does as it starts
else:
    torch.set_num_threads(1)
from grokking.data import Universe
from grokking.engine import ModelSettings, StackSettings, train
from grokking.models.mlp2 import MLPShape
split = Universe.build("add", 97).split(0.5)
settings = StackSettings(shape=MLPShape(p=97, width=2000), steps=3, loss="mse", log_steps=(3,))
models = [ModelSettings(corruption=0.1, weight_decay=1.0, lr=0.005, seed=s) for s in (1, 2)]
for _ in range(3):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    train(split, settings, models, device="cpu", progress=False)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(os.uname().sysname != "Linux", reason="glibc's malloc: Linux only")
def test_a_compute_job_trains_without_page_faults_once_its_memory_is_allocated():
    """The same short training (2 models of width 2000 at p 97, 3 steps and an evaluation) three times in
    one process: by default the third still page-faults on every large temporary (over 100,000 faults of
    4 KiB pages); in a compute job (grokking.hostmemory) it reuses the memory the first two freed."""
    import subprocess
    import sys

    def faults(mode):
        res = subprocess.run([sys.executable, "-c", TRAIN_THREE_TIMES, mode], capture_output=True, text=True)
        assert res.returncode == 0, res.stderr[-2000:]
        return int(res.stdout.split()[-1])

    default = faults("default")
    assert default > 50_000  # the test sees the faults it is about
    assert faults("job") < default // 4  # usually none at all; at times a tenth, as the heap settles
