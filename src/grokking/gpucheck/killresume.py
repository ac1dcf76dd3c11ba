"""Part e of the GPU acceptance check: a width-10000 job of Fig 32 killed on the device and resumed.

The job is the paper preset's widest width job (40 seeds of width 10000 as one stack, the largest stack of the
preset) with its step count capped to fit the part's budget (from part c's measured rate where it ran). It runs
three times as the rule ``train_width_job`` runs it (``python -m grokking width-job``): once uninterrupted; once
with a checkpoint interval, killed (SIGKILL) as soon as its first checkpoint is on disk; and once more with the
same checkpoint folder, which must resume from it ("resuming after step N" in its log), finish, and give the
uninterrupted run's result: every final and pruned curve, the neuron IPRs and the divergence record. On the CPU
that means bit-identical; on CUDA within :data:`TOLERANCE` (some CUDA kernels are not deterministic).
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import numpy as np

from .common import FAIL, PASS, Context, Outcome, stop

TARGET_S = 10.0  # training seconds of one run on the GPU (each run also prunes its 40 x 10000 neurons)
STEPS = {"default": 200, "min": 20, "max": 3000, "tiny": 3000}
TOLERANCE = {"acc": 0.02, "rel": 0.05}  # on CUDA: accuracies (absolute), losses and IPRs (relative)
RESUMED = re.compile(r"resuming after step (\d+)")
POLL_S = 0.02


def widest_job(config: dict, steps: int) -> tuple[str, dict]:
    """The first job of the widest width of ``config``'s width sweep, trained for ``steps`` steps (its log
    schedule with them, as ``width_spec`` makes it)."""
    from ..experiments.gridplan import width_sweep_jobs

    jobs = width_sweep_jobs(config)
    name = max(jobs, key=lambda n: (int(jobs[n]["spec"]["width"]), -jobs[n]["seeds"][0]))
    points = int(config["width_sweep"]["curve_points"])
    spec = dict(jobs[name]["spec"], steps=int(steps), log_every=max(1, int(steps) // points))
    return name, dict(jobs[name], spec=spec)


def step_count(ctx: Context, name: str, models: int) -> int:
    """Steps for a run of about :data:`TARGET_S` seconds at part c's rate of this job (a default without it)."""
    if ctx.tiny:
        return STEPS["tiny"]
    speed = ctx.earlier.get("speed")
    ms = speed.numbers.get("jobs", {}).get(name) if speed else None
    if not ms:
        return STEPS["default"]
    return int(np.clip(TARGET_S / (ms / 1e3 * models), STEPS["min"], STEPS["max"]))


def compare(reference: dict, resumed: dict, exact: bool) -> dict:
    """Largest difference per array of the two width-job results (NaN where a model diverged in both), and
    whether it is within bounds: equal when ``exact``, else :data:`TOLERANCE`."""
    out = {}
    keys = sorted(k for k in reference if k.startswith(("final_", "pruned_")) or k in ("neuron_ipr", "diverged_at"))
    for key in keys:
        a, b = np.asarray(reference[key], dtype=np.float64), np.asarray(resumed[key], dtype=np.float64)
        if a.shape != b.shape or not np.array_equal(np.isnan(a), np.isnan(b)):
            out[key] = {"max_diff": float("inf"), "ok": False}
            continue
        both = ~np.isnan(a)
        diff = np.abs(a - b)[both]
        if key.endswith("_acc") or key == "diverged_at":
            worst, bound = (float(diff.max()) if diff.size else 0.0), TOLERANCE["acc"]
        else:  # losses, IPRs: relative to the reference's scale
            scale = np.maximum(np.abs(a[both]), 1e-12)
            worst, bound = (float((diff / scale).max()) if diff.size else 0.0), TOLERANCE["rel"]
        ok = worst == 0.0 if exact or key == "diverged_at" else worst <= bound
        out[key] = {"max_diff": worst, "ok": bool(ok)}
    return out


def read(path: Path) -> dict:
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def _command(ctx: Context, name: str, job: dict, data: Path, out: Path) -> list:
    args = [ctx.python, "-m", "grokking", "width-job", "--job", json.dumps(job), "--data", data, "--out", out]
    args += ["--device", ctx.device, "--name", name, "--no-progress"]
    return args + ([] if ctx.gpu else ["--threads", "1"])


