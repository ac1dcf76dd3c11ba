"""The figure catalog: for each figure of the config, its notebook, its results files, its notebook
parameters and its caption. Used by the figure rule, the ``--report`` captions and the README's
figure index (``python -m grokking figure-index``), so the three cannot drift apart.

Captions live in one file, ``workflow/report/captions.yaml`` (figure id -> text); the figure rule
passes a figure's caption to its notebook (PDF/PNG metadata) and, escaped for reStructuredText, to
the report.

The notebooks and captions belong to the workflow, not to the package: the catalog reads them from the
workflow directory it is given (``workflow``: the workflow passes its own; the default is the checkout
in the working directory, where Snakemake runs), never from where the package is installed.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import yaml

from ..config import enabled_figures, figure_grids, figure_runs
from ..runspec import cell_spec, grid_settings, rehearsal_note, resolve_run

# The workflow directory of the checkout a caller works in (relative to the working directory), unless given.
WORKFLOW = Path("workflow")


# A setting named in a caption: ``{grid:NAME.KEY}`` (a grid's ``panels``, ``seeds`` or ``keep_weights``, or
# any KEY of its cells' resolved spec) or ``{run:NAME.KEY}`` (a run's resolved spec), filled per preset.
PLACEHOLDER = re.compile(r"\{(grid|run):([A-Za-z0-9_]+)\.([a-z_]+)\}")
GRID_KEYS = ("panels", "seeds", "keep_weights")


def _words(value) -> str:
    """A setting as a caption writes it: ``0.1 and 1``, ``alpha = 0.8, xi = 0.2``, ``3000``."""
    if isinstance(value, (list, tuple)):
        items = [_words(v) for v in value]
        return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
    return f"{value:g}" if isinstance(value, float) else str(value)


def fill(text: str, config: dict) -> str:
    """``text`` with its placeholders replaced by the preset's settings (an error names an unknown one)."""

    def value(match):
        kind, name, key = match.groups()
        try:
            if kind == "grid":
                g = grid_settings(config, name)
                if key == "keep_weights":
                    return _words([f"alpha = {a:g}, xi = {x:g}" for a, x in g[key]])
                if key in GRID_KEYS:
                    return _words(g[key])
                return _words(cell_spec(config, name, g["panels"][0], 0.5, 0.5)[key])
            return _words(resolve_run(config, name)[key])
        except KeyError:
            raise ValueError(f"caption placeholder {match.group(0)}: no such {kind} or setting in the preset") from None

    return PLACEHOLDER.sub(value, text)


@cache
def _caption_texts(path: str) -> dict:
    """Figure id -> caption text as written (placeholders unfilled); the file is read once per process."""
    with open(path) as fh:
        return {k: " ".join(str(v).split()) for k, v in (yaml.safe_load(fh) or {}).items()}


def caption(config: dict, fig: str, workflow=WORKFLOW) -> str:
    """The figure's caption (plain text) from the captions file of the ``workflow`` directory, its
    placeholders filled with ``config``'s settings when the figure is enabled."""
    text = _caption_texts(str(Path(workflow) / "report" / "captions.yaml")).get(fig, "")
    note = rehearsal_note(config)
    return (f"{note}. " if note else "") + (fill(text, config) if fig in enabled_figures(config) else text)


def captions(workflow=WORKFLOW, config: dict | None = None) -> dict:
    """Figure id -> caption (plain text), from the captions file of the ``workflow`` directory; with a
    ``config``, as :func:`caption` gives them."""
    texts = _caption_texts(str(Path(workflow) / "report" / "captions.yaml"))
    return {k: caption(config, k, workflow) for k in texts} if config is not None else dict(texts)


def rst(text: str) -> str:
    """``text`` safe inside reStructuredText: no inline markup (``|x|`` is a substitution in RST)."""
    for ch in "\\|*`_":
        text = text.replace(ch, "\\" + ch)
    return text


def notebook_name(config: dict, fig: str) -> str:
    entry = config["figures"][fig]
    return entry.get("notebook") or f"{fig}_{entry['slug']}.ipynb"


def notebook_path(config: dict, fig: str, workflow=WORKFLOW) -> str:
    """The figure's notebook in the ``workflow`` directory."""
    return str(Path(workflow) / "notebooks" / notebook_name(config, fig))


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


