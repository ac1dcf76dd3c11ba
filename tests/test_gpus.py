"""One GPU per training job (src/grokking/engine/gpus.py), on the CPU with made-up device counts.

Claims from separate processes stand for Snakemake's concurrent training jobs; each holder process
prints the index it claimed and keeps it until told to go or killed.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

import grokking
from grokking.engine import gpus, resolve_device

HOLDER = """
import sys
from grokking.engine import gpus
print(gpus.claim(sys.argv[2].split(","), directory=sys.argv[1], poll=0.05), flush=True)
sys.stdin.readline()
"""
NAMES = ["cuda-0", "cuda-1"]
LINE_TIMEOUT = 120  # a safety net against a hang, never a measurement


class Holder:
    """A process that claims one of ``names`` from the pool in ``folder``; its output read line by line."""

    def __init__(self, folder: Path, names: list[str]):
        env = dict(os.environ, PYTHONPATH=str(Path(grokking.__file__).resolve().parents[1]))
        self.proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(folder), ",".join(names)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.lines = {"out": queue.Queue(), "err": queue.Queue()}
        for key, stream in (("out", self.proc.stdout), ("err", self.proc.stderr)):
            threading.Thread(target=self._read, args=(stream, self.lines[key]), daemon=True).start()

    @staticmethod
    def _read(stream, lines):
        for line in stream:
            lines.put(line)
        lines.put(None)

    def line(self, key: str) -> str:
        got = self.lines[key].get(timeout=LINE_TIMEOUT)
        assert got is not None, f"the holder ended (exit {self.proc.wait()}) without a line on std{key}"
        return got.strip()

    def claimed(self) -> int:
        return int(self.line("out"))

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.write("\n")
            self.proc.stdin.flush()
        self.proc.wait(timeout=LINE_TIMEOUT)


@pytest.fixture
def holders(tmp_path):
    started = []

    def start(names=NAMES):
        started.append(Holder(tmp_path / "locks", names))
        return started[-1]

    yield start
    for h in started:
        if h.proc.poll() is None:
            h.proc.kill()
        h.proc.wait()


@pytest.fixture
def fake_cuda(monkeypatch, tmp_path):
    """torch reports ``count`` CUDA devices (UUIDs GPU-0, GPU-1, ...) and records set_device; the pool's
    folder is private to the test."""
    monkeypatch.setenv(gpus.LOCKS_VAR, str(tmp_path / "locks"))
    current = []

    def fake(count):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: count)
        monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i: SimpleNamespace(uuid=f"GPU-{i}"))
        monkeypatch.setattr(torch.cuda, "set_device", current.append)
        return current

    yield fake
    gpus.release()


def test_two_jobs_claim_different_gpus(holders):
    first, second = holders(), holders()
    assert {first.claimed(), second.claimed()} == {0, 1}


def test_a_third_job_waits_until_a_gpu_is_free(holders):
    first, second = holders(), holders()
    claims = {first.claimed(): first, second.claimed(): second}
    third = holders()
    assert "waiting for one to free" in third.line("err")  # said once both were found taken
    assert third.proc.poll() is None
    os.kill(second.proc.pid, signal.SIGKILL)  # a job killed outright frees its GPU too
    second.proc.wait()
    freed = next(i for i, h in claims.items() if h is second)
    assert third.claimed() == freed
    assert "is free" in third.line("err")
    first.close()
    third.close()


def test_a_released_gpu_can_be_claimed_again(holders):
    only = holders(NAMES[:1])
    assert only.claimed() == 0
    only.close()
    assert holders(NAMES[:1]).claimed() == 0


def test_one_visible_gpu_is_cuda0_without_a_lock(fake_cuda, tmp_path):
    current = fake_cuda(1)
    assert resolve_device("auto") == torch.device("cuda", 0)
    assert resolve_device("cuda") == torch.device("cuda", 0)
    assert not (tmp_path / "locks").exists() and current == []


def test_several_gpus_auto_claims_a_free_one_by_uuid(fake_cuda, holders, tmp_path):
    current = fake_cuda(3)
    other_job = holders(["gpu-GPU-0", "gpu-GPU-1", "gpu-GPU-2"])
    assert other_job.claimed() == 0
    assert resolve_device("auto") == torch.device("cuda", 1)
    assert resolve_device("cuda") == torch.device("cuda", 1)  # one claim per process
    assert set(current) == {1}  # the current device: nothing of the job lands on cuda:0
    assert sorted(p.name for p in (tmp_path / "locks").iterdir()) == ["gpu-GPU-0.lock", "gpu-GPU-1.lock"]


def test_an_explicit_device_is_kept(fake_cuda, tmp_path):
    current = fake_cuda(3)
    assert resolve_device("cuda:2") == torch.device("cuda", 2)
    assert resolve_device(torch.device("cuda", 1)) == torch.device("cuda", 1)
    assert not (tmp_path / "locks").exists() and current == []


def test_lock_names_fall_back_to_the_index(monkeypatch):
    def no_cuda(i):
        raise AssertionError("Torch not compiled with CUDA enabled")

    monkeypatch.setattr(torch.cuda, "get_device_properties", no_cuda)
    assert gpus.device_names(2) == ["cuda-0", "cuda-1"]


def test_without_cuda_auto_is_the_cpu(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv(gpus.LOCKS_VAR, str(tmp_path / "locks"))
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        resolve_device("cuda")
    assert not (tmp_path / "locks").exists()
