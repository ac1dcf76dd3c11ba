"""One GPU per training job on a machine with several: a pool of lock files, one per visible device.

Snakemake starts training jobs side by side, and with ``device: auto`` each of them would train on
``cuda:0``. A job that resolves to CUDA while several devices are visible therefore claims one of them
for its lifetime: it takes an exclusive ``flock`` on that device's lock file, trying the devices in
order without blocking, and waits (saying so once) while every one is taken. The kernel releases a
lock when its process ends, however it ends, so a killed job never leaves a device claimed. Where one
device is visible (SLURM gives each job its own through ``CUDA_VISIBLE_DEVICES``) it is ``cuda:0`` and
nothing is locked; an explicit ``cuda:N`` is taken as given (:func:`grokking.engine.resolve_device`).

The lock files live in ``$GROKKING_GPU_LOCKS``, else ``<temp dir>/grokking-gpu-locks`` (one folder for
all users of the machine). Each is named after its device's UUID where torch reports one, so that jobs
started with different ``CUDA_VISIBLE_DEVICES`` agree on which physical GPU a lock stands for; after
the device's index otherwise.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path

LOCKS_VAR = "GROKKING_GPU_LOCKS"
POLL_SECONDS = 2.0

_claim: tuple[int, int] | None = None  # (device index, lock file descriptor) this process holds


def lock_dir() -> Path:
    return Path(os.environ.get(LOCKS_VAR) or Path(tempfile.gettempdir()) / "grokking-gpu-locks")


def device_names(count: int) -> list[str]:
    """A lock-file name per visible CUDA device: ``gpu-<UUID>``, or ``cuda-<index>`` where torch has no UUID."""
    import torch

    names = []
    for i in range(count):
        try:
            uuid = str(getattr(torch.cuda.get_device_properties(i), "uuid", "") or "")
        except (AssertionError, RuntimeError):  # torch without CUDA, or a device it cannot query
            uuid = ""
        names.append(f"gpu-{uuid}" if uuid else f"cuda-{i}")
    return names


def cuda_device():
    """The CUDA device this process trains on: ``cuda:0`` where one device is visible, else the device it
    claimed from the pool (made the process's current device, so that nothing lands on ``cuda:0``)."""
    import torch

    count = torch.cuda.device_count()
    if count <= 1:
        return torch.device("cuda", 0)
    index = claim(device_names(count))
    torch.cuda.set_device(index)
    return torch.device("cuda", index)


def claim(names: list[str], directory=None, poll: float = POLL_SECONDS) -> int:
    """The index in ``names`` of a device that this process now holds until it ends (or :func:`release`).

    Tries each device's lock without blocking; while all are held by other processes, says so once on
    stderr and tries again every ``poll`` seconds. A process claims at most one device: a second call
    returns the first claim.
    """
    global _claim
    if _claim is not None:
        return _claim[0]
    folder = Path(directory) if directory is not None else lock_dir()
    _make_shared_dir(folder)
    said = False
    while True:
        for index, name in enumerate(names):
            fd = _try_lock(folder / f"{name}.lock")
            if fd is not None:
                _claim = (index, fd)
                if said:
                    print(f"gpus: GPU {index} is free, training on it", file=sys.stderr, flush=True)
                return index
        if not said:
            print(
                f"gpus: all {len(names)} GPUs are taken by other jobs (locks in {folder}); waiting for one to free",
                file=sys.stderr,
                flush=True,
            )
            said = True
        time.sleep(poll)


def release():
    """Give the claimed device back (a process's claim otherwise lasts until it ends)."""
    global _claim
    if _claim is not None:
        os.close(_claim[1])  # closing the only descriptor of the open file drops its flock
        _claim = None


def _try_lock(path: Path) -> int | None:
    """A descriptor holding ``path``'s exclusive lock, or None when another process holds it."""
    import fcntl

    # Read-only: a lock file that another user created can be locked all the same.
    fd = os.open(path, os.O_RDONLY | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _make_shared_dir(folder: Path):
    """The lock folder, writable by every user (sticky, as /tmp) when this process makes it."""
    if not folder.is_dir():
        folder.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):  # made by another user's job at the same moment
            folder.chmod(0o1777)
