"""The figure catalog: for each figure of the config, its notebook, its results files, its notebook
parameters and its caption. Used by the figure rule, the ``--report`` captions and the README's
figure index (``python -m grokking figure-index``), so the three cannot drift apart.

Captions live in one file, ``workflow/report/captions.yaml`` (figure id -> text); the figure rule
passes a figure's caption to its notebook (PDF/PNG metadata) and, escaped for reStructuredText, to
the report.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from ..config import figure_grids, figure_runs
from ..experiments.specs import resolve_run

ROOT = Path(__file__).resolve().parents[3]
CAPTIONS_PATH = ROOT / "workflow" / "report" / "captions.yaml"
NOTEBOOKS = ROOT / "workflow" / "notebooks"


def captions(path=CAPTIONS_PATH) -> dict:
    """Figure id -> caption (plain text)."""
    with open(path) as fh:
        return {k: " ".join(str(v).split()) for k, v in (yaml.safe_load(fh) or {}).items()}


def rst(text: str) -> str:
    """``text`` safe inside reStructuredText: no inline markup (``|x|`` is a substitution in RST)."""
    for ch in "\\|*`_":
        text = text.replace(ch, "\\" + ch)
    return text


def notebook_name(config: dict, fig: str) -> str:
    entry = config["figures"][fig]
    return entry.get("notebook") or f"{fig}_{entry['slug']}.ipynb"


def notebook_path(config: dict, fig: str, root=ROOT) -> str:
    return str(Path(root) / "workflow" / "notebooks" / notebook_name(config, fig))


def result_files(config: dict, fig: str, layout) -> list[str]:
    """Every results file the figure's notebook reads."""
    entry = config["figures"][fig]
    runs = sorted(set(figure_runs(config, fig).values()))
    files = [f for r in runs for f in layout.run_files(r)]
    files += sorted({layout.dataset_of(resolve_run(config, r)) for r in runs})
    files += [layout.grid(g, ext) for g in sorted(set(figure_grids(config, fig).values())) for ext in (".npz", ".csv")]
    if entry.get("pruning"):
        files += [layout.pruning(r) for r in runs]
    if entry.get("width_sweep"):
        files += [layout.width_sweep(".npz"), layout.width_sweep(".csv")]
    return files


def notebook_parameters(config: dict, fig: str, layout) -> dict:
    """The papermill parameters of the figure's notebook: where its inputs are, where it writes, its
    caption, and the figure's own ``params`` from the config."""
    entry = config["figures"][fig]
    runs = figure_runs(config, fig)
    params = {
        "preset": config["preset"],
        "figure_id": fig,
        "out_stem": layout.figure_stem(fig, entry["slug"]),
        "caption": captions().get(fig, ""),
        "runs": {panel: layout.run_dir(r) for panel, r in runs.items()},
        "grids": {panel: layout.grid(g) for panel, g in figure_grids(config, fig).items()},
        "data": {panel: layout.dataset_of(resolve_run(config, r)) for panel, r in runs.items()},
        "pruning": {panel: layout.pruning(r) for panel, r in runs.items()} if entry.get("pruning") else {},
        "width_sweep": layout.width_sweep() if entry.get("width_sweep") else "",
        "phase_rules": config["phases"],
    }
    params.update(entry.get("params", {}))
    return params
