# The results explorer (issue 37): one self-contained HTML page per preset, figures/<preset>/explorer.html, in
# which every cell of every phase diagram opens that network's training curves (src/grokking/report/explorer.py).
from grokking.report import explorer_data

EXPLORER = explorer_data.contents(config)  # what the page shows, each item with the figures that show it


rule explorer:
    """The results explorer: the grids as clickable heat maps, the named runs, pruning, width sweep and claims
    (plotly, embedded: the page opens from disk without a server or network)."""
    input:
        results=explorer_data.input_files(EXPLORER, L),
        claims=L.claims_json(),
        code=code("explorer"),
    output:
        report(
            L.explorer(),
            caption="../report/explorer.rst",
            category="Explorer",
            labels={"page": "results explorer"},
        ),
    log:
        L.log("explorer"),
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        python=PYTHON,
        results=lambda w, input: os.path.dirname(input.claims),  # claims.json lies in results/<preset>/
        contents=json.dumps(EXPLORER),  # in the config's order: the page lists them so
    shell:
        "{params.python} -m grokking explorer --results {params.results:q} --contents {params.contents:q} "
        "--claims {input.claims} --out {output} > {log} 2>&1"
