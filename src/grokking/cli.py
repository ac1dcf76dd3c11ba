"""``python -m grokking <command>``: the entry points the Snakemake rules call."""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time


def _threads(n):
    """A compute job's intra-op thread count (0: torch's default), deterministic mode (config
    ``deterministic``, from the environment) and host allocations (``grokking.hostmemory``); says so where
    the numeric profile asked for cannot hold here (``grokking.numerics``)."""
    import torch

    from .hostmemory import reuse_freed_memory
    from .numerics import apply_deterministic, warn_if_unpinned

    reuse_freed_memory()

    if n:
        torch.set_num_threads(int(n))
    apply_deterministic()
    warn_if_unpinned()


def _checkpoint(a, job):
    """The job's checkpoint (``--checkpoint``), identified by its description and its data file."""
    if not a.checkpoint:
        return None
    from pathlib import Path

    from .engine import Checkpoint, fingerprint

    return Checkpoint(a.checkpoint, fingerprint(job, Path(a.data).read_bytes()), a.checkpoint_every)


def cmd_dataset(a):
    from .data.modular import Universe
    from .results import write_npz

    u = Universe.build(a.operation, a.p, a.pair_seed, a.label_seed)
    write_npz(a.out, **u.to_arrays())
    print(f"dataset {a.operation} p={a.p}: {a.p**2} pairs -> {a.out}", file=sys.stderr)


def cmd_mnist_standin(a):
    from .data.standin import write_standin

    manifest = write_standin(a.out, a.seed)
    print(f"stand-in MNIST: {', '.join(manifest['files'])} -> {a.out}", file=sys.stderr)


def cmd_image_dataset(a):
    from .data.images import build_image_set
    from .data.mnist import ChecksumError, IdxFormatError, MnistUnavailable
    from .results import write_npz

    try:
        images = build_image_set(
            a.name,
            pool=a.train_pool,
            pool_seed=a.pool_seed,
            label_seed=a.label_seed,
            mnist_dir=a.dir,
            download=not a.no_download,
            standin=a.standin,
        )
    except (MnistUnavailable, ChecksumError, IdxFormatError) as err:  # their messages say what to do
        sys.exit(f"error: {err}")
    write_npz(a.out, **images.to_arrays())
    print(
        f"dataset {a.name}: pool {images.pool} of {images.source}, test {len(images.test_labels)} -> {a.out}",
        file=sys.stderr,
    )


def cmd_train_run(a):
    from .experiments.runs import run_and_save

    _threads(a.threads)
    spec = json.loads(a.spec)
    rules = json.loads(a.phase_rules) if a.phase_rules else None
    ckpt = _checkpoint(a, spec)
    s = run_and_save(
        spec, a.data, a.out, device=a.device, phase_rules=rules, progress=not a.no_progress, checkpoint=ckpt
    )
    if ckpt:
        ckpt.clear()
    print(
        f"{spec.get('name')}: train {s['train_acc']:.4f} test {s['test_acc']:.4f} "
        f"corrupted {s['corrupted_acc']:.4f} -> {s['phase']} ({s['seconds_per_step'] * 1e3:.1f} ms/step "
        f"on {s['device']})",
        file=sys.stderr,
    )


def cmd_train_chunk(a):
    from .experiments.grids import train_chunk

    _threads(a.threads)
    job = json.loads(a.job)
    ckpt = _checkpoint(a, job)
    res = train_chunk(job, a.data, a.out, device=a.device, progress=not a.no_progress, desc=a.name, checkpoint=ckpt)
    if ckpt:
        ckpt.clear()
    K = len(job["cells"])
    steps = job["stack"]["steps"]
    print(
        f"{a.name}: {K} cells x {steps} steps in {res.seconds:.1f} s "
        f"({res.seconds / (K * steps) * 1e3:.2f} ms per model-step on {res.device})",
        file=sys.stderr,
    )


