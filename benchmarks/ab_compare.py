"""Before/after: one benchmark script run from a base revision and from the working tree, alternately.

Each tree runs its *own* copy of the script (so the base revision's script matches its library), in a
fresh interpreter, round after round (base, new, new, base, ...), so that drifts in machine load hit
both alike. Per tree and per timed quantity it reports the median over rounds and the ratio
new / base (< 1: the working tree is faster). Writes JSON; asserts nothing about timings.

    .venv/bin/python benchmarks/ab_compare.py --base HEAD~3 --script bench_step.py --rounds 3 -- --threads 2
    .venv/bin/python benchmarks/ab_compare.py --base e64d0a3 --script bench_grid.py -- --threads 2 --stacks 4,16

Arguments after ``--`` go to the benchmark script. The quantities compared are every
``seconds_per_step`` / ``seconds_per_model_step`` median of bench_step.py's variants and every
``seconds_per_model_step`` (and the reference's ``reference_seconds_per_cell_step``) of bench_grid.py's
sizes and stacks, found by walking the JSON. The reference rows (a plain nn.Module, the same code in
both trees) show how much of a difference is machine noise.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TIMING_KEYS = ("seconds_per_step", "seconds_per_model_step", "reference_seconds_per_cell_step")


def timings(obj, prefix="") -> dict:
    """Flatten the timing medians of a benchmark's JSON: path -> seconds."""
    out = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            path = f"{prefix}.{k}" if prefix else str(k)
            if k in TIMING_KEYS:
                value = v.get("median") if isinstance(v, dict) else v
                if isinstance(value, (int, float)):
                    out[path] = float(value)
            else:
                out.update(timings(v, path))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            key = str(i)
            if isinstance(v, dict) and "K" in v:
                key = f"K={v['K']}"
            elif isinstance(v, dict) and "p" in v:
                key = f"p={v['p']},N={v.get('width')}"
            out.update(timings(v, f"{prefix}[{key}]"))
    return out


def run_once(tree: Path, script: str, args: list[str], out: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(tree / "src"))
    cmd = [sys.executable, str(tree / "benchmarks" / script), *args, "--out", str(out)]
    res = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True)
    if res.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{res.stderr[-3000:]}")
    return json.loads(out.read_text())


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    own, passed = (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", required=True, help="git revision to compare against")
    ap.add_argument("--script", default="bench_step.py", help="benchmark script in benchmarks/")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", default=None, help="default benchmarks/out/ab_<script>.json")
    a = ap.parse_args(own)
    out_path = Path(a.out or REPO / "benchmarks" / "out" / f"ab_{Path(a.script).stem}.json")
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base"
        subprocess.run(
            ["git", "-C", str(REPO), "worktree", "add", "--detach", str(base), a.base], check=True, capture_output=True
        )
        try:
            runs = {"base": [], "new": []}
            for r in range(a.rounds):
                order = ("base", "new") if r % 2 == 0 else ("new", "base")
                for name in order:
                    tree = base if name == "base" else REPO
                    runs[name].append(timings(run_once(tree, a.script, passed, Path(tmp) / f"{name}{r}.json")))
                    print(f"round {r + 1}/{a.rounds}: {name} done", file=sys.stderr)
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(base)], capture_output=True)
    keys = sorted(set(runs["base"][0]) & set(runs["new"][0]))
    rows = {}
    for k in keys:
        b = statistics.median(x[k] for x in runs["base"])
        n = statistics.median(x[k] for x in runs["new"])
        rows[k] = {"base": b, "new": n, "new/base": n / b if b else None}
    sha = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", a.base], capture_output=True, text=True
    ).stdout.strip()
    result = {
        "script": a.script,
        "base": a.base,
        "base_sha": sha,
        "rounds": a.rounds,
        "script_args": passed,
        "timings": rows,
        "raw": runs,
    }
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = out_path.with_suffix(".tmp")
    tmp_out.write_text(json.dumps(result, indent=2) + "\n")
    os.replace(tmp_out, out_path)
    width = max(len(k) for k in rows) if rows else 10
    print(f"{'quantity':<{width}}  {'base':>10}  {'new':>10}  new/base")
    for k, v in rows.items():
        print(f"{k:<{width}}  {v['base']:>10.4g}  {v['new']:>10.4g}  {v['new/base']:.3f}")
    print(f"-> {out_path}")


if __name__ == "__main__":
    main()
