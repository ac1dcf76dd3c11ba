"""One plotting style for every figure, the phase colours, and save-with-provenance.

Notebooks only load results and call these helpers; nothing here trains or computes metrics.
"""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..phases import PHASE_COLORS, PHASES  # noqa: E402
from ..results import code_version, write_bytes  # noqa: E402
from ..runspec import REHEARSAL  # noqa: E402

TRAIN_COLOR = "#1f77b4"
TEST_COLOR = "#ff7f0e"
CORRUPTED_COLOR = "#d62728"
UNCORRUPTED_COLOR = "#2ca02c"
NORM_COLORS = {"norm_u": "#1f77b4", "norm_v": "#ff7f0e", "norm_w": "#2ca02c"}

__all__ = [
    "use_style",
    "save_figure",
    "accuracy_curves",
    "norm_curves",
    "ipr_histogram",
    "PHASE_COLORS",
    "phase_diagram",
    "accuracy_map",
    "phase_legend",
    "panel_name",
    "PHASES",
    "panel_title",
    "model_text",
    "grid_text",
]


def use_style():
    plt.rcParams.update(
        {
            "figure.dpi": 110,
            "savefig.dpi": 200,
            "font.size": 10,
            "axes.titlesize": 10,
            "axes.labelsize": 10,
            "legend.fontsize": 8,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "lines.linewidth": 1.6,
            "pdf.fonttype": 42,
        }
    )


def save_figure(fig, stem, description: str = "", runs=None):
    """Write ``stem.pdf`` and ``stem.png`` atomically, with code version and inputs in the metadata; a
    rehearsal's figure (its caption begins with the rehearsal note) is stamped across."""
    stem = Path(stem)
    if description.startswith(REHEARSAL):
        fig.text(0.5, 0.5, "REHEARSAL", rotation=30, fontsize=60, color="red", alpha=0.25, ha="center", va="center")
        fig.text(0.5, 0.0, description.split(". ")[0], fontsize=8, color="red", ha="center", va="top")
    info = f"grok-or-not {code_version()}"
    if runs:
        info += "; runs: " + ", ".join(f"{k}={v}" for k, v in sorted(dict(runs).items()))
    for ext, meta in (
        (".pdf", {"Title": stem.name, "Subject": description, "Keywords": info, "Creator": "grok-or-not"}),
        (".png", {"Title": stem.name, "Description": description, "Comment": info, "Software": "grok-or-not"}),
    ):
        buf = io.BytesIO()
        fig.savefig(buf, format=ext[1:], metadata=meta, bbox_inches="tight")
        write_bytes(stem.with_suffix(ext), buf.getvalue())
    return [stem.with_suffix(".pdf"), stem.with_suffix(".png")]


def panel_title(label, setting, run):
    return f"({label}) {setting}\n{run.summary['phase']}"


def accuracy_curves(ax, run, *, subsets=False, plateau=True, style="-", legend=True):
    """Train (whole noisy training set) and test accuracy in % vs step; optionally the subsets."""
    c = run.curves
    step = c["step"]
    ax.plot(step, 100 * c["train_acc"], style, color=TRAIN_COLOR, label="train")
    ax.plot(step, 100 * c["test_acc"], style, color=TEST_COLOR, label="test")
    if subsets and np.isfinite(c["corrupted_acc"]).any():
        ax.plot(step, 100 * c["corrupted_acc"], "--", color=CORRUPTED_COLOR, label="corrupted train")
        ax.plot(step, 100 * c["uncorrupted_acc"], "--", color=UNCORRUPTED_COLOR, label="uncorrupted train")
    xi, p = run.spec["corruption"], run.spec["p"]
    if plateau and xi > 0:
        ax.axhline(100 * (1 - xi + xi / p), color="k", ls=":", lw=1, label=r"$100(1-\xi+\xi/p)$")
    ax.set_xlabel("optimization steps")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(-3, 103)
    ax.set_xlim(0, step[-1])
    if legend:
        ax.legend(loc="lower right", frameon=False)
    return ax


def norm_curves(ax, run):
    c = run.curves
    for key, name in (("norm_u", "U"), ("norm_v", "V"), ("norm_w", "W")):
        ax.plot(c["step"], c[key], color=NORM_COLORS[key], label=rf"$\|{name}\|_F$")
    ax.set_xlabel("optimization steps")
    ax.set_ylabel("Frobenius norm")
    ax.set_xlim(0, c["step"][-1])
    ax.legend(frameon=False)
    return ax


