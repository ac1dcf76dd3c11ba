# Analyses of trained networks (pruning, the Fig 32 width sweep), the tables and the claims report.


rule prune_run:
    """Both IPR-ordered pruning sweeps of a finished run (docs/paper.md §A9): every pruned count in one pass."""
    input:
        run=lambda w: L.run_files(w.run),
        data=run_dataset,
        code=code("prune-run"),
    output:
        L.pruning("{run}"),
    log:
        **job_log("prune_run", "{run}"),
    wildcard_constraints:
        run=named(RUNS, "no_runs"),
    threads: JOB_THREADS
    resources:
        **job_resources(train=False, prune=True),
    params:
        **job_params(rundir=lambda w: L.run_dir(w.run)),
    shell:
        job_shell("prune-run", "--run {params.rundir} --data {input.data} --out {output}", trains=False)


rule train_width_job:
    """Fig 32: the seeds of one width trained as one stacked model, each pruned lowest-IPR first."""
    input:
        data=lambda w: L.dataset_of(width_job(w.job)["spec"]),
        code=code("width-job"),
    output:
        L.width_job("{job}"),
    log:
        **job_log("train_width_job", "{job}"),
    wildcard_constraints:
        job=named(WIDTH_JOBS, "no_width_jobs"),
    priority: lambda w: work_estimate(width_job(w.job)["spec"], len(width_job(w.job)["seeds"]))
    threads: JOB_THREADS
    resources:
        **job_resources(prune=True),
    params:
        **job_params("train_width_job", "job", job=lambda w: json.dumps(width_job(w.job), sort_keys=True)),
    shell:
        job_shell("width-job", "--job {params.job:q} --data {input.data} --out {output}", "--name {wildcards.job}")


rule merge_width_sweep:
    """Fig 32 summary: prunable and required neurons per (width, seed) under the retention criterion."""
    input:
        jobs=lambda w: [L.width_job(job) for job in sweep_jobs(w.replicate)],
        code=code("merge-width-sweep"),
    output:
        npz=L.width_sweep(".npz", "{replicate}"),
        csv=L.width_sweep(".csv", "{replicate}"),
    log:
        L.log("merge_width_sweep", "width_sweep{replicate}"),
    wildcard_constraints:
        replicate=REPLICATE,
    params:
        python=PYTHON,
        retention=json.dumps((config.get("width_sweep") or {}).get("retention", {}), sort_keys=True),
    shell:
        "{params.python} -m grokking merge-width-sweep --jobs {input.jobs} --retention {params.retention:q} "
        "--out {output.npz} --csv {output.csv} > {log} 2>&1"


rule tables:
    """The paper's Tables 1 and 2 (Markdown and LaTeX), Table 2 from the phase rules in use."""
    input:
        code=code("tables"),
    output:
        [L.table(name) for name in TABLE_FILES],
    log:
        L.log("tables"),
    params:
        python=PYTHON,
        rules=json.dumps(config["phases"], sort_keys=True),
        outdir=lambda w, output: os.path.dirname(output[0]),
        note=REHEARSAL_NOTE,
    shell:
        "{params.python} -m grokking tables --phase-rules {params.rules:q} --out {params.outdir} "
        "--note={params.note:q} > {log} 2>&1"


rule claims:
    """The claims report: each claim of the paper as a measured value against a threshold, with its margin
    and, once the robustness study is made, its noise and seed count; its HTML table (beside claims.md)
    goes into `snakemake --report`."""
    input:
        results=claim_inputs,
        study=robustness_study,
        code=code("claims"),
    output:
        json=L.claims_json(),
        md=L.claims_md(),
        html=report(
            L.claims_html(),
            caption="../report/claims.rst",
            category="Claims",
            labels={"table": "claims report"},
        ),
    log:
        L.log("claims"),
    params:
        python=PYTHON,
        results=lambda w, output: os.path.dirname(output.json),  # claims.json lies in results/<preset>/
        preset=PRESET,
        active=lambda w: ",".join(c.id for c in active_claims()),
        thresholds=json.dumps(config.get("claims", {}).get("thresholds", {}), sort_keys=True),
        known=json.dumps(config.get("claims", {}).get("known_failures", {}), sort_keys=True),
        study=lambda w, input: f"--robustness {input.study}" if input.study else "",
        note=REHEARSAL_NOTE,
    shell:
        "{params.python} -m grokking claims --results {params.results} --preset {params.preset} "
        "--active {params.active:q} --thresholds {params.thresholds:q} --known-failures {params.known:q} "
        "--json {output.json} --md {output.md} --html {output.html} {params.study} --note={params.note:q} "
        "> {log} 2>&1"


rule claim_values:
    """The robustness study, one seed: the studied claims' values on the build ('') or on a replicate."""
    input:
        results=lambda w: claim_inputs(w, w.replicate, studied_claims()),
        code=code("claim-values"),
    output:
        L.claim_values("{replicate}"),
    log:
        L.log("claim_values", "values{replicate}"),
    wildcard_constraints:
        replicate=REPLICATE,
    params:
        python=PYTHON,
        results=lambda w, output: os.path.dirname(os.path.dirname(output[0])),  # results/<preset>/robustness/
        active=lambda w: ",".join(c.id for c in studied_claims()),
        thresholds=json.dumps(config.get("claims", {}).get("thresholds", {}), sort_keys=True),
        shift=lambda w: SUFFIXES[w.replicate] * config["robustness"]["seed_stride"],
    shell:
        "{params.python} -m grokking claim-values --results {params.results} --replicate '{wildcards.replicate}' "
        "--seed-shift {params.shift} --active {params.active:q} --thresholds {params.thresholds:q} "
        "--out {output} > {log} 2>&1"


rule robustness:
    """The robustness study (`snakemake robustness`, not part of a build): the claims' runs and grids
    retrained with other model seeds, each claim's values and outcomes over the seeds."""
    input:
        values=[L.claim_values(sfx) for sfx in SUFFIXES],
        code=code("robustness"),
    output:
        L.robustness(),
    log:
        L.log("robustness"),
    params:
        python=PYTHON,
    shell:
        "{params.python} -m grokking robustness --values {input.values} --out {output} > {log} 2>&1"


rule claims_verdict:
    """Regression mode (config `claims.strict`): after every figure, table and report is made, fail when a
    claim's verdict is FAIL and the preset does not list it as a known failure."""
    input:
        claims=L.claims_json(),
        report=L.claims_md(),
        build=build_targets(),
        code=code("claims-check"),
    output:
        L.claims_verdict(),
    log:
        L.log("claims_verdict"),
    params:
        python=PYTHON,
    shell:
        "{params.python} -m grokking claims-check --json {input.claims} --report {input.report} --strict "
        "--out {output} 2>&1 | tee {log}"


rule cost_plan:
    """A rehearsal's cost plan (make rehearse): each training and pruning job's wall time and peak memory,
    extrapolated to the preset's real step counts, per figure and per kind of job."""
    input:
        build=build_targets(),
        gpu_record=GPU_RATE_RECORD,
        code=code("cost-plan"),
    output:
        csv=L.cost_plan(".csv"),
        md=L.cost_plan(".md"),
        json=L.cost_plan(".json"),
    log:
        L.log("cost_plan"),
    params:
        python=PYTHON,
        config=lambda w: json.dumps(config),  # in its own order: the grids' order shapes the chunks
        note=REHEARSAL_NOTE,
    shell:
        "{params.python} -m grokking cost-plan --config-json {params.config:q} --gpu-record {input.gpu_record} "
        "--csv {output.csv} --md {output.md} --json {output.json} --note={params.note:q} > {log} 2>&1"
