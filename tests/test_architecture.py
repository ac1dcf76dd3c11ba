"""The shape of the library: imports point down the layers without cycles, the DAG side stays light,
the model-family registry matches the schema, and a job's derived code inputs cover what it runs."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import grokking  # the package under test: the checkout's src/ (conftest.py), or an installed wheel

PKG = Path(grokking.__file__).resolve().parent
SRC = PKG.parent


def modules() -> dict:
    """Module name -> file, for every module of the package."""
    out = {}
    for f in PKG.rglob("*.py"):
        parts = f.relative_to(SRC).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    return out


def import_edges() -> dict:
    """Module -> the package modules its import statements name (written independently of codedeps)."""
    mods = modules()
    edges = {}
    for name, f in mods.items():
        package = name if f.name == "__init__.py" else name.rpartition(".")[0]
        found = set()
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                found |= {target} | {f"{target}.{a.name}" for a in node.names}
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names}
        ancestors = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)}
        # A package is initialised before its modules anyway: ``from . import losses`` is an edge to
        # ``losses``, not to the enclosing package.
        edges[name] = {m for m in found if m in mods and m != name and m not in ancestors}
    return edges


def test_the_import_graph_has_no_cycle():
    edges = import_edges()
    state = {}

    def visit(node, path):
        state[node] = "open"
        for nxt in sorted(edges[node]):
            if state.get(nxt) == "open":
                pytest.fail("import cycle: " + " -> ".join(path + [nxt]))
            if nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])


# The layers, bottom up: a module imports only from its own layer and those below it (DESIGN: imports
# only point down). A layer names modules and packages; a package places all its modules (a new module
# of ``grokking.report`` is in the report's layer), and every module of the library must be placed.
LAYERS = [
    # foundations: file writing, the datasets, the metrics and losses, the numeric profile, host allocation,
    # the phases
    {
        "grokking._version",
        "grokking.atomic",
        "grokking.data",
        "grokking.hostmemory",
        "grokking.losses",
        "grokking.metrics",
        "grokking.numerics",
        "grokking.phases",
        "grokking.stats",
    },
    # the config: its validation and the run specs it resolves to (no torch; the DAG imports them)
    {"grokking.runspec", "grokking.config"},
    {"grokking.models"},
    {"grokking.engine"},
    # result files: where they are, how they are read and written, which code a job runs
    {"grokking.results", "grokking.layout", "grokking.codedeps"},
    {"grokking.experiments"},
    {"grokking.report"},
    # the entry points: the package's loaders (``grokking.load_run``), the command line, result bundles (what a
    # build reads, packed and fetched), the GPU acceptance check (it trains, plans and reports)
    {"grokking", "grokking.cli", "grokking.__main__", "grokking.bundle", "grokking.gpucheck"},
]


def layer_of(module: str) -> int | None:
    """The layer of ``module``: that of the module itself or of its nearest enclosing package listed."""
    level = {m: i for i, layer in enumerate(LAYERS) for m in layer}
    parts = module.split(".")
    for i in range(len(parts), 0, -1):
        if ".".join(parts[:i]) in level:
            return level[".".join(parts[:i])]
    return None


def test_every_module_is_in_a_layer_and_each_name_once():
    names = [m for layer in LAYERS for m in layer]
    assert len(names) == len(set(names)), "a module or package is listed in two layers"
    unplaced = sorted(m for m in modules() if layer_of(m) is None)
    assert not unplaced, f"place these modules in a layer of this test: {unplaced}"
    assert set(names) <= set(modules()), f"listed but not in the package: {sorted(set(names) - set(modules()))}"


def upward(edges: dict) -> list[str]:
    """The imports of ``edges`` (module -> modules it imports) that point up a layer."""
    return [
        f"{a} (layer {layer_of(a)}) -> {b} (layer {layer_of(b)})"
        for a, targets in sorted(edges.items())
        for b in sorted(targets)
        if layer_of(b) > layer_of(a)
    ]


def test_imports_only_point_down_the_layers():
    """No exceptions: every import of every module, at the top or inside a function, points down or
    stays in its layer."""
    bad = upward(import_edges())
    assert not bad, "imports pointing up a layer:\n  " + "\n  ".join(bad)


def test_the_layer_check_finds_the_imports_it_forbids():
    """The three upward imports this test once listed as exceptions are each found (models below the
    engine, the config below the experiments and the report)."""
    forbidden = {
        "grokking.config": {"grokking.report.claims", "grokking.experiments.specs"},
        "grokking.models.mlp2_grads": {"grokking.engine.losses"},
    }
    assert len(upward(forbidden)) == 3
    assert upward({"grokking.experiments.specs": {"grokking.runspec", "grokking.engine"}}) == []


@pytest.mark.parametrize(
    "module",
    [
        "grokking.config",
        "grokking.runspec",
        "grokking.experiments.specs",
        "grokking.experiments.gridplan",
        "grokking.experiments.studyplan",
        "grokking.experiments.decisions",
        "grokking.layout",
        "grokking.report.figures",
        "grokking.codedeps",
        "grokking.bundle",
    ],
)
def test_what_the_dag_imports_imports_no_torch(module):
    """`snakemake -n` of the paper preset must take seconds: the workflow's imports stay torch-free."""
    code = f"import sys; sys.path.insert(0, {str(SRC)!r}); import {module}; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_the_family_registry_is_the_schema_enum():
    from grokking.models import FAMILIES, get_family
    from grokking.runspec import SCHEMA_PATH

    schema = yaml.safe_load(open(SCHEMA_PATH))
    assert schema["$defs"]["run_settings"]["properties"]["model"]["enum"] == list(FAMILIES)
    for name in FAMILIES:
        family = get_family(name)
        for attr in ("Shape", "init", "forward", "weight_norms", "neuron_ipr", "ipr_components"):
            assert callable(getattr(family, attr)), (name, attr)
        assert family.Shape.family == name
    with pytest.raises(ValueError, match="model: 'cnn' is not one of"):
        get_family("cnn")