def ipr_histogram(ax, values, *, bins=20, label=None, color=None, alpha=0.6, range_=(0.0, 1.0)):
    edges = bins if not np.isscalar(bins) else np.linspace(*range_, int(bins) + 1)
    ax.hist(np.asarray(values), bins=edges, alpha=alpha, color=color, label=label)
    ax.set_xlabel(r"IPR$_k$ (one-sided rFFT)")
    ax.set_ylabel("number of neurons")
    return ax


PANEL_LABELS = {
    "weight_decay": "weight decay",
    "dropout": "dropout",
    "batch_size": "batch size",
    "lr": "lr",
    "width": "width",
    "seed": "seed",
}


def _grid_extent(grid):
    a, x = grid["train_fractions"], grid["corruptions"]
    da = (a[1] - a[0]) / 2 if len(a) > 1 else 0.025
    dx = (x[1] - x[0]) / 2 if len(x) > 1 else 0.025
    return (a[0] - da, a[-1] + da, x[0] - dx, x[-1] + dx)


def panel_name(grid, i):
    value = grid["panels"][i]
    value = int(value) if float(value).is_integer() else value
    return f"{PANEL_LABELS.get(grid['panel_key'], grid['panel_key'])} {value}"


def model_text(spec: dict) -> str:
    """The dataset and the model of a resolved spec in a few words, e.g. ``"addition mod 59, 2-layer
    quadratic MLP, N = 256, MSE"`` or ``"UCI 8x8 digits (pool 500), 4-layer ReLU MLP, N = 128, CE"``."""
    from ..data import dataset_title

    data = dataset_title(spec) + (f" (pool {spec['train_pool']})" if "train_pool" in spec else "")
    act = "ReLU" if spec["activation"] == "relu" else spec["activation"]
    model = spec.get("model", "mlp2")
    if model == "transformer":
        arch = f"{spec['layers']}-block Transformer, d = {spec['d_model']}, {spec['heads']} heads"
    elif model == "deep_mlp":
        arch = f"{spec['depth']}-layer {act} MLP, N = {spec['width']}" + (
            ", lazier init" if spec["init"] == "lazy" else ""
        )
    else:
        arch = f"2-layer {act} MLP, N = {spec['width']}"
    norm = {"batchnorm": ", BatchNorm", "layernorm": ", LayerNorm"}.get(spec["norm"], "")
    return f"{data}, {arch}{norm}, {spec['loss'].upper()}"


def grid_text(grid) -> str:
    """:func:`model_text` of a merged grid, with its optimizer settings unless its panels vary them, and
    how it measured accuracy where that is not eval mode."""
    import json

    spec = json.loads(grid["spec"])
    text = model_text(spec)
    if grid["panel_key"] not in ("batch_size", "lr"):
        text += f", lr {spec['lr']:g}, {spec['steps']} steps"
    if spec.get("eval_dropout"):
        text += ", accuracy with dropout on"
    return text


def phase_diagram(ax, grid, i, *, title=None):
    """Categorical phase map of panel ``i``: x = alpha (train fraction), y = xi (corruption)."""
    from matplotlib.colors import BoundaryNorm, ListedColormap

    cmap = ListedColormap([PHASE_COLORS[p] for p in PHASES])
    norm = BoundaryNorm(np.arange(-0.5, len(PHASES)), cmap.N)
    codes = np.asarray(grid["phase"][i], dtype=float)
    ax.imshow(
        codes, origin="lower", aspect="auto", cmap=cmap, norm=norm, extent=_grid_extent(grid), interpolation="nearest"
    )
    ax.set_xlabel(r"train fraction $\alpha$")
    ax.set_ylabel(r"corruption $\xi$")
    ax.set_title(title or panel_name(grid, i))
    ax.grid(False)
    return ax


def accuracy_map(ax, grid, key, i, *, title=None):
    """Heat map of a final accuracy (in %) of panel ``i``."""
    im = ax.imshow(
        100 * np.asarray(grid[key][i]),
        origin="lower",
        aspect="auto",
        cmap="viridis",
        vmin=0,
        vmax=100,
        extent=_grid_extent(grid),
        interpolation="nearest",
    )
    ax.set_xlabel(r"train fraction $\alpha$")
    ax.set_ylabel(r"corruption $\xi$")
    ax.set_title(title or panel_name(grid, i))
    ax.grid(False)
    return im


def phase_legend(fig, *, present=None, **kw):
    from matplotlib.patches import Patch

    names = [p for p in PHASES if present is None or p in present]
    handles = [Patch(facecolor=PHASE_COLORS[p], label=p) for p in names]
    kw = {"loc": "lower center", "ncol": len(handles), "frameon": False, "bbox_to_anchor": (0.5, -0.02), **kw}
    return fig.legend(handles=handles, **kw)
