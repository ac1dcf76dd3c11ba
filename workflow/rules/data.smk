rule dataset:
    """The shuffled pair universe and its random-label stream; every (alpha, xi) cell is a prefix."""
    output:
        f"{RES}/data/{{operation}}_p{{p}}.npz",
    log:
        f"{RES}/logs/dataset/{{operation}}_p{{p}}.log",
    wildcard_constraints:
        operation="add|mul",
        p=r"\d+",
    params:
        pair_seed=config["data"]["pair_seed"],
        label_seed=config["data"]["label_seed"],
    resources:
        mem_mb=1000,
        runtime=5,
    shell:
        "{PYTHON} -m grokking dataset --operation {wildcards.operation} --p {wildcards.p} "
        "--pair-seed {params.pair_seed} --label-seed {params.label_seed} --out {output} > {log} 2>&1"