def cmd_merge_grid(a):
    import numpy as np

    from .experiments.grids import merge_grid
    from .phases import PHASES

    out = merge_grid(json.loads(a.config_json), a.grid, a.chunks, a.out, a.csv, a.weights)
    counts = np.bincount(out["phase"].ravel(), minlength=len(PHASES))
    print(f"grid {a.grid}: " + ", ".join(f"{PHASES[i]} {n}" for i, n in enumerate(counts)), file=sys.stderr)


def cmd_prune_run(a):
    from .experiments.pruning import prune_saved_run

    _threads(a.threads)
    out = prune_saved_run(a.run, a.data, a.out, device=a.device)
    for d in ("lowest", "highest"):
        print(
            f"{a.run} pruning {d}-IPR first: test acc {out[f'{d}_test_acc'][0]:.3f} -> "
            f"{out[f'{d}_test_acc'][len(out['pruned']) // 2]:.3f} at half the neurons",
            file=sys.stderr,
        )


def cmd_width_job(a):
    import numpy as np

    from .experiments.widths import train_width_job

    _threads(a.threads)
    job = json.loads(a.job)
    ckpt = _checkpoint(a, job)
    out = train_width_job(job, a.data, a.out, device=a.device, progress=not a.no_progress, desc=a.name, checkpoint=ckpt)
    if ckpt:
        ckpt.clear()
    print(
        f"{a.name}: width {int(out['width'])}, seeds {job['seeds'][0]}..{job['seeds'][-1]}: final test acc "
        f"{np.round(out['final_test_acc'], 3).tolist()} ({float(out['seconds']):.1f} s training)",
        file=sys.stderr,
    )


def cmd_merge_width_sweep(a):
    from .experiments.widths import merge_width_sweep

    out = merge_width_sweep(a.jobs, json.loads(a.retention), a.out, a.csv)
    for i, w in enumerate(out["widths"]):
        print(
            f"width {w}: {out['seeds_generalized'][i]}/{out['seeds_total'][i]} seeds generalize, required "
            f"{out['required_mean'][i]:.1f} neurons, prunable {out['prunable_pct_mean'][i]:.1f} %",
            file=sys.stderr,
        )


def cmd_tables(a):
    from pathlib import Path

    from .report.tables import render
    from .results import write_bytes

    for name, text in render(json.loads(a.phase_rules) if a.phase_rules else None, a.note).items():
        write_bytes(Path(a.out) / name, text.encode())


def cmd_claims(a):
    from pathlib import Path

    from .report.claims import CLAIMS, Results, evaluate, to_html, to_markdown
    from .report.verdicts import counts, summary_text
    from .results import write_bytes, write_json

    active = set(a.active.split(",")) if a.active else None
    chosen = [c for c in CLAIMS if active is None or c.id in active]
    study = json.loads(Path(a.robustness).read_text()) if a.robustness else None
    rows = evaluate(
        Results(a.results),
        chosen,
        json.loads(a.thresholds) if a.thresholds else None,
        json.loads(a.known_failures) if a.known_failures else None,
        study["claims"] if study else None,
    )
    skipped = sorted(c.id for c in CLAIMS if c not in chosen)
    doc = {
        "preset": a.preset,
        "passed": sum(r["passed"] for r in rows),
        "total": len(rows),
        "verdicts": counts(rows),
        "robustness": {"file": a.robustness, "seeds": study["seeds"]} if study else None,
        "not_built_in_this_preset": skipped,
        "note": a.note,
        "claims": rows,
    }
    write_json(a.json, doc)
    write_bytes(Path(a.md), to_markdown(rows, a.preset, a.note).encode())
    if a.html:
        write_bytes(Path(a.html), to_html(rows, a.preset, skipped, a.note).encode())
    print(summary_text(doc), file=sys.stderr)


def cmd_explorer(a):
    """The results explorer of a preset (``grokking.report.explorer``): one self-contained HTML page."""
    from .report.explorer import build

    size = build(a.results, json.loads(a.contents), a.claims, a.out)
    print(f"explorer: {size / 2**20:.2f} MiB -> {a.out}", file=sys.stderr)