def notebook_parameters(config: dict, fig: str, layout, workflow=WORKFLOW) -> dict:
    """The papermill parameters of the figure's notebook: where its inputs are, where it writes, its
    caption (from the ``workflow`` directory), and the figure's own ``params`` from the config."""
    entry = config["figures"][fig]
    runs = figure_runs(config, fig)
    params = {
        "preset": config["preset"],
        "figure_id": fig,
        "out_stem": layout.figure_stem(fig, entry["slug"]),
        "caption": caption(config, fig, workflow),
        "runs": {panel: layout.run_dir(r) for panel, r in runs.items()},
        "grids": {panel: layout.grid(g) for panel, g in figure_grids(config, fig).items()},
        "data": {panel: layout.dataset_of(resolve_run(config, r)) for panel, r in runs.items()},
        "pruning": {panel: layout.pruning(r) for panel, r in runs.items()} if entry.get("pruning") else {},
        "width_sweep": layout.width_sweep() if entry.get("width_sweep") else "",
        "phase_rules": config["phases"],
    }
    params.update(entry.get("params", {}))
    return params


# --- the figure index (README.md "Figure index", ``python -m grokking figure-index``) -----------------
# Every figure and table of the paper (v2 numbering, docs/paper.md §B) in the paper's order, with a
# short title. Which of them the workflow builds, and how, comes from the config.
PAPER_ITEMS = (
    ("fig01", "Fig 1", "training curves in three phases (weight decay 0, 5, 15)"),
    ("fig02", "Fig 2", "grokking and IPR on clean data"),
    ("fig03", "Fig 3", "phase diagrams: weight decay, dropout"),
    ("table1", "Table 1", "qualitative phases"),
    ("fig04", "Fig 4", "per-neuron IPR histograms per phase"),
    ("fig05", "Fig 5", "BatchNorm and IPR: histograms, |gamma_k| vs IPR_k"),
    ("fig06", "Fig 6", "IPR-ordered pruning of the Coexistence network"),
    ("fig07", "Fig 7", "other architectures: Transformer and 3-layer MLP"),
    ("fig08", "Fig 8", "Forgetting at weight decay 20: accuracies and weight norms"),
    ("fig09", "Fig 9", "phase diagrams with BatchNorm, per batch size"),
    ("fig10", "Fig 10", "phase diagrams of plain minibatch training, per batch size"),
    ("fig11", "Fig 11", "phase diagrams with LayerNorm, per batch size"),
    ("fig12", "Fig 12", "Transformer embedding IPR for several configurations"),
    ("fig13", "Fig 13", "Transformer with dropout"),
    ("fig14", "Fig 14", "3-layer MLP: standard vs lazier initialization"),
    ("fig15", "Fig 15", "3-layer MLP with BatchNorm"),
    ("fig16", "Fig 16", "MNIST with label corruption"),
    ("fig17", "Fig 17", "pruning accuracies in the three phases"),
    ("fig18", "Fig 18", "pruning losses in the three phases"),
    ("fig19", "Fig 19", "training curves with dropout"),
    ("fig20", "Fig 20", "minibatch training curves with BatchNorm"),
    ("fig21", "Fig 21", "minibatch training curves with LayerNorm"),
    ("fig22", "Fig 22", "minibatch training curves without normalization"),
    ("fig23", "Fig 23", "output logits of corrupted training examples"),
    ("fig24", "Fig 24", "detailed weight-decay phase diagrams: train and test accuracy, phase"),
    ("fig25", "Fig 25", "detailed dropout phase diagrams: train and test accuracy, phase"),
    ("fig26", "Fig 26", "phase diagrams with cross-entropy loss"),
    ("fig27", "Fig 27", "ReLU MLP: weight-decay phase diagrams"),
    ("fig28", "Fig 28", "ReLU MLP: dropout phase diagrams"),
    ("fig29", "Fig 29", "wide quadratic MLP (N = 5000): weight-decay phase diagrams"),
    ("fig30", "Fig 30", "wide ReLU MLP (N = 5000): weight-decay phase diagrams"),
    ("fig31", "Fig 31", "modular multiplication: weight-decay phase diagrams"),
    ("fig32", "Fig 32", "prunable low-IPR neurons against width"),
    ("table2", "Table 2", "quantitative phases (the phase classifier's thresholds)"),
)
INDEX_HEADER = ("figure", "what it shows", "notebook", "rule", "results it reads (under `results/<preset>/`)", "output")
NOT_BUILT = "not yet built"


