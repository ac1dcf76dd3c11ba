# A workflow of one job that fails: tests/slurm/slurm_cluster_checks.py runs it through profiles/slurm on
# the test cluster and expects Snakemake to exit non-zero once the SLURM job (and its retry) failed.


rule fails:
    output:
        "never.txt",
    shell:
        "echo 'this job fails on purpose' >&2; exit 3"