def cmd_claims_check(a):
    """The claims summary of a finished report; with ``--against``, exit 1 when a claim's value differs from
    another build's; under ``--strict`` exit 1 when a claim's verdict is FAIL (known failures excepted), else
    write ``--out``."""
    from pathlib import Path

    from .report.claims import unexpected_failures
    from .report.verdicts import summary_text
    from .results import write_bytes

    doc = json.loads(Path(a.json).read_text())
    text = summary_text(doc, a.report)
    print(text)
    if a.against:
        _compare_claims(doc, a.against)
    failed = unexpected_failures(doc["claims"])
    if a.strict and failed:
        sys.exit(
            f"claims: {len(failed)} failed ({', '.join(failed)}); strict mode (config claims.strict) fails the "
            "build on a FAIL verdict (claims.known_failures lists the ones a preset cannot show)"
        )
    if a.out:
        write_bytes(Path(a.out), (text + "\n").encode())


def _compare_claims(doc: dict, other: str):
    """Exit 1 naming every claim whose value differs from ``other``'s (a claims.json or a build record)."""
    from pathlib import Path

    from .report.verdicts import claim_values, compare_values

    theirs = claim_values(json.loads(Path(other).read_text()))
    if not theirs:
        sys.exit(f"claims: {other} holds no claim values to compare with")
    ours = claim_values(doc)
    differ = compare_values(ours, theirs)
    if differ:
        sys.exit(f"claims: {len(differ)} of {len(ours)} values differ from {other}:\n  " + "\n  ".join(differ))
    print(f"claims: all {len(ours)} values identical to {other}'s")


def cmd_claim_values(a):
    """One seed of the robustness study: every active claim's value on the build's results (no
    ``--replicate``) or on a replicate's (its name suffix)."""
    from .report.claims import CLAIMS, Results, measure
    from .results import write_json

    active = set(a.active.split(",")) if a.active else None
    thresholds = json.loads(a.thresholds) if a.thresholds else {}
    view = Results(a.results, a.replicate)
    rows = [measure(view, c, thresholds.get(c.id)) for c in CLAIMS if active is None or c.id in active]
    write_json(a.out, {"replicate": a.replicate, "seed_shift": a.seed_shift, "claims": rows})
    print(
        f"claims on {a.replicate or 'the build'}: {sum(r['passed'] for r in rows)} of {len(rows)} hold", file=sys.stderr
    )


def cmd_robustness(a):
    """The robustness study: each claim's values and outcomes over the seeds (the build's first)."""
    from pathlib import Path

    from .report.verdicts import combine
    from .results import write_json

    seeds = [json.loads(Path(p).read_text()) for p in a.values]
    study = combine(seeds)
    write_json(a.out, study)
    claims = study["claims"]
    held = {cid: sum(e["holds"]) for cid, e in claims.items()}
    split = sorted(cid for cid, k in held.items() if 0 < k < len(seeds))
    print(f"robustness: {len(claims)} claims over {len(seeds)} seeds; seeds disagree on {split}", file=sys.stderr)


def cmd_build_record(a):
    """The record of the `make figures` invocation that started at ``--start`` (README, build time)."""
    import time as clock

    from .report.records import build_record
    from .results import write_json

    record = build_record(
        a.results, a.preset, a.start, clock.time(), a.clean, a.cores, a.numerics, " ".join(a.command_words)
    )
    write_json(a.out, record)
    print(f"build record: {record['wall_minutes']} min, {record['jobs_timed']} jobs timed -> {a.out}", file=sys.stderr)


def cmd_records(a):
    """Rewrite the generated blocks (README.md's build-time line, benchmarks/README.md's record tables) from
    benchmarks/records/ (``--check``: exit 1 if any is stale)."""
    from .report.records import keep, stale_blocks, update_doc

    for record in a.add:
        print(f"{record} -> {keep(record, a.records)}", file=sys.stderr)
    if a.check:
        stale = {doc: stale_blocks(doc, a.records) for doc in a.docs}
        for doc, names in stale.items():
            print(f"{doc}: {'stale: ' + ', '.join(names) if names else 'current'}", file=sys.stderr)
        sys.exit(1 if any(stale.values()) else 0)
    for doc in a.docs:
        changed = update_doc(doc, a.records)
        print(f"{doc}: generated blocks {'rewritten' if changed else 'unchanged'}", file=sys.stderr)