def placeholder_layout():
    """The preset-independent layout the index is written in: ``results/<preset>``, ``figures/<preset>``."""
    from ..layout import Layout

    return Layout("results/<preset>", "figures/<preset>")


def index_inputs(config: dict, fig: str, layout) -> list[str]:
    """The figure's results files (:func:`result_files`) relative to the preset's results, a run's
    files collapsed to its directory (``runs/r1_wd0/``) and a grid's CSV left out beside its npz."""
    out = []
    for path in result_files(config, fig, layout):
        rel = layout.relative(path)
        if rel.startswith("runs/"):
            rel = str(Path(rel).parent) + "/"
        if rel.endswith(".csv") and rel[:-4] + ".npz" in out:
            continue
        if rel not in out:
            out.append(rel)
    return out


def _outputs(stems: list[str]) -> str:
    """``figures/<preset>/fig01_x.pdf`` + ``.png`` -> one ``figures/<preset>/fig01_x.{pdf,png}``."""
    by_stem = {}
    for path in stems:
        stem, _, ext = path.rpartition(".")
        by_stem.setdefault(stem, []).append(ext)
    return ", ".join(f"`{s}.{e[0]}`" if len(e) == 1 else f"`{s}.{{{','.join(e)}}}`" for s, e in by_stem.items())


def _code(items) -> str:
    return ", ".join(f"`{i}`" for i in items) if items else "—"


def figure_index_rows(config: dict, layout=None) -> list[dict]:
    """One row per figure and table of the paper (and any other configured figure), from the config."""
    from ..layout import TABLE_FILES

    layout = layout or placeholder_layout()
    figures = config.get("figures", {})
    items = list(PAPER_ITEMS) + [(f, f, "") for f in sorted(figures) if f not in {i[0] for i in PAPER_ITEMS}]
    rows = []
    for key, label, title in items:
        if key.startswith("table"):
            rows.append(
                {
                    "id": key,
                    "figure": label,
                    "shows": title,
                    "notebook": None,
                    "rule": "tables",
                    "inputs": [],
                    "outputs": [layout.table(n) for n in TABLE_FILES if n.startswith(key + ".")],
                }
            )
        elif key in figures:
            entry = figures[key]
            rows.append(
                {
                    "id": key,
                    "figure": label,
                    "shows": title,
                    "notebook": f"workflow/notebooks/{notebook_name(config, key)}",
                    "rule": "figure",
                    "inputs": index_inputs(config, key, layout),
                    "outputs": layout.figure_files(key, entry["slug"]),
                    "enabled": entry.get("enabled", True),
                }
            )
        else:
            rows.append(
                {
                    "id": key,
                    "figure": label,
                    "shows": title,
                    "notebook": None,
                    "rule": None,
                    "inputs": [],
                    "outputs": [],
                }
            )
    return rows


def figure_index(config: dict, layout=None) -> str:
    """The README's figure index: a Markdown table, one row per figure and table of the paper, with its
    notebook, Snakemake rule, the results files it reads and its output files."""

    def cell(text):
        return str(text).replace("|", "\\|")

    lines = ["| " + " | ".join(INDEX_HEADER) + " |", "|" + "---|" * len(INDEX_HEADER)]
    for r in figure_index_rows(config, layout):
        if r["rule"] is None:
            cells = [r["figure"], r["shows"], f"*{NOT_BUILT}*", "—", "—", "—"]
        else:
            shows = r["shows"] + ("" if r.get("enabled", True) else " (disabled in the config)")
            notebook = f"`{r['notebook']}`" if r["rule"] == "figure" else "—"
            cells = [r["figure"], shows, notebook, f"`{r['rule']}`", _code(r["inputs"]), _outputs(r["outputs"])]
        lines.append("| " + " | ".join(cell(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


INDEX_START, INDEX_END = "<!-- figure-index:start -->", "<!-- figure-index:end -->"


def readme_index(text: str) -> str:
    """The figure index held in README.md's text, between :data:`INDEX_START` and :data:`INDEX_END`."""
    start, end = text.index(INDEX_START) + len(INDEX_START), text.index(INDEX_END)
    return text[start:end].strip("\n") + "\n"
