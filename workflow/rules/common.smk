# Validation, paths and target lists, computed from the config alone (no torch import: `snakemake -n`
# of the paper preset takes seconds). No rules here.
import json
import os
import sys
from pathlib import Path

ROOT = Path(workflow.basedir)
SRC = ROOT / "src"
sys.path.insert(0, str(SRC))
# Jobs (and the notebook kernels they start) import the library from this checkout.
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))

from grokking.config import (  # noqa: E402
    ConfigError,
    enabled_figures,
    figure_grids,
    figure_runs,
    resolve_run,
    validate,
)

try:
    validate(config, ROOT / "workflow" / "schemas" / "config.schema.yaml")
except ConfigError as err:
    raise WorkflowError(str(err)) from None

PRESET = config["preset"]
RES = f"{config['results_dir']}/{PRESET}"
FIG = f"{config['figures_dir']}/{PRESET}"
PYTHON = sys.executable
RUNS = sorted(config["runs"])


def code_files(*modules):
    """Library modules a rule runs: editing them reruns that rule's outputs."""
    return [str((SRC / "grokking" / f"{m}.py").relative_to(ROOT)) for m in modules]


TRAIN_CODE = code_files("__init__", "__main__", "cli", "config", "tasks", "models", "train", "metrics",
                        "phases", "runs", "results")
FIGURE_CODE = code_files("__init__", "results", "phases", "plotting")
RUN_FILES = ("spec.json", "curves.npz", "model.pt", "summary.json")
TABLE_FILES = ("table1.md", "table1.tex", "table2.md", "table2.tex")


def run_spec(name):
    return resolve_run(config, name)


def dataset_path(spec):
    return f"{RES}/data/{spec['operation']}_p{spec['p']}.npz"


def run_dir(name):
    return f"{RES}/runs/{name}"


def figure_stem(fig):
    return f"{FIG}/{fig}_{config['figures'][fig]['slug']}"


def figure_files(fig):
    return [figure_stem(fig) + ext for ext in (".pdf", ".png")]


def pruning_path(run):
    return f"{RES}/analysis/pruning/{run}.npz"


def all_targets():
    targets = [f"{run_dir(r)}/summary.json" for r in RUNS] + [f"{FIG}/{name}" for name in TABLE_FILES]
    targets += [f"{RES}/claims.json", f"{FIG}/claims.md"]
    for fig in enabled_figures(config):
        targets += figure_files(fig)
        targets += [f"{RES}/grids/{g}.csv" for g in sorted(set(figure_grids(config, fig).values()))]
    return targets
