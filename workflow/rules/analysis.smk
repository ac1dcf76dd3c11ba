PRUNE_CODE = code_files("__init__", "__main__", "cli", "config", "tasks", "models", "train", "metrics",
                        "phases", "runs", "results", "pruning")


rule prune_run:
    """Both IPR-ordered pruning sweeps of a finished run (PAPER.md A9): every pruned count in one pass."""
    input:
        run=lambda w: [f"{run_dir(w.run)}/{f}" for f in RUN_FILES],
        data=lambda w: dataset_path(run_spec(w.run)),
        code=PRUNE_CODE,
    output:
        f"{RES}/analysis/pruning/{{run}}.npz",
    log:
        f"{RES}/logs/prune_run/{{run}}.log",
    benchmark:
        f"{RES}/benchmarks/prune_run/{{run}}.tsv"
    wildcard_constraints:
        run="|".join(RUNS) if RUNS else "no_runs",
    params:
        rundir=lambda w: run_dir(w.run),
        device=config["device"],
    threads: config["resources"]["threads"]
    resources:
        gpu=config["resources"]["gpu"],
        mem_mb=config["resources"]["mem_mb"],
        runtime=config["resources"]["runtime"],
    shell:
        "{PYTHON} -m grokking prune-run --run {params.rundir} --data {input.data} --out {output} "
        "--device {params.device} --threads {threads} > {log} 2>&1"


rule tables:
    """The paper's Tables 1 and 2 (Markdown and LaTeX), Table 2 from the phase rules in use."""
    input:
        code=code_files("__init__", "phases", "tables", "results"),
    output:
        [f"{FIG}/{name}" for name in TABLE_FILES],
    params:
        rules=json.dumps(config["phases"], sort_keys=True),
        outdir=FIG,
    shell:
        "{PYTHON} -m grokking tables --phase-rules {params.rules:q} --out {params.outdir}"


def active_claims():
    """Claims whose inputs this preset builds: grids of enabled figures, pruning of enabled pruning figures."""
    from grokking.claims import CLAIMS

    figs = enabled_figures(config)
    grids = {g for f in figs for g in figure_grids(config, f).values()}
    pruned = {r for f in figs if config["figures"][f].get("pruning") for r in figure_runs(config, f).values()}
    return [c for c in CLAIMS
            if set(c.grids) <= grids and set(c.pruning) <= pruned and set(c.runs) <= set(RUNS)]


def claim_inputs(w):
    claims = active_claims()
    runs = sorted({r for c in claims for r in c.runs})
    inputs = [f"{run_dir(r)}/{f}" for r in runs for f in RUN_FILES]
    inputs += sorted({dataset_path(run_spec(r)) for r in runs})
    inputs += sorted({f"{RES}/grids/{g}.npz" for c in claims for g in c.grids})
    inputs += sorted({pruning_path(r) for c in claims for r in c.pruning})
    return inputs


rule claims:
    """The claims report: each claim of the paper as a measured value against a threshold."""
    input:
        results=claim_inputs,
        code=code_files("__init__", "claims", "results", "phases", "models", "runs", "tasks"),
    output:
        json=f"{RES}/claims.json",
        md=f"{FIG}/claims.md",
    log:
        f"{RES}/logs/claims.log",
    params:
        active=lambda w: ",".join(c.id for c in active_claims()),
        thresholds=json.dumps(config.get("claims", {}).get("thresholds", {}), sort_keys=True),
    shell:
        "{PYTHON} -m grokking claims --results {RES} --preset {PRESET} --active {params.active:q} "
        "--thresholds {params.thresholds:q} --json {output.json} --md {output.md} > {log} 2>&1"
