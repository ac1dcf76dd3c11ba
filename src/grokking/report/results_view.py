"""What the claims read: a cached, read-only view of one preset's results directory (``results/<preset>``)."""

from __future__ import annotations

from pathlib import Path

from .. import results
from ..layout import Layout


class Results:
    """Read-only view of one preset's results directory (``results/<preset>``), through its layout.
    ``replicate`` (a robustness-study replicate's name suffix, e.g. ``~rep1``) reads that replicate's
    runs, grids, pruning sweeps and width sweep under the names the claims use."""

    def __init__(self, root, replicate: str = ""):
        self.root = Path(root)
        self.layout = Layout.of_results(root)
        self.replicate = replicate
        self._cache = {}

    def _get(self, key, load):
        if key not in self._cache:
            self._cache[key] = load()
        return self._cache[key]

    def run(self, name):
        return self._get(("run", name), lambda: results.load_run(self.layout.run_dir(name + self.replicate)))

    def grid(self, name) -> dict:
        return self._get(("grid", name), lambda: results.load_grid(self.layout.grid(name + self.replicate)))

    def model(self, ref):
        """A run (``ref`` is its name) or a grid's stored cell (``ref`` is ``(grid, panel index)``)."""
        if isinstance(ref, str):
            return self.run(ref)
        grid, panel = ref
        return results.grid_cell(self.grid(grid), panel)

    def pruning(self, name) -> dict:
        return self._get(("pruning", name), lambda: results.load_pruning(self.layout.pruning(name + self.replicate)))

    def width_sweep(self) -> dict:
        path = self.layout.width_sweep(".npz", self.replicate)
        return self._get(("width_sweep",), lambda: results.load_width_sweep(path))

    def data(self, name):
        """The dataset split and training labels a run was trained on."""
        spec = self.run(name).spec
        path = self.layout.dataset_of(spec)
        split = self._get(("split", path, spec["train_fraction"]), lambda: results.load_split(path, spec))
        return split, split.train_labels(spec["corruption"])
