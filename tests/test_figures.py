"""Figure content on small hand-made results (no training), and the figure catalog's bookkeeping.

The real notebooks of ``workflow/notebooks/`` are executed in-process, as papermill runs them: the
parameters cell first, then the parameters the figure rule passes (``notebook_parameters``, with every
path under ``tmp_path``), then the other code cells, in one namespace. Each notebook leaves its
matplotlib figure in ``fig``; the tests read the plotted data back from it.
"""

import json
import zlib
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import nbformat
import numpy as np
import pytest
import yaml
from matplotlib.figure import Figure

from grokking import results
from grokking.config import figure_grids, figure_runs
from grokking.experiments.specs import cell_spec, resolve_run
from grokking.layout import Layout
from grokking.phases import PHASES
from grokking.report import figures as catalog

pytestmark = pytest.mark.checkout  # needs the checkout: left out of make test-wheel

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "workflow" / "notebooks"
TRAINING_CURVE_FIGURES = ("fig01", "fig19", "fig20", "fig21", "fig22")


@pytest.fixture(scope="module")
def config():
    with open(ROOT / "config" / "config.yaml") as fh:
        return yaml.safe_load(fh)


@pytest.fixture
def layout(tmp_path):
    return Layout(str(tmp_path / "results" / "test"), str(tmp_path / "figures" / "test"))


# --- executing a notebook ----------------------------------------------------------------------
def code_cells(name):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    return [c for c in nb.cells if c.cell_type == "code"]


