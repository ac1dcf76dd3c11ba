"""The results explorer: one self-contained HTML page per preset (``figures/<preset>/explorer.html``).

Every phase-diagram grid is a heat map in the figures' phase colours (α on x, ξ on y), one panel at a time;
hovering a cell shows its final train and test accuracy and its phase; clicking it shows its coarse curves,
its final values, the quantiles of its per-neuron IPR and, where the grid stores the cell's model, the IPR
histogram at init and at the end. Beside the grids: the named runs' curves, the pruning sweeps, the width
sweep and the claims table, each claim linking to the views of the results it reads.

Drawn by plotly.js, embedded in the page (it opens from disk, with no server and no network). The figures
are built here with plotly's Python API and carried in its typed-array encoding; the grid cells' curves,
final values and IPR quantiles, the bulk of a page, travel as one zlib-compressed buffer of little-endian
float32/int32 arrays (base64) that the page inflates with the browser's ``DecompressionStream`` and slices
per cell, so a cell shows exactly the float32 values of its grid file. The page's script
(:mod:`.explorer_app`) only connects the selectors, clicks and the URL fragment
(``#view=grids&grid=wd&panel=1&xi=2&alpha=0``) to ``Plotly.react``.
"""

from __future__ import annotations

import base64
import html
import json
import math
import re
import zlib
from pathlib import Path

import numpy as np

from ..phases import PHASE_COLORS, PHASES
from . import explorer_data as data
from .explorer_app import APP_JS, PAGE, STYLE

IPR_BINS = np.linspace(0.0, 1.0, 21)
CURVE_STYLE = {  # name, colour key (plotting.py), dash, subplot row
    "train_acc": ("train", "TRAIN_COLOR", "solid", 1),
    "test_acc": ("test", "TEST_COLOR", "solid", 1),
    "corrupted_acc": ("corrupted train", "CORRUPTED_COLOR", "dash", 1),
    "uncorrupted_acc": ("uncorrupted train", "UNCORRUPTED_COLOR", "dash", 1),
    "train_loss": ("train loss", "TRAIN_COLOR", "solid", 2),
    "test_loss": ("test loss", "TEST_COLOR", "solid", 2),
    "ipr_mean": ("mean neuron IPR", None, "solid", 3),
}


def build(results, what: dict, claims_path, out) -> int:
    """Write the explorer of the results under ``results`` (``what``: :func:`.explorer_data.contents`)
    atomically to ``out``; returns its size in bytes."""
    from ..layout import Layout
    from ..results import read_json, write_bytes

    payload = data.read(Layout.of_results(results), what, read_json(claims_path))
    text = page(payload).encode()
    write_bytes(Path(out), text)
    return len(text)


# --- the page --------------------------------------------------------------------------------------
def page(payload: dict) -> str:
    """The explorer's HTML for ``payload`` (:func:`.explorer_data.read`, or ``explorer_size.synthetic``)."""
    import plotly.io as pio
    from plotly.offline import get_plotlyjs

    cells = _Buffer()
    grids = [_grid_view(g, cells) for g in payload["grids"]]
    manifest = {
        "meta": payload["meta"],
        "template": _figure_json(pio.templates["plotly_white"].to_plotly_json()),
        "config": {"displaylogo": False, "responsive": True},
        "phases": list(PHASES),
        "finals": list(data.FINALS),
        "quantiles": list(data.IPR_QUANTILES),
        "cellFigure": _figure_json(curves_figure(list(data.CURVES))),
        "grids": grids,
        "runs": [_run_view(r) for r in payload["runs"]],
        "pruning": [_pruning_view(r) for r in payload["pruning"]],
        "width": _width_view(payload["width_sweep"]) if payload["width_sweep"] else None,
    }
    views = {
        "grids": bool(grids),
        "runs": bool(payload["runs"]),
        "pruning": bool(payload["pruning"]),
        "width": bool(payload["width_sweep"]),
        "claims": True,
    }
    meta = payload["meta"]
    fill = {
        "@PRESET@": html.escape(meta["preset"]),
        "@NOTE@": html.escape(meta["note"]),
        "@VERSION@": html.escape(meta["code_version"]),
        "@NAV@": _nav(views),
        "@CLAIMS@": _claims_table(payload["claims"], grids),
        "@STYLE@": STYLE,
        "@DATA@": _script_json(manifest),
        "@CELLS@": cells.encoded(),
        "@APP@": APP_JS,
        "@PLOTLYJS@": get_plotlyjs(),
    }
    return re.sub(r"@[A-Z]+@", lambda m: fill[m.group(0)], PAGE)  # one pass: no filling is read again


