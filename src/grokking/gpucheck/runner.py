"""Runs the GPU acceptance check: each part in turn within its budget, its outcome recorded whatever happens (a
part's error fails that part alone), the report rewritten after every part; and the command line's checks
before anything runs (CUDA present, the device, the output folder)."""

from __future__ import annotations

import datetime as dt
import shutil
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from . import devicepruning, environment, killresume, precisions, report, smoke, speed, syncaudit
from .common import FAIL, PASS, SKIPPED, SRC, Context, Outcome, Skip


@dataclass(frozen=True)
class Part:
    letter: str
    name: str
    title: str
    run: object  # Context -> Outcome
    budget_s: float


# In this order (part e sizes its job from part c's rate). The budgets add up to less than ten minutes; they are
# estimates from Fig 3's H100 timing (benchmarks/records/), to be set from the times a first GPU report shows.
PARTS = (
    Part("a", "environment", "Environment", environment.run, 5),
    Part("b", "sync_audit", "Sync audit on the device", syncaudit.run, 45),
    Part("c", "speed", "Speed and peak memory at the paper's largest stacks", speed.run, 65),
    Part("d", "precisions", "fp32, tf32 and bf16 on Fig 3's alpha 0.5 column", precisions.run, 120),
    Part("e", "kill_resume", "Kill and resume of a width-10000 job", killresume.run, 130),
    Part("f", "pruning", "Pruning on the device", devicepruning.run, 30),
    Part("g", "smoke", "The smoke preset end to end", smoke.run, 170),
)
MARKER = ".gpu-check"  # in the work folder: a folder the check made and may empty


def _error(err: BaseException) -> str:
    frames = [f for f in traceback.extract_tb(err.__traceback__) if "grokking" in f.filename]
    where = f" (at {Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    first = str(err).splitlines()[0] if str(err) else ""
    return f"{type(err).__name__}: {first}{where}"


def run_part(ctx: Context, part: Part) -> dict:
    """``part`` run within its budget; its report entry (an error or an overrun fails it)."""
    ctx.deadline = time.monotonic() + part.budget_s
    start = time.monotonic()
    try:
        outcome = part.run(ctx)
    except Skip as why:
        outcome = Outcome(SKIPPED, str(why))
    except Exception as err:  # noqa: BLE001 - a part's error is its finding; the other parts still run
        outcome = Outcome(FAIL, _error(err))
    took = time.monotonic() - start
    if outcome.status == PASS and took > part.budget_s:
        outcome.status = FAIL
        outcome.reason = f"over its budget ({took:.0f} s of {part.budget_s:.0f} s): {outcome.reason}"
    ctx.earlier[part.name] = outcome
    if ctx.gpu:
        import torch

        torch.cuda.empty_cache()
    return _entry(part, outcome, took)


def _entry(part: Part, outcome: Outcome, took: float | None) -> dict:
    return {
        "letter": part.letter,
        "name": part.name,
        "title": part.title,
        "status": outcome.status,
        "seconds": took,
        "budget_s": part.budget_s,
        "reason": outcome.reason,
        "numbers": outcome.numbers,
        "rows": outcome.rows,
        "notes": outcome.notes,
    }


def prepare(ctx: Context):
    """An empty work folder (one made by an earlier check is emptied; any other folder is refused)."""
    if ctx.work.exists():
        if not (ctx.work / MARKER).exists():
            raise SystemExit(f"gpu-check: {ctx.work} exists and was not made by gpu-check; choose another --out")
        shutil.rmtree(ctx.work)
    ctx.work.mkdir(parents=True)
    (ctx.work / MARKER).write_text("made by python -m grokking gpu-check; emptied by its next run\n")