def parameters_cell(name):
    cells = [c for c in code_cells(name) if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1, f"{name}: exactly one cell tagged 'parameters'"
    return cells[0]


def notebook_defaults(name) -> dict:
    ns = {}
    exec(compile(parameters_cell(name).source, f"{name}:parameters", "exec"), ns)
    return {k: v for k, v in ns.items() if not k.startswith("__")}


def execute_notebook(name, params, monkeypatch):
    """Run ``name``'s code cells with ``params`` replacing the parameters cell's values; return the namespace."""
    monkeypatch.setenv("MPLBACKEND", "Agg")
    cells = code_cells(name)
    ns = {"__name__": "__main__"}
    with matplotlib.rc_context():  # the notebooks' style must not leak into other tests
        for i, cell in enumerate(cells):
            exec(compile(cell.source, f"{name}[{i}]", "exec"), ns)
            if "parameters" in cell.metadata.get("tags", []):
                ns.update(params)  # what papermill's injected-parameters cell does
    assert isinstance(ns.get("fig"), Figure), f"{name} keeps its figure in `fig`"
    plt.close(ns["fig"])
    return ns


def figure_params(config, fig, layout):
    params = catalog.notebook_parameters(config, fig, layout)
    assert params["caption"], f"{fig} has a caption"
    return params


def png_description(stem):
    from PIL import Image

    with Image.open(f"{stem}.png") as im:
        return im.text.get("Description")


# --- hand-made results -------------------------------------------------------------------------
def make_run(path, spec, phase, *, width=8, points=6):
    """A finished run directory as experiments/runs.py writes it, with made-up distinct numbers."""
    rng = np.random.default_rng(zlib.crc32(spec["name"].encode()))
    p = spec["p"]
    step = np.unique(np.linspace(1, spec["steps"], points).astype(np.int64))
    T = len(step)
    curves = {
        k: rng.uniform(0, 1, T)
        for k in ("train_acc", "test_acc", "corrupted_acc", "uncorrupted_acc", "full_acc", "ipr_mean")
    }
    curves.update(
        {k: rng.uniform(0.5, 2, T) for k in ("train_loss", "test_loss", "batch_loss", "norm_u", "norm_v", "norm_w")}
    )
    curves["step"] = step
    curves["neuron_ipr"] = rng.uniform(0, 1, (T, width))
    results.write_json(path / "spec.json", dict(spec, code_version="test", spec_hash="test"))
    results.write_npz(path / "curves.npz", **curves)
    import torch

    params = {"U": torch.randn(width, p), "V": torch.randn(width, p), "W": torch.randn(p, width)}
    results.write_torch(
        path / "model.pt",
        {
            "shape": {"p": p, "width": width},
            "params": params,
            "init_params": {k: v.clone() for k, v in params.items()},
            "buffers": {},
            "neuron_ipr": torch.rand(width),
        },
    )
    summary = {k: float(v[-1]) for k, v in curves.items() if k not in ("step", "neuron_ipr")}
    summary.update(
        max_test_acc=float(curves["test_acc"].max()), max_train_acc=float(curves["train_acc"].max()), phase=phase
    )
    results.write_json(path / "summary.json", summary)
    return curves


def make_grid(path, name, panel_key, panels, alphas, xis, seed, spec=None):
    """A merged grid: every cell of a panel has its own phase code (a transpose or flip changes the image);
    ``spec``: the settings its cells share (the figure's title)."""
    rng = np.random.default_rng(seed)
    P, X, A = len(panels), len(xis), len(alphas)
    assert X * A <= len(PHASES) and X != A
    phase = np.stack([rng.permutation(len(PHASES))[: X * A].reshape(X, A) for _ in range(P)]).astype(np.int8)
    grid = dict(
        phase=phase,
        phase_names=np.asarray(PHASES),
        panels=np.asarray(panels, dtype=float),
        panel_key=np.asarray(panel_key),
        train_fractions=np.asarray(alphas, dtype=float),
        corruptions=np.asarray(xis, dtype=float),
        grid=np.asarray(name),
        train_acc=rng.uniform(0, 1, (P, X, A)),
        test_acc=rng.uniform(0, 1, (P, X, A)),
        max_test_acc=rng.uniform(0, 1, (P, X, A)),
        max_train_acc=rng.uniform(0, 1, (P, X, A)),
    )
    if spec is not None:
        grid["spec"] = np.asarray(json.dumps(spec))
    results.write_npz(path, **grid)
    return grid


def assert_map(ax, values, alphas, xis):
    """``ax`` shows ``values`` [xi, alpha] with alpha on the x axis and xi on the y axis, xi increasing upwards."""
    (im,) = ax.get_images()
    assert im.origin == "lower"
    np.testing.assert_array_equal(np.asarray(im.get_array()), values)
    x0, x1, y0, y1 = im.get_extent()
    A, X = len(alphas), len(xis)
    np.testing.assert_allclose(x0 + (np.arange(A) + 0.5) * (x1 - x0) / A, alphas)  # column centres = alpha
    np.testing.assert_allclose(y0 + (np.arange(X) + 0.5) * (y1 - y0) / X, xis)  # row centres = xi
    assert "alpha" in ax.get_xlabel() and "xi" in (ax.get_ylabel() or "xi")  # y label on the first column only


# --- phase diagrams ----------------------------------------------------------------------------
ALPHAS, XIS = [0.3, 0.5, 0.7], [0.0, 0.25]


def test_phase_diagrams_show_each_grid_panel_with_alpha_across_and_xi_up(config, layout, monkeypatch):
    params = figure_params(config, "fig03", layout)
    grids = {}
    for row, name in figure_grids(config, "fig03").items():
        g = config["grids"][name]
        spec = cell_spec(config, name, g["panels"][0], ALPHAS[0], XIS[0])
        grids[row] = make_grid(
            params["grids"][row], name, g["panel_key"], g["panels"], ALPHAS, XIS, zlib.crc32(name.encode()), spec
        )
    ns = execute_notebook("phase_diagrams.ipynb", params, monkeypatch)
    fig = ns["fig"]
    # the title names the dataset and the model: the paper's p and N, MSE, 2000 steps (the same for both grids)
    assert fig.get_suptitle() == "addition mod 97, 2-layer quadratic MLP, N = 500, MSE, lr 0.01, 2000 steps"
    ncols = max(g["phase"].shape[0] for g in grids.values())
    axes = np.asarray(fig.axes).reshape(len(grids), ncols)
    for r, row in enumerate(sorted(grids)):
        g = grids[row]
        for i in range(g["phase"].shape[0]):
            assert_map(axes[r, i], g["phase"][i], ALPHAS, XIS)
            value = g["panels"][i]
            label = {"weight_decay": "weight decay", "dropout": "dropout"}[str(g["panel_key"])]
            assert axes[r, i].get_title() == f"({row}{i + 1}) {label} {int(value) if value.is_integer() else value}"
    assert png_description(params["out_stem"]) == params["caption"]


def test_fig16_title_says_that_the_dropout_panels_are_measured_with_dropout_on(config, layout, monkeypatch):
    params = figure_params(config, "fig16", layout)
    for row, name in figure_grids(config, "fig16").items():
        g = config["grids"][name]
        spec = cell_spec(config, name, g["panels"][0], ALPHAS[0], XIS[0])
        seed = zlib.crc32(name.encode())
        make_grid(params["grids"][row], name, g["panel_key"], g["panels"], ALPHAS, XIS, seed, spec)
    title = execute_notebook("phase_diagrams.ipynb", params, monkeypatch)["fig"].get_suptitle().split("\n")
    assert title == [
        "(a) MNIST (pool 10000), 4-layer ReLU MLP, N = 500, CE, lr 0.001, 2000 steps",
        "(b) MNIST (pool 10000), 4-layer ReLU MLP, N = 500, CE, lr 0.001, 2000 steps, accuracy with dropout on",
    ]


def test_phase_details_show_train_test_accuracy_and_phase_per_panel(config, layout, monkeypatch):
    params = figure_params(config, "fig24", layout)
    (name,) = figure_grids(config, "fig24").values()
    g = make_grid(params["grids"]["a"], name, "weight_decay", config["grids"][name]["panels"], ALPHAS, XIS, seed=3)
    fig = execute_notebook("phase_details.ipynb", params, monkeypatch)["fig"]
    n = g["phase"].shape[0]
    axes = np.asarray(fig.axes[: 3 * n]).reshape(3, n)  # then the colour bar
    for i in range(n):
        assert_map(axes[0, i], 100 * g["train_acc"][i], ALPHAS, XIS)
        assert_map(axes[1, i], 100 * g["test_acc"][i], ALPHAS, XIS)
        assert_map(axes[2, i], g["phase"][i], ALPHAS, XIS)
    assert png_description(params["out_stem"]) == params["caption"]


# --- training curves ---------------------------------------------------------------------------
# The panel settings of the five notebooks that training_curves.ipynb replaced, verbatim.
OLD_SETTINGS = {
    "fig01": lambda s: f"weight decay {s['weight_decay']:g}",
    "fig19": lambda s: f"dropout {s['dropout']:g}",
    **{
        fig: lambda s: (
            rf"$\alpha$ = {s['train_fraction']:g}, batch {s['batch_size']}, "
            rf"$\xi$ = {s['corruption']:g}"
        )
        for fig in ("fig20", "fig21", "fig22")
    },
}


@pytest.mark.parametrize("fig_id", TRAINING_CURVE_FIGURES)
def test_training_curves_plot_each_run_in_percent_with_its_setting(config, layout, monkeypatch, fig_id):
    assert catalog.notebook_name(config, fig_id) == "training_curves.ipynb"
    params = figure_params(config, fig_id, layout)
    runs = figure_runs(config, fig_id)
    specs, curves, phases = {}, {}, {}
    for k, (panel, run) in enumerate(sorted(runs.items())):
        specs[panel] = resolve_run(config, run)
        phases[panel] = PHASES[k % len(PHASES)]
        curves[panel] = make_run(Path(params["runs"][panel]), specs[panel], phases[panel])
    fig = execute_notebook("training_curves.ipynb", params, monkeypatch)["fig"]
    panels = sorted(runs)
    assert len(fig.axes) == len(panels)
    for ax, panel in zip(fig.axes, panels, strict=True):
        lines = {line.get_label(): line for line in ax.get_lines()}
        for key in ("train", "test"):
            np.testing.assert_array_equal(lines[key].get_xdata(), curves[panel]["step"])
            np.testing.assert_allclose(lines[key].get_ydata(), 100 * curves[panel][f"{key}_acc"])
        setting = params["setting"].format(**specs[panel])
        assert setting == OLD_SETTINGS[fig_id](specs[panel])
        assert ax.get_title() == f"({panel}) {setting}\n{phases[panel]}"
        assert (ax.get_legend() is not None) == (panel == panels[0])  # one legend, on the first panel
    assert png_description(params["out_stem"]) == params["caption"]


def test_training_curve_titles_read_the_configured_setting(config, layout, monkeypatch):
    params = figure_params(config, "fig20", layout)
    for panel, run in figure_runs(config, "fig20").items():
        make_run(Path(params["runs"][panel]), resolve_run(config, run), "Coexistence")
    params["setting"] = "lr {lr:g} / {norm}"
    fig = execute_notebook("training_curves.ipynb", params, monkeypatch)["fig"]
    assert [ax.get_title() for ax in fig.axes] == [
        f"({p}) lr 0.005 / batchnorm\nCoexistence" for p in sorted(figure_runs(config, "fig20"))
    ]


# --- every notebook: caption parameter, shared helper ------------------------------------------
ALL_NOTEBOOKS = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))


