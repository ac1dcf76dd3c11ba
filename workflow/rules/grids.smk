# Phase-diagram grids: chunks of cells trained as stacked models, merged per grid.


rule train_grid_chunk:
    """One chunk of grid cells (same alpha and shared settings) trained as one stacked model."""
    input:
        data=lambda w: L.dataset_of(chunk(w.chunk)["stack"]),
        code=code("train-chunk"),
    output:
        L.chunk("{chunk}"),
    log:
        **job_log("train_grid_chunk", "{chunk}"),
    wildcard_constraints:
        chunk=named(CHUNKS, "no_chunks"),
    # longest first: no long chunk left to run alone at the end
    priority: lambda w: chunk_work(chunk(w.chunk))
    threads: JOB_THREADS
    resources:
        **job_resources(),
    params:
        **job_params("train_grid_chunk", "chunk", job=lambda w: json.dumps(chunk(w.chunk), sort_keys=True)),
    shell:
        job_shell("train-chunk", "--job {params.job:q} --data {input.data} --out {output}", "--name {wildcards.chunk}")


rule merge_grid:
    """All chunks of a grid -> grids/{grid}.npz (arrays [panel, xi, alpha]) and a tidy grids/{grid}.csv."""
    input:
        chunks=lambda w: [L.chunk(c) for c in grid_chunks(w.grid)],
        code=code("merge-grid"),
    output:
        npz=L.grid("{grid}"),
        csv=L.grid("{grid}", ".csv"),
        weights=L.grid_weights("{grid}"),
    log:
        L.log("merge_grid", "{grid}"),
    wildcard_constraints:
        grid=named(GRIDS, "no_grids"),
    resources:
        mem_mb=4000,
        runtime=10,
    params:
        python=PYTHON,
        config=lambda w: json.dumps(grid_config(w.grid), sort_keys=True),
        grid=lambda w: split_replicate(w.grid)[0],
    shell:
        "{params.python} -m grokking merge-grid --config-json {params.config:q} --grid {params.grid} "
        "--chunks {input.chunks} --out {output.npz} --csv {output.csv} --weights {output.weights} > {log} 2>&1"