def run_check(ctx: Context, letters: list[str], command: str) -> dict:
    """Every part of :data:`PARTS` named in ``letters`` (the others skipped), the report written after each."""
    import torch

    from ..results import code_version

    prepare(ctx)
    chosen = [p for p in PARTS if p.letter in letters]
    doc = {
        "kind": "gpu_check",
        "verdict": "UNFINISHED",
        "gpu_run": ctx.gpu and not ctx.tiny,
        "tiny": ctx.tiny,
        "device": ctx.device,
        "device_name": torch.cuda.get_device_name(ctx.device) if ctx.gpu else "the CPU",
        "preset": ctx.preset,
        "command": command,
        "torch": torch.__version__,
        "code_version": code_version(),
        "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "wall_seconds": 0.0,
        "budget_seconds": sum(p.budget_s for p in chosen),
        "parts": [],
    }
    start = time.monotonic()
    for part in PARTS:
        if part in chosen:
            print(f"gpu-check: {part.letter}. {part.title} (budget {part.budget_s:.0f} s) ...", file=sys.stderr)
            entry = run_part(ctx, part)
        else:
            entry = _entry(part, Outcome(SKIPPED, "not selected (--parts)"), None)
        print(f"gpu-check: {part.letter}. {entry['status'].upper()}: {entry['reason']}", file=sys.stderr)
        doc["parts"].append(entry)
        doc["wall_seconds"] = time.monotonic() - start
        report.write(doc, ctx.out)
    doc["verdict"] = report.verdict([p["status"] for p in doc["parts"]])
    report.write(doc, ctx.out)
    return doc


def default_repo() -> Path | None:
    """The checkout this package runs from, else the current folder if it is one (config, Snakefile)."""
    for root in (SRC.parent, Path.cwd()):
        if (root / "Snakefile").exists() and (root / "config" / "config.yaml").exists():
            return root
    return None


def cuda_device(requested: str) -> tuple[str | None, str]:
    """``cuda:N`` for ``requested`` (``cuda`` is the current device), or None and why there is none."""
    import torch

    if not torch.cuda.is_available():
        build = "a CPU-only build" if torch.version.cuda is None else f"built for CUDA {torch.version.cuda}"
        return None, f"no CUDA device is available (torch {torch.__version__}, {build}, sees none)"
    index = torch.device(requested).index
    index = torch.cuda.current_device() if index is None else index
    if index >= torch.cuda.device_count():
        return None, f"there is no {requested}: torch sees {torch.cuda.device_count()} CUDA device(s)"
    return f"cuda:{index}", ""


def command_line(a) -> str:
    """The command as a reader would type it again."""
    words = ["python -m grokking gpu-check", f"--device {a.device}"] + (["--tiny"] if a.tiny else [])
    if sorted(a.parts) != [p.letter for p in PARTS]:
        words.append("--parts " + " ".join(a.parts))
    return " ".join(words + ([f"--out {a.out}"] if a.out else []))


def main(a) -> int:
    """``python -m grokking gpu-check`` (arguments of :func:`grokking.cli.main`); its exit status."""
    if a.device == "cpu" and not a.tiny:
        print("gpu-check: --device cpu is a development run of the check itself: add --tiny", file=sys.stderr)
        return 2
    device = "cpu"
    if a.device != "cpu":
        device, why = cuda_device(a.device)
        if device is None:
            print(
                f"gpu-check: {why}. This check needs a GPU; nothing was written. A development run on the CPU "
                "(tiny sizes, not a GPU check): python -m grokking gpu-check --device cpu --tiny",
                file=sys.stderr,
            )
            return 1
    out = Path(a.out or ("results/gpu_check_tiny" if a.tiny else "results/gpu_check"))
    repo = Path(a.repo).resolve() if a.repo else default_repo()
    ctx = Context(device=device, tiny=a.tiny, out=out.resolve(), repo=repo)
    doc = run_check(ctx, a.parts, command_line(a))
    print(f"gpu-check: {doc['verdict']} -> {out / 'report.md'} ({out / 'report.json'})", file=sys.stderr)
    return report.VERDICTS[doc["verdict"]]