@pytest.mark.parametrize("name", ALL_NOTEBOOKS)
def test_every_notebook_takes_a_caption_and_uses_the_shared_helper(name):
    assert notebook_defaults(name).get("caption") == ""
    source = "\n".join(c.source for c in code_cells(name))
    assert "from grokking.report import notebook as shared" in source
    assert "shared.load_" in source
    assert "description=caption" in source and "DESCRIPTION" not in source
    assert source.count("description=") == 1


def test_every_notebook_is_used_and_every_figure_has_its_notebook(config):
    used = {catalog.notebook_name(config, fig) for fig in config["figures"]}
    assert used == set(ALL_NOTEBOOKS)


# --- captions and the figure index -------------------------------------------------------------
def test_every_configured_figure_has_a_caption_and_no_other(config):
    caps = catalog.captions(ROOT / "workflow")
    assert set(caps) == set(config["figures"])
    for fig, text in caps.items():
        assert text.startswith(f"Fig {int(fig[3:])}. "), fig


@pytest.mark.parametrize("preset", ["paper", "quick", "smoke"])
def test_captions_say_the_settings_each_preset_trains(preset, repo_root):
    """A caption names a setting through a placeholder, filled from the preset: Fig 7's weight decays and
    learning rates are what its grids train, not the paper's 10 / 50 at lr 1e-3 typed in the text."""
    from grokking.config import load_preset, validate
    from grokking.runspec import grid_settings

    cfg = validate(load_preset(repo_root / "config", preset))
    caps = catalog.captions(repo_root / "workflow", cfg)
    assert not any(catalog.PLACEHOLDER.search(caps[f]) for f in cfg["figures"])
    wd = grid_settings(cfg, "transformer_wd")["panels"]
    words = " and ".join(f"{v:g}" for v in wd)
    assert f"at weight decay {words};" in caps["fig07"], caps["fig07"]


