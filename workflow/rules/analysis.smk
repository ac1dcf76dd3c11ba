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
