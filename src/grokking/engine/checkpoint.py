"""Checkpoints of a training job: its whole state written atomically at an interval, resumed on rerun.

A checkpoint is a folder with one file per sub-stack (``part000.pt``, ...): the state of the sub-stack
being trained (weights, buffers, optimizer moments, every generator, the batch order, the step and the
curves so far) or, once it has finished, its result. A rerun of the job continues from there and ends
bit-identical on CPU to a run that was never interrupted. Each file carries the job's ``fingerprint``
(its settings, models and data): a checkpoint of another job, or an unreadable one, is ignored with a
line in the log and training starts over.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..atomic import atomic_open


def fingerprint(*parts) -> str:
    """A stable digest of the job's description (JSON-able parts, or bytes such as the data file)."""
    h = hashlib.sha256()
    for part in parts:
        h.update(part if isinstance(part, bytes) else json.dumps(part, sort_keys=True, default=repr).encode())
        h.update(b"\0")
    return h.hexdigest()


@dataclass
class Checkpoint:
    """Where a job keeps its checkpoint and how often it writes one (``every_seconds``; 0: only when a
    sub-stack finishes)."""

    directory: Path
    fingerprint: str
    every_seconds: float = 600.0
    _last: float = field(default_factory=time.monotonic, repr=False)

    def __post_init__(self):
        self.directory = Path(self.directory)
        if self.every_seconds < 0:
            raise ValueError(f"checkpoint interval: {self.every_seconds} must be >= 0 seconds")

    def _path(self, part: int) -> Path:
        return self.directory / f"part{part:03d}.pt"

    def due(self) -> bool:
        return self.every_seconds > 0 and time.monotonic() - self._last >= self.every_seconds

    def save(self, part: int, state: dict, layout: dict):
        """Write sub-stack ``part``'s ``state``; ``layout`` is how the engine cut the job into sub-stacks.

        ``torch.save`` streams into the atomic write's temp file, one tensor at a time (a device tensor is
        copied to the host on its own): the host never holds the serialised checkpoint, which is as large
        as the stack's weights and optimizer moments together."""
        with atomic_open(self._path(part)) as fh:
            torch.save({"fingerprint": self.fingerprint, "layout": layout, **state}, fh)
        self._last = time.monotonic()

    def load(self, part: int, layout: dict) -> dict | None:
        """The saved state of sub-stack ``part``, or None (no checkpoint, another job's, another device or
        cut into other sub-stacks, unreadable)."""
        path = self._path(part)
        if not path.exists():
            return None
        try:
            # our own file (numpy curves inside), written atomically by save(); read record by record
            state = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as err:  # noqa: BLE001 - any unreadable file means: start over
            print(
                f"checkpoint {path} is unreadable ({type(err).__name__}: {err}); training from step 0", file=sys.stderr
            )
            return None
        if state.get("fingerprint") != self.fingerprint or state.get("layout") != layout:
            print(f"checkpoint {path} belongs to another job or device; training from step 0", file=sys.stderr)
            return None
        if "result" not in state:
            print(f"checkpoint {path}: resuming after step {state['step']}", file=sys.stderr)
        return state

    def clear(self):
        """Remove the checkpoint (once the job's outputs are written)."""
        shutil.rmtree(self.directory, ignore_errors=True)
