# Studies (config `studies`): the pilots behind the choices of docs/decisions/, each a named target, and the
# rendering of their tables into those records. Not part of a build: `snakemake studies` (every study of the
# preset that runs on a CPU), `snakemake results/<preset>/studies/NAME.json` (one; a GPU study only so),
# `snakemake decisions` (the records' tables of this preset, from the CPU studies they show).
from grokking.experiments import decisions as decision_blocks
from grokking.experiments import studyplan

try:
    studyplan.check(config)
except ConfigError as err:
    raise WorkflowError(str(err)) from None

STUDIES = studyplan.study_names(config)
CPU_STUDIES = studyplan.study_names(config, gpu=False)
DECISIONS_DIR = ROOT / "docs" / "decisions"


rule study:
    """One study: its trainings (one stacked model per point of `across`), readings and measures."""
    input:
        data=lambda w: studyplan.study_datasets(config, w.study, L),
        code=code("study"),
    output:
        json=L.study("{study}"),
        csv=L.study("{study}", ".csv"),
    log:
        out=L.log("study", "{study}"),
        timing=L.benchmark("study", "{study}"),
    wildcard_constraints:
        study=one_of(STUDIES, "no_studies"),
    threads: JOB_THREADS
    resources:
        gpu=lambda w: 1 if config["studies"][w.study].get("needs_gpu") else config["resources"]["gpu"],
        mem_mb=config["resources"]["mem_mb"],
        runtime=config["resources"]["runtime"],
    params:
        python=PYTHON,
        threads=JOB_THREADS,
        config=lambda w: json.dumps(studyplan.study_config(config, w.study), sort_keys=True),
        device=config["device"],
        progress="" if config["progress"] else "--no-progress",
    shell:
        "{params.python} -m grokking study {wildcards.study} --config-json {params.config:q} "
        "--out {output.json} --csv {output.csv} --device {params.device} --threads {params.threads} "
        "{params.progress} --timing {log.timing} > {log.out} 2>&1"


rule studies:
    """Every study of the preset that runs on a CPU."""
    input:
        [L.study(s) for s in CPU_STUDIES],


rule decisions:
    """The study tables of docs/decisions/ for this preset, rendered from the results (in place); the list
    of blocks and their state goes to results/<preset>/decisions.txt."""
    input:
        # the CPU studies whose tables the records show for this preset (a GPU study's table is rendered
        # from its result where there is one, else it says how to make it)
        studies=[L.study(n) for n in decision_blocks.shown(DECISIONS_DIR, PRESET) if n in CPU_STUDIES],
        code=code("decisions"),
    output:
        L.decisions_rendered(),
    log:
        L.log("decisions"),
    params:
        python=PYTHON,
        docs=DECISIONS_DIR,
        results_dir=lambda w, output: os.path.dirname(os.path.dirname(output[0])),  # results/<preset>/..
        preset=PRESET,
    shell:
        "{params.python} -m grokking decisions render --docs {params.docs} --results-dir {params.results_dir} "
        "--preset {params.preset} --out {output} > {log} 2>&1"
