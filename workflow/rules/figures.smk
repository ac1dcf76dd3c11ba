import yaml

CAPTIONS = yaml.safe_load(open(ROOT / "workflow" / "report" / "captions.yaml"))
FIGS = sorted(config["figures"])


def figure_inputs(w):
    runs = sorted(set(figure_runs(config, w.fig).values()))
    grids = figure_grids(config, w.fig)
    inputs = [f"{run_dir(r)}/{f}" for r in runs for f in RUN_FILES]
    inputs += sorted({dataset_path(run_spec(r)) for r in runs})
    inputs += [f"{RES}/grids/{g}{ext}" for g in sorted(set(grids.values())) for ext in (".npz", ".csv")]
    if config["figures"][w.fig].get("pruning"):
        inputs += [pruning_path(r) for r in runs]
    if config["figures"][w.fig].get("width_sweep"):
        inputs += [f"{WIDTH_SWEEP}.npz", f"{WIDTH_SWEEP}.csv"]
    return inputs


def figure_parameters(w):
    entry = config["figures"][w.fig]
    params = {
        "preset": PRESET,
        "figure_id": w.fig,
        "out_stem": figure_stem(w.fig),
        "runs": {panel: run_dir(r) for panel, r in figure_runs(config, w.fig).items()},
        "grids": {panel: f"{RES}/grids/{g}.npz" for panel, g in figure_grids(config, w.fig).items()},
        "data": {panel: dataset_path(run_spec(r)) for panel, r in figure_runs(config, w.fig).items()},
        "pruning": {panel: pruning_path(r) for panel, r in figure_runs(config, w.fig).items()}
        if entry.get("pruning") else {},
        "width_sweep": f"{WIDTH_SWEEP}.npz" if entry.get("width_sweep") else "",
        "phase_rules": config["phases"],
    }
    params.update(entry.get("params", {}))
    return yaml.safe_dump(params, default_flow_style=True, width=10**6).strip()


def figure_notebook(fig):
    entry = config["figures"][fig]
    name = entry.get("notebook") or f"{fig}_{entry['slug']}.ipynb"
    return str(ROOT / "workflow" / "notebooks" / name)


rule figure:
    """Execute a figure notebook with papermill; the notebook only loads results and plots."""
    input:
        notebook=lambda w: figure_notebook(w.fig),
        results=figure_inputs,
        code=FIGURE_CODE,
    output:
        pdf=f"{FIG}/{{fig}}_{{slug}}.pdf",
        png=report(
            f"{FIG}/{{fig}}_{{slug}}.png",
            caption="../report/figure.rst",
            category="Figures",
            labels=lambda w: {"figure": w.fig, "name": w.slug},
        ),
        notebook=f"{RES}/notebooks/{{fig}}_{{slug}}.ipynb",
    log:
        f"{RES}/logs/figure/{{fig}}_{{slug}}.log",
    wildcard_constraints:
        fig="|".join(FIGS) if FIGS else "no_figures",
        slug="[a-z0-9_]+",
    params:
        yaml=figure_parameters,
        caption=lambda w: CAPTIONS.get(w.fig, ""),
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "MPLBACKEND=Agg {PYTHON} -m papermill {input.notebook:q} {output.notebook:q} -k python3 "
        "--cwd {ROOT:q} -y {params.yaml:q} > {log} 2>&1"