def cmd_cost_plan(a):
    from pathlib import Path

    from .layout import Layout
    from .report import calibrate, costplan
    from .report.records import cpu_identity, describe_cpu
    from .results import code_version, write_bytes, write_json

    config = json.loads(a.config_json)
    record = json.loads(Path(a.gpu_record).read_text())
    flops = 1e12 * record["summary"]["useful_tflop_per_second_alpha_0.5"]
    rows = costplan.measure(config, dict(config, rehearsal=None), Layout.from_config(config), flops)
    write_bytes(Path(a.csv), costplan.to_csv(rows).encode())
    cores = os.cpu_count()
    real = dict(config, rehearsal=None)
    fitted, short = calibrate.fit(rows, real), calibrate.shortfalls(rows, real, config["resources"])
    md = costplan.to_markdown(rows, config["preset"], describe_cpu(cpu_identity()), cores, a.gpu_record, a.note)
    md += "\n" + calibrate.to_markdown(fitted, short, len(rows), config["resources"]["estimate"])
    write_bytes(Path(a.md), md.encode())
    layout = Layout.from_config(config)
    rec = costplan.record(rows, layout, a.rehearses, cpu_identity(), cores, code_version())
    write_json(a.json, dict(rec, fitted_estimate=fitted, short_jobs=len(short)))
    print(costplan.headline(rows, cores), file=sys.stderr)


def cmd_notebook(a):
    """Execute a figure notebook (the ``figure`` rule); a failing cell exits 1 with papermill's message."""
    import yaml
    from papermill.exceptions import PapermillExecutionError

    from .report.execute import execute_notebook

    try:
        execute_notebook(a.notebook, a.output, yaml.safe_load(a.parameters) or {}, a.cwd)
    except PapermillExecutionError as err:
        sys.exit(f"error: {a.notebook}: {err}")


def cmd_figure_index(a):
    import yaml

    from .report.figures import figure_index

    with open(a.config or "config/config.yaml") as fh:
        print(figure_index(yaml.safe_load(fh)), end="")


def _study_config(a) -> dict:
    """The config a study command reads: ``--config-json`` (what the rule passes), or ``--config`` files laid
    over ``config.yaml`` beside the first of them, as ``snakemake --configfile`` lays them over it."""
    from pathlib import Path

    import yaml

    from .config import deep_merge, validate

    if a.config_json:
        return json.loads(a.config_json)
    files = [Path(f) for f in a.config or ["config/config.yaml"]]
    base = files[0].parent / "config.yaml"
    config = yaml.safe_load(base.read_text()) if base not in files else {}
    for f in files:
        config = deep_merge(config, yaml.safe_load(f.read_text()) or {})
    return validate(config)


def cmd_study(a):
    """One study of the config (``studies.<name>``): trained, measured and written (JSON and CSV)."""
    from .experiments import studyplan
    from .experiments.specs import ConfigError
    from .experiments.studies import run_study, write_study
    from .layout import Layout

    try:
        config = _study_config(a)
        if a.name not in (config.get("studies") or {}):
            raise ConfigError(f"study {a.name!r} is not defined; defined studies: {studyplan.study_names(config)}")
        studyplan.check(config)
        if a.plan:
            print(studyplan.describe_plan(config, a.name))
            return
        _threads(a.threads)
        layout = Layout.of_results(f"{config['results_dir']}/{config['preset']}")
        doc = run_study(config, a.name, device=a.device, progress=not a.no_progress)
    except ConfigError as err:
        sys.exit(f"error: {err}")
    write_study(doc, a.out or layout.study(a.name), a.csv or layout.study(a.name, ".csv"))
    print(
        f"study {a.name}: {len(doc['rows'])} rows from {sum(t['models'] for t in doc['trainings'])} models in "
        f"{len(doc['trainings'])} trainings, {doc['seconds']:.1f} s of training",
        file=sys.stderr,
    )