def kill_after_first_checkpoint(ctx: Context, args: list, folder: Path, timeout: float) -> tuple[str, float]:
    """Start ``args``, SIGKILL it as soon as its first checkpoint file is on disk; what happened, and when."""
    log = ctx.work / "logs" / "resume_killed.log"
    start = time.monotonic()
    with open(log, "w") as fh:
        proc = subprocess.Popen(
            [str(a) for a in args],
            stdout=fh,
            stderr=subprocess.STDOUT,
            cwd=ctx.repo or None,
            env=ctx.environment(),
            start_new_session=True,
        )
        while time.monotonic() - start < timeout:
            if (folder / "part000.pt").exists():
                stop(proc)
                return "killed", time.monotonic() - start
            if proc.poll() is not None:
                return f"ended (exit {proc.returncode}) before its first checkpoint", time.monotonic() - start
            time.sleep(POLL_S)
        stop(proc)
        return "killed at the part's time limit with no checkpoint", time.monotonic() - start


def run(ctx: Context) -> Outcome:
    folder = ctx.work / "kill_resume"
    folder.mkdir(parents=True, exist_ok=True)
    name, job = widest_job(ctx.config, STEPS["max"])  # its size: the step count follows from its rate
    steps = step_count(ctx, name, len(job["seeds"]))
    name, job = widest_job(ctx.config, steps)
    data = ctx.dataset(job["spec"])
    numbers = {"job": name, "width": int(job["spec"]["width"]), "models": len(job["seeds"]), "steps": steps}
    # Time limits: the killed run needs its start and part of the training, the other two all of it and the pruning
    ref = ctx.command(_command(ctx, name, job, data, folder / "reference.npz"), "resume_reference", 0.45 * ctx.left())
    if ref.rc != 0:
        return Outcome(FAIL, f"the uninterrupted job failed (exit {ref.rc}): {ref.tail()}", numbers)
    trained = float(read(folder / "reference.npz")["seconds"])
    every = max(0.2, trained / 2)
    numbers.update(reference_seconds=round(ref.seconds, 1), training_seconds=round(trained, 1))
    ck = folder / "checkpoint"
    resumable = _command(ctx, name, job, data, folder / "resumed.npz") + ["--checkpoint", ck]
    resumable += ["--checkpoint-every", f"{every:.3f}"]
    what, after = kill_after_first_checkpoint(ctx, resumable, ck, 0.4 * ctx.left())
    numbers.update(checkpoint_every_s=round(every, 3), killed_after_s=round(after, 1))
    if what != "killed":
        return Outcome(FAIL, f"the interrupted job {what}", numbers)
    again = ctx.command(resumable, "resume_resumed", ctx.left())
    found = RESUMED.search(again.log.read_text(errors="replace"))
    numbers["resumed_after_step"] = int(found[1]) if found else None
    if again.rc != 0:
        return Outcome(FAIL, f"the resumed job failed (exit {again.rc}): {again.tail()}", numbers)
    if not found or not 0 < int(found[1]) < steps:
        return Outcome(FAIL, "the resumed job did not resume from a checkpoint taken during training", numbers)
    return judge(folder, numbers, exact=not ctx.gpu)


def judge(folder: Path, numbers: dict, exact: bool) -> Outcome:
    """The verdict on a finished kill and resume: ``folder``'s ``resumed.npz`` against its ``reference.npz``
    (:func:`compare`); ``numbers`` holds the run's ``steps`` and ``resumed_after_step``."""
    diffs = compare(read(folder / "reference.npz"), read(folder / "resumed.npz"), exact)
    numbers = dict(numbers, max_diff={k: v["max_diff"] for k, v in diffs.items()})
    rows = [{"array": k, "largest difference": v["max_diff"], "within bounds": v["ok"]} for k, v in diffs.items()]
    bound = "bit-identical (CPU)" if exact else f"accuracies within {TOLERANCE['acc']}, others {TOLERANCE['rel']}"
    step, steps = numbers["resumed_after_step"], numbers["steps"]
    notes = [f"Resumed after step {step} of {steps}; the resumed result must match the uninterrupted one: {bound}."]
    bad = [k for k, v in diffs.items() if not v["ok"]]
    if bad:
        worst = ", ".join(f"{k} {diffs[k]['max_diff']:.3g}" for k in bad[:3])
        return Outcome(FAIL, f"the resumed result differs from the uninterrupted run: {worst}", numbers, rows, notes)
    identical = all(v["max_diff"] == 0 for v in diffs.values())
    what = f"{numbers['job']} ({numbers['models']} models of width {numbers['width']}, {steps} steps) killed after its "
    what += f"first checkpoint, resumed after step {step}: {'bit-identical' if identical else 'within tolerance'}"
    return Outcome(PASS, what, numbers, rows, notes)
