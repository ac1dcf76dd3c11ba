"""On-disk formats: atomic writes, provenance, and one loader per result file.

Where each file lives is :mod:`grokking.layout`'s business; this module reads and writes them:

=====================  ============================================  ==========================
file                   content                                        loader
=====================  ============================================  ==========================
``data/*.npz``         pair universe or images, random-label stream   :func:`load_dataset`
``runs/<run>/``        spec.json, curves.npz, model.pt, summary.json  :func:`load_run`
``grids/<grid>.npz``   merged grid, arrays indexed [panel, xi, alpha] :func:`load_grid`
``grids/chunks/*.npz`` one training job of grid cells                 :func:`load_chunk`
``analysis/pruning/``  IPR-ordered pruning sweeps of a run            :func:`load_pruning`
``analysis/width_*``   Fig 32 jobs and their summary                  :func:`load_width_job`,
                                                                      :func:`load_width_sweep`
=====================  ============================================  ==========================
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from .atomic import atomic_open, write_bytes


def write_json(path, obj):
    write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True, default=_jsonable) + "\n").encode())


def write_npz(path, **arrays):
    """A compressed npz, streamed array by array into the atomic write's temp file (never whole in memory)."""
    with atomic_open(path) as fh:
        np.savez_compressed(fh, **arrays)


def write_torch(path, obj):
    """``torch.save(obj)``, streamed tensor by tensor into the atomic write's temp file."""
    import torch

    with atomic_open(path) as fh:
        torch.save(obj, fh)


def _jsonable(x):
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(f"not JSON serialisable: {type(x)}")


def read_json(path):
    with open(path) as fh:
        return json.load(fh)


class ResultFileError(ValueError):
    """A result file that exists but cannot be read (truncated, corrupt, from another format)."""


def rebuild_command(path) -> str:
    """The command that rebuilds one result file (with its preset's config when it is not the paper's)."""
    parts = Path(path).parts
    preset = parts[parts.index("results") + 1] if "results" in parts[:-1] else "paper"
    config = "" if preset == "paper" else f" --configfile config/{preset}.yaml"
    return f"snakemake --force {path}{config}"


