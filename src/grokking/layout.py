"""Every path of a preset's outputs, in one place: used by the rules, the claims and the notebooks.

``Layout(results, figures)`` roots one preset: ``results/<preset>/`` and ``figures/<preset>/``. Each
method returns a path as a string; given a Snakemake wildcard such as ``"{run}"`` for a name it returns
the rule's pattern, so the rules and the code that reads their outputs cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

RUN_FILES = ("spec.json", "curves.npz", "model.pt", "summary.json")
TABLE_FILES = ("table1.md", "table1.tex", "table2.md", "table2.tex")
FIGURE_FORMATS = (".pdf", ".png")


@dataclass(frozen=True)
class Layout:
    results: str  # results/<preset>
    figures: str  # figures/<preset>

    @classmethod
    def from_config(cls, config: dict) -> Layout:
        preset = config["preset"]
        return cls(f"{config['results_dir']}/{preset}", f"{config['figures_dir']}/{preset}")

    @classmethod
    def of_results(cls, results) -> Layout:
        """The layout of a results directory alone (``figures`` unknown), e.g. for the claims."""
        return cls(str(results), "")

    # --- data and training ------------------------------------------------------------------
    def dataset(self, operation: str, p) -> str:
        return f"{self.results}/data/{operation}_p{p}.npz"

    def image_dataset(self, name: str) -> str:
        return f"{self.results}/data/{name}.npz"

    def mnist_standin(self) -> str:
        """A rehearsal's stand-in MNIST files: the manifest (the four files lie beside it)."""
        return f"{self.results}/data/mnist_standin/standin.json"

    def dataset_of(self, spec: dict) -> str:
        if spec.get("dataset", "modular") != "modular":
            return self.image_dataset(spec["dataset"])
        return self.dataset(spec["operation"], spec["p"])

    def run_dir(self, run: str) -> str:
        return f"{self.results}/runs/{run}"

    def run_file(self, run: str, name: str) -> str:
        return f"{self.run_dir(run)}/{name}"

    def run_files(self, run: str) -> list[str]:
        return [self.run_file(run, name) for name in RUN_FILES]

    def chunk(self, chunk: str) -> str:
        return f"{self.results}/grids/chunks/{chunk}.npz"

    def grid(self, grid: str, ext: str = ".npz") -> str:
        return f"{self.results}/grids/{grid}{ext}"

    def grid_weights(self, grid: str) -> str:
        return f"{self.results}/grids/{grid}_weights.npz"

    def checkpoint(self, rule: str, name: str) -> str:
        """A training job's checkpoint folder (removed when the job finishes)."""
        return f"{self.results}/checkpoints/{rule}/{name}"

    # --- analyses ---------------------------------------------------------------------------
    def pruning(self, run: str) -> str:
        return f"{self.results}/analysis/pruning/{run}.npz"

    def width_job(self, job: str) -> str:
        return f"{self.results}/analysis/width_sweep/jobs/{job}.npz"

    def width_sweep(self, ext: str = ".npz", replicate: str = "") -> str:
        """The merged width sweep (``replicate``: a robustness-study replicate's name suffix)."""
        return f"{self.results}/analysis/width_sweep{replicate}{ext}"

    def study(self, name: str, ext: str = ".json") -> str:
        """A study's result (``.json``: rows, plan, provenance) or its rows as a table (``.csv``)."""
        return f"{self.results}/studies/{name}{ext}"

    def decisions_rendered(self) -> str:
        """Written by the ``decisions`` rule: which study blocks of docs/decisions/ it rendered."""
        return f"{self.results}/decisions.txt"

    def claims_json(self) -> str:
        return f"{self.results}/claims.json"

    def claim_values(self, replicate: str = "") -> str:
        """Every claim's value on one seed of the robustness study (``replicate``: '' for the build itself)."""
        return f"{self.results}/robustness/values{replicate}.json"

    def robustness(self) -> str:
        """The robustness study: each claim's values and outcomes over the seeds."""
        return f"{self.results}/robustness.json"

    def claims_verdict(self) -> str:
        """Written by the strict check (config ``claims.strict``) when no claim fails."""
        return f"{self.results}/claims_verdict.txt"

    # --- figures, notebooks, tables ---------------------------------------------------------
    def figure_stem(self, fig: str, slug: str) -> str:
        return f"{self.figures}/{fig}_{slug}"

    def figure_files(self, fig: str, slug: str) -> list[str]:
        return [self.figure_stem(fig, slug) + ext for ext in FIGURE_FORMATS]

    def notebook(self, fig: str, slug: str) -> str:
        return f"{self.results}/notebooks/{fig}_{slug}.ipynb"

    def table(self, name: str) -> str:
        return f"{self.figures}/{name}"

    def claims_md(self) -> str:
        return f"{self.figures}/claims.md"

    def cost_plan(self, ext: str) -> str:
        """A rehearsal's cost plan of its preset: ``.csv`` (per job) and ``.json`` (its record) in the results,
        ``.md`` in the figures."""
        return f"{self.figures if ext == '.md' else self.results}/cost_plan{ext}"

    def claims_html(self) -> str:
        return f"{self.figures}/claims.html"

    def explorer(self) -> str:
        """The results explorer: one self-contained HTML page of the preset's grids, runs and claims."""
        return f"{self.figures}/explorer.html"

    # --- job bookkeeping --------------------------------------------------------------------
    def log(self, rule: str, name: str = "") -> str:
        return f"{self.results}/logs/{rule}/{name}.log" if name else f"{self.results}/logs/{rule}.log"

    def benchmark(self, rule: str, name: str) -> str:
        return f"{self.results}/benchmarks/{rule}/{name}.tsv"

    # --- result bundles (python -m grokking bundle; README, "Result bundles") ----------------------
    def bundle_archive(self) -> str:
        """Where ``bundle pack`` writes the preset's bundle by default."""
        return f"{self.results}/bundle/grok-or-not-{Path(self.results).name}.tar.gz"

    def bundle_downloads(self) -> str:
        """Where ``bundle fetch`` keeps a downloaded bundle (pooch's cache)."""
        return f"{self.results}/bundle/downloads"

    def bundle_record(self) -> str:
        """What ``bundle fetch`` placed, with the specs it was checked against."""
        return f"{self.results}/bundle/fetched.json"

    def relative(self, path) -> str:
        """``path`` relative to the preset's results (or figures) root, for indexes and messages."""
        for root in (self.results, self.figures):
            if root and str(path).startswith(root + "/"):
                return str(Path(path).relative_to(root))
        return str(path)
