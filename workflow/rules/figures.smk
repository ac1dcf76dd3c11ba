rule figure:
    """Execute a figure notebook with papermill (``python -m grokking notebook``: its kernel on private
    sockets, so that figures built side by side cannot collide); the notebook only loads results and plots.
    Its code inputs are the notebook's imports: how it is executed does not change the figure."""
    input:
        notebook=figure_notebook,
        results=figure_inputs,
        code=figure_code,
    output:
        pdf=L.figure_stem("{fig}", "{slug}") + ".pdf",
        png=report(
            L.figure_stem("{fig}", "{slug}") + ".png",
            caption="../report/figure.rst",
            category="Figures",
            labels=lambda w: {"figure": w.fig, "name": w.slug},
        ),
        notebook=L.notebook("{fig}", "{slug}"),
    log:
        L.log("figure", "{fig}_{slug}"),
    wildcard_constraints:
        fig=one_of(FIGS, "no_figures"),
        slug="[a-z0-9_]+",
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        python=PYTHON,
        root=ROOT,
        yaml=figure_parameters,
        caption=lambda w: figure_catalog.rst(CAPTIONS.get(w.fig, "")),
    shell:
        "MPLBACKEND=Agg {params.python} -m grokking notebook {input.notebook:q} {output.notebook:q} "
        "--cwd {params.root:q} --parameters {params.yaml:q} > {log} 2>&1"