class _Buffer:
    """Arrays appended as little-endian bytes; a reference says where each lies in the inflated buffer."""

    def __init__(self):
        self.parts, self.size = [], 0

    def add(self, array) -> dict:
        a = np.ascontiguousarray(array)
        kind = {"float32": "f4", "int32": "i4"}[a.dtype.name]
        raw = a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()
        self.parts.append(raw)
        self.size += len(raw)
        return {"dtype": kind, "offset": self.size - len(raw), "length": int(a.size)}

    def encoded(self) -> str:
        return base64.b64encode(zlib.compress(b"".join(self.parts), 9)).decode("ascii")


def _figure_json(fig) -> dict:
    """A figure (or template) as plotly.js takes it, numpy arrays in plotly's typed-array encoding, without
    the default template (the page applies one template to every figure)."""
    import plotly.io as pio

    out = json.loads(pio.to_json(fig, validate=False) if hasattr(fig, "to_plotly_json") else _json(fig))
    out.get("layout", {}).pop("template", None)
    return out


def _json(obj) -> str:
    from plotly.io.json import to_json_plotly

    return to_json_plotly(obj)


def _script_json(obj) -> str:
    """JSON that can stand inside a <script> element."""
    text = json.dumps(obj, separators=(",", ":"), allow_nan=False)
    return text.replace("</", "<\\/").replace("<!--", "<\\u0021--")  # both only occur inside JSON strings


def _grid_view(g: dict, cells: _Buffer) -> dict:
    return {
        "name": g["name"],
        "figures": g["figures"],
        "title": g["title"],
        "panel_label": g["panel_label"],
        "panel_names": g["panel_names"],
        "panels": g["panels"],
        "alphas": g["alphas"],
        "xis": g["xis"],
        "seeds": g["seeds"],
        "metrics": g["metrics"],
        "points": int(g["curves"].shape[-1]),
        "heatmaps": [_figure_json(heatmap(g, p)) for p in range(len(g["panels"]))],
        "kept": {key: _figure_json(ipr_histogram(v["init"], v["final"])) for key, v in g["kept"].items()},
        **{key: cells.add(g[key]) for key in ("phase", "diverged", "finals", "curves", "steps", "ipr")},
    }


def _finite(x):
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else x


def _pct(x) -> str:
    x = _finite(x)
    return "—" if x is None else f"{100 * x:.1f} %"


def _num(x) -> str:
    x = _finite(x)
    return "—" if x is None else f"{x:.4g}"


def _text(x) -> str:
    """A claim's value or threshold: a number as :func:`_num`, a phase name as it is."""
    return _num(x) if isinstance(x, int | float) and not isinstance(x, bool) else str(x)


def _finals_table(finals: dict, quantiles: dict) -> list:
    rows = [[label, _pct(finals.get(key))] for key, label in _ACCURACIES]
    rows += [["train loss", _num(finals.get("train_loss"))], ["test loss", _num(finals.get("test_loss"))]]
    rows += [
        ["mean neuron IPR", _num(finals.get("ipr_mean"))],
        ["corrupted training examples", _num(finals.get("n_noise"))],
    ]
    if quantiles:
        qs = ", ".join(_num(quantiles[k]) for k in sorted(quantiles, key=float))
        rows.append([f"neuron IPR quantiles ({', '.join(f'{float(k):g}' for k in sorted(quantiles, key=float))})", qs])
    return rows


_ACCURACIES = (
    ("train_acc", "train accuracy"),
    ("test_acc", "test accuracy"),
    ("corrupted_acc", "corrupted train accuracy"),
    ("uncorrupted_acc", "uncorrupted train accuracy"),
    ("max_train_acc", "max train accuracy"),
    ("max_test_acc", "max test accuracy"),
)


def _run_view(r: dict) -> dict:
    table = [["phase", r["phase"]], *_finals_table(r["finals"], r["ipr_quantiles"])]
    fig = curves_figure(list(r["curves"]), r["steps"], r["curves"], r["name"])
    return {
        "name": r["name"],
        "figures": r["figures"],
        "title": r["title"],
        "table": table,
        "figure": _figure_json(fig),
    }


def _pruning_view(r: dict) -> dict:
    return {"name": r["name"], "figures": r["figures"], "title": r["title"], "figure": _figure_json(pruning_figure(r))}


def _width_view(w: dict) -> dict:
    return {"figures": w["figures"], "retention": str(w["retention"]), "figure": _figure_json(width_figure(w))}