def test_derived_code_inputs_separate_training_from_plotting():
    from grokking.codedeps import code_files, command_modules

    runs = code_files(command="train-run")
    expected = ("cli.py", "engine/loop.py", "engine/adamw.py", "models/mlp2.py", "models/mlp2_grads.py")
    for f in expected:
        assert str(PKG / f) in runs, f  # mlp2 is reached only through the registry's string
    assert str(PKG / "data" / "modular.py") in runs
    assert str(PKG / "report" / "plotting.py") not in runs  # editing a plot never retrains
    assert str(PKG / "results.py") in code_files(command="dataset")  # imported by the command itself
    with pytest.raises(ValueError, match="no command function cmd_train_everything"):
        command_modules("train-everything")


def test_the_claims_file_is_a_code_input_of_the_claims_jobs_only():
    """Editing a claim reruns the claims report and the robustness values, never a training job."""
    from grokking.codedeps import code_files

    claims_file = str(PKG / "claims.yaml")
    assert claims_file in code_files(command="claims") and claims_file in code_files(command="claim-values")
    for command in ("train-run", "train-chunk", "prune-run", "width-job", "dataset"):
        assert claims_file not in code_files(command=command), command


@pytest.mark.checkout  # the workflow's notebooks
def test_a_notebooks_code_inputs_are_its_imports(repo_root):
    from grokking.codedeps import code_files

    nb = code_files(notebook=repo_root / "workflow" / "notebooks" / "phase_diagrams.ipynb")
    assert str(PKG / "report" / "plotting.py") in nb and str(PKG / "cli.py") not in nb


JOB = """
import json, sys
sys.path.insert(0, {src!r})
from grokking.data import Universe
from grokking.results import write_npz
import grokking.experiments.{module} as job
write_npz({data!r}, **Universe.build("add", 11).to_arrays())
spec = {spec}
{call}
print(json.dumps(sorted(m for m in sys.modules if m.startswith("grokking"))))
"""


@pytest.mark.parametrize(
    "module, model",
    [("runs", "mlp2"), ("grids", "mlp2"), ("widths", "mlp2"), ("runs", "transformer"), ("grids", "deep_mlp")],
)
def test_derived_code_inputs_cover_every_module_a_job_loads(module, model, tmp_path, repo_root):
    """Run a tiny job in a fresh interpreter: every grokking module it loaded is among the rule's code
    inputs (so editing any of them reruns the job)."""
    from grokking.codedeps import closure, command_modules
    from grokking.experiments.specs import resolve

    config = yaml.safe_load(open(repo_root / "config" / "config.yaml"))
    tiny = {"p": 11, "train_fraction": 0.6, "corruption": 0.2, "width": 8, "d_model": 8, "weight_decay": 1.0}
    spec = dict(resolve(config, tiny, {"model": model, "steps": 3, "log_every": 1}), name="tiny")
    data, out = tmp_path / "d.npz", tmp_path / "out"
    call = {
        "runs": f"job.run_and_save(spec, {str(data)!r}, {str(out)!r}, device='cpu', progress=False)",
        "grids": (
            "from grokking.experiments.specs import split_spec\n"
            "stack, own = split_spec(spec)\n"
            f"job.train_chunk({{'stack': stack, 'cells': [['c1', own]], 'keep': ['c1']}}, {str(data)!r}, "
            f"{str(out) + '.npz'!r}, device='cpu', progress=False)"
        ),
        "widths": f"job.train_width_job({{'spec': spec, 'seeds': [1, 2]}}, {str(data)!r}, {str(out) + '.npz'!r}, "
        f"device='cpu', progress=False)",
    }[module]
    code = JOB.format(src=str(SRC), module=module, data=str(data), spec=repr(spec), call=call)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    loaded = set(json.loads(res.stdout.strip().splitlines()[-1]))
    assert loaded - set(closure(f"grokking.experiments.{module}")) == set()
    command = {"runs": "train-run", "grids": "train-chunk", "widths": "width-job"}[module]
    assert f"grokking.experiments.{module}" in command_modules(command)
