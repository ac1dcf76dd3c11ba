from grokking.gridplan import width_sweep_jobs, work_estimate

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


WIDTH_JOBS = width_sweep_jobs(config)
WIDTH_SWEEP = f"{RES}/analysis/width_sweep"


rule train_width_job:
    """Fig 32: the seeds of one width trained as one stacked model, each pruned lowest-IPR first."""
    input:
        data=lambda w: dataset_path(WIDTH_JOBS[w.job]["spec"]),
        code=PRUNE_CODE + code_files("gridplan", "widths"),
    output:
        f"{WIDTH_SWEEP}/jobs/{{job}}.npz",
    log:
        f"{RES}/logs/train_width_job/{{job}}.log",
    benchmark:
        f"{RES}/benchmarks/train_width_job/{{job}}.tsv"
    wildcard_constraints:
        job="|".join(WIDTH_JOBS) if WIDTH_JOBS else "no_width_jobs",
    params:
        job=lambda w: json.dumps(WIDTH_JOBS[w.job], sort_keys=True),
        device=config["device"],
        progress="" if config["progress"] else "--no-progress",
    threads: config["resources"]["threads"]
    priority: lambda w: work_estimate(WIDTH_JOBS[w.job]["spec"], len(WIDTH_JOBS[w.job]["seeds"]))
    resources:
        gpu=config["resources"]["gpu"],
        mem_mb=config["resources"]["mem_mb"],
        runtime=config["resources"]["runtime"],
    shell:
        "{PYTHON} -m grokking width-job --job {params.job:q} --data {input.data} --out {output} "
        "--device {params.device} --threads {threads} --name {wildcards.job} {params.progress} > {log} 2>&1"


rule merge_width_sweep:
    """Fig 32 summary: prunable and required neurons per (width, seed) under the retention criterion."""
    input:
        jobs=expand(f"{WIDTH_SWEEP}/jobs/{{job}}.npz", job=sorted(WIDTH_JOBS)),
        code=code_files("widths", "results"),
    output:
        npz=f"{WIDTH_SWEEP}.npz",
        csv=f"{WIDTH_SWEEP}.csv",
    log:
        f"{RES}/logs/merge_width_sweep.log",
    params:
        retention=json.dumps((config.get("width_sweep") or {}).get("retention", {}), sort_keys=True),
    shell:
        "{PYTHON} -m grokking merge-width-sweep --jobs {input.jobs} --retention {params.retention:q} "
        "--out {output.npz} --csv {output.csv} > {log} 2>&1"


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
    widths = any(config["figures"][f].get("width_sweep") for f in figs)
    return [c for c in CLAIMS
            if set(c.grids) <= grids and set(c.pruning) <= pruned and set(c.runs) <= set(RUNS)
            and (widths or not c.width_sweep)]


def claim_inputs(w):
    claims = active_claims()
    runs = sorted({r for c in claims for r in c.runs})
    inputs = [f"{run_dir(r)}/{f}" for r in runs for f in RUN_FILES]
    inputs += sorted({dataset_path(run_spec(r)) for r in runs})
    inputs += sorted({f"{RES}/grids/{g}.npz" for c in claims for g in c.grids})
    inputs += sorted({pruning_path(r) for c in claims for r in c.pruning})
    if any(c.width_sweep for c in claims):
        inputs.append(f"{WIDTH_SWEEP}.npz")
    return inputs


rule claims:
    """The claims report: each claim of the paper as a measured value against a threshold."""
    input:
        results=claim_inputs,
        code=code_files("__init__", "claims", "results", "phases", "models", "runs", "tasks", "widths"),
    output:
        json=f"{RES}/claims.json",
        md=f"{FIG}/claims.md",
    log:
        f"{RES}/logs/claims.log",
    params:
        active=lambda w: ",".join(c.id for c in active_claims()),
        thresholds=json.dumps(config.get("claims", {}).get("thresholds", {}), sort_keys=True),
        require="--require-all" if config.get("claims", {}).get("require_all") else "",
    shell:
        "{PYTHON} -m grokking claims --results {RES} --preset {PRESET} --active {params.active:q} "
        "--thresholds {params.thresholds:q} --json {output.json} --md {output.md} {params.require} > {log} 2>&1"