# --- figures -------------------------------------------------------------------------------------
def heatmap(g: dict, p: int):
    """Panel ``p`` of a grid: phases in the figures' colours, hover with final accuracies; a second, empty
    trace marks the selected cell."""
    import plotly.graph_objects as go

    n = len(PHASES)
    scale = [[(i + j) / n, PHASE_COLORS[name]] for i, name in enumerate(PHASES) for j in (0, 1)]
    finals = g["finals"][p]
    acc = np.stack([finals[..., data.FINALS.index(k)] for k in ("train_acc", "test_acc")], axis=-1)
    hover = "α = %{x}, ξ = %{y}<br>train %{customdata[0]:.1%}, test %{customdata[1]:.1%}<br>%{text}<extra></extra>"
    fig = go.Figure(
        go.Heatmap(
            x=g["alphas"],
            y=g["xis"],
            z=g["phase"][p].astype(np.int32),
            zmin=-0.5,
            zmax=n - 0.5,
            colorscale=scale,
            colorbar={"tickvals": list(range(n)), "ticktext": list(PHASES), "title": {"text": "phase"}},
            text=np.asarray(PHASES)[g["phase"][p]].tolist(),
            customdata=acc.astype(np.float32),
            hovertemplate=hover,
            xgap=1,
            ygap=1,
        )
    )
    marker = {"symbol": "square-open", "size": 22, "color": "black", "line": {"width": 3}}
    fig.add_trace(go.Scatter(x=[], y=[], mode="markers", marker=marker, hoverinfo="skip", showlegend=False))
    fig.update_layout(
        title={"text": g["panel_names"][p]},
        xaxis_title="train fraction α",
        yaxis_title="corruption ξ",
        height=440,
        margin={"l": 60, "r": 20, "t": 50, "b": 50},
    )
    return fig


def curves_figure(metrics: list, steps=None, curves=None, title: str = ""):
    """Accuracies, losses and mean IPR against the step, one subplot each (empty without ``steps``: the
    page fills in a grid cell's; each trace's ``meta`` names its curve)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from . import plotting

    fig = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.05, row_heights=[0.5, 0.3, 0.2])
    for key in metrics:
        name, colour, dash, row = CURVE_STYLE[key]
        line = {"color": getattr(plotting, colour) if colour else "#444444", "dash": dash}
        x, y = (steps, curves[key]) if steps is not None else ([], [])
        fig.add_trace(go.Scatter(x=x, y=y, name=name, meta=key, mode="lines+markers", line=line), row=row, col=1)
    fig.update_yaxes(title_text="accuracy", tickformat=".0%", range=[-0.03, 1.03], row=1, col=1)
    fig.update_yaxes(title_text="loss", type="log", row=2, col=1)
    fig.update_yaxes(title_text="mean IPR", row=3, col=1)
    fig.update_xaxes(title_text="optimization step", row=3, col=1)
    fig.update_layout(title={"text": title}, height=560, margin={"l": 70, "r": 20, "t": 50, "b": 50})
    return fig


def ipr_histogram(init, final):
    """A stored model's per-neuron IPR at init and at the end (counts in 20 bins on [0, 1])."""
    import plotly.graph_objects as go

    centers = (IPR_BINS[:-1] + IPR_BINS[1:]) / 2
    fig = go.Figure()
    for name, values in (("at init", init), ("at the end", final)):
        counts = np.histogram(np.asarray(values, dtype=float), bins=IPR_BINS)[0].astype(np.int32)
        fig.add_trace(go.Bar(x=centers.astype(np.float32), y=counts, name=name, opacity=0.6, width=0.05))
    fig.update_layout(
        barmode="overlay",
        title={"text": "per-neuron IPR of the stored model (first seed)"},
        xaxis_title="neuron IPR (one-sided rFFT)",
        yaxis_title="neurons",
        height=320,
        margin={"l": 60, "r": 20, "t": 50, "b": 50},
    )
    return fig


