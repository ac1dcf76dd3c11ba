rule dataset:
    """The shuffled pair universe and its random-label stream; every (alpha, xi) cell is a prefix."""
    input:
        code=code("dataset"),
    output:
        L.dataset("{operation}", "{p}"),
    log:
        L.log("dataset", "{operation}_p{p}"),
    wildcard_constraints:
        operation="add|mul",
        p=r"\d+",
    priority: DATASET_PRIORITY
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        python=PYTHON,
        pair_seed=config["data"]["pair_seed"],
        label_seed=config["data"]["label_seed"],
    shell:
        "{params.python} -m grokking dataset --operation {wildcards.operation} --p {wildcards.p} "
        "--pair-seed {params.pair_seed} --label-seed {params.label_seed} --out {output} > {log} 2>&1"
