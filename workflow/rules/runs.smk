rule train_run:
    """One named run of config `runs` (K = 1 through the batched engine)."""
    input:
        data=run_dataset,
        code=code("train-run"),
    output:
        **{Path(f).stem + "_" + Path(f).suffix[1:]: L.run_file("{run}", f) for f in RUN_FILES},
    log:
        **job_log("train_run", "{run}"),
    wildcard_constraints:
        run=named(RUNS, "no_runs"),
    priority: lambda w: work_estimate(run_spec(w.run))
    threads: JOB_THREADS
    resources:
        **job_resources(),
    params:
        **job_params(
            "train_run",
            "run",
            spec=lambda w: json.dumps(run_spec(w.run), sort_keys=True),
            phase_rules=json.dumps(config["phases"], sort_keys=True),
            outdir=lambda w: L.run_dir(w.run),
        ),
    shell:
        job_shell(
            "train-run",
            "--spec {params.spec:q} --data {input.data} --out {params.outdir}",
            "--phase-rules {params.phase_rules:q}",
        )