def cmd_decisions(a):
    """Render (or ``--check``) the generated study blocks of the decision records."""
    from pathlib import Path

    from .experiments.decisions import render_docs
    from .results import write_bytes

    presets = set(a.preset) if a.preset else None
    report = render_docs(Path(a.docs), Path(a.results_dir), presets=presets, check=a.action == "check")
    text = "\n".join(f"{r['file']}: {r['study']} ({r['preset']}): {r['state']}" for r in report)
    print(text, file=sys.stderr)
    stale = [r for r in report if r["state"] in ("stale", "edited")]
    if a.action == "check" and stale:
        sys.exit(
            f"decisions: {len(stale)} generated block(s) differ from their study; "
            "render them: python -m grokking decisions render"
        )
    if a.out:
        write_bytes(Path(a.out), (text + "\n").encode())


def cmd_bundle(a):
    """Result bundles (README, "Result bundles"): ``pack`` a finished preset's results, ``fetch`` them."""
    from .bundle import BundleError, run_command
    from .config import ConfigError

    try:
        run_command(a)
    except (BundleError, ConfigError) as err:  # their messages say what to do
        sys.exit(f"error: {err}")


def cmd_gpu_check(a):
    """The GPU acceptance check (README, "The GPU acceptance check"): exit 0 when every part passed, 1 when one
    failed (or there is no CUDA device), 2 when one was skipped."""
    from .gpucheck.runner import main as gpu_check

    sys.exit(gpu_check(a))


def _write_timing(path, wall: float):
    """The job's wall time, CPU time and peak memory as a one-row TSV (the columns of Snakemake's
    ``benchmark:`` files), measured by the job itself: Snakemake's benchmark polling costs the job on
    the other core CPU time (benchmarks/README.md)."""
    from .results import write_bytes

    use = resource.getrusage(resource.RUSAGE_SELF)
    cpu = use.ru_utime + use.ru_stime
    hms = time.strftime("%H:%M:%S", time.gmtime(wall))
    text = f"s\th:m:s\tmax_rss\tcpu_time\n{wall:.2f}\t{hms}\t{use.ru_maxrss / 1024:.2f}\t{cpu:.2f}\n"
    write_bytes(path, text.encode())


def _timing_arg(parser):
    parser.add_argument("--timing", default=None, help="write the job's wall/CPU time and peak memory here (TSV)")


def _checkpoint_args(parser):
    parser.add_argument("--checkpoint", default=None, help="checkpoint folder: resume from it, remove it when done")
    parser.add_argument(
        "--checkpoint-every", type=float, default=600.0, help="seconds between checkpoints (0: per sub-stack only)"
    )


def _job_args(parser, job_help=None, name=None):
    """The arguments every compute job takes: data in, npz out, device, threads, timing file (and job, name,
    progress)."""
    if job_help:
        parser.add_argument("--job", required=True, help=job_help)
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=0)
    _timing_arg(parser)
    if name:
        parser.add_argument("--name", default=name)
        parser.add_argument("--no-progress", action="store_true")


