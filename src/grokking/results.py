"""On-disk formats: atomic writes, provenance, and loaders used by notebooks and users.

A single run directory holds ``spec.json`` (resolved settings), ``curves.npz`` (metrics on the log
schedule), ``model.pt`` (initial and final weights) and ``summary.json`` (final metrics and phase).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import tempfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def write_bytes(path, data: bytes):
    """Write ``data`` to ``path`` atomically (temp file in the same folder, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp creates 0600; results are meant to be shared
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_json(path, obj):
    write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True, default=_jsonable) + "\n").encode())


def write_npz(path, **arrays):
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    write_bytes(path, buf.getvalue())


def write_torch(path, obj):
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    write_bytes(path, buf.getvalue())


def _jsonable(x):
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(f"not JSON serialisable: {type(x)}")


def read_json(path):
    with open(path) as fh:
        return json.load(fh)


def code_version() -> str:
    """git SHA of the source tree (with '-dirty' if modified), or the package version."""
    from . import __version__

    try:
        root = Path(__file__).resolve().parents[2]
        sha = subprocess.run(["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"], capture_output=True,
                             text=True, timeout=5).stdout.strip()
        if sha:
            dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", "src"],
                                   capture_output=True, text=True, timeout=5).stdout.strip()
            return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return f"grokking-{__version__}"


@dataclass
class Run:
    """A finished single run. ``curves`` maps metric -> 1-D array over ``curves['step']``."""

    path: Path
    spec: dict
    summary: dict

    @cached_property
    def curves(self) -> dict:
        with np.load(self.path / "curves.npz") as z:
            return {k: z[k] for k in z.files}

    @cached_property
    def checkpoint(self) -> dict:
        import torch

        return torch.load(self.path / "model.pt", map_location="cpu", weights_only=True)

    @property
    def params(self) -> dict:
        """Final weights: U (N x p), V (N x p), W (p x N) and, with a norm, norm_weight / norm_bias."""
        return self.checkpoint["params"]

    @property
    def init_params(self) -> dict:
        return self.checkpoint["init_params"]

    @property
    def phase(self) -> str:
        return self.summary["phase"]

    def logits(self, m, n) -> np.ndarray:
        """Eval-mode output logits (B, p) of the final network on the pairs (m, n)."""
        import torch

        from .models import MLPShape, forward

        ck = self.checkpoint
        params = {k: v.unsqueeze(0) for k, v in ck["params"].items()}
        buffers = {k: v.unsqueeze(0) for k, v in ck["buffers"].items()}
        m = torch.as_tensor(np.asarray(m), dtype=torch.long)
        n = torch.as_tensor(np.asarray(n), dtype=torch.long)
        with torch.no_grad():
            return forward(MLPShape(**ck["shape"]), params, buffers, m, n, train=False)[0].numpy()

    def __repr__(self):
        s = self.summary
        return (f"Run({self.spec.get('name')!r}: train_acc={s['train_acc']:.3f} test_acc={s['test_acc']:.3f} "
                f"phase={s['phase']!r})")


def load_run(path) -> Run:
    path = Path(path)
    if not (path / "summary.json").exists():
        raise FileNotFoundError(f"{path} is not a finished run directory (no summary.json); "
                                f"build it with: snakemake {path}/summary.json")
    return Run(path, read_json(path / "spec.json"), read_json(path / "summary.json"))


def load_grid(path) -> dict:
    """A merged grid (``results/<preset>/grids/<grid>.npz``) as a dict of arrays indexed [panel, xi, alpha];
    ``phase`` holds codes into ``phase_names``."""
    with np.load(Path(path)) as z:
        return {k: (z[k].item() if z[k].ndim == 0 else z[k]) for k in z.files}
