# Validation, paths and target lists, computed from the config alone (no torch import: `snakemake -n`
# of the paper preset takes seconds). Every helper function of the workflow lives here; no rules.
import functools
import json
import math
import os
import shlex
import sys
from pathlib import Path

import yaml

ROOT = Path(workflow.basedir)
SRC = ROOT / "src"
sys.path.insert(0, str(SRC))
# Jobs (and the notebook kernels they start) import the library from this checkout, also where it is not
# installed; SLURM jobs inherit the variable (sbatch exports the submitting environment by default).
os.environ.update(PYTHONPATH=os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")])))

from grokking import codedeps, numerics  # noqa: E402
from grokking.data import IMAGE_SETS  # noqa: E402
from grokking.config import (  # noqa: E402
    ConfigError,
    built_runs,
    enabled_figures,
    figure_grids,
    figure_runs,
    replicate_config,
    replicate_suffix,
    split_replicate,
    validate,
)
from grokking.experiments.gridplan import (  # noqa: E402
    chunk_work,
    chunks_of_grid,
    job_resources as plan_resources,
    plan,
    width_sweep_jobs,
    work_estimate,
)
from grokking.runspec import rehearsal_note, resolve_run  # noqa: E402
from grokking.layout import RUN_FILES, TABLE_FILES, Layout  # noqa: E402
from grokking.report import figures as figure_catalog  # noqa: E402

try:
    validate(config)
except ConfigError as err:
    raise WorkflowError(str(err)) from None

PRESET = config["preset"]
REHEARSAL_NOTE = rehearsal_note(config)  # "" outside a rehearsal (make rehearse)
L = Layout.from_config(config)
# Every job runs with the config's numeric profile (src/grokking/numerics.py), a fixed thread count and
# the config's deterministic mode: set here, before any job starts, so that notebooks and SLURM jobs (which
# inherit it) run with it too.
JOB_THREADS = config["resources"]["threads"]
os.environ.update(numerics.job_environment(config))
PYTHON = sys.executable
RUNS = sorted(config["runs"])
GRIDS = sorted(config.get("grids", {}))
# The robustness study's replicates (replicate 0 is the build): the same runs, grids and width sweep with
# every model seed shifted, named with the replicate's suffix (`r1_wd0~rep1`). A replicate's grids are
# planned only when one of its jobs is asked for, so that the dry run of a build stays fast.
REPLICATES = {k: replicate_config(config, k) for k in range(config["robustness"]["replicates"])}
SUFFIXES = {replicate_suffix(k): k for k in REPLICATES}
REPLICATE = "|".join(SUFFIXES)  # wildcard constraint: '' (the build) or a replicate's suffix


@functools.cache
def replicate_plan(k):
    """Replicate k's grid chunks, the chunks of each grid and its width-sweep jobs, by their own names."""
    rc = REPLICATES[k]
    chunks = plan(rc)
    return {
        "chunks": chunks,
        "grids": {g: chunks_of_grid(rc, g, chunks) for g in GRIDS},
        "widths": width_sweep_jobs(rc),
    }


def chunk(name):
    """A grid chunk's description: stack settings, cells, cells to keep (`<chunk>~rep<k>`: replicate k's)."""
    base, k = split_replicate(name)
    return replicate_plan(k)["chunks"][base]


def grid_chunks(grid):
    base, k = split_replicate(grid)
    return [c + replicate_suffix(k) for c in replicate_plan(k)["grids"][base]]


def width_job(name):
    """A width-sweep job: resolved spec and seeds (`<job>~rep<k>`: replicate k's)."""
    base, k = split_replicate(name)
    return replicate_plan(k)["widths"][base]


def sweep_jobs(replicate):
    return [j + replicate for j in sorted(replicate_plan(SUFFIXES[replicate])["widths"])]


def named(names, empty):
    """A wildcard constraint matching exactly ``names`` (the build's), or a name with a replicate's suffix
    (its base is looked up when the job is planned: a replicate's chunks have names of their own)."""
    replicates = "|".join(s for s in SUFFIXES if s)
    return f"{one_of(names, empty)}|[^/]+(?:{replicates or '~rep0'})"


CHUNKS = replicate_plan(0)["chunks"]
WIDTH_JOBS = replicate_plan(0)["widths"]
FIGS = sorted(config["figures"])
WORKFLOW_DIR = ROOT / "workflow"  # the figure notebooks and their captions (the library is given it)
CAPTIONS = figure_catalog.captions(WORKFLOW_DIR, config)


def code(command=None, notebook=None):
    """The library files that a job executes: the import closure of its `python -m grokking` command or
    its notebook. Editing any of them reruns the job, editing anything else does not (codedeps.py)."""
    return codedeps.code_files(command=command, notebook=notebook, root=ROOT)


def checkpoint_args(rule, name):
    """A training job's checkpoint folder and interval (config `checkpoint.every_minutes`; 0: none)."""
    minutes = config["checkpoint"]["every_minutes"]
    if not minutes:
        return ""
    return f"--checkpoint {L.checkpoint(rule, name)} --checkpoint-every {60 * minutes:g}"


# --- the training jobs (train_run, train_grid_chunk, train_width_job, prune_run) -----------------------
# Each runs `python -m grokking <command>` on the config's device, threads and resources, and writes its
# log and its own timing (the columns of a benchmark file) under the rule's name; a job that trains also
# takes the progress flag and the checkpoint options. Written once here, used by the four rules.


def job_size(w):
    """(shared settings, number of models) of the training job that wildcards ``w`` name."""
    if hasattr(w, "chunk"):
        c = chunk(w.chunk)
        return c["stack"], len(c["cells"])
    if hasattr(w, "job"):
        j = width_job(w.job)
        return j["spec"], len(j["seeds"])
    return run_spec(w.run), 1


def job_resources(train=True, prune=False):
    """A training or pruning job's resources: the config's GPU count, and memory (MB) and time (minutes) from its
    size (gridplan.job_resources; to be calibrated against a rehearsal's cost plan); a retried job asks for `attempt`
    times as much (a job killed for memory or time gets more on its retry)."""

    def estimate(key):
        return lambda w, attempt: attempt * plan_resources(*job_size(w), config["resources"], train, prune)[key]

    return {"gpu": config["resources"]["gpu"], "mem_mb": estimate("mem_mb"), "runtime": estimate("runtime")}


def job_log(rule, name):
    """A training job's log and its timing file (``--timing``)."""
    return {"out": L.log(rule, name), "timing": L.benchmark(rule, name)}


def job_params(rule=None, wildcard=None, **own):
    """A training job's params: the interpreter, its threads and device, and the rule's ``own``; for a job
    that trains (``rule`` and the ``wildcard`` that names the job given) its progress flag and checkpoint."""
    params = dict(python=PYTHON, threads=JOB_THREADS, **own, device=config["device"])
    if rule:
        params["progress"] = "" if config["progress"] else "--no-progress"
        params["checkpoint"] = lambda w: checkpoint_args(rule, getattr(w, wildcard))
    return params


def job_shell(command, files, options="", trains=True):
    """The shell command of a training job: ``python -m grokking <command> <files>`` on the job's device and
    threads, with its ``options``, (``trains``) progress and checkpoint options, timing and log."""
    parts = ["{params.python} -m grokking", command, files, "--device {params.device} --threads {params.threads}"]
    parts += [options, "{params.progress} {params.checkpoint}" if trains else ""]
    return " ".join(p for p in parts if p) + " --timing {log.timing} > {log.out} 2>&1"


def one_of(names, empty):
    """A wildcard constraint matching exactly ``names``."""
    return "|".join(names) if names else empty


def run_spec(name):
    """A named run's resolved spec; ``<run>~rep<k>`` is replicate k's (seeds shifted)."""
    base, k = split_replicate(name)
    return resolve_run(REPLICATES[k], base)


# Every training job waits for its dataset, and Snakemake does not pass a waiting job's priority on to
# the jobs it waits for: the (second-long) dataset jobs rank above every training job, or the inputs of
# the largest chunks are made only once the smaller jobs have run out.
DATASET_PRIORITY = 1 + math.ceil(
    max(
        [chunk_work(c) for c in CHUNKS.values()]
        + [work_estimate(run_spec(r)) for r in RUNS]
        + [work_estimate(j["spec"], len(j["seeds"])) for j in WIDTH_JOBS.values()],
        default=0,
    )
)


def image_dataset_args(name):
    """The image-dataset command's options from data.<name> (the MNIST directory, when set, and download)."""
    d = config["data"][name]
    args = f"--train-pool {d['train_pool']} --pool-seed {d['pool_seed']} --label-seed {config['data']['label_seed']}"
    if name == "mnist" and config["rehearsal"]:
        args += f" --dir {shlex.quote(str(Path(L.mnist_standin()).parent))} --no-download --standin"
    elif name == "mnist":
        args += f" --dir {shlex.quote(str(d['dir']))}" if d["dir"] else ""
        args += "" if d["download"] else " --no-download"
    return args


def image_dataset_inputs(w):
    """A rehearsal's MNIST reads the stand-in files (rule mnist_standin)."""
    return [L.mnist_standin()] if w.name == "mnist" and config["rehearsal"] else []


def run_dataset(w):
    return L.dataset_of(run_spec(w.run))


def grid_config(grid):
    """The part of the config that defines one grid (so unrelated edits do not rerun its merge); for
    ``<grid>~rep<k>`` that of replicate k."""
    base, k = split_replicate(grid)
    rc = REPLICATES[k]
    keys = ("run_defaults", "model_defaults", "data", "ipr", "phases", "grid_defaults", "rehearsal")
    sub = {k: rc.get(k) for k in keys}
    sub["grids"] = {base: rc["grids"][base]}
    return sub


def active_claims():
    """Claims whose inputs this preset builds: grids of enabled figures, pruning of enabled pruning figures."""
    from grokking.report.claims import CLAIMS

    figs = enabled_figures(config)
    grids = {g for f in figs for g in figure_grids(config, f).values()}
    pruned = {r for f in figs if config["figures"][f].get("pruning") for r in figure_runs(config, f).values()}
    widths = any(config["figures"][f].get("width_sweep") for f in figs)
    return [
        c
        for c in CLAIMS
        if set(c.grids) <= grids
        and set(c.pruning) <= pruned
        and set(c.runs) <= set(built_runs(config))
        and (widths or not c.width_sweep)
    ]


def studied_claims():
    """The claims of the robustness study: config `robustness.claims` among the active ones (default: all)."""
    chosen = config["robustness"].get("claims")
    return [c for c in active_claims() if chosen is None or c.id in chosen]


def claim_inputs(w, replicate="", claims=None):
    """The results that ``claims`` (default: the active ones) read: the build's, or a robustness replicate's
    (its name suffix)."""
    claims = active_claims() if claims is None else claims
    runs = sorted({r + replicate for c in claims for r in c.runs})
    inputs = [f for r in runs for f in L.run_files(r)]
    inputs += sorted({L.dataset_of(run_spec(r)) for r in runs})
    inputs += sorted({L.grid(g + replicate) for c in claims for g in c.grids})
    inputs += sorted({L.pruning(r + replicate) for c in claims for r in c.pruning})
    if any(c.width_sweep for c in claims):
        inputs.append(L.width_sweep(".npz", replicate))
    return inputs


def robustness_study(w):
    """The robustness study, once made (`snakemake robustness`): the claims report then gives each claim's
    noise and seed count, and is remade when the study is."""
    return [L.robustness()] if os.path.exists(L.robustness()) else []


def figure_notebook(w):
    return figure_catalog.notebook_path(config, w.fig, WORKFLOW_DIR)


def figure_inputs(w):
    return figure_catalog.result_files(config, w.fig, L)


def figure_code(w):
    return code(notebook=figure_notebook(w))


def figure_parameters(w):
    params = figure_catalog.notebook_parameters(config, w.fig, L, WORKFLOW_DIR)
    return yaml.safe_dump(params, default_flow_style=True, width=10**6).strip()


def build_targets():
    """Everything a build of the preset makes: runs, tables, the claims report, figures, grid tables."""
    targets = [L.run_file(r, "summary.json") for r in built_runs(config)] + [L.table(name) for name in TABLE_FILES]
    targets += [L.claims_json(), L.claims_md(), L.explorer()]
    for fig in enabled_figures(config):
        targets += L.figure_files(fig, config["figures"][fig]["slug"])
        targets += [L.grid(g, ".csv") for g in sorted(set(figure_grids(config, fig).values()))]
    return targets


# A rehearsal's GPU estimate: the FLOP rate measured for Fig 3 on an H100 (benchmarks/README.md)
GPU_RATE_RECORD = "benchmarks/records/bench_gpu_grid-h100-fig03.json"


def all_targets():
    """The build; under `claims.strict` the verdict check that runs once everything else is made; in a
    rehearsal (make rehearse) the cost plan."""
    targets = build_targets() + ([L.claims_verdict()] if config["claims"].get("strict") else [])
    return targets + ([L.cost_plan(ext) for ext in (".csv", ".md", ".json")] if config["rehearsal"] else [])


def print_claims_summary():
    """The claims' verdicts as the build's last lines (nothing when this build made no claims report)."""
    path = Path(L.claims_json())
    if path.exists():
        from grokking.report.verdicts import summary_text

        print(summary_text(json.loads(path.read_text()), L.claims_md()), file=sys.stderr)