def read_result(path, what: str, reader):
    """``reader(path)`` for a result file; a missing or unreadable file raises an error that names the file
    and the command that rebuilds it."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} ({what}) does not exist; build it with: {rebuild_command(path)}")
    try:
        return reader(path)
    except Exception as err:  # noqa: BLE001 - zip, zlib, pickle, JSON and torch each raise their own
        raise ResultFileError(
            f"{path} ({what}) is truncated or corrupt ({type(err).__name__}: {err}); "
            f"rebuild it with: {rebuild_command(path)}"
        ) from err


def code_version() -> str:
    """git SHA of the checkout the package runs from (with '-dirty' if the package's files are modified),
    or the package version where it runs from elsewhere (an installed wheel, also one inside a checkout)."""
    from ._version import __version__

    here = Path(__file__).resolve()

    def git(*args) -> subprocess.CompletedProcess:
        return subprocess.run(["git", "-C", str(here.parent), *args], capture_output=True, text=True, timeout=5)

    try:
        # this very file tracked by git: the package is a checkout's source, not a copy installed under it
        if git("ls-files", "--error-unmatch", here.name).returncode == 0:
            sha = git("rev-parse", "--short=12", "HEAD").stdout.strip()
            if sha:
                return sha + ("-dirty" if git("status", "--porcelain", "--", ".").stdout.strip() else "")
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
        return _load_npz(self.path / "curves.npz", "run curves")

    @cached_property
    def checkpoint(self) -> dict:
        import torch

        return read_result(
            self.path / "model.pt", "run weights", lambda p: torch.load(p, map_location="cpu", weights_only=True)
        )

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

    def ipr(self, component: str = "neuron_ipr", *, init: bool = False) -> np.ndarray:
        """One of the family's IPR vectors (``neuron_ipr`` or a component such as ``ipr_embed``,
        ``ipr_in``, ``ipr_out``) of the final network, or of the initial one with ``init=True``."""
        ck = self.checkpoint
        if not init:
            return ck[component].numpy()
        from .models import get_family, shape_from_dict

        family = get_family(shape_from_dict(ck["shape"]))
        stacked = {k: v.unsqueeze(0) for k, v in ck["init_params"].items()}
        mode = self.spec.get("ipr_mode", "rfft")
        if component == "neuron_ipr":
            return family.neuron_ipr(stacked, mode)[0].numpy()
        return family.ipr_components(stacked, mode)[component][0].numpy()

    def logits(self, m, n) -> np.ndarray:
        """Eval-mode output logits (B, p) of the final network on the pairs (m, n)."""
        import torch

        from .models import get_family, shape_from_dict

        ck = self.checkpoint
        shape = shape_from_dict(ck["shape"])
        params = {k: v.unsqueeze(0) for k, v in ck["params"].items()}
        buffers = {k: v.unsqueeze(0) for k, v in ck["buffers"].items()}
        x = torch.as_tensor(np.stack([np.asarray(m), np.asarray(n)], 1), dtype=torch.long)
        with torch.no_grad():
            return get_family(shape).forward(shape, params, buffers, x, train=False)[0].numpy()

    def __repr__(self):
        s = self.summary
        return (
            f"Run({self.spec.get('name')!r}: train_acc={s['train_acc']:.3f} test_acc={s['test_acc']:.3f} "
            f"phase={s['phase']!r})"
        )


def load_run(path) -> Run:
    path = Path(path)
    if not (path / "summary.json").exists():
        raise FileNotFoundError(
            f"{path} is not a finished run directory (no summary.json); build it with: "
            f"{rebuild_command(path / 'summary.json')}"
        )
    return Run(
        path,
        read_result(path / "spec.json", "run spec", read_json),
        read_result(path / "summary.json", "run summary", read_json),
    )


def _load_npz(path, what: str, scalars: bool = False) -> dict:
    """Every array of an npz file; a missing file names the Snakemake target that builds it."""

    def read(p):
        with np.load(p) as z:
            return {k: (z[k].item() if scalars and z[k].ndim == 0 else z[k]) for k in z.files}

    return read_result(path, what, read)


def load_grid(path) -> dict:
    """A merged grid (``results/<preset>/grids/<grid>.npz``) as a dict of arrays indexed [panel, xi, alpha];
    ``phase`` holds codes into ``phase_names``; 0-d arrays come back as Python scalars."""
    return _load_npz(path, "merged grid", scalars=True)


@dataclass
class GridCell:
    """The stored model of one grid cell (its first seed; the cell is one of the grid's
    ``keep_weights``): the same ``spec``, ``phase`` and ``ipr`` as a :class:`Run`, read from the merged grid."""

    grid: dict
    key: str
    spec: dict
    phase: str

    def ipr(self, component: str = "neuron_ipr", *, init: bool = False) -> np.ndarray:
        """An IPR vector (``neuron_ipr`` or a family component) of the final network, or at init."""
        name = f"ipr{'_init' if init else ''}/{self.key}/{component}"
        if name not in self.grid:
            have = sorted(k.split("/")[-1] for k in self.grid if k.startswith(f"ipr/{self.key}/"))
            raise KeyError(f"grid cell {self.key} stores no IPR component {component!r}; it has {have}")
        return self.grid[name]

    @property
    def summary(self) -> dict:
        return {"phase": self.phase}


def grid_cell(grid: dict, panel: int, train_fraction=None, corruption=None) -> GridCell:
    """The stored model of a merged grid (:func:`load_grid`) in panel ``panel`` (an index, so that presets
    with other panel values name the same cell) at (``train_fraction``, ``corruption``); without them,
    the grid's first stored cell of that panel. Cells are stored where the grid's ``keep_weights`` says."""
    cells = json.loads(grid["kept_cells"]) if "kept_cells" in grid else []
    panel = range(len(grid["panels"]))[panel]
    match = [
        c
        for c in cells
        if c["panel"] == panel
        and (train_fraction is None or np.isclose(c["train_fraction"], train_fraction))
        and (corruption is None or np.isclose(c["corruption"], corruption))
    ]
    if not match:
        where = [(c["panel"], c["train_fraction"], c["corruption"]) for c in cells]
        raise KeyError(
            f"grid {grid['grid']} stores no model at panel {panel}, alpha {train_fraction}, xi {corruption} "
            f"(stored: {where}); add the cell's [alpha, xi] to grids.{grid['grid']}.keep_weights"
        )
    c = match[0]
    _, ix, ia = (int(i) for i in c["key"].split("_"))
    phase = grid["phase_names"][grid["phase_seeds"][panel, 0, ix, ia]]
    return GridCell(grid, c["key"], c["spec"], str(phase))


def load_chunk(path) -> dict:
    """One trained grid chunk: ``ids`` of its cells, ``curve_<metric>`` (T, K), ``neuron_ipr`` (K, N), ..."""
    return _load_npz(path, "grid chunk")


def load_pruning(path) -> dict:
    """Both IPR-ordered pruning sweeps of a run: ``<lowest|highest>_<metric>`` (N,), ``fraction``, ..."""
    return _load_npz(path, "pruning sweep")


def load_width_job(path) -> dict:
    """One Fig 32 job: ``pruned_<metric>`` (seeds, width) after pruning j = 0 .. width-1 neurons, ..."""
    return _load_npz(path, "width-sweep job")


def load_width_sweep(path) -> dict:
    """The Fig 32 summary: per width ``required_mean``, ``prunable_pct_mean`` (and s.e.), per seed ``row_*``."""
    return _load_npz(path, "width-sweep summary")


def load_dataset(path):
    """A dataset file: the pair universe of one (operation, p) with its label streams
    (``data.Universe``), or a digit-image set with its pool, test set and label stream (``data.ImageSet``)."""
    from .data import ImageSet, Universe

    arrays = _load_npz(path, "dataset")
    kind = str(arrays.get("kind", "modular"))
    return ImageSet.from_arrays(arrays) if kind == "images" else Universe.from_arrays(arrays)


def load_split(path, spec: dict):
    """The training/test split of ``spec`` (its train fraction) from the dataset file ``path``, which must be
    the one the spec was resolved for (same dataset, sizes and seeds)."""
    data = load_dataset(path)
    want = {key: spec.get(key, "modular" if key == "dataset" else None) for key in data.identity}
    if want != data.identity:
        raise ValueError(f"dataset {path} holds {data.identity}; the run needs {want}")
    return data.split(spec["train_fraction"])
