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


rule image_dataset:
    """Digit images (Fig 16): the training pool drawn once, the test set and the random-label stream.
    MNIST's four files are read from data.mnist.dir, or downloaded there once and checked (SHA-256);
    the offline stand-in comes with scikit-learn. A rehearsal reads stand-in MNIST files instead."""
    input:
        standin=image_dataset_inputs,
        code=code("image-dataset"),
    output:
        L.image_dataset("{name}"),
    log:
        L.log("image_dataset", "{name}"),
    wildcard_constraints:
        name=one_of(IMAGE_SETS, "no_images"),
    priority: DATASET_PRIORITY
    resources:
        mem_mb=2000,
        runtime=15,
    params:
        python=PYTHON,
        args=lambda w: image_dataset_args(w.name),
    shell:
        "{params.python} -m grokking image-dataset --name {wildcards.name} {params.args} --out {output} > {log} 2>&1"


rule mnist_standin:
    """A rehearsal (make rehearse): stand-in IDX files of MNIST's exact shapes, and their manifest."""
    input:
        code=code("mnist-standin"),
    output:
        L.mnist_standin(),
    log:
        L.log("mnist_standin", "mnist"),
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        python=PYTHON,
        dir=lambda w, output: Path(output[0]).parent,
    shell:
        "{params.python} -m grokking mnist-standin --out {params.dir:q} > {log} 2>&1"
