rule train_run:
    """One named run of config `runs` (K = 1 through the batched engine)."""
    input:
        data=run_dataset,
        code=code("train-run"),
    output:
        **{Path(f).stem + "_" + Path(f).suffix[1:]: L.run_file("{run}", f) for f in RUN_FILES},
    log:
        out=L.log("train_run", "{run}"),
        timing=L.benchmark("train_run", "{run}"),
    wildcard_constraints:
        run=named(RUNS, "no_runs"),
    priority: lambda w: work_estimate(run_spec(w.run))
    threads: config["resources"]["threads"]
    resources:
        gpu=config["resources"]["gpu"],
        mem_mb=config["resources"]["mem_mb"],
        runtime=config["resources"]["runtime"],
    params:
        python=PYTHON,
        threads=JOB_THREADS,
        spec=lambda w: json.dumps(run_spec(w.run), sort_keys=True),
        phase_rules=json.dumps(config["phases"], sort_keys=True),
        outdir=lambda w: L.run_dir(w.run),
        device=config["device"],
        progress="" if config["progress"] else "--no-progress",
        checkpoint=lambda w: checkpoint_args("train_run", w.run),
    shell:
        "{params.python} -m grokking train-run --spec {params.spec:q} --data {input.data} --out {params.outdir} "
        "--device {params.device} --threads {params.threads} --phase-rules {params.phase_rules:q} {params.progress} "
        "{params.checkpoint} --timing {log.timing} > {log.out} 2>&1"