def test_a_caption_placeholder_that_names_nothing_is_an_error(config):
    from grokking.runspec import grid_settings, resolve_run

    panels = grid_settings(config, "wd")["panels"]
    expected = f"lr {resolve_run(config, 'r1_wd0')['lr']:g}, " + ", ".join(f"{v:g}" for v in panels[:-1])
    assert catalog.fill("lr {run:r1_wd0.lr}, {grid:wd.panels}", config) == f"{expected} and {panels[-1]:g}"
    with pytest.raises(ValueError, match=r"\{grid:nope.panels\}"):
        catalog.fill("{grid:nope.panels}", config)
    with pytest.raises(ValueError, match=r"\{run:r1_wd0.colour\}"):
        catalog.fill("{run:r1_wd0.colour}", config)


def test_readme_figure_index_is_the_generated_one(config):
    readme = (ROOT / "README.md").read_text()
    assert "## Figure index" in readme
    assert readme.index("## Running the workflow") < readme.index("## Figure index")
    assert catalog.readme_index(readme) == catalog.figure_index(config), (
        "README.md's figure index is stale: replace it with `python -m grokking figure-index`"
    )


def test_figure_index_lists_every_figure_of_the_paper(config):
    rows = {r["id"]: r for r in catalog.figure_index_rows(config)}
    assert set(rows) == {f"fig{i:02d}" for i in range(1, 33)} | {"table1", "table2"}
    index = catalog.figure_index(config)
    for fig, entry in config["figures"].items():
        r = rows[fig]
        assert r["rule"] == "figure"
        assert r["notebook"] == f"workflow/notebooks/{catalog.notebook_name(config, fig)}"
        assert f"`figures/<preset>/{fig}_{entry['slug']}.{{pdf,png}}`" in index
    for fig in sorted(set(rows) - set(config["figures"]) - {"table1", "table2"}):
        assert rows[fig]["rule"] is None and rows[fig]["notebook"] is None
        assert f"| Fig {int(fig[3:])} | {rows[fig]['shows']} | *not yet built* |" in index
    for table in ("table1", "table2"):
        assert rows[table]["rule"] == "tables"
        assert rows[table]["outputs"] == [f"figures/<preset>/{table}.md", f"figures/<preset>/{table}.tex"]
    assert rows["fig01"]["inputs"][:3] == ["runs/r1_wd0/", "runs/r2_wd5/", "runs/r3_wd15/"]
    assert rows["fig03"]["inputs"] == ["grids/dropout.npz", "grids/wd.npz"]
    assert "analysis/pruning/r1_wd0.npz" in rows["fig06"]["inputs"]
    assert rows["fig32"]["inputs"] == ["analysis/width_sweep.npz"]


def test_figure_index_command_prints_it(config, capsys):
    from grokking.cli import main

    main(["figure-index", "--config", str(ROOT / "config" / "config.yaml")])
    assert capsys.readouterr().out == catalog.figure_index(config)


def test_captions_reach_the_figure_rule_parameters(config, layout):
    caps = catalog.captions(ROOT / "workflow", config)
    for fig in config["figures"]:
        params = catalog.notebook_parameters(config, fig, layout)
        assert params["caption"] == caps[fig]
        assert json.loads(json.dumps(params)) == params  # papermill gets them as YAML: plain data only