def pruning_figure(r: dict):
    """Both pruning sweeps of a run: accuracies and losses after removing neurons, lowest or highest IPR first."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from . import plotting

    titles = ("lowest IPR first", "highest IPR first", "", "")
    fig = make_subplots(rows=2, cols=2, shared_xaxes=True, subplot_titles=titles, vertical_spacing=0.08)
    for col, order in ((1, "lowest"), (2, "highest")):
        for key, values in r[order].items():
            name, colour, dash, row = CURVE_STYLE[key]
            line = {"color": getattr(plotting, colour), "dash": dash}
            trace = go.Scatter(x=r["pruned"], y=values, name=name, legendgroup=key, showlegend=col == 1, line=line)
            fig.add_trace(trace, row=row, col=col)
    fig.update_yaxes(tickformat=".0%", range=[-0.03, 1.03], row=1)
    fig.update_yaxes(title_text="accuracy", row=1, col=1)
    fig.update_yaxes(title_text="loss", type="log", row=2)
    fig.update_xaxes(title_text="neurons pruned", row=2)
    fig.update_layout(title={"text": r["name"]}, height=560, margin={"l": 70, "r": 20, "t": 70, "b": 50})
    return fig


def width_figure(w: dict):
    """Fig 32: neurons required to keep generalizing and the prunable share against width (mean ± s.e. over
    seeds; each seed a dot)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, subplot_titles=("required neurons", "prunable neurons (%)"))
    widths, row_width = np.asarray(w["widths"], dtype=np.int32), np.asarray(w["row_width"], dtype=np.int32)
    seeds = {
        1: np.asarray(w["row_required"], dtype=np.float32),
        2: (100 * np.asarray(w["row_prunable"], dtype=float) / row_width).astype(np.float32),
    }
    means = {1: ("required_mean", "required_se"), 2: ("prunable_pct_mean", "prunable_pct_se")}
    for col in (1, 2):
        dots = {"size": 5, "color": "#999999"}
        first = col == 1
        fig.add_trace(
            go.Scatter(x=row_width, y=seeds[col], mode="markers", marker=dots, name="seeds", showlegend=first),
            row=1,
            col=col,
        )
        mean, se = (np.asarray(w[k], dtype=np.float32) for k in means[col])
        err = {"type": "data", "array": se}
        trace = go.Scatter(
            x=widths, y=mean, error_y=err, name="mean ± s.e.", line={"color": "#1f77b4"}, showlegend=first
        )
        fig.add_trace(trace, row=1, col=col)
    fig.update_xaxes(title_text="width N", type="log")
    fig.update_layout(height=420, margin={"l": 60, "r": 20, "t": 60, "b": 50})
    return fig


# --- HTML pieces -----------------------------------------------------------------------------------
_VIEW_NAMES = {
    "grids": "Phase diagrams",
    "runs": "Named runs",
    "pruning": "Pruning",
    "width": "Width sweep",
    "claims": "Claims",
}


def _nav(views: dict) -> str:
    return "".join(f'<a href="#view={v}" data-view="{v}">{name}</a>' for v, name in _VIEW_NAMES.items() if views[v])


def _href(**params) -> str:
    return html.escape("#" + "&".join(f"{k}={v}" for k, v in params.items()))


def _claim_links(inputs: dict, grids: list) -> list[str]:
    """Links to the views of what a claim reads (grids at the panel its arguments name, at the stored model
    where the claim reads one; runs; pruning; the width sweep), for those that this page shows."""
    by_name = {g["name"]: g for g in grids}
    links = []
    for name, how, value in inputs.get("grids", []):
        g = by_name.get(name)
        if g is None:
            continue
        P = len(g["panels"])
        if how == "value":
            hits = [i for i, v in enumerate(g["panels"]) if math.isclose(v, float(value), abs_tol=1e-9)]
            p = hits[0] if hits else 0
        else:
            p = int(value) % P
        params = {"view": "grids", "grid": name, "panel": p}
        label = f"{name}: {g['panel_names'][p]}"
        stored = sorted(k for k in g["kept"] if k.startswith(f"{p}_"))
        if how == "index" and stored:
            _, xi, alpha = stored[0].split("_")
            params.update(xi=xi, alpha=alpha)
            label += ", stored model"
        links.append((_href(**params), label))
    links += [(_href(view="runs", run=r), f"run {r}") for r in inputs.get("runs", [])]
    links += [(_href(view="pruning", run=r), f"pruning {r}") for r in inputs.get("pruning", [])]
    if inputs.get("width_sweep"):
        links.append((_href(view="width"), "width sweep"))
    return [f'<a href="{href}">{html.escape(label)}</a>' for href, label in links]


def _claims_table(rows: list, grids: list) -> str:
    head = ("claim", "figure", "what the paper says", "what is measured", "value", "test", "margin", "noise")
    out = ["<table class='claims'><thead><tr>"]
    out += [f"<th>{h}</th>" for h in (*head, "verdict", "evidence")] + ["</tr></thead><tbody>"]
    for r in rows:
        cells = [
            r["id"],
            r.get("figure", ""),
            r.get("claim", ""),
            r.get("metric", ""),
            _text(r.get("value")),
            f"{r.get('op', '')} {_text(r.get('threshold'))}",
            _num(r.get("margin")),
            _num(r.get("noise")),
        ]
        verdict = str(r.get("verdict", ""))
        links = _claim_links(r.get("inputs", {}), grids)
        out.append(
            f"<tr id='claim-{html.escape(r['id'])}'>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells)
        )
        out.append(f"<td class='verdict {html.escape(verdict)}'>{html.escape(verdict)}</td>")
        out.append(f"<td>{' · '.join(links) or '—'}</td></tr>")
    return "".join(out) + "</tbody></table>"
