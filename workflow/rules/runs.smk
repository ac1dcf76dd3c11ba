from grokking.gridplan import work_estimate


rule train_run:
    """One named run of config `runs` (K = 1 through the batched engine)."""
    input:
        data=lambda w: dataset_path(run_spec(w.run)),
        code=TRAIN_CODE,
    output:
        **{Path(f).stem + "_" + Path(f).suffix[1:]: f"{RES}/runs/{{run}}/{f}" for f in RUN_FILES},
    log:
        f"{RES}/logs/train_run/{{run}}.log",
    benchmark:
        f"{RES}/benchmarks/train_run/{{run}}.tsv"
    wildcard_constraints:
        run="|".join(RUNS) if RUNS else "no_runs",
    params:
        spec=lambda w: json.dumps(run_spec(w.run), sort_keys=True),
        phase_rules=json.dumps(config["phases"], sort_keys=True),
        outdir=lambda w: run_dir(w.run),
        device=config["device"],
        progress="" if config["progress"] else "--no-progress",
    threads: config["resources"]["threads"]
    priority: lambda w: work_estimate(run_spec(w.run))
    resources:
        gpu=config["resources"]["gpu"],
        mem_mb=config["resources"]["mem_mb"],
        runtime=config["resources"]["runtime"],
    shell:
        "{PYTHON} -m grokking train-run --spec {params.spec:q} --data {input.data} --out {params.outdir} "
        "--device {params.device} --threads {threads} --phase-rules {params.phase_rules:q} {params.progress} "
        "> {log} 2>&1"