def main(argv=None):
    from .data.images import IMAGE_SETS

    start = time.perf_counter()
    ap = argparse.ArgumentParser(prog="python -m grokking", description=__doc__)
    sub = ap.add_subparsers(dest="command", required=True)
    d = sub.add_parser("dataset", help="build the shuffled pair universe and label stream")
    d.add_argument("--operation", required=True, choices=["add", "mul"])
    d.add_argument("--p", type=int, required=True)
    d.add_argument("--pair-seed", type=int, default=420)
    d.add_argument("--label-seed", type=int, default=0)
    d.add_argument("--out", required=True)
    d.set_defaults(func=cmd_dataset)
    ms = sub.add_parser("mnist-standin", help="rehearsal: stand-in IDX files of MNIST's shapes, with a manifest")
    ms.add_argument("--out", required=True, help="directory of the four files")
    ms.add_argument("--seed", type=int, default=0)
    ms.set_defaults(func=cmd_mnist_standin)
    im = sub.add_parser("image-dataset", help="draw the training pool of a digit-image dataset (Fig 16)")
    im.add_argument("--name", required=True, choices=sorted(IMAGE_SETS))
    im.add_argument("--train-pool", type=int, required=True)
    im.add_argument("--pool-seed", type=int, default=0)
    im.add_argument("--label-seed", type=int, default=0)
    im.add_argument("--dir", default=None, help="MNIST's four IDX files (default: the user's cache directory)")
    im.add_argument("--no-download", action="store_true", help="MNIST: fail instead of fetching missing files")
    im.add_argument("--standin", action="store_true", help="MNIST: --dir holds a rehearsal's stand-in files")
    im.add_argument("--out", required=True)
    im.set_defaults(func=cmd_image_dataset)
    t = sub.add_parser("train-run", help="train one named run from its resolved spec")
    t.add_argument("--spec", required=True, help="resolved run spec as JSON")
    t.add_argument("--data", required=True)
    t.add_argument("--out", required=True, help="run directory")
    t.add_argument("--device", default="auto")
    t.add_argument("--threads", type=int, default=0)
    t.add_argument("--phase-rules", default=None, help="phase thresholds as JSON")
    t.add_argument("--no-progress", action="store_true")
    _timing_arg(t)
    _checkpoint_args(t)
    t.set_defaults(func=cmd_train_run)
    c = sub.add_parser("train-chunk", help="train one chunk of grid cells as a stacked model")
    _job_args(c, "chunk description as JSON (stack settings and cells)", "chunk")
    _checkpoint_args(c)
    c.set_defaults(func=cmd_train_chunk)
    m = sub.add_parser("merge-grid", help="merge a grid's chunks into arrays and a tidy CSV")
    m.add_argument("--config-json", required=True)
    m.add_argument("--grid", required=True)
    m.add_argument("--chunks", nargs="+", required=True)
    m.add_argument("--out", required=True)
    m.add_argument("--csv", required=True)
    m.add_argument("--weights", default=None)
    m.set_defaults(func=cmd_merge_grid)
    r = sub.add_parser("prune-run", help="IPR-ordered pruning sweeps of a finished run")
    r.add_argument("--run", required=True, help="run directory")
    _job_args(r)
    r.set_defaults(func=cmd_prune_run)
    wj = sub.add_parser("width-job", help="Fig 32: train the seeds of one width, prune each lowest-IPR first")
    _job_args(wj, "job as JSON (resolved spec and seeds)", "width")
    _checkpoint_args(wj)
    wj.set_defaults(func=cmd_width_job)
    mw = sub.add_parser("merge-width-sweep", help="Fig 32: prunable/required neurons per width")
    mw.add_argument("--jobs", nargs="+", required=True)
    mw.add_argument("--retention", required=True, help="JSON, as config width_sweep.retention")
    mw.add_argument("--out", required=True)
    mw.add_argument("--csv", required=True)
    mw.set_defaults(func=cmd_merge_width_sweep)
    tb = sub.add_parser("tables", help="render Tables 1 and 2 (Markdown, LaTeX)")
    tb.add_argument("--phase-rules", default=None, help="phase thresholds as JSON")
    tb.add_argument("--out", required=True, help="directory")
    tb.add_argument("--note", default="", help="shown under each table's caption (a rehearsal's)")
    tb.set_defaults(func=cmd_tables)
    cl = sub.add_parser("claims", help="evaluate the paper's claims on a preset's results")
    cl.add_argument("--results", required=True, help="results/<preset> directory")
    cl.add_argument("--preset", default="")
    cl.add_argument("--active", default="", help="comma list of claim ids (default: all)")
    cl.add_argument("--thresholds", default=None, help="JSON {claim id: threshold}")
    cl.add_argument("--known-failures", default=None, help="JSON {claim id: why it fails in this preset}")
    cl.add_argument("--json", required=True)
    cl.add_argument("--md", required=True)
    cl.add_argument("--html", default=None, help="also the report as one self-contained HTML page")
    cl.add_argument("--robustness", default=None, help="the robustness study (JSON): noise and seed counts")
    cl.add_argument("--note", default="", help="shown above the report (a rehearsal's)")
    cl.set_defaults(func=cmd_claims)
    ex = sub.add_parser("explorer", help="the results explorer: one self-contained HTML page of a preset's results")
    ex.add_argument("--results", required=True, help="results/<preset> directory")
    ex.add_argument("--contents", required=True, help="JSON: the grids, runs, pruning and width sweep to show")
    ex.add_argument("--claims", required=True, help="results/<preset>/claims.json")
    ex.add_argument("--out", required=True)
    ex.set_defaults(func=cmd_explorer)
    cc = sub.add_parser("claims-check", help="print a claims report's summary; --strict: exit 1 on a FAIL")
    cc.add_argument("--json", required=True, help="results/<preset>/claims.json")
    cc.add_argument("--report", default="", help="where the full report is, for the message")
    cc.add_argument("--strict", action="store_true", help="exit 1 when a claim fails (known failures excepted)")
    cc.add_argument("--out", default=None, help="write the summary here when the check passes")
    cc.add_argument(
        "--against", default=None, help="another build's claims.json or build record: exit 1 if a value differs"
    )
    cc.set_defaults(func=cmd_claims_check)
    cv = sub.add_parser("claim-values", help="robustness study: every claim's value on one seed's results")
    cv.add_argument("--results", required=True, help="results/<preset> directory")
    cv.add_argument("--replicate", default="", help="the replicate's name suffix (default: the build itself)")
    cv.add_argument("--seed-shift", type=int, default=0, help="what the replicate added to every model seed")
    cv.add_argument("--active", default="", help="comma list of claim ids (default: all)")
    cv.add_argument("--thresholds", default=None, help="JSON {claim id: threshold}")
    cv.add_argument("--out", required=True)
    cv.set_defaults(func=cmd_claim_values)
    rb = sub.add_parser("robustness", help="robustness study: combine the seeds' claim values")
    rb.add_argument("--values", nargs="+", required=True, help="claim-values files, the build's first")
    rb.add_argument("--out", required=True)
    rb.set_defaults(func=cmd_robustness)
    st = sub.add_parser("study", help="run one study of the config (studies.<name>) into results/<preset>/studies")
    st.add_argument("name")
    st.add_argument("--config", nargs="+", default=None, help="YAML files laid over config.yaml, as --configfile")
    st.add_argument("--config-json", default=None, help="the study's part of a resolved config, as JSON")
    st.add_argument("--out", default=None, help="the JSON (default results/<preset>/studies/<name>.json)")
    st.add_argument("--csv", default=None, help="the CSV (default beside the JSON)")
    st.add_argument("--device", default="auto")
    st.add_argument("--threads", type=int, default=0)
    st.add_argument("--no-progress", action="store_true")
    st.add_argument(
        "--plan", action="store_true", help="print its trainings and their floating-point work; train nothing"
    )
    _timing_arg(st)
    st.set_defaults(func=cmd_study)
    dc = sub.add_parser("decisions", help="render (or check) the study tables of docs/decisions/")
    dc.add_argument("action", choices=["render", "check"])
    dc.add_argument("--docs", default="docs/decisions")
    dc.add_argument("--results-dir", default="results", help="results/ (each block reads <dir>/<preset>/studies)")
    dc.add_argument("--preset", nargs="+", default=None, help="only the blocks of these presets (default: all)")
    dc.add_argument("--out", default=None, help="write the list of blocks and their state here")
    dc.set_defaults(func=cmd_decisions)
    bu = sub.add_parser("bundle", help="result bundles: pack a finished preset's results, or fetch them (README)")
    bu.add_argument("action", choices=["pack", "fetch"])
    bu.add_argument("source", nargs="?", help="fetch: a bundle file, an http(s):// or file:// URL, or doi:DOI/FILE")
    bu.add_argument("--preset", default=None, help="config/config.yaml with config/<preset>.yaml laid over it")
    bu.add_argument("--configfile", nargs="+", default=[], help="further YAML files laid over it, in order")
    bu.add_argument("--config-json", default=None, help="the resolved config as JSON (what the workflow passes)")
    bu.add_argument("--out", default=None, help="pack: the archive (default results/<preset>/bundle/)")
    bu.add_argument("--sha256", default=None, help="fetch: the archive's SHA-256, checked before it is used")
    bu.set_defaults(func=cmd_bundle)
    br = sub.add_parser("build-record", help="record what a `make figures` invocation cost (wall and job time, CPU)")
    br.add_argument("--results", required=True, help="results/<preset>")
    br.add_argument("--preset", required=True)
    br.add_argument("--start", type=float, required=True, help="epoch seconds when the build started")
    br.add_argument("--clean", type=int, choices=[0, 1], required=True, help="1: it started without results")
    br.add_argument("--cores", type=int, required=True)
    br.add_argument("--numerics", required=True, help="the numeric profile the build ran under")
    br.add_argument("--out", required=True)
    br.add_argument("command_words", nargs="*", help="the command that was timed")
    br.set_defaults(func=cmd_build_record)
    rc = sub.add_parser("records", help="the docs' generated blocks (build time, benchmark tables) from the records")
    rc.add_argument("--docs", nargs="+", default=["README.md", "benchmarks/README.md"], help="documents to render")
    rc.add_argument("--records", default="benchmarks/records")
    rc.add_argument("--check", action="store_true", help="exit 1 when a block differs from the records")
    rc.add_argument("--add", nargs="*", default=[], help="build records to keep in --records first")
    rc.set_defaults(func=cmd_records)
    cp = sub.add_parser("cost-plan", help="a rehearsal's cost plan: per job and figure, extrapolated to the real steps")
    cp.add_argument("--config-json", required=True, help="the rehearsal's whole config")
    cp.add_argument("--gpu-record", required=True, help="benchmark record of Fig 3 on a GPU (its FLOP rate)")
    cp.add_argument("--csv", required=True)
    cp.add_argument("--md", required=True)
    cp.add_argument("--json", required=True, help="its summary as a benchmark record (make record-rehearsal)")
    cp.add_argument("--rehearses", default="paper", help="the preset the rehearsal stands for")
    cp.add_argument("--note", default="")
    cp.set_defaults(func=cmd_cost_plan)
    nb = sub.add_parser("notebook", help="execute a figure notebook with papermill (its kernel on private sockets)")
    nb.add_argument("notebook")
    nb.add_argument("output", help="the executed copy")
    nb.add_argument("--parameters", default="{}", help="the notebook's parameters, as YAML")
    nb.add_argument("--cwd", default=".", help="the folder the notebook runs in")
    nb.set_defaults(func=cmd_notebook)
    fi = sub.add_parser("figure-index", help="print README.md's figure index (Markdown) generated from the config")
    fi.add_argument("--config", default=None, help="workflow config (default: the repository's config/config.yaml)")
    fi.set_defaults(func=cmd_figure_index)
    gc = sub.add_parser("gpu-check", help="the GPU acceptance check: the first thing to run on a GPU (one report)")
    gc.add_argument("--out", default=None, help="report folder (default results/gpu_check, or results/gpu_check_tiny)")
    gc.add_argument("--device", default="cuda", help="cuda or cuda:N; cpu only with --tiny")
    gc.add_argument("--tiny", action="store_true", help="a development run: the smoke preset's sizes, not a GPU check")
    gc.add_argument("--parts", nargs="+", default=list("abcdefg"), choices=list("abcdefg"), help="parts to run")
    gc.add_argument("--repo", default=None, help="the project's checkout (default: the one this package is in)")
    gc.set_defaults(func=cmd_gpu_check)
    a = ap.parse_args(argv)
    a.func(a)
    if getattr(a, "timing", None):
        _write_timing(a.timing, time.perf_counter() - start)


if __name__ == "__main__":
    main()
