"""The results explorer's page: its HTML skeleton, style and script (:mod:`.explorer` fills them in).

The script draws nothing itself: it inflates the grid cells' buffer, fills the selectors, and hands plotly
the figures that :mod:`.explorer` built, a cell's slices of the buffer put into the cell figure's traces.
The view lives in the URL fragment (``#view=grids&grid=wd&panel=1&xi=2&alpha=0``), so every view, cell
included, can be linked to and the browser's back button works.
"""

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>grok-or-not results explorer: @PRESET@</title>
<link rel="icon" href="data:,">
<style>@STYLE@</style>
<script>@PLOTLYJS@</script>
</head>
<body>
<header>
<h1>grok-or-not results explorer: <code>@PRESET@</code> preset</h1>
<p class="note">@NOTE@</p>
<p class="small">Every trained network of this preset's phase diagrams: click a cell to see its training.
Code version <code>@VERSION@</code>. Accuracies are fractions of the training set (whole, corrupted part,
uncorrupted part) and of the test set; a grid cell with several seeds shows their mean curves.</p>
<nav>@NAV@</nav>
<p id="status">Loading…</p>
</header>
<main>
<section id="view-grids" hidden>
<div class="controls">
<label>grid <select id="grid-select"></select></label>
<label>panel <select id="panel-select"></select></label>
</div>
<p id="grid-title" class="small"></p>
<div class="row">
<div id="heatmap" class="plot"></div>
<div id="cell-info"><h3 id="cell-title">Click a cell of the phase diagram</h3><table id="cell-table"></table></div>
</div>
<div id="cell-curves" class="plot"></div>
<p id="cell-ipr-note" class="small"></p>
<div id="cell-ipr" class="plot"></div>
</section>
<section id="view-runs" hidden>
<div class="controls"><label>run <select id="run-select"></select></label></div>
<p id="run-title" class="small"></p>
<div class="row"><div id="run-curves" class="plot"></div><table id="run-table"></table></div>
</section>
<section id="view-pruning" hidden>
<div class="controls"><label>run <select id="pruning-select"></select></label></div>
<p id="pruning-title" class="small"></p>
<div id="pruning-plot" class="plot"></div>
</section>
<section id="view-width" hidden>
<p id="width-title" class="small"></p>
<div id="width-plot" class="plot"></div>
</section>
<section id="view-claims" hidden>
<p class="small">Each claim of the paper measured on this preset (the full report with fragile claims is
<code>claims.html</code> beside this page); the links open the results each claim reads.</p>
@CLAIMS@
</section>
</main>
<script type="application/json" id="explorer-data">@DATA@</script>
<script type="application/octet-stream" id="explorer-cells">@CELLS@</script>
<script>@APP@</script>
</body>
</html>
"""

STYLE = """
body { font-family: system-ui, sans-serif; margin: 0 1.5rem 2rem; color: #222; }
h1 { font-size: 1.4rem; margin: 1rem 0 0.3rem; }
.small { font-size: 0.85rem; color: #555; max-width: 70rem; }
.note { color: #b00; font-weight: bold; }
.note:empty { display: none; }
nav a { margin-right: 1.2rem; text-decoration: none; color: #1f77b4; font-weight: 600; }
nav a.active { color: #222; border-bottom: 2px solid #222; }
.controls { margin: 0.8rem 0; display: flex; gap: 1.5rem; }
.row { display: flex; flex-wrap: wrap; gap: 1.5rem; align-items: flex-start; }
#heatmap { width: 560px; }
#cell-curves, #run-curves { width: min(100%, 900px); }
#cell-ipr { width: 560px; }
#pruning-plot, #width-plot { width: min(100%, 1100px); }
table { border-collapse: collapse; font-size: 0.85rem; }
th, td { border-bottom: 1px solid #ddd; padding: 0.2rem 0.5rem; text-align: left; vertical-align: top; }
table.claims td:nth-child(3), table.claims td:nth-child(4) { max-width: 22rem; }
td.PASS { color: #2ca02c; font-weight: bold; }
td.FAIL { color: #d62728; font-weight: bold; }
td.UNRESOLVED { color: #ff7f0e; font-weight: bold; }
#status:empty { display: none; }
"""

APP_JS = r"""
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const D = JSON.parse($("explorer-data").textContent);
  const VIEWS = ["grids", "runs", "pruning", "width", "claims"];
  let cells = null;

  function fail(err) {
    console.error(err);
    $("status").textContent = "The explorer failed: " + err;
  }

  async function inflate(text) {
    const bin = atob(text.trim());
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate"));
    return new Response(stream).arrayBuffer();
  }

  function view(ref) {
    const Type = ref.dtype === "i4" ? Int32Array : Float32Array;
    return new Type(cells, ref.offset, ref.length);
  }

  function plot(div, fig, data, title) {
    const layout = Object.assign({}, fig.layout, { template: D.template });
    if (title !== undefined) layout.title = { text: title };
    return Plotly.react(div, data || fig.data, layout, D.config);
  }

  function state() { return new URLSearchParams(location.hash.slice(1)); }
  function go(params) { location.hash = new URLSearchParams(params).toString(); }

  function option(value, label) {
    const o = document.createElement("option");
    o.value = value;
    o.textContent = label;
    return o;
  }
  function fill(select, items) { select.replaceChildren(...items.map(([value, label]) => option(value, label))); }

  function table(el, rows) {
    el.replaceChildren(...rows.map(([key, value]) => {
      const tr = document.createElement("tr");
      const th = document.createElement("th");
      const td = document.createElement("td");
      th.textContent = key;
      td.textContent = value;
      tr.append(th, td);
      return tr;
    }));
  }

  const pct = (x) => (Number.isFinite(x) ? (100 * x).toFixed(1) + " %" : "—");
  const num = (x) => (Number.isFinite(x) ? String(Number(x.toPrecision(4))) : "—");
  const figs = (item) => (item.figures.length ? " (" + item.figures.join(", ") + ")" : "");
  const index = (value, n) => { const i = parseInt(value, 10); return i >= 0 && i < n ? i : null; };

  // --- phase diagrams ---------------------------------------------------------------------------
  let panelsOf = null;
  async function showGrids(s) {
    const g = D.grids.find((x) => x.name === s.get("grid")) || D.grids[0];
    const p = index(s.get("panel"), g.panel_names.length) ?? 0;
    const xi = index(s.get("xi"), g.xis.length), a = index(s.get("alpha"), g.alphas.length);
    const chosen = xi !== null && a !== null;
    $("grid-select").value = g.name;
    if (panelsOf !== g.name) {
      fill($("panel-select"), g.panel_names.map((name, i) => [String(i), name]));
      panelsOf = g.name;
    }
    $("panel-select").value = String(p);
    $("grid-title").textContent = g.name + figs(g) + ": " + g.title +
      (g.seeds > 1 ? "; " + g.seeds + " seeds per cell, curves averaged" : "");
    const hm = $("heatmap");
    const fig = g.heatmaps[p];
    const mark = Object.assign({}, fig.data[1], chosen ? { x: [g.alphas[a]], y: [g.xis[xi]] } : { x: [], y: [] });
    await plot(hm, fig, [fig.data[0], mark]);
    hm.dataset.grid = g.name;
    hm.dataset.panel = String(p);
    if (!hm.dataset.bound) {
      hm.on("plotly_click", (ev) => {
        const pt = ev.points.find((q) => q.curveNumber === 0);
        if (!pt) return;
        const [row, col] = pt.pointIndex;
        go({ view: "grids", grid: hm.dataset.grid, panel: hm.dataset.panel, xi: row, alpha: col });
      });
      hm.dataset.bound = "1";
    }
    if (chosen) await showCell(g, p, xi, a);
    else clearCell();
  }

  function clearCell() {
    $("cell-title").textContent = "Click a cell of the phase diagram";
    $("cell-table").replaceChildren();
    Plotly.purge($("cell-curves"));
    Plotly.purge($("cell-ipr"));
    $("cell-ipr-note").textContent = "";
    delete $("cell-curves").dataset.cell;
  }

  async function showCell(g, p, xi, a) {
    const X = g.xis.length, A = g.alphas.length, M = g.metrics.length, T = g.points;
    const F = D.finals.length, Q = D.quantiles.length;
    const c = (p * X + xi) * A + a;
    const steps = Array.from(view(g.steps).subarray((p * A + a) * T, (p * A + a + 1) * T));
    const curves = view(g.curves);
    const data = D.cellFigure.data.map((trace) => {
      const m = g.metrics.indexOf(trace.meta);
      const y = m < 0 ? [] : Array.from(curves.subarray((c * M + m) * T, (c * M + m + 1) * T));
      return Object.assign({}, trace, { x: m < 0 ? [] : steps, y: y });
    });
    const phase = D.phases[view(g.phase)[c]];
    const where = g.name + ", " + g.panel_names[p] + ", α = " + g.alphas[a] + ", ξ = " + g.xis[xi];
    $("cell-title").textContent = where + ": " + phase;
    const f = view(g.finals).subarray(c * F, (c + 1) * F);
    const q = view(g.ipr).subarray(c * Q, (c + 1) * Q);
    const v = (key) => f[D.finals.indexOf(key)];
    const rows = [
      ["phase", phase], ["train accuracy", pct(v("train_acc"))], ["test accuracy", pct(v("test_acc"))],
      ["corrupted train accuracy", pct(v("corrupted_acc"))], ["uncorrupted train accuracy", pct(v("uncorrupted_acc"))],
      ["max train accuracy", pct(v("max_train_acc"))], ["max test accuracy", pct(v("max_test_acc"))],
      ["train loss", num(v("train_loss"))], ["test loss", num(v("test_loss"))],
      ["mean neuron IPR", num(v("ipr_mean"))], ["corrupted training examples", num(v("n_noise"))],
      ["neuron IPR quantiles (" + D.quantiles.join(", ") + "), first seed", Array.from(q, num).join(", ")],
    ];
    const diverged = view(g.diverged)[c];
    if (diverged) rows.push(["diverged seeds", diverged + " of " + g.seeds]);
    table($("cell-table"), rows);
    await plot($("cell-curves"), D.cellFigure, data, where + ": " + phase);
    const key = p + "_" + xi + "_" + a;
    if (g.kept[key]) {
      $("cell-ipr-note").textContent = "The grid stores this cell's model (keep_weights):";
      await plot($("cell-ipr"), g.kept[key]);
    } else {
      Plotly.purge($("cell-ipr"));
      $("cell-ipr-note").textContent = "Per-neuron IPR histograms are stored for the grid's keep_weights cells only.";
    }
    $("cell-curves").dataset.cell = [g.name, p, xi, a].join("/");
  }

  // --- named runs, pruning, width sweep -----------------------------------------------------------
  async function showRun(s) {
    const r = D.runs.find((x) => x.name === s.get("run")) || D.runs[0];
    $("run-select").value = r.name;
    $("run-title").textContent = r.name + figs(r) + ": " + r.title;
    table($("run-table"), r.table);
    await plot($("run-curves"), r.figure);
    $("run-curves").dataset.run = r.name;
  }

  async function showPruning(s) {
    const r = D.pruning.find((x) => x.name === s.get("run")) || D.pruning[0];
    $("pruning-select").value = r.name;
    $("pruning-title").textContent = r.name + figs(r) + ": " + r.title;
    await plot($("pruning-plot"), r.figure);
  }

  async function showWidth() {
    $("width-title").textContent = "Width sweep" + figs(D.width) + "; retention criterion " + D.width.retention;
    await plot($("width-plot"), D.width.figure);
  }

  const SHOW = { grids: showGrids, runs: showRun, pruning: showPruning, width: showWidth, claims: async () => {} };
  const present = (v) =>
    ({ grids: D.grids.length > 0, runs: D.runs.length > 0, pruning: D.pruning.length > 0, width: Boolean(D.width),
       claims: true })[v] === true;

  async function render() {
    const s = state();
    const v = present(s.get("view")) ? s.get("view") : VIEWS.find(present);
    for (const name of VIEWS) $("view-" + name).hidden = name !== v;
    for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.dataset.view === v);
    await SHOW[v](s);
    document.body.dataset.view = v;
  }

  async function main() {
    cells = await inflate($("explorer-cells").textContent);
    const groups = new Map();  // the grids by what their panels vary
    for (const g of D.grids) groups.set(g.panel_label, [...(groups.get(g.panel_label) || []), g]);
    $("grid-select").replaceChildren(...Array.from(groups, ([label, grids]) => {
      const group = document.createElement("optgroup");
      group.label = "panels: " + label;
      group.append(...grids.map((g) => option(g.name, g.name + figs(g))));
      return group;
    }));
    fill($("run-select"), D.runs.map((r) => [r.name, r.name + figs(r)]));
    fill($("pruning-select"), D.pruning.map((r) => [r.name, r.name + figs(r)]));
    $("grid-select").onchange = (e) => go({ view: "grids", grid: e.target.value, panel: 0 });
    $("panel-select").onchange = (e) => {
      const s = state();
      const keep = s.has("xi") ? { xi: s.get("xi"), alpha: s.get("alpha") } : {};
      go(Object.assign({ view: "grids", grid: $("grid-select").value, panel: e.target.value }, keep));
    };
    $("run-select").onchange = (e) => go({ view: "runs", run: e.target.value });
    $("pruning-select").onchange = (e) => go({ view: "pruning", run: e.target.value });
    window.addEventListener("hashchange", () => render().catch(fail));
    await render();
    $("status").textContent = "";
    document.body.dataset.ready = "1";
  }

  main().catch(fail);
})();
"""
