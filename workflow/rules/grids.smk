# Phase-diagram grids: chunks of cells trained as stacked models, merged per grid.
from grokking.gridplan import chunk_work, chunks_of_grid, plan

CHUNKS = plan(config)
GRIDS = sorted(config.get("grids", {}))
GRID_CHUNKS = {g: chunks_of_grid(config, g, CHUNKS) for g in GRIDS}


def chunk_dataset(w):
    return dataset_path(CHUNKS[w.chunk]["stack"])


def grid_config(grid):
    """The part of the config that defines one grid (so unrelated edits do not rerun its merge)."""
    sub = {k: config[k] for k in ("run_defaults", "data", "ipr", "phases", "grid_defaults")}
    sub["grids"] = {grid: config["grids"][grid]}
    return sub


def chunk_job(w):
    return json.dumps(CHUNKS[w.chunk], sort_keys=True)


rule train_grid_chunk:
    """One chunk of grid cells (same alpha and shared settings) trained as one stacked model."""
    input:
        data=chunk_dataset,
        code=TRAIN_CODE + code_files("gridplan", "grids"),
    output:
        f"{RES}/grids/chunks/{{chunk}}.npz",
    log:
        f"{RES}/logs/train_grid_chunk/{{chunk}}.log",
    benchmark:
        f"{RES}/benchmarks/train_grid_chunk/{{chunk}}.tsv"
    wildcard_constraints:
        chunk="|".join(CHUNKS) if CHUNKS else "no_chunks",
    params:
        job=chunk_job,
        keep=json.dumps(config["grid_defaults"]["keep_weights"]),
        device=config["device"],
        progress="" if config["progress"] else "--no-progress",
    threads: config["resources"]["threads"]
    priority: lambda w: chunk_work(CHUNKS[w.chunk])  # longest first: no long chunk left to run alone at the end
    resources:
        gpu=config["resources"]["gpu"],
        mem_mb=config["resources"]["mem_mb"],
        runtime=config["resources"]["runtime"],
    shell:
        "{PYTHON} -m grokking train-chunk --job {params.job:q} --data {input.data} --out {output} "
        "--keep-weights {params.keep:q} --device {params.device} --threads {threads} --name {wildcards.chunk} "
        "{params.progress} > {log} 2>&1"


rule merge_grid:
    """All chunks of a grid -> grids/{grid}.npz (arrays [panel, xi, alpha]) and a tidy grids/{grid}.csv."""
    input:
        chunks=lambda w: expand(f"{RES}/grids/chunks/{{chunk}}.npz", chunk=GRID_CHUNKS[w.grid]),
        code=code_files("gridplan", "grids", "phases", "results"),
    output:
        npz=f"{RES}/grids/{{grid}}.npz",
        csv=f"{RES}/grids/{{grid}}.csv",
        weights=f"{RES}/grids/{{grid}}_weights.npz",
    log:
        f"{RES}/logs/merge_grid/{{grid}}.log",
    wildcard_constraints:
        grid="|".join(GRIDS) if GRIDS else "no_grids",
    params:
        config=lambda w: json.dumps(grid_config(w.grid), sort_keys=True),
    resources:
        mem_mb=4000,
        runtime=10,
    shell:
        "{PYTHON} -m grokking merge-grid --config-json {params.config:q} --grid {wildcards.grid} "
        "--chunks {input.chunks} --out {output.npz} --csv {output.csv} --weights {output.weights} > {log} 2>&1"
